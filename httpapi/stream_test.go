package httpapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"boxoffice/catalog"
	"boxoffice/testenv"
)

// lazyStore is a StreamStore that hands its plans over one at a time, as a store reading
// rows does: it holds a gate before the plan at gateAt of each read after the first
// (the first finds the window large), and fails call failCall at plan failAt.
type lazyStore struct {
	plans    []catalog.Plan // in the window order: by start, then id
	version  int64
	gate     chan struct{} // closed to let the reads past gateAt; nil: no gate
	gateAt   int
	atGate   atomic.Bool // a read waits at the gate
	failCall int         // the read (from 1) that fails; 0: none
	failAt   int
	calls    atomic.Int64
}

var errStoreBroke = errors.New("store connection reset")

func (s *lazyStore) ChangedSince(context.Context, int64) (catalog.Changes, error) {
	return catalog.Changes{Version: s.version}, nil
}

func (s *lazyStore) SearchPlans(context.Context, catalog.Window) ([]catalog.Plan, error) {
	panic("lazyStore: SearchPlans: a StreamStore's plans are read with EachPlan")
}

func (s *lazyStore) EachPlan(ctx context.Context, w catalog.Window, fn func(catalog.Plan) error) error {
	call := int(s.calls.Add(1))
	for i, p := range s.plans {
		if call == s.failCall && i == s.failAt {
			return errStoreBroke
		}
		if call > 1 && s.gate != nil && i == s.gateAt {
			s.atGate.Store(true)
			select {
			case <-s.gate:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if !w.Contains(p) {
			continue
		}
		if err := fn(p); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// streamFixture returns the plans of a window much larger than an L1 entry of a
// handler with L1MaxBytes of 1 MiB (64 KiB), and the body the index answers for it.
func streamFixture(t *testing.T) (plans []catalog.Plan, want []byte) {
	t.Helper()
	plans = manyPlans(t, 5000)
	indexed := New(fixedCatalog{ix: catalog.NewIndex(7, plans, EncodeEvent)}, slog.New(slog.DiscardHandler), Config{})
	want = get(indexed, "/search").Body.Bytes()
	if len(want) < 8*(1<<20)/l1EntryShare { // 8 L1 entries
		t.Fatalf("the window is %d bytes: not much larger than an L1 entry", len(want))
	}
	return plans, want
}

// TestSearchStreamsLargeWindowsFromStore: without an index, a window larger than an
// L1 entry is streamed from the store, plain or gzipped, with the bytes the index
// answers and its ETag, and kept in neither cache; a window that fits is cached.
func TestSearchStreamsLargeWindowsFromStore(t *testing.T) {
	plans, want := streamFixture(t)
	indexed := New(fixedCatalog{ix: catalog.NewIndex(7, plans, EncodeEvent)}, slog.New(slog.DiscardHandler), Config{})
	store := &lazyStore{plans: plans, version: 7}
	l2 := &mapCache{m: map[string][]byte{}}
	h := New(fixedCatalog{}, slog.New(slog.DiscardHandler), Config{Store: store, Cache: l2, L1MaxBytes: 1 << 20})

	plain := get(h, "/search")
	if plain.Code != http.StatusOK || !bytes.Equal(plain.Body.Bytes(), want) {
		t.Fatalf("streamed search = %d, %d bytes, want 200 and the index's %d bytes", plain.Code, plain.Body.Len(), len(want))
	}
	if got, wantTag := plain.Header().Get("ETag"), get(indexed, "/search").Header().Get("ETag"); got == "" || got != wantTag {
		t.Errorf("ETag %q, want the index's %q", got, wantTag)
	}
	if cl := plain.Header().Get("Content-Length"); cl != "" {
		t.Errorf("Content-Length %s on a streamed response", cl)
	}
	zipped := get(h, "/search", "Accept-Encoding", "gzip")
	if zipped.Code != http.StatusOK || zipped.Header().Get("Content-Encoding") != "gzip" || !bytes.Equal(gunzip(t, zipped.Body.Bytes()), want) {
		t.Errorf("gzipped streamed search = %d (%q): not the index's bytes", zipped.Code, zipped.Header().Get("Content-Encoding"))
	}
	head := httptest.NewRecorder()
	h.ServeHTTP(head, httptest.NewRequest(http.MethodHead, "/search", nil))
	if head.Code != http.StatusOK || head.Body.Len() != 0 || head.Header().Get("ETag") == "" {
		t.Errorf("HEAD of a streamed window = %d with %d bytes, want 200, headers only", head.Code, head.Body.Len())
	}
	if n := h.l1.EstimatedSize(); n != 0 || len(l2.m) != 0 {
		t.Errorf("a streamed window was cached: %d L1 entries, %d L2", n, len(l2.m))
	}

	// A window that fits an L1 entry is read once and cached.
	const small = "/search?starts_at=2021-01-01T03:00:00Z&ends_at=2021-01-01T10:00:00Z"
	before := store.calls.Load()
	for range 2 {
		if rec := get(h, small); rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), get(indexed, small).Body.Bytes()) {
			t.Fatalf("small window = %d %s", rec.Code, rec.Body)
		}
	}
	if n := store.calls.Load() - before; n != 1 || len(l2.m) != 1 {
		t.Errorf("small window: %d store reads and %d L2 entries, want 1 and 1", n, len(l2.m))
	}
}

// TestSearchStreamReachesClientBeforeLastPlan holds the store before the window's last
// plan: the client has most of the body by then, plain and gzipped, so the handler
// holds no more than a buffer of the window; released, the body is the index's bytes.
func TestSearchStreamReachesClientBeforeLastPlan(t *testing.T) {
	plans, want := streamFixture(t)
	for _, enc := range []string{"identity", "gzip"} {
		t.Run(enc, func(t *testing.T) {
			store := &lazyStore{plans: plans, version: 7, gate: make(chan struct{}), gateAt: len(plans) - 1}
			srv := httptest.NewServer(New(fixedCatalog{}, slog.New(slog.DiscardHandler), Config{Store: store, L1MaxBytes: 1 << 20}))
			t.Cleanup(srv.Close)
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/search", nil)
			req.Header.Set("Accept-Encoding", enc)
			resp, err := (&http.Client{Transport: &http.Transport{DisableCompression: true}}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body io.Reader = resp.Body
			if enc == "gzip" {
				if resp.Header.Get("Content-Encoding") != "gzip" {
					t.Fatalf("Content-Encoding %q, want gzip", resp.Header.Get("Content-Encoding"))
				}
				zr, err := gzip.NewReader(resp.Body)
				if err != nil {
					t.Fatal(err)
				}
				body = zr
			}
			var got bytes.Buffer
			var read atomic.Int64
			done := make(chan error, 1)
			go func() {
				buf := make([]byte, 4096)
				for {
					n, err := body.Read(buf)
					got.Write(buf[:n])
					read.Add(int64(n))
					if err != nil {
						done <- err
						return
					}
				}
			}()
			testenv.Poll(t, "most of the body before the store's last plan", func() bool {
				return store.atGate.Load() && read.Load() >= int64(len(want))*9/10
			})
			close(store.gate)
			if err := <-done; !errors.Is(err, io.EOF) {
				t.Fatalf("read the body: %v", err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("streamed body: %d bytes, not the index's %d", got.Len(), len(want))
			}
		})
	}
}

// TestSearchStreamCutWhenStoreFails: a store failing part-way through a streamed
// window cuts the response (the client reads an error, never a shorter document that
// parses); one failing before the window's first plan is a 503.
func TestSearchStreamCutWhenStoreFails(t *testing.T) {
	plans, _ := streamFixture(t)
	store := &lazyStore{plans: plans, version: 7, failCall: 2, failAt: len(plans) / 2}
	srv := httptest.NewServer(New(fixedCatalog{}, slog.New(slog.DiscardHandler), Config{Store: store, L1MaxBytes: 1 << 20}))
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/search")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || err == nil {
		t.Errorf("store failing part-way: status %d, read %d bytes and %v; want 200 and a cut body", resp.StatusCode, len(body), err)
	}

	early := &lazyStore{plans: plans, version: 7, failCall: 2, failAt: 0}
	h := New(fixedCatalog{}, slog.New(slog.DiscardHandler), Config{Store: early, L1MaxBytes: 1 << 20})
	if rec := get(h, "/search"); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("store failing before the first plan: status %d, want 503", rec.Code)
	}
}

//go:build bench

package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"
)

// plainClient asks for what the load generators ask for and keeps the bytes as sent:
// it never decompresses.
var plainClient = &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 4}}

// The synthetic catalog's plans start between these two instants.
var (
	catalogStart = time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
	catalogEnd   = time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC)
)

// hotStarts are where the hot windows start: a few days spread over the catalog, in
// the afternoon, when the synthetic plans (10:00 to 23:00) are on.
var hotStarts = []time.Time{
	time.Date(2021, 3, 1, 16, 0, 0, 0, time.UTC),
	time.Date(2021, 7, 15, 16, 0, 0, 0, time.UTC),
	time.Date(2022, 1, 10, 16, 0, 0, 0, time.UTC),
	time.Date(2022, 6, 20, 16, 0, 0, 0, time.UTC),
}

// windowLengths are the candidate window lengths, widest first.
var windowLengths = []time.Duration{72 * time.Hour, 48 * time.Hour, 24 * time.Hour, 12 * time.Hour,
	6 * time.Hour, 4 * time.Hour, 3 * time.Hour, 2 * time.Hour, time.Hour, 30 * time.Minute}

// maxPlans is the most plans a hot window, or a random one, should return on average.
const maxPlans = 50

// randomSample is how many random windows calibrate fetches.
const randomSample = 51

func searchPath(from time.Time, length time.Duration) string {
	return "/search?starts_at=" + from.UTC().Format(time.RFC3339) + "&ends_at=" + from.Add(length).UTC().Format(time.RFC3339)
}

// response is one captured response: its body as sent and its Content-Encoding.
type response struct {
	body     []byte
	encoding string
}

// variants are a query's responses to a client that takes gzip and to one that does not.
type variants struct{ gzip, plain response }

// fetch gets base+path, with Accept-Encoding: gzip when gz, and returns the response
// as sent.
func fetch(ctx context.Context, base, path string, gz bool) (response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return response{}, err
	}
	if gz {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	resp, err := plainClient.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return response{}, fmt.Errorf("GET %s: %s: %s", path, resp.Status, body)
	}
	return response{body: body, encoding: resp.Header.Get("Content-Encoding")}, nil
}

// fetchVariants captures path's responses as boxoffice sends them on its first use
// (warm false) or once it is warm (warm true). The two differ: boxoffice sends a small
// response plain on its first use and gzipped from its second, so a hot window, asked
// again and again, goes out gzipped, while a random one, asked once, goes out plain.
func fetchVariants(ctx context.Context, base, path string, warm bool) (variants, error) {
	g, err := fetch(ctx, base, path, true)
	if err == nil && warm {
		g, err = fetch(ctx, base, path, true)
	}
	if err != nil {
		return variants{}, err
	}
	p, err := fetch(ctx, base, path, false)
	return variants{gzip: g, plain: p}, err
}

// workloads are the queries of one catalog: the hot windows with their responses, the
// random windows' length and a representative random-window response.
type workloads struct {
	length      time.Duration
	hotPaths    []string
	hot         map[string]variants // by path and query
	hotPlans    float64             // plans per hot window, on average
	random      variants            // the median-sized response of a sample of random windows
	randomPlans float64             // plans per random window in that sample, on average
	randomSize  float64             // mean uncompressed body size of that sample
	hotSize     float64             // mean uncompressed body size of the hot windows
	pagePaths   []string            // the paginated workload: pages of pageLimit deep in the catalog
	pages       map[string]variants // their responses, by path and query
	pageSize    float64             // mean body size of those pages
}

// hotSent is the mean size of the hot windows' responses as sent to a client that takes
// gzip, once warm.
func (w workloads) hotSent() float64 {
	if len(w.hot) == 0 {
		return 0
	}
	n := 0
	for _, v := range w.hot {
		n += len(v.gzip.body)
	}
	return float64(n) / float64(len(w.hot))
}

// calibrate picks the widest window length whose hot windows and a sample of random
// ones each return at most maxPlans plans on average, and captures the responses the
// trivial handler serves: each hot window's as sent once warm, and the median-sized one
// of the sample as sent on its first use (every random request is a first use).
func calibrate(t *testing.T, base string) workloads {
	t.Helper()
	ctx := t.Context()
	var w workloads
	for _, length := range windowLengths {
		w = workloads{length: length, hot: map[string]variants{}}
		plans, size := 0, 0
		for _, s := range hotStarts {
			path := searchPath(s, length)
			v, err := fetchVariants(ctx, base, path, true)
			if err != nil {
				t.Fatal(err)
			}
			n, _ := countIDs(bytes.NewReader(v.plain.body))
			plans += n
			size += len(v.plain.body)
			w.hotPaths = append(w.hotPaths, path)
			w.hot[path] = v
		}
		w.hotPlans = float64(plans) / float64(len(hotStarts))
		w.hotSize = float64(size) / float64(len(hotStarts))

		var sample []variants
		plans, size = 0, 0
		for _, path := range randomPaths(rand.New(rand.NewPCG(1, 2)), randomSample, length) {
			v, err := fetchVariants(ctx, base, path, false)
			if err != nil {
				t.Fatal(err)
			}
			n, _ := countIDs(bytes.NewReader(v.plain.body))
			plans += n
			size += len(v.plain.body)
			sample = append(sample, v)
		}
		slices.SortFunc(sample, func(a, b variants) int { return len(a.plain.body) - len(b.plain.body) })
		w.random = sample[len(sample)/2]
		w.randomPlans = float64(plans) / float64(len(sample))
		w.randomSize = float64(size) / float64(len(sample))
		if w.hotPlans <= maxPlans && w.randomPlans <= maxPlans {
			break
		}
	}
	return w
}

// randomPaths returns n distinct windows of the given length starting anywhere in the
// catalog, to the second.
func randomPaths(rng *rand.Rand, n int, length time.Duration) []string {
	span := int64(catalogEnd.Sub(catalogStart) / time.Second)
	seen := make(map[int64]bool, n)
	paths := make([]string, 0, n)
	for len(paths) < n {
		s := rng.Int64N(span)
		if seen[s] {
			continue
		}
		seen[s] = true
		paths = append(paths, searchPath(catalogStart.Add(time.Duration(s)*time.Second), length))
	}
	return paths
}

// pageLimit is the page size of the paginated workload.
const pageLimit = 100

// pageSample is how many pages the paginated workload cycles through.
const pageSample = 64

// calibratePages captures the paginated workload: from each of pageSample random
// starts in the catalog, the first page of pageLimit plans of the window from there
// on, then the page its next_cursor names, whose path (with the cursor) and response
// the workload keeps. Each request of the workload is then a page deep in the catalog,
// read by a signed cursor and a binary search, as a client paging through a window
// would ask for it. Pages are never gzipped, so both variants are the same bytes.
func calibratePages(t *testing.T, base string, w *workloads) {
	t.Helper()
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(5, 6))
	span := int64(catalogEnd.Sub(catalogStart) / time.Second)
	w.pages = map[string]variants{}
	size := 0
	for len(w.pagePaths) < pageSample {
		from := catalogStart.Add(time.Duration(rng.Int64N(span*9/10)) * time.Second)
		first, err := fetch(ctx, base, "/search?limit="+strconv.Itoa(pageLimit)+"&starts_at="+from.UTC().Format(time.RFC3339), false)
		if err != nil {
			t.Fatal(err)
		}
		var p struct {
			Data struct {
				NextCursor *string `json:"next_cursor"`
			} `json:"data"`
		}
		if err := json.Unmarshal(first.body, &p); err != nil {
			t.Fatalf("page: %v: %s", err, first.body)
		}
		if p.Data.NextCursor == nil {
			continue // too near the end of the catalog
		}
		path := "/search?limit=" + strconv.Itoa(pageLimit) + "&starts_at=" + from.UTC().Format(time.RFC3339) + "&cursor=" + *p.Data.NextCursor
		if _, ok := w.pages[path]; ok {
			continue
		}
		v, err := fetchVariants(ctx, base, path, true)
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := countIDs(bytes.NewReader(v.plain.body)); n != pageLimit {
			t.Fatalf("GET %s: %d plans, want %d", path, n, pageLimit)
		}
		w.pagePaths = append(w.pagePaths, path)
		w.pages[path] = v
		size += len(v.plain.body)
	}
	w.pageSize = float64(size) / float64(len(w.pagePaths))
}

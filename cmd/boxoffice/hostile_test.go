package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"boxoffice/testenv"
)

// hostileBound bounds each wait of the hostile-client suite: a server that never cuts
// a hostile connection fails the test rather than hanging it. The server's own timeouts
// (ReadHeaderTimeout 5 s, ReadTimeout 10 s) are well within it.
const hostileBound = 45 * time.Second

// idleConns is how many idle connections the suite holds open at once.
const idleConns = 10_000

// fuzzedSearches is how many random /search query strings the suite sends.
const fuzzedSearches = 3000

// TestHostileClients runs the embedded mode as its own process on loopback and attacks
// it the ways a hostile client would: slowloris headers and bodies, 10k idle
// connections, oversized headers, bodies and query strings, malformed and deeply nested
// JSON, malformed requests, and fuzzed /search query strings. Throughout, /health must
// answer, and no client error may get a 5xx. Every attack is bounded in count and time.
func TestHostileClients(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and opens 10k connections")
	}
	bin := buildBinary(t)
	addr := freeAddr(t)
	// Rate limits high enough that the attacks reach the parsers (from one address,
	// they would otherwise be 429s, which is the limiter's test, not this one's).
	p := startProc(t, bin, "run", append(os.Environ(), "HTTP_ADDR="+addr, "DATA_DIR="+t.TempDir(), "LOG_LEVEL=error",
		"RATE_LIMIT_PER_SECOND=1000000", "RATE_LIMIT_BURST=1000000"), "run", "--env-file=/dev/null")
	base := "http://" + addr
	testenv.Poll(t, "the server to answer", func() bool {
		resp, err := http.Get(base + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	// /health, every 50 ms for the whole suite, on connections of its own.
	var healthOK, healthFailed atomic.Int64
	var healthErr atomic.Value
	stop := make(chan struct{})
	var watch sync.WaitGroup
	watch.Go(func() {
		c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			resp, err := c.Get(base + "/health")
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
			}
			if err != nil {
				healthFailed.Add(1)
				healthErr.Store(err.Error())
				continue
			}
			healthOK.Add(1)
		}
	})

	var mu sync.Mutex
	var serverErrors []string
	check := func(what string, status int) {
		// 505 is net/http's answer to a request in an HTTP version it does not speak,
		// the status RFC 9110 defines for exactly that client error.
		if status >= 500 && status != http.StatusHTTPVersionNotSupported {
			mu.Lock()
			serverErrors = append(serverErrors, fmt.Sprintf("%s: %d", what, status))
			mu.Unlock()
		}
	}

	var slow sync.WaitGroup
	slow.Go(func() { slowlorisHeaders(t, addr, 200) })
	slow.Go(func() { slowBodies(t, addr, 50, check) })
	slow.Go(func() { holdIdle(t, addr, idleConns) })

	oversized(t, addr, check)
	malformedJSON(t, addr, check)
	malformedRequests(t, addr, check)
	fuzzSearches(t, addr, fuzzedSearches, check)

	slow.Wait()
	close(stop)
	watch.Wait()
	select {
	case <-p.done:
		t.Fatalf("the server exited during the attacks: %v", p.err)
	default:
	}
	if n := healthFailed.Load(); n > 0 {
		t.Errorf("/health failed %d times of %d during the attacks; last: %v", n, n+healthOK.Load(), healthErr.Load())
	}
	if healthOK.Load() == 0 {
		t.Error("/health was never checked")
	}
	if len(serverErrors) > 0 {
		t.Errorf("%d client errors got a 5xx: %v", len(serverErrors), serverErrors[:min(10, len(serverErrors))])
	}
}

// rawRequest sends raw on a connection of its own and returns the response's status, or
// 0 with the error when the server closed the connection instead of answering.
func rawRequest(addr, raw string) (int, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(hostileBound))
	if _, err := io.WriteString(c, raw); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// waitClosed reads from c until the server closes it, and fails t if it does not
// within hostileBound.
func waitClosed(t *testing.T, what string, c net.Conn) {
	c.SetReadDeadline(time.Now().Add(hostileBound))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("%s: the server kept the connection open for %s", what, hostileBound)
	}
}

// slowlorisHeaders opens n connections that send a request's headers a byte every
// 200 ms, and checks that the server cuts each (ReadHeaderTimeout).
func slowlorisHeaders(t *testing.T, addr string, n int) {
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				t.Errorf("slowloris: dial: %v", err)
				return
			}
			defer c.Close()
			closed := make(chan struct{})
			go func() {
				defer close(closed)
				waitClosed(t, "slowloris headers", c)
			}()
			head := "GET /search HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("a", 1000)
			for i := range len(head) {
				select {
				case <-closed:
					return
				case <-time.After(200 * time.Millisecond):
				}
				if _, err := c.Write([]byte{head[i]}); err != nil {
					break
				}
			}
			<-closed
		})
	}
	wg.Wait()
}

// slowBodies opens n connections that send a price request's body a byte a second, and
// checks that each ends (a 4xx, or the connection cut: ReadTimeout), never a 5xx.
func slowBodies(t *testing.T, addr string, n int, check func(string, int)) {
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				t.Errorf("slow body: dial: %v", err)
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(hostileBound))
			io.WriteString(c, "POST /api/v1/price HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{")
			answered := make(chan int, 1)
			go func() {
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					answered <- 0
					return
				}
				resp.Body.Close()
				answered <- resp.StatusCode
			}()
			for {
				select {
				case status := <-answered:
					check("slow body", status)
					return
				case <-time.After(time.Second):
				}
				if _, err := io.WriteString(c, " "); err != nil {
					check("slow body", <-answered)
					return
				}
			}
		})
	}
	wg.Wait()
}

// holdIdle opens n connections that send nothing, holds them while the other attacks
// run, and checks that the server closes them (an idle connection costs it a
// goroutine and a descriptor, so it must not keep them for ever).
func holdIdle(t *testing.T, addr string, n int) {
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Errorf("idle connections: dial %d of %d: %v", len(conns)+1, n, err)
			return
		}
		conns = append(conns, c)
	}
	var wg sync.WaitGroup
	work := make(chan net.Conn)
	for range 64 {
		wg.Go(func() {
			for c := range work {
				waitClosed(t, "idle connection", c)
			}
		})
	}
	for _, c := range conns {
		work <- c
	}
	close(work)
	wg.Wait()
}

// oversized sends headers, bodies and query strings beyond the server's limits.
func oversized(t *testing.T, addr string, check func(string, int)) {
	tests := []struct {
		name, raw string
		want      int
	}{
		{"header of 64 KiB", "GET /search HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 64<<10) + "\r\n\r\n", http.StatusRequestHeaderFieldsTooLarge},
		{"many headers", "GET /search HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-A: b\r\n", 5000) + "\r\n", http.StatusRequestHeaderFieldsTooLarge},
		{"query of 5 KiB", "GET /search?starts_at=" + strings.Repeat("1", 5<<10) + " HTTP/1.1\r\nHost: x\r\n\r\n", http.StatusBadRequest},
		{"query of 64 KiB", "GET /search?x=" + strings.Repeat("1", 64<<10) + " HTTP/1.1\r\nHost: x\r\n\r\n", http.StatusRequestHeaderFieldsTooLarge},
		{"body of 1 MiB", "POST /api/v1/price HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n\r\n" + strings.Repeat(" ", 1<<20), http.StatusBadRequest},
		{"body of 10 GB announced", "POST /api/v1/price HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000000000\r\n\r\n{", http.StatusBadRequest},
		{"chunked body of 1 MiB", "POST /api/v1/publish-market-event HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n100000\r\n" + strings.Repeat(" ", 1<<20) + "\r\n0\r\n\r\n", http.StatusBadRequest},
	}
	for _, tt := range tests {
		status, err := rawRequest(addr, tt.raw)
		check(tt.name, status)
		if err != nil || status != tt.want {
			t.Errorf("%s: status %d (%v), want %d", tt.name, status, err, tt.want)
		}
	}
}

// malformedJSON posts bodies that are not the JSON the endpoints read.
func malformedJSON(t *testing.T, addr string, check func(string, int)) {
	tests := []struct {
		name, body string
		malformed  bool // 400 expected; otherwise any answer but a 5xx
	}{
		{"nested arrays", strings.Repeat("[", 4000), true},
		{"nested objects", strings.Repeat(`{"a":`, 800), true},
		{"nested, closed", strings.Repeat("[", 1500) + strings.Repeat("]", 1500), true},
		{"truncated", `{"product_id":"6a5e7fc8-bd5e-51f7-a156-7b3e1c5d0f2a","user_loc`, true},
		{"not JSON", "product_id=1&user_location=madrid", true},
		{"NUL bytes", "{\x00\x00}", true},
		{"invalid UTF-8", "{\"user_location\":\"\xff\xfe\"}", true},
		{"huge number", `{"multiplier":1` + strings.Repeat("0", 3000) + `}`, true},
		{"two objects", `{}{}`, true},
		{"a string", `"hello"`, true},
		{"deep within a key", `{"product_id":` + strings.Repeat("[", 3000) + `}`, true},
		{"duplicate keys", `{"location":"a","location":"b"}`, false},
		{"lone surrogate", `{"location":"\ud800"}`, false},
	}
	for _, target := range []string{"/api/v1/price", "/api/v1/publish-market-event"} {
		for _, tt := range tests {
			raw := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", target, len(tt.body), tt.body)
			status, err := rawRequest(addr, raw)
			check(target+" "+tt.name, status)
			if err != nil || tt.malformed && status != http.StatusBadRequest {
				t.Errorf("POST %s with %s: status %d (%v), want 400", target, tt.name, status, err)
			}
		}
	}
}

// malformedRequests sends requests HTTP itself rejects, or that no route serves.
func malformedRequests(t *testing.T, addr string, check func(string, int)) {
	tests := []struct{ name, raw string }{
		{"garbage", "GARBAGE\r\n\r\n"},
		{"no host", "GET /search HTTP/1.1\r\n\r\n"},
		{"bad method", "G\x01T /search HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"unknown method", "BREW /search HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"absolute URL", "GET http://evil.example/search HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"dot segments", "GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"bad escape in path", "GET /se%zzarch HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"NUL in path", "GET /search%00 HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"HTTP/0.9", "GET /search\r\n\r\n"},
		{"HTTP/9", "GET /search HTTP/9.9\r\nHost: x\r\n\r\n"},
		{"two content lengths", "POST /api/v1/price HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}"},
		{"smuggling", "POST /api/v1/price HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
		{"bad chunk", "POST /api/v1/price HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"},
		{"form post", "POST /api/v1/price HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\n\r\na=b"},
		{"header without colon", "GET /search HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n"},
		{"bad header name", "GET /search HTTP/1.1\r\nHost: x\r\nBad Name: y\r\n\r\n"},
		{"CONNECT", "CONNECT x:443 HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"bad If-None-Match", "GET /search HTTP/1.1\r\nHost: x\r\nIf-None-Match: " + strings.Repeat(`W/"`, 2000) + "\r\n\r\n"},
		{"bad Accept-Encoding", "GET /search HTTP/1.1\r\nHost: x\r\nAccept-Encoding: " + strings.Repeat("gzip;q=,", 1000) + "\r\n\r\n"},
		{"bad Authorization", "POST /api/v1/recalculate HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + strings.Repeat("\xff", 2000) + "\r\n\r\n"},
		{"bad X-Forwarded-For", "GET /search HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: " + strings.Repeat("1.2.3.4, ::ffff:, [", 300) + "\r\n\r\n"},
	}
	for _, tt := range tests {
		status, err := rawRequest(addr, tt.raw)
		check(tt.name, status)
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}

// searchTokens are the pieces fuzzed query strings are made of.
var searchTokens = []string{
	"starts_at", "ends_at", "STARTS_AT", "=", "&", ";", "%", "%zz", "%00", "%2B", "+", "%20", "-", ":", "T", "Z",
	"2021", "02", "29", "31", "99", "9999", "0000", "00", "24:00", "23:59:59", ".", "999999999999", "1e9",
	"2021-02-01", "2021-07-31T23:59:59Z", "2021-02-01T00:00:00+01:00", "\xff", "é", "%C3%A9", "[]", "starts_at[]",
	"?", "#", "/", "..", "null", "true", "-1", "0x10", "%E2%80%8B", strings.Repeat("9", 50),
}

// fuzzSearches sends n random /search query strings made of searchTokens over one
// keep-alive connection: every answer must be a 200, a 304 or a 400.
func fuzzSearches(t *testing.T, addr string, n int, check func(string, int)) {
	rng := rand.New(rand.NewPCG(15, 15))
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { c.Close() }()
	br := bufio.NewReader(c)
	for i := range n {
		var q strings.Builder
		for range 1 + rng.IntN(12) {
			q.WriteString(searchTokens[rng.IntN(len(searchTokens))])
		}
		query := strings.NewReplacer(" ", "%20", "#", "%23").Replace(q.String())
		c.SetDeadline(time.Now().Add(hostileBound))
		fmt.Fprintf(c, "GET /search?%s HTTP/1.1\r\nHost: x\r\n\r\n", query)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Errorf("search %d ?%q: %v", i, query, err)
			c.Close()
			if c, err = net.DialTimeout("tcp", addr, 5*time.Second); err != nil {
				t.Fatal(err)
			}
			br = bufio.NewReader(c)
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		check("search ?"+query, resp.StatusCode)
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusNotModified {
			t.Errorf("search ?%q = %d, want 200 or 400", query, resp.StatusCode)
		}
		if resp.Close {
			c.Close()
			if c, err = net.DialTimeout("tcp", addr, 5*time.Second); err != nil {
				t.Fatal(err)
			}
			br = bufio.NewReader(c)
		}
	}
}

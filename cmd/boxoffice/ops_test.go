package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestOpsAddr runs the embedded mode with OPS_ADDR: the profiler and the operations
// endpoints answer there, and the API's listener serves no profiler.
func TestOpsAddr(t *testing.T) {
	ops := freeAddr(t)
	base, _ := startCmd(t, "run", map[string]string{
		"HTTP_ADDR": freeAddr(t), "OPS_ADDR": ops, "DATA_DIR": t.TempDir(),
	})
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	for _, tt := range []struct{ path, contains string }{
		{"/health", "healthy"}, {"/metrics", "go_goroutines"}, {"/debug/pprof/", "heap"}, {"/ready", "checks"},
	} {
		if code, body := get("http://" + ops + tt.path); code >= 500 && tt.path != "/ready" || !strings.Contains(body, tt.contains) {
			t.Errorf("GET %s on OPS_ADDR = %d %.200s, want %q in it", tt.path, code, body, tt.contains)
		}
	}
	if code, _ := get(base + "/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("GET /debug/pprof/ on HTTP_ADDR = %d, want 404", code)
	}
}

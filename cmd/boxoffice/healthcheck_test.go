package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHealthcheck(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(ok.Close)
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(failing.Close)
	closed := "tcp://" + freeAddr(t)
	tests := []struct {
		url     string
		wantErr string
	}{
		{ok.URL + "/health", ""},
		{"tcp://" + strings.TrimPrefix(ok.URL, "http://"), ""},
		{failing.URL + "/health", "503"},
		{closed, "refused"},
		{"ftp://x/y", "want an http://"},
		{"nonsense", "not a URL"},
	}
	for _, tt := range tests {
		err := healthcheck(t.Context(), []string{tt.url})
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("healthcheck(%q) = %v, want error containing %q", tt.url, err, tt.wantErr)
		}
	}
}

package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"boxoffice/testenv"
)

// newCert writes a self-signed certificate for 127.0.0.1 named name to certFile and
// keyFile, and returns it.
func newCert(t *testing.T, name, certFile, keyFile string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	// Written beside and renamed into place, as a certificate manager does.
	for _, f := range []struct {
		path, kind string
		der        []byte
	}{{certFile, "CERTIFICATE", der}, {keyFile, "PRIVATE KEY", keyDER}} {
		tmp := f.path + ".tmp"
		if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: f.kind, Bytes: f.der}), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, f.path); err != nil {
			t.Fatal(err)
		}
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// trusting returns an HTTP/2-capable client that trusts cert only.
func trusting(cert *x509.Certificate) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
}

// TestHTTPS serves a role's HTTP over TLS with a certificate made here: HTTP/2 is
// negotiated, TLS 1.1 is refused, and a new certificate is taken up when the files
// change and on SIGHUP, while a connection made before keeps working.
func TestHTTPS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	first := newCert(t, "first", certFile, keyFile)
	log := slog.New(slog.DiscardHandler)
	certs, err := newCertReloader(certFile, keyFile, log)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := tls.NewListener(raw, certs.tlsConfig())
	base := "https://" + raw.Addr().String()
	ctx, cancel := context.WithCancel(t.Context())
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return serveHTTP(gctx, ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, r.Proto)
		}), log)
	})
	g.Go(func() error { return certs.Run(gctx, 10*time.Millisecond) })
	defer func() {
		cancel()
		if err := g.Wait(); err != nil {
			t.Error(err)
		}
	}()

	get := func(c *http.Client) (proto string, err error) {
		resp, err := c.Get(base + "/")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	old := trusting(first)
	if proto, err := get(old); err != nil || proto != "HTTP/2.0" {
		t.Fatalf("GET over TLS = %q, %v; want HTTP/2.0", proto, err)
	}

	tls11 := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: x509.NewCertPool(), InsecureSkipVerify: true, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}}}
	if _, err := get(tls11); err == nil || !strings.Contains(err.Error(), "protocol version") {
		t.Errorf("GET with TLS 1.1 = %v, want a protocol version error", err)
	}

	// The files change: new connections get the new certificate.
	second := newCert(t, "second", certFile, keyFile)
	testenv.Poll(t, "the new certificate after the files changed", func() bool {
		c := trusting(second)
		defer c.CloseIdleConnections()
		_, err := get(c)
		return err == nil
	})
	// The connection made before is still open and served: nothing was dropped.
	if proto, err := get(old); err != nil || proto != "HTTP/2.0" {
		t.Errorf("GET on the connection made before the reload = %q, %v", proto, err)
	}

}

// TestCertReloadOnSIGHUP checks that SIGHUP makes the reloader read the files (its
// poll is too slow to see them change here), and that a broken pair keeps the
// certificate it had.
func TestCertReloadOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	newCert(t, "first", certFile, keyFile)
	logs := &testenv.Logs{}
	certs, err := newCertReloader(certFile, keyFile, slog.New(slog.NewJSONHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	// The test process, too, takes SIGHUP while it runs: a signal that arrives after
	// the reloader stopped must not end it.
	held := make(chan os.Signal, 1)
	signal.Notify(held, syscall.SIGHUP)
	defer signal.Stop(held)
	hup := func() {
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- certs.Run(ctx, time.Hour) }()
	defer func() { cancel(); <-done }()
	subject := func() string {
		c, _ := certs.tlsConfig().GetCertificate(nil)
		return c.Leaf.Subject.CommonName
	}
	newCert(t, "second", certFile, keyFile)
	testenv.Poll(t, "the certificate reloaded on SIGHUP", func() bool {
		if subject() == "second" {
			return true
		}
		hup()
		return false
	})
	if err := os.WriteFile(keyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	testenv.Poll(t, "the failed reload logged", func() bool {
		if strings.Contains(logs.String(), "serving the previous one") {
			return true
		}
		hup()
		return false
	})
	if got := subject(); got != "second" {
		t.Errorf("after a failed reload the certificate is %q, want second", got)
	}
}

func TestTLSConfig(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	newCert(t, "x", certFile, keyFile)
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"cert without key", map[string]string{"TLS_CERT_FILE": certFile}, "TLS_CERT_FILE and TLS_KEY_FILE: set both"},
		{"key without cert", map[string]string{"TLS_KEY_FILE": keyFile}, "TLS_CERT_FILE and TLS_KEY_FILE: set both"},
		{"missing cert", map[string]string{"TLS_CERT_FILE": filepath.Join(dir, "none.pem"), "TLS_KEY_FILE": keyFile}, "TLS_CERT_FILE: stat"},
		{"key for another cert", map[string]string{"TLS_CERT_FILE": certFile, "TLS_KEY_FILE": certFile}, "TLS_CERT_FILE, TLS_KEY_FILE:"},
	}
	for _, tt := range tests {
		tt.env["DATA_DIR"] = t.TempDir()
		tt.env["HTTP_ADDR"] = "127.0.0.1:0"
		err := run(t.Context(), []string{"run", "--env-file", filepath.Join(dir, "none")},
			func(k string) string { return tt.env[k] }, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: run() = %v, want an error containing %q", tt.name, err, tt.want)
		}
	}
}

package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"
)

// certPoll is how often the certificate's files are checked for a change.
const certPoll = 5 * time.Second

// certReloader serves the certificate of TLS_CERT_FILE and TLS_KEY_FILE to TLS
// handshakes, and loads it again when the files change or the process gets SIGHUP.
// Connections already open keep the certificate they were made with: nothing is
// dropped; new ones get the new one. A pair that fails to load (a half-written file, a
// key that does not match) is logged and the previous certificate stays.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger
	cert              atomic.Pointer[tls.Certificate]
	stamp             string // the files' sizes and modification times when last loaded
}

// newCertReloader loads the pair; an error names the variable of the file at fault
// when it can tell.
func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	for _, f := range []struct{ env, path string }{{"TLS_CERT_FILE", certFile}, {"TLS_KEY_FILE", keyFile}} {
		if _, err := os.Stat(f.path); err != nil {
			return nil, fmt.Errorf("%s: %w", f.env, err)
		}
	}
	if err := r.load(); err != nil {
		return nil, fmt.Errorf("TLS_CERT_FILE, TLS_KEY_FILE: %w", err)
	}
	return r, nil
}

// tlsConfig is the server's TLS: TLS 1.2 at least, Go's default cipher suites and
// curves, HTTP/2 offered first, the certificate from r.
func (r *certReloader) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return r.cert.Load(), nil },
	}
}

// load reads the pair and makes it the one served.
func (r *certReloader) load() error {
	stamp, err := r.fileStamp()
	if err != nil {
		return err
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return err
	}
	r.cert.Store(&cert)
	r.stamp = stamp
	return nil
}

// fileStamp describes the files' current state, to tell when they change.
func (r *certReloader) fileStamp() (string, error) {
	var stamp []byte
	for _, f := range []string{r.certFile, r.keyFile} {
		// The operator's own TLS_CERT_FILE and TLS_KEY_FILE. Stat follows symbolic
		// links: a swapped link is a change.
		fi, err := os.Stat(f) //nolint:gosec // a path from the configuration, not from a request
		if err != nil {
			return "", err
		}
		stamp = fmt.Appendf(stamp, "%d.%d;", fi.Size(), fi.ModTime().UnixNano())
	}
	return string(stamp), nil
}

// Run reloads the certificate when the files change (checked every poll) and on
// SIGHUP, until ctx is done; it returns nil.
func (r *certReloader) Run(ctx context.Context, poll time.Duration) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			r.reload("SIGHUP")
		case <-t.C:
			if stamp, err := r.fileStamp(); err == nil && stamp != r.stamp {
				r.reload("files changed")
			}
		}
	}
}

// reload loads the pair again, keeping the current one when that fails.
func (r *certReloader) reload(why string) {
	if err := r.load(); err != nil {
		r.log.Error("reload TLS certificate; serving the previous one", "reason", why, "err", err)
		return
	}
	leaf := r.cert.Load().Leaf
	attrs := []any{"reason", why}
	if leaf != nil {
		attrs = append(attrs, "subject", leaf.Subject.String(), "not_after", leaf.NotAfter)
	}
	r.log.Info("TLS certificate reloaded", attrs...)
}

// errTLSPair is the error of a configuration with one of the two TLS files.
var errTLSPair = errors.New("TLS_CERT_FILE and TLS_KEY_FILE: set both to serve HTTPS, or neither")

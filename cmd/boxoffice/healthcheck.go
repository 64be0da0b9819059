package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"boxoffice/redact"
)

// healthcheckSummary describes the healthcheck command in the usage text.
const healthcheckSummary = `exit 0 when URL answers: http(s):// a 2xx, tcp://host:port a
connection (default http://127.0.0.1:8000/health); for containers
without a shell`

// healthcheckTimeout bounds one health check.
const healthcheckTimeout = 2 * time.Second

// healthcheck probes one URL and returns nil when it answers: a 2xx for http(s)://,
// an accepted connection for tcp://host:port. Container images without a shell or curl
// run it as their HEALTHCHECK.
func healthcheck(ctx context.Context, args []string) error {
	target := "http://127.0.0.1:8000/health"
	switch len(args) {
	case 0:
	case 1:
		target = args[0]
	default:
		return errors.New("healthcheck: want at most one URL")
	}
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		return fmt.Errorf("healthcheck: not a URL with a host: %q", redact.URL(target))
	}
	ctx, cancel := context.WithTimeout(ctx, healthcheckTimeout)
	defer cancel()
	switch u.Scheme {
	case "tcp":
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", u.Host)
		if err != nil {
			return fmt.Errorf("healthcheck: %w", err)
		}
		return c.Close()
	case "http", "https":
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil) //nolint:gosec // G704: the operator names the target
		if err != nil {
			return fmt.Errorf("healthcheck: %w", err)
		}
		resp, err := http.DefaultClient.Do(req) //nolint:gosec // G704: the operator names the target
		if err != nil {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err // its text quotes the URL whole
			}
			return fmt.Errorf("healthcheck: GET %s: %w", redact.URL(target), err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("healthcheck: %s answered %s", redact.URL(target), resp.Status)
		}
		return nil
	default:
		return fmt.Errorf("healthcheck: want an http://, https:// or tcp:// URL, got %q", redact.URL(target))
	}
}

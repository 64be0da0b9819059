package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"boxoffice/provider"
	"boxoffice/redact"
)

// providerConfig is one provider that ingest syncs, from EXTERNAL_API_URL with
// PROVIDER_NAME, an entry of PROVIDERS, or one of PROVIDERS_FILE.
type providerConfig struct {
	Name     string        // part of every plan id, metric label and lock of the provider
	URL      string        // its catalog
	Format   string        // provider.Formats: planList, eventList, json; "" or auto detects each response's
	Interval time.Duration // between syncs; 0: SYNC_INTERVAL_SECONDS
	Timeout  time.Duration // connect, headers and each pause in the body; 0: API_TIMEOUT_SECONDS
	MaxBytes int64         // largest document; 0: PROVIDER_MAX_BYTES
	// Retries of a sync's fetch and its batches; 0: SYNC_MAX_ATTEMPTS, SYNC_RETRY_SECONDS,
	// SYNC_RETRY_MAX_SECONDS and SYNC_BATCH_PLANS.
	MaxAttempts int
	Retry       time.Duration
	RetryMax    time.Duration
	BatchPlans  int
	Headers     [][2]string // sent with every request, such as an API key; never shown
	from        string      // where it was configured, for messages: `PROVIDERS entry 2`
}

// providerName is what a provider of PROVIDERS or PROVIDERS_FILE may be called: it goes
// into plan ids, Redis keys, metric labels and URLs, so it is kept plain.
var providerName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// checkProviderName reports a name providerName refuses.
func checkProviderName(name string) error {
	if !providerName.MatchString(name) {
		return fmt.Errorf("name %q: want 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", limitText(name))
	}
	return nil
}

// checkProviderURL reports a URL that is not http(s) with a host, quoting it redacted.
func checkProviderURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("url: want an http:// or https:// URL with a host, got %q", redact.URL(raw))
	}
	return nil
}

// parseProviders reads PROVIDERS: whitespace-separated entries `name=url` or
// `name:format=url`. Errors name the entry by its position and show it with its URL
// redacted.
func parseProviders(v string) ([]providerConfig, error) {
	var out []providerConfig
	for i, entry := range strings.Fields(v) {
		p := providerConfig{from: fmt.Sprintf("PROVIDERS entry %d", i+1)}
		head, raw, ok := strings.Cut(entry, "=")
		if !ok {
			return nil, fmt.Errorf("entry %d %q: want name=url or name:format=url", i+1, limitText(redact.URL(entry)))
		}
		p.Name, p.Format, _ = strings.Cut(head, ":")
		p.URL = raw
		if err := p.check(); err != nil {
			return nil, fmt.Errorf("entry %d %q: %w", i+1, limitText(p.Name+"="+redact.URL(raw)), err)
		}
		out = append(out, p)
	}
	return out, nil
}

// check reports the first invalid field of p.
func (p providerConfig) check() error {
	if err := checkProviderName(p.Name); err != nil {
		return err
	}
	if err := checkProviderURL(p.URL); err != nil {
		return err
	}
	if err := provider.CheckFormat(p.Format); err != nil {
		return fmt.Errorf("format: %w", err)
	}
	return nil
}

// providersFile is the document of PROVIDERS_FILE.
type providersFile struct {
	Providers []struct {
		Name            string            `json:"name"`
		URL             string            `json:"url"`
		Format          string            `json:"format"`
		IntervalSeconds *float64          `json:"interval_seconds"`
		TimeoutSeconds  *float64          `json:"timeout_seconds"`
		MaxBytes        *int64            `json:"max_bytes"`
		MaxAttempts     *int              `json:"max_attempts"`
		RetrySeconds    *float64          `json:"retry_seconds"`
		RetryMaxSeconds *float64          `json:"retry_max_seconds"`
		BatchPlans      *int              `json:"batch_plans"`
		Headers         map[string]string `json:"headers"`
	} `json:"providers"`
}

// maxProvidersFile bounds PROVIDERS_FILE: a few hundred bytes a provider.
const maxProvidersFile = 1 << 20

// readProvidersFile reads PROVIDERS_FILE (docs/PROVIDER.md): a JSON object whose
// "providers" array lists objects with name and url, and optionally format,
// interval_seconds, timeout_seconds, max_bytes, max_attempts, retry_seconds,
// retry_max_seconds, batch_plans and headers (an object of header names and values,
// such as an API key, never shown in a message). Unknown fields are errors, so that a misspelt
// setting does not go unnoticed. Errors name the file and the entry.
func readProvidersFile(path string) ([]providerConfig, error) {
	f, err := os.Open(path) //nolint:gosec // G304: the operator names the file
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxProvidersFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > maxProvidersFile {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxProvidersFile)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var doc providersFile
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%s: data after the JSON object", path)
	}
	if doc.Providers == nil {
		return nil, fmt.Errorf(`%s: no "providers" array`, path)
	}
	out := make([]providerConfig, 0, len(doc.Providers))
	for i, e := range doc.Providers {
		p := providerConfig{Name: e.Name, URL: e.URL, Format: e.Format, from: fmt.Sprintf("PROVIDERS_FILE entry %d", i+1)}
		err := p.check()
		if err == nil {
			p.Interval, err = fileSeconds("interval_seconds", e.IntervalSeconds)
		}
		if err == nil {
			p.Timeout, err = fileSeconds("timeout_seconds", e.TimeoutSeconds)
		}
		if err == nil {
			p.Retry, err = fileSeconds("retry_seconds", e.RetrySeconds)
		}
		if err == nil {
			p.RetryMax, err = fileSeconds("retry_max_seconds", e.RetryMaxSeconds)
		}
		if err == nil {
			p.MaxAttempts, err = fileInt("max_attempts", e.MaxAttempts, 1, 100)
		}
		if err == nil {
			p.BatchPlans, err = fileInt("batch_plans", e.BatchPlans, 1, 100_000)
		}
		if err == nil && e.MaxBytes != nil {
			if p.MaxBytes = *e.MaxBytes; p.MaxBytes < 1<<20 {
				err = fmt.Errorf("max_bytes: must be at least 1 MiB (1048576): %d", p.MaxBytes)
			}
		}
		for _, name := range slices.Sorted(maps.Keys(e.Headers)) {
			if err == nil {
				err = provider.CheckHeader(name, e.Headers[name])
			}
			p.Headers = append(p.Headers, [2]string{name, e.Headers[name]})
		}
		if err != nil {
			return nil, fmt.Errorf("%s: provider %d (%q): %w", path, i+1, limitText(e.Name), err)
		}
		out = append(out, p)
	}
	return out, nil
}

// fileSeconds reads an optional duration of the providers file; absent is 0.
func fileSeconds(field string, v *float64) (time.Duration, error) {
	if v == nil {
		return 0, nil
	}
	if math.IsNaN(*v) || *v <= 0 || *v > 365*24*3600 {
		return 0, fmt.Errorf("%s: must be above 0 and at most a year: %s", field, strconv.FormatFloat(*v, 'g', -1, 64))
	}
	return time.Duration(*v * float64(time.Second)), nil
}

// fileInt reads an optional whole number of the providers file, between lo and hi;
// absent is 0.
func fileInt(field string, v *int, lo, hi int) (int, error) {
	if v == nil {
		return 0, nil
	}
	if *v < lo || *v > hi {
		return 0, fmt.Errorf("%s: must be a whole number from %d to %d: %d", field, lo, hi, *v)
	}
	return *v, nil
}

// providers returns every provider c configures, in order: EXTERNAL_API_URL (named
// PROVIDER_NAME), then PROVIDERS, then PROVIDERS_FILE's, with the defaults of
// SYNC_INTERVAL_SECONDS, API_TIMEOUT_SECONDS, PROVIDER_MAX_BYTES, SYNC_MAX_ATTEMPTS,
// SYNC_RETRY_SECONDS, SYNC_RETRY_MAX_SECONDS and SYNC_BATCH_PLANS filled in. A name given twice is an
// error naming both places.
func (c config) providers() ([]providerConfig, error) {
	var all []providerConfig
	if c.ExternalAPIURL != "" {
		all = append(all, providerConfig{Name: c.ProviderName, URL: c.ExternalAPIURL, from: "EXTERNAL_API_URL"})
	}
	all = append(all, c.Providers...)
	all = append(all, c.FileProviders...)
	seen := map[string]string{}
	for i := range all {
		p := &all[i]
		if first, ok := seen[p.Name]; ok {
			return nil, fmt.Errorf("%s: provider %q is already configured by %s", p.from, p.Name, first)
		}
		seen[p.Name] = p.from
		c.fillProviderDefaults(p)
	}
	return all, nil
}

// fillProviderDefaults sets the settings p leaves at zero to the global ones.
func (c config) fillProviderDefaults(p *providerConfig) {
	orGlobal(&p.Interval, c.SyncInterval)
	orGlobal(&p.Timeout, c.APITimeout)
	orGlobal(&p.MaxBytes, c.ProviderMaxBytes)
	orGlobal(&p.MaxAttempts, c.SyncMaxAttempts)
	orGlobal(&p.Retry, c.SyncRetry)
	orGlobal(&p.RetryMax, c.SyncRetryMax)
	orGlobal(&p.BatchPlans, c.SyncBatchPlans)
}

// orGlobal sets *v to global when it is zero.
func orGlobal[T int | int64 | time.Duration](v *T, global T) {
	if *v == 0 {
		*v = global
	}
}

// limitText cuts a value quoted in an error message to a readable length.
func limitText(s string) string {
	if len(s) > 96 {
		return s[:96] + "…"
	}
	return s
}

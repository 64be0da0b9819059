package main

import (
	"cmp"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"boxoffice/catalog"
	"boxoffice/provider"
	"boxoffice/providersim"
	"boxoffice/testenv"
)

// samplePlans are the base plan and plan ids of the sample events, by event.
var samplePlans = map[string][2]string{
	pantomima1642.ID: {"322", "1642"},
	pantomima1643.ID: {"322", "1643"},
	camela.ID:        {"291", "291"},
	morancos.ID:      {"1591", "1642"},
}

// ofProvider returns the sample events as provider's: the same plans under its ids.
func ofProvider(t *testing.T, name string, events []event) []event {
	t.Helper()
	out := make([]event, len(events))
	for i, e := range events {
		ids, ok := samplePlans[e.ID]
		if !ok {
			t.Fatalf("event %s is not a sample's", e.ID)
		}
		e.ID = catalog.NewID(name, ids[0], ids[1]).String()
		out[i] = e
	}
	return out
}

// merged returns the events of several providers in the order of a search: by start,
// then by id.
func merged(lists ...[]event) []event {
	var out []event
	for _, l := range lists {
		out = append(out, l...)
	}
	slices.SortFunc(out, func(a, b event) int {
		return cmp.Or(cmp.Compare(a.StartDate+"T"+a.StartTime, b.StartDate+"T"+b.StartTime), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// providerStatus is an entry of GET /api/v1/providers.
type providerStatus struct {
	Name          string     `json:"name"`
	SyncID        string     `json:"sync_id"`
	StartedAt     time.Time  `json:"started_at"`
	FinishedAt    time.Time  `json:"finished_at"`
	Outcome       string     `json:"outcome"`
	Error         *string    `json:"error"`
	Format        *string    `json:"format"`
	PlansParsed   int        `json:"plans_parsed"`
	PlansSkipped  int        `json:"plans_skipped"`
	Attempts      int        `json:"attempts"`
	LastSuccessAt *time.Time `json:"last_success_at"`
	NextSyncAt    time.Time  `json:"next_sync_at"`
}

// providerStatuses returns GET /api/v1/providers by name.
func providerStatuses(t *testing.T, base string) map[string]providerStatus {
	t.Helper()
	var doc struct {
		Providers []providerStatus `json:"providers"`
	}
	getJSON(t, base+"/api/v1/providers", http.StatusOK, &doc)
	out := map[string]providerStatus{}
	for _, p := range doc.Providers {
		out[p.Name] = p
	}
	return out
}

// TestRunManyProviders syncs two simulated providers in different formats in one run:
// fever in planList through responses 1, 2 and 3, acme in JSON through response 1 and
// then a malformed document, a 500 and answers slower than the timeout. fever keeps syncing
// while acme fails and hangs, searches return both providers' plans in one ordering,
// and GET /api/v1/providers tells each one's story. Then acme is removed from the
// configuration and the process restarted with fever down: acme's plans, ever online,
// are still searchable, and its last sync still listed.
func TestRunManyProviders(t *testing.T) {
	fever := providersim.New(providersim.Config{Mode: providersim.Sequence, Sequence: "1,2,3"})
	acme := providersim.New(providersim.Config{Mode: providersim.Sequence, Sequence: "1,malformed,500,slow",
		SlowDelay: time.Minute, Format: provider.FormatJSON})
	t.Cleanup(func() { fever.Close(); acme.Close() })
	feverSrv := httptest.NewServer(fever)
	t.Cleanup(feverSrv.Close)
	acmeSrv := httptest.NewServer(acme)
	t.Cleanup(acmeSrv.Close)

	env := map[string]string{
		"HTTP_ADDR":             freeAddr(t),
		"DATA_DIR":              t.TempDir(),
		"PROVIDERS":             "fever=" + feverSrv.URL + "/api/events acme=" + acmeSrv.URL + "/api/events",
		"SYNC_INTERVAL_SECONDS": "0.2",
		"API_TIMEOUT_SECONDS":   "0.5",
	}
	base, stop := startRun(t, env)

	acme1 := ofProvider(t, "acme", afterResponse1)
	final := waitEvents(t, base+year2021, merged(afterResponse3, acme1))
	testenv.Poll(t, "acme's malformed document, its 500 and a slow answer", func() bool { return acme.Requests() >= 4 })

	// fever goes on while acme's sync waits out its timeouts and retries: once response
	// 3 is confirmed, its syncs are conditional and get 304, and they keep starting
	// after acme's failure.
	var st map[string]providerStatus
	testenv.Poll(t, "fever's syncs after acme's failure", func() bool {
		st = providerStatuses(t, base)
		a, f := st["acme"], st["fever"]
		return a.Outcome == "failed" && f.Outcome == "not_modified" && f.StartedAt.After(a.FinishedAt)
	})

	if f := st["fever"]; f.LastSuccessAt == nil || !f.NextSyncAt.After(f.StartedAt) || f.Error != nil {
		t.Errorf("fever's status %+v, want a success and its next sync after it", f)
	}
	a := st["acme"]
	if a.Outcome != "failed" || a.Error == nil || !strings.Contains(*a.Error, "malformed provider document") || a.LastSuccessAt == nil {
		t.Errorf("acme's status %+v, want the malformed document's failure after a success", a)
	}
	if len(st) != 2 {
		t.Errorf("GET /api/v1/providers lists %d providers, want 2", len(st))
	}
	stop()

	// acme removed, fever down: every plan stays, byte for byte, and acme's last sync
	// stays listed.
	env["HTTP_ADDR"] = freeAddr(t)
	env["PROVIDERS"] = "fever=http://" + freeAddr(t) + "/api/events"
	base, _ = startRun(t, env)
	if status, body := searchBody(t, base+year2021); status != http.StatusOK || string(body) != string(final) {
		t.Errorf("after removing acme: status %d, body\n%s\nwant\n%s", status, body, final)
	}
	testenv.Poll(t, "fever's failed sync recorded", func() bool { return providerStatuses(t, base)["fever"].Outcome == "failed" })
	if got := providerStatuses(t, base)["acme"]; got.Name != "acme" || got.StartedAt.Before(a.StartedAt) || got.Outcome != "failed" {
		t.Errorf("acme's status after its removal: %+v, want its last sync (failed) kept", got)
	}
}

// TestRunProviderFormats syncs a provider in each format, detected or named, and finds
// each one's plans under its own ids.
func TestRunProviderFormats(t *testing.T) {
	var providers []string
	var want [][]event
	for _, p := range []struct{ name, format, serve string }{
		{"xml", "", provider.FormatPlanList},
		{"legacy", provider.FormatEventList, provider.FormatEventList},
		{"feed", "", provider.FormatJSON},
		{"named", provider.FormatJSON, provider.FormatJSON},
	} {
		_, url := startSim(t, providersim.Config{Format: p.serve})
		entry := p.name + "=" + url
		if p.format != "" {
			entry = p.name + ":" + p.format + "=" + url
		}
		providers = append(providers, entry)
		events := afterResponse1
		if p.serve == provider.FormatEventList {
			events = []event{pantomima1642, camela, morancos} // the legacy response 1 lacks 1643
		}
		want = append(want, ofProvider(t, p.name, events))
	}
	base, _ := startRun(t, map[string]string{
		"HTTP_ADDR":             freeAddr(t),
		"DATA_DIR":              t.TempDir(),
		"PROVIDERS":             strings.Join(providers, " "),
		"SYNC_INTERVAL_SECONDS": "3600",
	})
	waitEvents(t, base+year2021, merged(want...))
	var st map[string]providerStatus
	testenv.Poll(t, "every provider's sync recorded", func() bool { // just after its batches were published
		st = providerStatuses(t, base)
		return len(st) == 4
	})
	for name, format := range map[string]string{"xml": "planList", "legacy": "eventList", "feed": "json", "named": "json"} {
		parsed := 4
		if name == "legacy" {
			parsed = 3
		}
		if got := st[name]; got.Format == nil || *got.Format != format || got.Outcome != "ok" || got.PlansParsed != parsed || got.PlansSkipped != 0 {
			t.Errorf("%s's status %+v, want an ok sync of %s with %d plans parsed", name, got, format, parsed)
		}
	}
	if diff := gocmp.Diff(4, len(st)); diff != "" {
		t.Errorf("providers listed (-want +got):\n%s", diff)
	}
}

// TestDistributedManyProviders runs ingest, worker and api as separate roles on
// PostgreSQL, Redis and RabbitMQ with two providers in different formats, one of which
// fails after its first document: the other keeps syncing and is served, and the api,
// which runs no sync, tells both providers' last syncs from the store.
func TestDistributedManyProviders(t *testing.T) {
	primary, replica := testenv.PostgresSchema(t)
	svc := isolatedServices(t, "providers")
	_, feverURL := startSim(t, providersim.Config{Mode: providersim.Sequence, Sequence: "1,2,3", Format: provider.FormatEventList})
	acme, acmeURL := startSim(t, providersim.Config{Mode: providersim.Sequence, Sequence: "1,malformed", Format: provider.FormatJSON})
	role := func(cmd string, env map[string]string) string {
		env["HTTP_ADDR"] = freeAddr(t)
		env["DATABASE_WRITE_URL"] = primary
		env["REDIS_URL"], env["BROKER_URL"], env["NAMESPACE"] = svc.redisURL, svc.brokerURL, svc.namespace
		base, _ := startCmd(t, cmd, env)
		return base
	}
	api := role("api", map[string]string{"DATABASE_READ_URL": replica, "API_KEYS": testAPIKey})
	role("worker", map[string]string{})
	role("ingest", map[string]string{"PROVIDERS": "fever=" + feverURL + " acme:json=" + acmeURL, "SYNC_INTERVAL_SECONDS": "0.2"})

	// The legacy response 1 lacks 322/1643; responses 2 and 3 are the planList ones.
	fever3 := []event{pantomima1642, with(camela, "21:30:00"), morancos}
	acme1 := ofProvider(t, "acme", afterResponse1)
	waitEvents(t, api+year2021, merged(fever3, acme1))
	var st map[string]providerStatus
	testenv.Poll(t, "acme's failure and fever's syncs after it, through the api", func() bool {
		st = providerStatuses(t, api)
		return st["acme"].Outcome == "failed" && st["fever"].StartedAt.After(st["acme"].StartedAt)
	})
	if a := st["acme"]; a.Error == nil || !strings.Contains(*a.Error, "malformed provider document") || a.LastSuccessAt == nil {
		t.Errorf("acme's status %+v, want the malformed document's failure after a success", a)
	}
	if f := st["fever"]; f.Outcome == "failed" || f.LastSuccessAt == nil {
		t.Errorf("fever's status %+v, want syncs that do not fail", f)
	}
	if acme.Requests() < 2 {
		t.Errorf("acme was called %d times, want at least 2", acme.Requests())
	}
}

// TestRunOneSimulatorManyFeeds syncs three providers from one simulator's three paths,
// each in its own format: PROVIDERS names them, and searches return the plans of all
// three under their own ids. Then run without providers and with --sim-feeds syncs the
// same three from its built-in simulator.
func TestRunOneSimulatorManyFeeds(t *testing.T) {
	sim, url := startSim(t, providersim.Config{Feeds: "acme=json legacy=eventList"})
	base := strings.TrimSuffix(url, providersim.Path)
	want := merged(afterResponse1, ofProvider(t, "acme", afterResponse1),
		ofProvider(t, "legacy", []event{pantomima1642, camela, morancos})) // the legacy response 1 lacks 1643
	formats := map[string]string{"fever": "planList", "acme": "json", "legacy": "eventList"}
	check := func(t *testing.T, api string) {
		t.Helper()
		waitEvents(t, api+year2021, want)
		var st map[string]providerStatus
		testenv.Poll(t, "every provider's sync recorded", func() bool { // just after its batches were published
			st = providerStatuses(t, api)
			return len(st) == 3
		})
		for name, format := range formats {
			if got := st[name]; got.Format == nil || *got.Format != format || got.Outcome != "ok" {
				t.Errorf("%s's status %+v, want an ok sync of %s", name, got, format)
			}
		}
	}

	t.Run("PROVIDERS", func(t *testing.T) {
		api, _ := startRun(t, map[string]string{
			"HTTP_ADDR":             freeAddr(t),
			"DATA_DIR":              t.TempDir(),
			"PROVIDERS":             "fever=" + url + " acme=" + base + "/acme/api/events legacy=" + base + "/legacy/api/events",
			"SYNC_INTERVAL_SECONDS": "3600",
		})
		check(t, api)
		if got := []int{sim.Requests(), sim.Feed("acme").Requests(), sim.Feed("legacy").Requests()}; !slices.Equal(got, []int{1, 1, 1}) {
			t.Errorf("calls to /api/events, /acme and /legacy = %v, want one each", got)
		}
	})
	t.Run("built-in", func(t *testing.T) {
		api, _ := startCmd(t, "run", map[string]string{
			"HTTP_ADDR":             freeAddr(t),
			"DATA_DIR":              t.TempDir(),
			"SYNC_INTERVAL_SECONDS": "3600",
		}, "--sim-feeds", "acme=json,legacy=eventList")
		check(t, api)
	})
	if _, err := runOnce(t, map[string]string{"HTTP_ADDR": freeAddr(t), "DATA_DIR": t.TempDir()}, "run", "--sim-feeds", "fever=json"); err == nil ||
		!strings.Contains(err.Error(), `--sim-feeds: feed "fever" has the name of the provider at /api/events`) {
		t.Errorf("run --sim-feeds fever=json = %v, want the name refused", err)
	}
}

// TestRunProviderRetries gives two providers of PROVIDERS_FILE retries of their own,
// from one simulator whose feeds answer 500 and then sample 1: "once", with
// max_attempts 1, fails its sync after that one failure, while "retry" (max_attempts 3,
// a short retry_seconds, the global SYNC_MAX_ATTEMPTS being 1) tries again and syncs.
func TestRunProviderRetries(t *testing.T) {
	sim, url := startSim(t, providersim.Config{Mode: providersim.Sequence, Sequence: "500,1", Feeds: "once=planList retry=json"})
	base := strings.TrimSuffix(url, providersim.Path)
	file := filepath.Join(t.TempDir(), "providers.json")
	doc := `{"providers": [
		{"name": "once", "url": "` + base + `/once/api/events", "max_attempts": 1},
		{"name": "retry", "url": "` + base + `/retry/api/events", "max_attempts": 3, "retry_seconds": 0.01, "retry_max_seconds": 0.02}
	]}`
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	api, _ := startRun(t, map[string]string{
		"HTTP_ADDR":             freeAddr(t),
		"DATA_DIR":              t.TempDir(),
		"PROVIDERS_FILE":        file,
		"SYNC_INTERVAL_SECONDS": "3600",
		"SYNC_MAX_ATTEMPTS":     "1",
		"SYNC_RETRY_SECONDS":    "3600", // "retry" would wait an hour on the global delay
	})
	waitEvents(t, api+year2021, ofProvider(t, "retry", afterResponse1))
	var st map[string]providerStatus
	testenv.Poll(t, "both providers' syncs recorded", func() bool {
		st = providerStatuses(t, api)
		return len(st) == 2
	})
	if got := st["once"]; got.Outcome != "failed" || got.Attempts != 1 || got.Error == nil || !strings.Contains(*got.Error, "500") {
		t.Errorf("once's status %+v, want a sync failed on its one attempt's 500", got)
	}
	if got := st["retry"]; got.Outcome != "ok" || got.Attempts != 2 {
		t.Errorf("retry's status %+v, want an ok sync on its second attempt", got)
	}
	if got := []int{sim.Feed("once").Requests(), sim.Feed("retry").Requests()}; !slices.Equal(got, []int{1, 2}) {
		t.Errorf("calls of once and retry = %v, want [1 2]", got)
	}
}

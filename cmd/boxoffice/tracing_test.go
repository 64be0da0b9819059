package main

import (
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"boxoffice/ingest"
	"boxoffice/pricing"
	"boxoffice/telemetry/telemetrytest"
	"boxoffice/testenv"
)

// link is one span of the trace a market event makes: which process, which span, and
// the span it must be the child of (by name; "" for the root).
type link struct {
	service, name string
	kind          trace.SpanKind
	parent        string
}

// marketEventTrace is the trace of POST /api/v1/publish-market-event across the roles,
// root first: the API records the event and publishes it on Redis; the listener
// receives it and enqueues a recalculation on the broker; a worker runs it. The spans
// on Redis are named after the configured channel.
func marketEventTrace(channel, api, listener, worker string) []link {
	return []link{
		{api, "POST /api/v1/publish-market-event", trace.SpanKindServer, ""},
		{api, "publish " + channel, trace.SpanKindProducer, "POST /api/v1/publish-market-event"},
		{listener, "receive " + channel, trace.SpanKindConsumer, "publish " + channel},
		{listener, "enqueue recalculation", trace.SpanKindInternal, "receive " + channel},
		{listener, "publish " + pricing.TopicRecalculate, trace.SpanKindProducer, "enqueue recalculation"},
		{worker, "process " + pricing.TopicRecalculate, trace.SpanKindConsumer, "publish " + pricing.TopicRecalculate},
		{worker, "recalculate prices", trace.SpanKindInternal, "process " + pricing.TopicRecalculate},
	}
}

// traceOf returns the spans of the first trace that has a span for every link; nil
// while there is none.
func traceOf(spans []telemetrytest.Span, links []link) []telemetrytest.Span {
	for _, root := range spans {
		if root.Name != links[0].name || root.Service != links[0].service {
			continue
		}
		var tr []telemetrytest.Span
		for _, s := range spans {
			if s.TraceID == root.TraceID {
				tr = append(tr, s)
			}
		}
		if !slices.ContainsFunc(links, func(l link) bool {
			return !slices.ContainsFunc(tr, func(s telemetrytest.Span) bool { return s.Name == l.name && s.Service == l.service })
		}) {
			return tr
		}
	}
	return nil
}

// spanOf returns the one span of tr named name, failing the test unless there is one.
func spanOf(t *testing.T, tr []telemetrytest.Span, name string) telemetrytest.Span {
	t.Helper()
	var found []telemetrytest.Span
	for _, s := range tr {
		if s.Name == name {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d spans %q in the trace, want 1: %v", len(found), name, found)
	}
	return found[0]
}

// checkTrace checks that tr is one tree under its root server span, in which each link
// is one span of its service and kind, the child of its parent link.
func checkTrace(t *testing.T, tr []telemetrytest.Span, links []link) {
	t.Helper()
	byID := map[string]telemetrytest.Span{}
	for _, s := range tr {
		byID[s.SpanID] = s
	}
	root := tr[slices.IndexFunc(tr, func(s telemetrytest.Span) bool { return s.Name == links[0].name })]
	for _, s := range tr { // every span leads up to the root, within the trace
		at := s
		for hops := 0; at.ParentID != "" && hops < len(tr); hops++ {
			p, ok := byID[at.ParentID]
			if !ok {
				t.Errorf("span %s: parent %s is not in the trace", at, at.ParentID)
				break
			}
			at = p
		}
		if at.SpanID != root.SpanID {
			t.Errorf("span %s leads up to %s, want the root %s", s, at, root)
		}
	}
	named := map[string]telemetrytest.Span{}
	for _, l := range links {
		var found []telemetrytest.Span
		for _, s := range tr {
			if s.Name == l.name && s.Service == l.service {
				found = append(found, s)
			}
		}
		if len(found) != 1 {
			t.Errorf("%d spans %q of %s in the trace, want 1: %v", len(found), l.name, l.service, found)
			continue
		}
		s := found[0]
		named[l.name] = s
		if s.Kind != l.kind {
			t.Errorf("span %s: kind %v, want %v", s, s.Kind, l.kind)
		}
		switch p, ok := named[l.parent]; {
		case l.parent == "" && s.ParentID != "":
			t.Errorf("span %s has a parent, want the root", s)
		case l.parent != "" && (!ok || s.ParentID != p.SpanID):
			t.Errorf("span %s: want the child of %q %s", s, l.parent, p.SpanID)
		}
	}
}

// publishUntilTraced publishes a market event on the API at base and returns the
// first trace that has every link, publishing again every few seconds until there is
// one: a listener that has not subscribed yet, or whose start-up scan of the store
// finds the event first, enqueues it outside the request's trace (by design: the store
// keeps the event, the channel only wakes the listener).
func publishUntilTraced(t *testing.T, base, key string, recv *telemetrytest.Receiver, links []link) []telemetrytest.Span {
	t.Helper()
	var (
		tr   []telemetrytest.Span
		next time.Time
	)
	testenv.Poll(t, "a market event's trace to reach the worker's run", func() bool {
		if time.Now().After(next) {
			var published struct{ Status string }
			postJSON(t, base+"/api/v1/publish-market-event", key, `{"location":"madrid","multiplier":1.5}`, http.StatusAccepted, &published)
			if published.Status != "published" {
				t.Fatalf("market event %q, want published on the channel", published.Status)
			}
			next = time.Now().Add(3 * time.Second)
		}
		tr = traceOf(recv.Spans(), links)
		return tr != nil
	})
	return tr
}

// otelFreeEnv returns the test process's environment without OpenTelemetry variables,
// so that a developer's own settings do not leak into the processes under test.
func otelFreeEnv() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "OTEL_") })
}

// TestTracingDistributed runs the api, listener and worker roles as processes on
// PostgreSQL, Redis and RabbitMQ, exporting spans to an OTLP/HTTP receiver on
// loopback, and checks that one market event makes one trace across the three: from
// the API's server span through the Redis PUBLISH, the listener and the broker to the
// worker's run, each span the child of the one before, each process under its own
// service.name, with the PostgreSQL queries of each inside.
func TestTracingDistributed(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	primary, replica := testenv.PostgresSchema(t)
	svc := isolatedServices(t, "trace")
	redisURL, brokerURL, namespace, rdb := svc.redisURL, svc.brokerURL, svc.namespace, svc.rdb
	channel := namespace + ":market_events"

	recv := telemetrytest.NewReceiver(t)
	bin := buildBinary(t)
	env := append(otelFreeEnv(),
		"DATABASE_WRITE_URL="+primary,
		"DATABASE_READ_URL="+replica,
		"REDIS_URL="+redisURL,
		"BROKER_URL="+brokerURL,
		"NAMESPACE="+namespace,
		"MARKET_EVENTS_CHANNEL="+channel,
		"API_KEYS="+testAPIKey,
		"OTEL_EXPORTER_OTLP_ENDPOINT="+recv.URL(),
		"OTEL_BSP_SCHEDULE_DELAY=100", // milliseconds between exports
	)
	api := "http://" + freeAddr(t)
	startProc(t, bin, "api", append(env, "HTTP_ADDR="+strings.TrimPrefix(api, "http://")), "api")
	startProc(t, bin, "listener", append(env, "HTTP_ADDR="+freeAddr(t)), "listener")
	startProc(t, bin, "worker", append(env, "HTTP_ADDR="+freeAddr(t)), "worker")
	testenv.Poll(t, "the api to answer", func() bool {
		resp, err := http.Get(api + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	// Pub/Sub reaches only the subscriptions open when a payload is published.
	testenv.Poll(t, "the listener to subscribe to "+channel, func() bool {
		n, err := rdb.PubSubNumSub(t.Context(), channel).Result()
		return err == nil && n[channel] > 0
	})

	links := marketEventTrace(channel, "boxoffice-api", "boxoffice-listener", "boxoffice-worker")
	tr := publishUntilTraced(t, api, testAPIKey, recv, links)
	checkTrace(t, tr, links)

	// The legs the instrumented clients add: the Redis PUBLISH under the API's producer
	// span, and PostgreSQL queries in each process.
	producer := spanOf(t, tr, links[1].name)
	if !slices.ContainsFunc(tr, func(s telemetrytest.Span) bool {
		return s.Name == "publish" && s.Kind == trace.SpanKindClient && s.Attrs["db.system"] == "redis" && s.ParentID == producer.SpanID
	}) {
		t.Errorf("no Redis PUBLISH client span under %s", producer)
	}
	for _, service := range []string{"boxoffice-api", "boxoffice-listener", "boxoffice-worker"} {
		if !slices.ContainsFunc(tr, func(s telemetrytest.Span) bool {
			return s.Service == service && s.Kind == trace.SpanKindClient && s.Attrs["db.system.name"] == "postgresql"
		}) {
			t.Errorf("no PostgreSQL client span of %s in the trace", service)
		}
	}
}

// TestTracingEmbedded runs `boxoffice run` in-process with an OTLP endpoint and checks
// that a market event's trace has every leg (in-process bus and broker) in one trace,
// under the service name of the run command; and that a sync is a trace of its own,
// from the request to the provider to the worker storing each batch.
func TestTracingEmbedded(t *testing.T) {
	recv := telemetrytest.NewReceiver(t)
	// Read by the SDK from the process environment: no developer settings, quick exports.
	t.Setenv("OTEL_SERVICE_NAME", "")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
	base, _ := startRun(t, map[string]string{
		"HTTP_ADDR":                   freeAddr(t),
		"DATA_DIR":                    t.TempDir(),
		"OTEL_EXPORTER_OTLP_ENDPOINT": recv.URL(),
		"MARKET_EVENTS_CHANNEL":       "run_market_events", // not the default: the spans say which
	})
	links := marketEventTrace("run_market_events", "boxoffice-run", "boxoffice-run", "boxoffice-run")
	tr := publishUntilTraced(t, base, "", recv, links)
	checkTrace(t, tr, links)

	plans := []link{
		{"boxoffice-run", "ingest sync", trace.SpanKindInternal, ""},
		{"boxoffice-run", "GET", trace.SpanKindClient, "ingest sync"}, // the provider's catalog
		{"boxoffice-run", "publish " + ingest.TopicPlans, trace.SpanKindProducer, "ingest sync"},
		{"boxoffice-run", "process " + ingest.TopicPlans, trace.SpanKindConsumer, "publish " + ingest.TopicPlans},
	}
	testenv.Poll(t, "a sync's trace to reach the worker", func() bool {
		tr = traceOf(recv.Spans(), plans)
		return tr != nil
	})
	checkTrace(t, tr, plans)
	if sync := spanOf(t, tr, "ingest sync"); sync.Attrs["boxoffice.sync.batches"] != "1" || sync.Attrs["boxoffice.sync.id"] == "" {
		t.Errorf("sync span attributes %v, want one batch and the sync id", sync.Attrs)
	}
}

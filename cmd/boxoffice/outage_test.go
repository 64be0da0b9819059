package main

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"boxoffice/catalog"
	"boxoffice/catalog/catalogtest"
	"boxoffice/ingest"
	"boxoffice/pricing"
	"boxoffice/providersim"
	"boxoffice/rabbitmq"
	"boxoffice/task"
	"boxoffice/testenv"
)

// openTestBroker opens a broker on RabbitMQ at brokerURL whose topics (the plans and
// the recalculations, with the queues of cfg's retry policy) are deleted when the test
// ends: cfg.Prefix must be the test's own.
func openTestBroker(t *testing.T, brokerURL string, cfg rabbitmq.Config) *rabbitmq.Broker {
	t.Helper()
	broker, err := rabbitmq.Open(t.Context(), brokerURL, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		broker.DeleteTopic(context.Background(), ingest.TopicPlans)
		broker.DeleteTopic(context.Background(), pricing.TopicRecalculate)
		broker.Close()
	})
	return broker
}

// statusLog records the status of every answer of a handler.
type statusLog struct {
	h  http.Handler
	mu sync.Mutex // guards codes
	// codes are the statuses answered, in order, with whether the request was
	// conditional.
	codes []answer
}

type answer struct {
	status      int
	conditional bool
}

func (l *statusLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	l.h.ServeHTTP(rec, r)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.codes = append(l.codes, answer{status: rec.status, conditional: r.Header.Get("If-None-Match") != ""})
}

// since returns the answers from the n-th on.
func (l *statusLog) since(n int) []answer {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]answer(nil), l.codes[min(n, len(l.codes)):]...)
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// TestIngestThroughPrimaryOutage is the drill of a dead-lettered sync: the provider
// sends ETags and answers 304 to a conditional request for what it serves; the first
// sync applies response 1; in the middle of the second (the provider has been asked for
// response 2), the PostgreSQL primary becomes unreachable to the worker and the ingest
// process. The ingest cannot record the sync, so it publishes nothing and syncs again;
// once the primary is back for it, and still unreachable to the worker for longer than
// its retries, the batches of response 2 are dead-lettered. Once the primary is back,
// without restarting anything, every plan of response 2 must be served, exactly once,
// and the syncs after that must be conditional again and answered 304.
func TestIngestThroughPrimaryOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three roles against the real services")
	}
	primary, replica := testenv.PostgresSchema(t)
	redisURL, brokerURL := testenv.RedisURL(t), testenv.BrokerURL(t)
	ctx := t.Context()

	u, err := url.Parse(primary)
	if err != nil {
		t.Fatal(err)
	}
	proxy, ingestProxy := testenv.StartProxy(t, u.Host), testenv.StartProxy(t, u.Host)
	u.Host = proxy.Addr()
	cutPrimary := u.String()
	u.Host = ingestProxy.Addr()
	ingestPrimary := u.String()

	namespace := "outage-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	// A retry budget of a few tens of milliseconds: two deliveries, 50 ms apart.
	retry := task.RetryPolicy{MaxAttempts: 2, Countdown: 50 * time.Millisecond, MaxDelay: 30 * time.Second}
	broker := openTestBroker(t, brokerURL, rabbitmq.Config{Prefix: namespace, Retry: retry})

	sim := providersim.New(providersim.Config{Mode: providersim.Sequence, Sequence: "1,2"})
	t.Cleanup(func() { sim.Close() })
	gated := newGatedProvider(sim, 2)
	answers := &statusLog{h: gated}
	provider := httptest.NewServer(answers)
	t.Cleanup(provider.Close)

	common := map[string]string{
		"REDIS_URL":          redisURL,
		"BROKER_URL":         brokerURL,
		"NAMESPACE":          namespace,
		"TASK_MAX_ATTEMPTS":  "2",
		"TASK_RETRY_SECONDS": "0.05",
	}
	role := func(cmd string, env map[string]string) string {
		for k, v := range common {
			env[k] = v
		}
		env["HTTP_ADDR"] = freeAddr(t)
		base, _ := startCmd(t, cmd, env)
		return base
	}
	api := role("api", map[string]string{"DATABASE_WRITE_URL": primary, "DATABASE_READ_URL": replica, "API_KEYS": testAPIKey})
	role("worker", map[string]string{"DATABASE_WRITE_URL": cutPrimary})
	role("ingest", map[string]string{"DATABASE_WRITE_URL": ingestPrimary,
		"EXTERNAL_API_URL": provider.URL + "/api/events", "SYNC_INTERVAL_SECONDS": "0.2"})

	waitEvents(t, api+year2021, afterResponse1)
	select {
	case <-gated.arrived(2):
	case <-time.After(testenv.PollTimeout):
		t.Fatal("the second sync never asked the provider")
	}
	proxy.Cut()
	ingestProxy.Cut()
	gated.release(2)
	testenv.Poll(t, "the provider asked again after the sync that could not record itself", func() bool {
		return len(answers.since(0)) >= 3
	})
	if n, err := broker.CountDeadLetters(ctx, ingest.TopicPlans); err != nil || n != 0 {
		t.Fatalf("dead letters while the ingest could not reach the primary = %d, %v; want none", n, err)
	}
	ingestProxy.Restore()
	testenv.Poll(t, "a batch of response 2 dead-lettered", func() bool {
		n, err := broker.CountDeadLetters(ctx, ingest.TopicPlans)
		return err == nil && n > 0
	})
	restored := len(answers.since(0))
	proxy.Restore()

	waitEvents(t, api+year2021, afterResponse2)
	testenv.Poll(t, "a conditional sync answered 304 after the outage", func() bool {
		for _, a := range answers.since(restored) {
			if a.conditional && a.status == http.StatusNotModified {
				return true
			}
		}
		return false
	})
	// Every search still holds each plan once.
	waitEvents(t, api+year2021, afterResponse2)
}

// TestAPISurvivesALostFirstSubscription is the drill of a Redis blip at an API's start:
// the API's connections to Redis go through a proxy that answers the PING of start-up
// and then loses the confirmation of every SUBSCRIBE, so the first subscription to the
// catalog versions fails (after its confirmation timeout, 5 s). The API must keep
// serving searches from its index and stay ready, log the failure with its cause,
// report no live subscription, and once Redis answers again subscribe by itself, so
// that a catalog change and its announcement reach its searches.
func TestAPISurvivesALostFirstSubscription(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out a subscription's confirmation timeout")
	}
	primary, replica := testenv.PostgresSchema(t)
	ctx := t.Context()
	store := openMigrated(t, primary, "")
	plan := catalogtest.NewPlan("blip", "1", catalogtest.Title("Before"))
	if _, err := store.UpsertPlans(ctx, []catalog.Plan{plan}); err != nil {
		t.Fatal(err)
	}

	svc := isolatedServices(t, "blip")
	u, err := url.Parse(svc.redisURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.StartProxy(t, u.Host)
	u.Host = proxy.Addr()
	proxy.DropRepliesAfter("\r\nsubscribe\r\n") // a RESP command name: go-redis writes it whole
	base, _, logs := startCmdLogs(t, "api", map[string]string{
		"HTTP_ADDR":          freeAddr(t),
		"DATABASE_WRITE_URL": primary,
		"DATABASE_READ_URL":  replica,
		"API_KEYS":           testAPIKey,
		"REDIS_URL":          u.String(),
		"BROKER_URL":         svc.brokerURL,
		"NAMESPACE":          svc.namespace,
	})
	channel := svc.namespace + ":catalog:version"
	subscriptions := func() float64 {
		_, body := searchBody(t, base+"/metrics")
		v, ok := metricValue(string(body), `boxoffice_pubsub_subscriptions{channel="`+channel+`"}`)
		if !ok {
			t.Fatalf("/metrics has no boxoffice_pubsub_subscriptions for %s:\n%s", channel, body)
		}
		return v
	}
	title := func() string {
		status, body := searchBody(t, base+"/search")
		if status != http.StatusOK {
			t.Fatalf("GET /search = %d %s, want 200", status, body)
		}
		for _, e := range decodeEvents(t, body) {
			return e.Title
		}
		return ""
	}

	testenv.Poll(t, "the subscription's failure logged", func() bool {
		return strings.Contains(logs.String(), "catalog versions: subscription failed")
	})
	failure := logs.Lines("catalog versions: subscription failed")[0]
	for _, want := range []string{`"level":"WARN"`, `"err":"subscribe to ` + channel, "timeout", `"attempts":1`} {
		if !strings.Contains(failure, want) {
			t.Errorf("the failure logged %s, want %s in it", failure, want)
		}
	}
	if got := subscriptions(); got != 0 {
		t.Errorf("boxoffice_pubsub_subscriptions = %v with the confirmation lost, want 0", got)
	}
	if got := title(); got != "Before" {
		t.Errorf("searches while unsubscribed serve %q, want Before", got)
	}
	if status, body := searchBody(t, base+"/ready"); status != http.StatusOK {
		t.Errorf("GET /ready = %d %s while unsubscribed, want 200: searches are served", status, body)
	}

	proxy.Restore()
	testenv.Poll(t, "a live subscription once Redis answers", func() bool { return subscriptions() == 1 })
	counts, err := svc.rdb.PubSubNumSub(ctx, channel).Result()
	if err != nil || counts[channel] != 1 {
		t.Errorf("PUBSUB NUMSUB %s = %v, %v; want the API's one subscription", channel, counts, err)
	}
	if !strings.Contains(logs.String(), "catalog version subscription restored") {
		t.Errorf("the recovery was not logged:\n%s", logs)
	}

	plan.Title, plan.Revision = "After", 2
	v2, err := store.UpsertPlans(ctx, []catalog.Plan{plan})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.rdb.Publish(ctx, channel, strconv.FormatInt(v2, 10)).Err(); err != nil { // as the worker does
		t.Fatal(err)
	}
	testenv.Poll(t, "the changed plan served", func() bool { return title() == "After" })
}

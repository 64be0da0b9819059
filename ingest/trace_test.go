package ingest_test

import (
	"log/slog"
	"testing"

	"boxoffice/catalog"
	"boxoffice/ingest"
	"boxoffice/memory"
	"boxoffice/telemetry/telemetrytest"
)

// TestSyncSpansGoToTheGivenProvider syncs with a provider of the Syncer's own while a
// recording provider is the global one: the sync's span and its batches' producer
// spans are the given provider's, and the global one records nothing.
func TestSyncSpansGoToTheGivenProvider(t *testing.T) {
	global := telemetrytest.RecordGlobal(t)
	rec, sdk := telemetrytest.Record(t)

	src := &script{steps: []func(func(catalog.Plan) error) (ingest.Fetched, error){emitN(25, ingest.Validators{ETag: `"v1"`})}}
	cfg := testConfig(t)
	cfg.TracerProvider = sdk
	res, err := ingest.NewSyncer(src, newBroker(t), memory.NewLocker(nil), openStore(t), cfg, slog.New(slog.DiscardHandler)).Sync(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, s := range rec.Ended() {
		counts[s.Name()]++
	}
	if counts["ingest sync"] != 1 || counts["publish "+ingest.TopicPlans] != res.Batches {
		t.Errorf("spans of the given provider %v, want 1 ingest sync and %d publish %s", counts, res.Batches, ingest.TopicPlans)
	}
	if spans := global.Ended(); len(spans) != 0 {
		t.Errorf("the global provider recorded %d spans (first %q), want none", len(spans), spans[0].Name())
	}
}

package ingest

import (
	"context"
	"encoding/json"
	"fmt"

	"boxoffice/catalog"
	"boxoffice/task"
)

// TopicPlans is the broker topic that carries batches of plans from ingest to workers.
const TopicPlans = "catalog.plans"

// batchSchema is the version of the Batch encoding. A worker dead-letters a batch of a
// schema it does not know rather than guess.
const batchSchema = 1

// Batch is the message body on TopicPlans, encoded as JSON: one slice of one sync.
type Batch struct {
	Schema int            `json:"schema"`
	SyncID string         `json:"sync_id"`
	Seq    int            `json:"seq"` // 0-based position of the batch in its sync
	Plans  []catalog.Plan `json:"plans"`
}

// DecodeBatch decodes and checks a message body from TopicPlans.
func DecodeBatch(body []byte) (Batch, error) {
	var b Batch
	if err := json.Unmarshal(body, &b); err != nil {
		return Batch{}, fmt.Errorf("decode plan batch: %w", err)
	}
	if b.Schema != batchSchema {
		return Batch{}, fmt.Errorf("decode plan batch: unknown schema %d", b.Schema)
	}
	for i, p := range b.Plans {
		if err := p.Validate(); err != nil {
			return Batch{}, fmt.Errorf("decode plan batch: plan %d (%s/%s): %w", i, p.BasePlanID, p.PlanID, err)
		}
		if want := catalog.NewID(p.Provider, p.BasePlanID, p.PlanID); p.ID != want {
			return Batch{}, fmt.Errorf("decode plan batch: plan %d: id %s, want %s", i, p.ID, want)
		}
	}
	return b, nil
}

// BatchHandler returns the worker's handler for TopicPlans: it applies each batch to
// store and then calls committed with the catalog version after it (to wake readers).
// A batch that does not decode is dead-lettered; a store error is retried. Redelivery is
// harmless: the store's upsert is idempotent.
func BatchHandler(store catalog.Store, committed func(version int64)) task.Handler {
	return func(ctx context.Context, m task.Message) error {
		b, err := DecodeBatch(m.Body)
		if err != nil {
			return task.Permanent(err)
		}
		version, err := store.UpsertPlans(ctx, b.Plans)
		if err != nil {
			return fmt.Errorf("sync %s batch %d: %w", b.SyncID, b.Seq, err)
		}
		if committed != nil {
			committed(version)
		}
		return nil
	}
}

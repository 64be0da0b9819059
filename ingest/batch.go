package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"boxoffice/catalog"
	"boxoffice/task"
)

// TopicPlans is the broker topic that carries batches of plans from ingest to workers.
const TopicPlans = "catalog.plans"

// batchSchema is the version of the Batch encoding. A worker dead-letters a batch of a
// schema it does not know rather than guess. Fields added since schema 1 are optional:
// a batch without them is applied and not tracked.
const batchSchema = 1

// Batch is the message body on TopicPlans, encoded as JSON: one slice of one sync.
//
// A tracked batch (Batches > 0) also says where it belongs: its provider, its sync
// (SyncID, and Revision, which orders syncs), its place in the sync and the sync's
// number of batches, and the validators of the document the sync fetched. The store
// counts the applied batches of each sync and confirms a sync's validators once all
// are applied (see BatchStore); only then may a fetch be conditional on them.
type Batch struct {
	Schema     int            `json:"schema"`
	Provider   string         `json:"provider,omitempty"`
	SyncID     string         `json:"sync_id"`
	Revision   int64          `json:"revision,omitempty"` // the sync's; every plan carries it too
	Seq        int            `json:"seq"`                // 0-based position of the batch in its sync
	Batches    int            `json:"batches,omitempty"`  // the sync's number of batches; 0: untracked
	Validators Validators     `json:"validators"`         // of the document the sync fetched
	Plans      []catalog.Plan `json:"plans,omitempty"`
}

// Tracked reports whether the batch counts towards its sync's confirmation.
func (b Batch) Tracked() bool { return b.Batches > 0 }

// DecodeBatch decodes and checks a message body from TopicPlans.
func DecodeBatch(body []byte) (Batch, error) {
	b, ok := decodeBatchFast(body)
	if !ok {
		b = Batch{}
		if err := json.Unmarshal(body, &b); err != nil {
			return Batch{}, fmt.Errorf("decode plan batch: %w", err)
		}
	}
	if b.Schema != batchSchema {
		return Batch{}, fmt.Errorf("decode plan batch: unknown schema %d", b.Schema)
	}
	if err := b.checkSync(); err != nil {
		return Batch{}, fmt.Errorf("decode plan batch: %w", err)
	}
	for i, p := range b.Plans {
		if err := p.Validate(); err != nil {
			return Batch{}, fmt.Errorf("decode plan batch: plan %d (%s/%s): %w", i, p.BasePlanID, p.PlanID, err)
		}
		if want := catalog.NewID(p.Provider, p.BasePlanID, p.PlanID); p.ID != want {
			return Batch{}, fmt.Errorf("decode plan batch: plan %d: id %s, want %s", i, p.ID, want)
		}
		if b.Tracked() && (p.Provider != b.Provider || p.Revision != b.Revision) {
			return Batch{}, fmt.Errorf("decode plan batch: plan %d: provider %q revision %d, want the batch's %q and %d",
				i, p.Provider, p.Revision, b.Provider, b.Revision)
		}
	}
	return b, nil
}

// plansKey starts the plans of a body as Syncer writes it: its last key, after the
// other fields. In valid JSON it can only be a key (a quote after a comma opens a
// string), and the one of the outer object only if what comes before it, closed, is a
// valid object.
var plansKey = []byte(`,"plans":[`)

// decodeBatchFast decodes body as encoding/json would when its plans come last, after
// the other fields, as Syncer writes it: the fields before them, a few hundred bytes,
// go to encoding/json, and the plans to catalog.DecodePlansJSON, so that the megabytes
// of plans are scanned once, by its fast path. ok is false for any other body, valid
// or not, which encoding/json then reads whole.
func decodeBatchFast(body []byte) (b Batch, ok bool) {
	i := bytes.Index(body, plansKey)
	if i < 0 {
		return Batch{}, false
	}
	end := bytes.LastIndexByte(body, '}')
	if end < i || len(bytes.TrimSpace(body[end+1:])) > 0 {
		return Batch{}, false
	}
	head := append(body[:i:i], '}') // a copy: body stays as it is
	if err := json.Unmarshal(head, &b); err != nil || b.Plans != nil {
		return Batch{}, false // not the outer object's key, or plans also came before it
	}
	plans, err := catalog.DecodePlansJSON(body[i+len(plansKey)-1 : end])
	if err != nil {
		return Batch{}, false // maybe not the last key: the whole body decides
	}
	b.Plans = plans
	return b, true
}

// checkSync reports a tracked batch whose place in its sync makes no sense.
func (b Batch) checkSync() error {
	switch {
	case b.Batches < 0:
		return fmt.Errorf("batches %d: negative", b.Batches)
	case !b.Tracked():
		return nil
	case b.Provider == "":
		return errors.New("tracked batch without a provider")
	case b.SyncID == "":
		return errors.New("tracked batch without a sync id")
	case b.Revision <= 0:
		return fmt.Errorf("tracked batch with revision %d", b.Revision)
	case b.Seq < 0 || b.Seq >= b.Batches:
		return fmt.Errorf("seq %d outside the sync's %d batches", b.Seq, b.Batches)
	}
	return nil
}

// BatchHandler returns the worker's handler for TopicPlans: it applies each batch to
// store and then calls committed with the catalog version after it (to wake readers).
// A batch that does not decode is dead-lettered; a store error is retried. Redelivery is
// harmless: the store's upsert is idempotent, and so is its record of the batch. A
// batch replayed from the dead letters counts towards its sync like any other.
func BatchHandler(store BatchStore, committed func(version int64)) task.Handler {
	return func(ctx context.Context, m task.Message) error {
		b, err := DecodeBatch(m.Body)
		if err != nil {
			return task.Permanent(err)
		}
		version, err := store.ApplyBatch(ctx, b)
		if err != nil {
			return fmt.Errorf("sync %s batch %d: %w", b.SyncID, b.Seq, err)
		}
		if committed != nil {
			committed(version)
		}
		return nil
	}
}

package pricing

import "errors"

// ErrNotFound is returned for a product or an event (plan) that the store does not sell:
// unknown, or never seen online.
var ErrNotFound = errors.New("not found")

// Store is what a pricing store adapter implements, and what pricingtest.TestStore
// holds it to: the ports of the pricing's consumers together. Each consumer takes only
// its own: the Quoter a QuoteStore, the Service a ServiceStore, the Listener a
// ListenerStore and the Recalculator a RecalcStore.
//
// Implementations: sqlite.Store and postgres.Store, which keep products in step with the
// plans they upsert (the zones of ever-online plans; a plan whose zones change gets its
// products replaced: see DiffProducts). Methods taking primary read from the primary
// database when it is true and may read a replica otherwise. The recalculation tasks
// are task records (task.Records), which the same adapters keep: State.Requested is the
// generation of the last task of Kind that they created.
type Store interface {
	QuoteStore
	ServiceStore
	ListenerStore
	RecalcStore
}

package pricing

import "context"

// Bus carries market event notifications: Redis Pub/Sub channel market_events in
// distributed mode, an in-process fan-out in embedded mode. Delivery is not durable;
// the store is.
type Bus interface {
	Publish(ctx context.Context, payload []byte) error
	// Subscribe calls f with each payload until ctx is done. It returns nil then.
	Subscribe(ctx context.Context, f func(payload []byte)) error
}

// Channel is the Redis channel of market events, as in the seed.
const Channel = "market_events"

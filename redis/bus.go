package redis

import (
	"context"
	"fmt"
	"log/slog"

	"boxoffice/pricing"
)

var _ pricing.Bus = (*Bus)(nil)

// Bus carries market event notifications between processes on one Redis Pub/Sub
// channel (pricing.Channel, "market_events", in production): the API publishes each
// event it records, and the listener subscribes. Like every Pub/Sub message, a payload
// reaches only the subscriptions open when it is published; the store is what keeps
// events. A Bus is safe for concurrent use.
type Bus struct {
	subscription // health and confirm: defaultHealth and confirmTimeout; shorter in tests
}

// NewBus returns a Bus on c for channel, taken as it is (no prefix: other services
// publish on it too). It logs through log what Subscribe cannot return: lost and
// restored subscriptions.
func NewBus(c *Client, channel string, log *slog.Logger) *Bus {
	return &Bus{subscription{rdb: c.rdb, channel: channel, topic: "market events", log: log, health: defaultHealth,
		confirm: confirmTimeout, state: &subState{}}}
}

// Publish sends payload to the processes subscribed to the channel now.
func (b *Bus) Publish(ctx context.Context, payload []byte) error {
	if err := b.rdb.Publish(ctx, b.channel, payload).Err(); err != nil {
		return fmt.Errorf("redis bus: publish on %s: %w", b.channel, err)
	}
	return nil
}

// Subscribe calls f with each payload published on the channel, in the order Redis
// delivers them, on the calling goroutine, until ctx is done; it returns nil then. It
// returns an error when the first subscription cannot be set up, or when the Client is
// closed, for the caller to try again (pricing.Listener does). Once subscribed it survives connection losses as Notifier.Subscribe does,
// subscribing again until Redis is back; payloads published meanwhile are lost.
func (b *Bus) Subscribe(ctx context.Context, f func(payload []byte)) error {
	if err := b.run(ctx, func(payload string) { f([]byte(payload)) }); err != nil {
		return fmt.Errorf("redis bus: %w", err)
	}
	return nil
}

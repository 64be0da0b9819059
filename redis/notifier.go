package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"boxoffice/catalog"
)

var _ catalog.Notifier = (*Notifier)(nil)

// catalogVersionChannel is the channel's name after the prefix.
const catalogVersionChannel = "catalog:version"

// The subscription's timing. defaultHealth is how long a subscription waits for a
// message before it pings, and then for the answer before it counts the connection as
// dead, so a connection that dies silently (no reset, as when a network path or a host
// vanishes) is replaced within twice that.
const (
	defaultHealth    = 2 * time.Second
	confirmTimeout   = 5 * time.Second       // for the server to confirm a SUBSCRIBE
	minResubscribe   = 50 * time.Millisecond // first pause before subscribing again; doubles
	maxResubscribe   = time.Second           // longest pause between attempts
	maxLoggedPayload = 64                    // bytes of a malformed payload that are logged
)

// Notifier announces new catalog versions between processes on the Redis Pub/Sub
// channel "<prefix>:catalog:version": the worker that commits a version publishes it,
// and every API instance subscribed to the channel refreshes its index within
// milliseconds instead of at its next poll.
//
// It is the distributed catalog.Notifier. Announcements are hints, not a log: Pub/Sub
// delivers a message only to the subscriptions open when it is published, so a reader
// that starts late or is reconnecting misses it, and one that sees several publishers
// may see versions out of order. Readers keep polling the store's catalog version, and treat an announcement
// as "look now". A Notifier is safe for concurrent use.
type Notifier struct {
	subscription // health and confirm: defaultHealth and confirmTimeout; shorter in tests
}

// NewNotifier returns a Notifier on c for the channel "<prefix>:catalog:version". It
// logs through log what Subscribe cannot return: lost and restored subscriptions and
// malformed announcements.
func NewNotifier(c *Client, prefix string, log *slog.Logger) *Notifier {
	return &Notifier{subscription{rdb: c.rdb, channel: prefix + ":" + catalogVersionChannel, topic: "catalog version",
		log: log, health: defaultHealth, confirm: confirmTimeout, state: &subState{}}}
}

// Publish announces that the catalog reached version to the processes subscribed now.
// The payload is the version in decimal.
func (n *Notifier) Publish(ctx context.Context, version int64) error {
	if err := n.rdb.Publish(ctx, n.channel, strconv.FormatInt(version, 10)).Err(); err != nil {
		return fmt.Errorf("publish catalog version %d on %s: %w", version, n.channel, err)
	}
	return nil
}

// Subscribe calls fn with each version announced on the channel, in the order Redis
// delivers them, on the calling goroutine, until ctx is done; it returns nil then. It
// returns an error when the first subscription cannot be set up, or when the Client is
// closed: whether to try again is the caller's (catalog.Searcher.Follow does, and logs
// the failure; the recovery is logged here, and ReportSubscriptions shows the state).
// Once subscribed it survives connection losses by itself: when the connection
// fails, or stops answering pings, it subscribes again with a growing pause (up to a
// second) until Redis is back, logging the loss and the recovery once per outage.
// Announcements published meanwhile are lost (see Notifier). A payload that is not a
// decimal integer is ignored; the first one of each Subscribe call is logged.
func (n *Notifier) Subscribe(ctx context.Context, fn func(version int64)) error {
	warned := false // a malformed payload was logged
	return n.run(ctx, func(payload string) { n.deliver(payload, fn, &warned) })
}

// subscription is a Pub/Sub subscription to one channel that replaces its connection
// when it fails or stops answering: the receiving side of Notifier and Bus, and the
// channel their Publish sends on.
type subscription struct {
	rdb     *goredis.Client
	channel string
	topic   string // what the channel carries, for the logs: "catalog version"
	log     *slog.Logger
	health  time.Duration // silence before a ping, and then before the connection counts as dead
	confirm time.Duration // wait for the server to confirm a SUBSCRIBE: confirmTimeout; shorter in tests
	state   *subState     // shared by the copies of s and by its Subscribe calls
}

// subState is what the subscriptions of a Notifier or a Bus have in common: whether
// they are live, for the metrics, and whether the last attempt failed, for the logs.
type subState struct {
	asked atomic.Bool  // Subscribe was called: the process means to hear the channel
	live  atomic.Int64 // subscriptions confirmed whose connection is not known to have failed
	down  atomic.Bool  // a subscription failed or was lost, and none was confirmed since
}

// ReportSubscriptions tells report how many subscriptions to the channel are live now
// (confirmed, and their connection not known to have failed), once Subscribe has been
// called: 0 while a first subscription that failed waits to be tried again (see
// catalog.Searcher.Follow, pricing.Listener) or a lost one is replaced. It reports
// nothing for a Notifier or Bus that only publishes.
func (s subscription) ReportSubscriptions(report func(channel string, live int)) {
	if s.state.asked.Load() {
		report(s.channel, int(s.state.live.Load()))
	}
}

// run calls fn with each payload on the channel, in the order Redis delivers them, on
// the calling goroutine, until ctx is done; it returns nil then. It returns an error
// when the first subscription cannot be set up, or when the Client is closed. After a
// connection loss it subscribes again, pausing between attempts, and logs the loss and
// the recovery once each.
func (s subscription) run(ctx context.Context, fn func(payload string)) error {
	s.state.asked.Store(true)
	ps, err := s.subscribe(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		s.state.down.Store(true) // the caller retries, or not: the next confirmation logs the recovery
		return err
	}
	for {
		err := s.receive(ctx, ps, fn)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, goredis.ErrClosed):
			return fmt.Errorf("subscription to %s: %w", s.channel, err)
		}
		s.log.Warn(s.topic+" subscription lost, resubscribing", "channel", s.channel, "err", err)
		s.state.down.Store(true)
		if ps, err = s.resubscribe(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// resubscribe subscribes again, pausing between attempts, until it succeeds, ctx is
// done or the Client is closed.
func (s subscription) resubscribe(ctx context.Context) (*goredis.PubSub, error) {
	for pause := minResubscribe; ; pause = min(2*pause, maxResubscribe) {
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		ps, err := s.subscribe(ctx)
		switch {
		case err == nil:
			return ps, nil
		case errors.Is(err, goredis.ErrClosed):
			return nil, err
		}
	}
}

// subscribe opens a subscription to the channel and waits for the server to confirm
// it, so that payloads published after it returns reach fn; it counts the subscription
// live, and logs the recovery when a subscription had failed or been lost. Redis
// counts the subscription (PUBSUB NUMSUB) as soon as it has run the SUBSCRIBE: when the
// confirmation is lost on the way back, subscribe fails after s.confirm although Redis
// counted the subscription until the connection closed.
func (s subscription) subscribe(ctx context.Context) (*goredis.PubSub, error) {
	ps := s.rdb.Subscribe(ctx, s.channel)
	cctx, cancel := context.WithTimeout(ctx, s.confirm)
	defer cancel()
	msg, err := ps.ReceiveTimeout(cctx, s.confirm)
	if err == nil {
		if _, ok := msg.(*goredis.Subscription); !ok {
			err = fmt.Errorf("unexpected reply %v", msg)
		}
	}
	if err != nil {
		ps.Close()
		return nil, fmt.Errorf("subscribe to %s: %w", s.channel, err)
	}
	s.state.live.Add(1) // until receive ends
	if s.state.down.Swap(false) {
		s.log.Info(s.topic+" subscription restored", "channel", s.channel)
	}
	return ps, nil
}

// receive hands the payloads of ps to fn until ctx is done or the connection fails or
// stops answering, and closes ps. A pause of s.health without messages sends a PING; a
// second one without any reply counts as a dead connection.
func (s subscription) receive(ctx context.Context, ps *goredis.PubSub, fn func(string)) error {
	defer s.state.live.Add(-1)
	defer ps.Close()
	stop := context.AfterFunc(ctx, func() { ps.Close() }) // ends a blocked read at once
	defer stop()
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, s.health)
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return ctx.Err()
		case isTimeout(err) && !pinged:
			if err := ps.Ping(ctx); err != nil {
				return fmt.Errorf("ping: %w", err)
			}
			pinged = true
			continue
		case isTimeout(err):
			return fmt.Errorf("no answer to a ping within %v: %w", s.health, err)
		default:
			return err
		}
		pinged = false
		if m, ok := msg.(*goredis.Message); ok {
			fn(m.Payload)
		}
		// Other replies are confirmations and pongs: they only prove the connection alive.
	}
}

// deliver calls fn with the version in payload, or ignores a malformed payload, logging
// it when it is the first.
func (n *Notifier) deliver(payload string, fn func(int64), warned *bool) {
	v, err := strconv.ParseInt(strings.TrimSpace(payload), 10, 64)
	if err != nil {
		if !*warned {
			*warned = true
			if len(payload) > maxLoggedPayload {
				payload = payload[:maxLoggedPayload] + "…"
			}
			n.log.Warn("ignore malformed catalog version announcements", "channel", n.channel, "payload", payload)
		}
		return
	}
	fn(v)
}

// isTimeout reports whether err is a read that hit its deadline.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

package redis

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	goredis "github.com/redis/go-redis/v9"

	"boxoffice/testenv"
)

// The two roles of a Notifier as the wiring sees them: whoever commits a catalog version
// announces it, and every API instance listens.
type (
	announcer interface {
		Publish(ctx context.Context, version int64) error
	}
	listener interface {
		Subscribe(ctx context.Context, fn func(version int64)) error
	}
)

var (
	_ announcer = (*Notifier)(nil)
	_ listener  = (*Notifier)(nil)
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// subscriber runs Notifier.Subscribe on its own goroutine until stop or the end of the
// test, and records the versions it delivers.
type subscriber struct {
	cancel context.CancelFunc
	exit   chan struct{} // closed when Subscribe has returned err

	mu  sync.Mutex // guards got and err
	got []int64
	err error
}

func subscribe(t *testing.T, n *Notifier) *subscriber {
	ctx, cancel := context.WithCancel(context.Background())
	s := &subscriber{cancel: cancel, exit: make(chan struct{})}
	go func() {
		err := n.Subscribe(ctx, func(v int64) {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.got = append(s.got, v)
		})
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
		close(s.exit)
	}()
	t.Cleanup(func() { s.stop() })
	return s
}

func (s *subscriber) versions() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

// exited reports whether Subscribe has returned.
func (s *subscriber) exited() bool {
	select {
	case <-s.exit:
		return true
	default:
		return false
	}
}

// stop ends the subscription's context and returns what Subscribe returned.
func (s *subscriber) stop() error {
	s.cancel()
	<-s.exit
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// waitSubscribers waits until Redis counts n subscriptions to channel.
func waitSubscribers(t *testing.T, c *Client, channel string, n int64) {
	t.Helper()
	wait(t, strconv.FormatInt(n, 10)+" subscribers to "+channel, func() bool {
		counts, err := c.rdb.PubSubNumSub(t.Context(), channel).Result()
		if err != nil {
			t.Fatal(err)
		}
		return counts[channel] == n
	})
}

// subscribedConns returns the ids of the connections named name that are subscribed to
// a channel.
func subscribedConns(t *testing.T, c *Client, name string) []int64 {
	t.Helper()
	list, err := c.rdb.ClientList(t.Context()).Result()
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for line := range strings.Lines(list) {
		fields := map[string]string{}
		for f := range strings.FieldsSeq(line) {
			k, v, _ := strings.Cut(f, "=")
			fields[k] = v
		}
		if fields["name"] != name || fields["sub"] == "0" || fields["sub"] == "" {
			continue
		}
		id, err := strconv.ParseInt(fields["id"], 10, 64)
		if err != nil {
			t.Fatalf("CLIENT LIST: id %q: %v", fields["id"], err)
		}
		ids = append(ids, id)
	}
	return ids
}

// proxied returns a proxy in front of the test Redis and a Client through it.
func proxied(t *testing.T) (*proxy, *Client) {
	t.Helper()
	redisURL := testenv.RedisURL(t)
	u, err := url.Parse(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	px := newProxy(t, u.Host)
	return px, openURL(t, px.url(t, redisURL))
}

func TestNotifierDeliversToEverySubscriber(t *testing.T) {
	t.Parallel()
	admin := open(t)
	prefix := newPrefix(t, admin)
	// Two API instances, each with its own client.
	a := subscribe(t, NewNotifier(open(t), prefix, discard))
	b := subscribe(t, NewNotifier(open(t), prefix, discard))
	pub := NewNotifier(admin, prefix, discard)
	waitSubscribers(t, admin, pub.channel, 2)

	for _, v := range []int64{41, 42} {
		if err := pub.Publish(t.Context(), v); err != nil {
			t.Fatal(err)
		}
	}
	wait(t, "both subscribers to get both versions", func() bool {
		return len(a.versions()) == 2 && len(b.versions()) == 2
	})
	for name, s := range map[string]*subscriber{"first": a, "second": b} {
		if diff := cmp.Diff([]int64{41, 42}, s.versions()); diff != "" {
			t.Errorf("%s subscriber's versions (-want +got):\n%s", name, diff)
		}
		if err := s.stop(); err != nil {
			t.Errorf("%s Subscribe() = %v after its context ended, want nil", name, err)
		}
	}
	if pub.channel != prefix+":catalog:version" {
		t.Errorf("channel = %q, want %q", pub.channel, prefix+":catalog:version")
	}
}

func TestNotifierLateSubscriberMissesEarlierVersions(t *testing.T) {
	t.Parallel()
	admin := open(t)
	prefix := newPrefix(t, admin)
	pub := NewNotifier(admin, prefix, discard)
	early := subscribe(t, NewNotifier(open(t), prefix, discard))
	waitSubscribers(t, admin, pub.channel, 1)
	if err := pub.Publish(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	wait(t, "version 1 at the early subscriber", func() bool { return len(early.versions()) == 1 })

	// Pub/Sub keeps nothing: a subscriber that arrives after version 1 never sees it,
	// which is why readers also poll the store.
	late := subscribe(t, NewNotifier(open(t), prefix, discard))
	waitSubscribers(t, admin, pub.channel, 2)
	if err := pub.Publish(t.Context(), 2); err != nil {
		t.Fatal(err)
	}
	wait(t, "version 2 at both subscribers", func() bool {
		return len(early.versions()) == 2 && len(late.versions()) > 0
	})
	if diff := cmp.Diff([]int64{2}, late.versions()); diff != "" {
		t.Errorf("late subscriber's versions (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int64{1, 2}, early.versions()); diff != "" {
		t.Errorf("early subscriber's versions (-want +got):\n%s", diff)
	}
}

func TestNotifierIgnoresMalformedPayloads(t *testing.T) {
	t.Parallel()
	admin := open(t)
	prefix := newPrefix(t, admin)
	var logs logBuffer
	s := subscribe(t, NewNotifier(open(t), prefix, slog.New(slog.NewTextHandler(&logs, nil))))
	pub := NewNotifier(admin, prefix, discard)
	waitSubscribers(t, admin, pub.channel, 1)

	for _, payload := range []string{"not-a-version", "12abc", "", strings.Repeat("9", 100)} {
		if err := admin.rdb.Publish(t.Context(), pub.channel, payload).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Publish(t.Context(), 7); err != nil {
		t.Fatal(err)
	}
	wait(t, "version 7", func() bool { return len(s.versions()) > 0 })
	if err := s.stop(); err != nil {
		t.Errorf("Subscribe() = %v after its context ended, want nil", err)
	}
	if diff := cmp.Diff([]int64{7}, s.versions()); diff != "" {
		t.Errorf("versions (-want +got):\n%s", diff)
	}
	if n := logs.count("malformed"); n != 1 || !strings.Contains(logs.String(), "not-a-version") {
		t.Errorf("%d log lines about malformed payloads, want 1 naming the first:\n%s", n, logs.String())
	}
}

func TestNotifierResubscribesAfterItsConnectionIsKilled(t *testing.T) {
	t.Parallel()
	admin := open(t)
	prefix := newPrefix(t, admin)
	// A client name of its own tells this test's subscription apart in CLIENT LIST,
	// so the test kills only its own connection, not other tests' subscribers.
	name := "boxoffice-test-" + rand.Text()
	var logs logBuffer
	s := subscribe(t, NewNotifier(openURL(t, withQuery(t, testenv.RedisURL(t), "client_name", name)), prefix,
		slog.New(slog.NewTextHandler(&logs, nil))))
	var first []int64
	wait(t, "the subscribed connection", func() bool { first = subscribedConns(t, admin, name); return len(first) == 1 })

	killed, err := admin.rdb.ClientKillByFilter(t.Context(), "ID", strconv.FormatInt(first[0], 10)).Result()
	if err != nil || killed != 1 {
		t.Fatalf("CLIENT KILL ID %d = %d, %v, want 1", first[0], killed, err)
	}
	// Announcements sent while it resubscribes are lost: publish until one arrives.
	pub := NewNotifier(admin, prefix, discard)
	var version int64
	wait(t, "a version published after the kill", func() bool {
		version++
		if err := pub.Publish(t.Context(), version); err != nil {
			t.Fatal(err)
		}
		return len(s.versions()) > 0
	})
	if s.exited() {
		t.Fatalf("Subscribe() returned %v after a connection loss, want it to keep going", s.stop())
	}
	wait(t, "one subscribed connection, a new one", func() bool {
		ids := subscribedConns(t, admin, name)
		return len(ids) == 1 && ids[0] != first[0]
	})
	if lost, restored := logs.count("subscription lost"), logs.count("subscription restored"); lost != 1 || restored != 1 {
		t.Errorf("logged %d losses and %d recoveries, want 1 and 1:\n%s", lost, restored, logs.String())
	}
}

func TestNotifierResubscribesAfterAnOutage(t *testing.T) {
	t.Parallel()
	admin := open(t)
	prefix := newPrefix(t, admin)
	px, c := proxied(t)
	var logs logBuffer
	s := subscribe(t, NewNotifier(c, prefix, slog.New(slog.NewTextHandler(&logs, nil))))
	pub := NewNotifier(admin, prefix, discard)
	waitSubscribers(t, admin, pub.channel, 1)

	px.cut() // Redis is unreachable until restore
	waitSubscribers(t, admin, pub.channel, 0)
	wait(t, "the loss to be logged", func() bool { return logs.count("subscription lost") == 1 })
	if err := pub.Publish(t.Context(), 1); err != nil { // no one hears this one
		t.Fatal(err)
	}
	if s.exited() {
		t.Fatalf("Subscribe() returned %v during an outage, want it to keep trying", s.stop())
	}

	px.restore()
	waitSubscribers(t, admin, pub.channel, 1)
	if err := pub.Publish(t.Context(), 2); err != nil {
		t.Fatal(err)
	}
	wait(t, "version 2", func() bool { return len(s.versions()) > 0 })
	if diff := cmp.Diff([]int64{2}, s.versions()); diff != "" {
		t.Errorf("versions (-want +got):\n%s", diff)
	}
	if err := s.stop(); err != nil {
		t.Errorf("Subscribe() = %v after its context ended, want nil", err)
	}
	if n := logs.count("subscription restored"); n != 1 {
		t.Errorf("logged %d recoveries, want 1:\n%s", n, logs.String())
	}
}

func TestNotifierReplacesAConnectionThatStopsAnswering(t *testing.T) {
	t.Parallel()
	admin := open(t)
	prefix := newPrefix(t, admin)
	px, c := proxied(t)
	var logs logBuffer
	n := NewNotifier(c, prefix, slog.New(slog.NewTextHandler(&logs, nil)))
	n.health = 200 * time.Millisecond
	s := subscribe(t, n)
	pub := NewNotifier(admin, prefix, discard)
	waitSubscribers(t, admin, pub.channel, 1)

	px.freeze() // the connection stays open, but nothing comes back: no reset to notice
	wait(t, "the silent loss to be noticed", func() bool { return logs.count("no answer to a ping") > 0 })
	waitSubscribers(t, admin, pub.channel, 0)
	px.restore()
	waitSubscribers(t, admin, pub.channel, 1)
	if err := pub.Publish(t.Context(), 3); err != nil {
		t.Fatal(err)
	}
	wait(t, "version 3", func() bool { return len(s.versions()) > 0 })
	if diff := cmp.Diff([]int64{3}, s.versions()); diff != "" {
		t.Errorf("versions (-want +got):\n%s", diff)
	}
}

func TestNotifierSubscribeFailsWhenRedisIsUnreachable(t *testing.T) {
	t.Parallel()
	px, c := proxied(t)
	n := NewNotifier(c, "boxoffice-test:"+rand.Text(), discard)
	px.cut()
	err := n.Subscribe(t.Context(), func(int64) { t.Error("a version without a subscription") })
	if err == nil || !strings.Contains(err.Error(), "subscribe to "+n.channel) {
		t.Errorf("Subscribe() = %v, want an error naming %s", err, n.channel)
	}
}

func TestNotifierSubscribeReturnsWhenTheClientCloses(t *testing.T) {
	t.Parallel()
	admin := open(t)
	prefix := newPrefix(t, admin)
	c := open(t)
	s := subscribe(t, NewNotifier(c, prefix, discard))
	waitSubscribers(t, admin, prefix+":catalog:version", 1)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	wait(t, "Subscribe to return", s.exited)
	if err := s.stop(); !errors.Is(err, goredis.ErrClosed) {
		t.Errorf("Subscribe() = %v after Close(), want ErrClosed", err)
	}
}

package redis

import (
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	goredis "github.com/redis/go-redis/v9"

	"boxoffice/catalog"
	"boxoffice/catalog/catalogtest"
	"boxoffice/testenv"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// subscribe records n's versions until the test ends or Stop.
func subscribe(t *testing.T, n *Notifier) *testenv.Subscription[int64] {
	return testenv.Subscribe(t, n.Subscribe, nil)
}

// waitSubscribers waits until Redis counts n subscriptions to channel.
func waitSubscribers(t *testing.T, c *Client, channel string, n int64) {
	t.Helper()
	testenv.Poll(t, strconv.FormatInt(n, 10)+" subscribers to "+channel, func() bool {
		counts, err := c.rdb.PubSubNumSub(t.Context(), channel).Result()
		if err != nil {
			t.Fatal(err)
		}
		return counts[channel] == n
	})
}

// waitConfirmed waits until s, a subscription that Redis counts already
// (waitSubscribers), delivers what publish sends. Redis counts a subscription once it
// has run the SUBSCRIBE, before the subscriber has read the confirmation: a connection
// cut, frozen or killed in between fails the first subscription, which Subscribe
// returns rather than retries (TestBusSubscribeFailsWhenItsSubscriptionIsNotConfirmed).
// A delivery proves Subscribe past it, so a test that breaks the connection next drills
// the recovery it means to.
func waitConfirmed[T any](t *testing.T, s *testenv.Subscription[T], publish func() error) {
	t.Helper()
	n := len(s.Got())
	if err := publish(); err != nil {
		t.Fatal(err)
	}
	testenv.Poll(t, "a payload through the new subscription", func() bool { return len(s.Got()) > n })
}

// explainFailure makes a failing test tell what the subscription logged and whether
// Subscribe returned, and with what: a subscription that stopped without a word is
// otherwise only a poll that timed out.
func explainFailure[T any](t *testing.T, logs *testenv.Logs, s *testenv.Subscription[T]) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		t.Logf("the subscription logged:\n%s", logs)
		if s.Exited() {
			t.Logf("Subscribe returned %v", s.Stop())
		}
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

// TestNotifier runs the catalog.Notifier contract, each notifier on a client of its
// own, as each process has.
func TestNotifier(t *testing.T) {
	catalogtest.TestNotifier(t, func(t *testing.T) catalogtest.Notifiers {
		admin := open(t)
		prefix := newPrefix(t, admin)
		channel := prefix + ":" + catalogVersionChannel
		return catalogtest.Notifiers{
			New: func() catalog.Notifier { return NewNotifier(open(t), prefix, discard) },
			Subscriptions: func() int {
				counts, err := admin.rdb.PubSubNumSub(t.Context(), channel).Result()
				if err != nil {
					t.Fatal(err)
				}
				return int(counts[channel])
			},
		}
	})
}

func TestNotifierChannel(t *testing.T) {
	if got := NewNotifier(open(t), "p", discard).channel; got != "p:catalog:version" {
		t.Errorf("channel = %q, want %q", got, "p:catalog:version")
	}
}

func TestNotifierIgnoresMalformedPayloads(t *testing.T) {
	t.Parallel()
	admin := open(t)
	prefix := newPrefix(t, admin)
	var logs testenv.Logs
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
	testenv.Poll(t, "version 7", func() bool { return len(s.Got()) > 0 })
	if err := s.Stop(); err != nil {
		t.Errorf("Subscribe() = %v after its context ended, want nil", err)
	}
	if diff := cmp.Diff([]int64{7}, s.Got()); diff != "" {
		t.Errorf("versions (-want +got):\n%s", diff)
	}
	if n := logs.Count("malformed"); n != 1 || !strings.Contains(logs.String(), "not-a-version") {
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
	var logs testenv.Logs
	s := subscribe(t, NewNotifier(openURL(t, withQuery(t, testenv.RedisURL(t), "client_name", name)), prefix,
		slog.New(slog.NewTextHandler(&logs, nil))))
	explainFailure(t, &logs, s)
	var first []int64
	testenv.Poll(t, "the subscribed connection", func() bool { first = subscribedConns(t, admin, name); return len(first) == 1 })
	pub := NewNotifier(admin, prefix, discard)
	waitConfirmed(t, s, func() error { return pub.Publish(t.Context(), 1) })

	killed, err := admin.rdb.ClientKillByFilter(t.Context(), "ID", strconv.FormatInt(first[0], 10)).Result()
	if err != nil || killed != 1 {
		t.Fatalf("CLIENT KILL ID %d = %d, %v, want 1", first[0], killed, err)
	}
	// Announcements sent while it resubscribes are lost: publish until one arrives.
	version := int64(1)
	testenv.Poll(t, "a version published after the kill", func() bool {
		version++
		if err := pub.Publish(t.Context(), version); err != nil {
			t.Fatal(err)
		}
		return len(s.Got()) > 1
	})
	if s.Exited() {
		t.Fatalf("Subscribe() returned %v after a connection loss, want it to keep going", s.Stop())
	}
	testenv.Poll(t, "one subscribed connection, a new one", func() bool {
		ids := subscribedConns(t, admin, name)
		return len(ids) == 1 && ids[0] != first[0]
	})
	if lost, restored := logs.Count("subscription lost"), logs.Count("subscription restored"); lost != 1 || restored != 1 {
		t.Errorf("logged %d losses and %d recoveries, want 1 and 1:\n%s", lost, restored, logs.String())
	}
}

func TestNotifierResubscribesAfterAnOutage(t *testing.T) {
	t.Parallel()
	admin := open(t)
	prefix := newPrefix(t, admin)
	px, c := proxied(t)
	var logs testenv.Logs
	s := subscribe(t, NewNotifier(c, prefix, slog.New(slog.NewTextHandler(&logs, nil))))
	explainFailure(t, &logs, s)
	pub := NewNotifier(admin, prefix, discard)
	waitSubscribers(t, admin, pub.channel, 1)
	waitConfirmed(t, s, func() error { return pub.Publish(t.Context(), 1) })

	px.cut() // Redis is unreachable until restore
	waitSubscribers(t, admin, pub.channel, 0)
	testenv.Poll(t, "the loss to be logged", func() bool { return logs.Count("subscription lost") == 1 })
	if err := pub.Publish(t.Context(), 2); err != nil { // no one hears this one
		t.Fatal(err)
	}
	if s.Exited() {
		t.Fatalf("Subscribe() returned %v during an outage, want it to keep trying", s.Stop())
	}

	px.restore()
	waitSubscribers(t, admin, pub.channel, 1)
	if err := pub.Publish(t.Context(), 3); err != nil {
		t.Fatal(err)
	}
	testenv.Poll(t, "version 3", func() bool { return len(s.Got()) > 1 })
	if diff := cmp.Diff([]int64{1, 3}, s.Got()); diff != "" {
		t.Errorf("versions (-want +got):\n%s", diff)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("Subscribe() = %v after its context ended, want nil", err)
	}
	if n := logs.Count("subscription restored"); n != 1 {
		t.Errorf("logged %d recoveries, want 1:\n%s", n, logs.String())
	}
}

func TestNotifierReplacesAConnectionThatStopsAnswering(t *testing.T) {
	t.Parallel()
	admin := open(t)
	prefix := newPrefix(t, admin)
	px, c := proxied(t)
	var logs testenv.Logs
	n := NewNotifier(c, prefix, slog.New(slog.NewTextHandler(&logs, nil)))
	n.health = 200 * time.Millisecond
	s := subscribe(t, n)
	pub := NewNotifier(admin, prefix, discard)
	waitSubscribers(t, admin, pub.channel, 1)
	waitConfirmed(t, s, func() error { return pub.Publish(t.Context(), 1) })

	px.freeze() // the connection stays open, but nothing comes back: no reset to notice
	waitSilentLoss(t, &logs, s)
	waitSubscribers(t, admin, pub.channel, 0)
	px.restore()
	waitSubscribers(t, admin, pub.channel, 1)
	if err := pub.Publish(t.Context(), 3); err != nil {
		t.Fatal(err)
	}
	testenv.Poll(t, "version 3", func() bool { return len(s.Got()) > 1 })
	if diff := cmp.Diff([]int64{1, 3}, s.Got()); diff != "" {
		t.Errorf("versions (-want +got):\n%s", diff)
	}
}

// waitSilentLoss waits until a subscription's health check has noticed that its
// connection stopped answering (a frozen proxy resets nothing): its ping unanswered.
// On failure it tells what the subscription logged and whether Subscribe returned, and
// with what.
func waitSilentLoss[T any](t *testing.T, logs *testenv.Logs, s *testenv.Subscription[T]) {
	t.Helper()
	explainFailure(t, logs, s)
	testenv.Poll(t, "the silent loss to be noticed", func() bool { return logs.Count("no answer to a ping") > 0 })
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

// TestNotifierSubscribeFailsWhenItsConnectionDiesBeforeTheConfirmation cuts the
// connection of the first subscription after Redis has run the SUBSCRIBE and before the
// subscriber has read the confirmation: Redis counts a subscription that Subscribe does
// not have yet. Subscribe must return an error naming the channel, as for any first
// subscription that fails, and leave no subscription behind.
func TestNotifierSubscribeFailsWhenItsConnectionDiesBeforeTheConfirmation(t *testing.T) {
	t.Parallel()
	admin := open(t)
	prefix := newPrefix(t, admin)
	px, c := proxied(t)
	var logs testenv.Logs
	n := NewNotifier(c, prefix, slog.New(slog.NewTextHandler(&logs, nil)))
	n.confirm = testenv.PollTimeout // the cut ends the wait, not the timeout
	px.dropRepliesAfter("subscribe")
	s := subscribe(t, n)
	waitSubscribers(t, admin, n.channel, 1)
	if s.Exited() {
		t.Fatalf("Subscribe() = %v before its confirmation, want it to wait", s.Stop())
	}

	px.cut()
	testenv.Poll(t, "Subscribe to return", s.Exited)
	if err := s.Stop(); err == nil || !strings.Contains(err.Error(), "subscribe to "+n.channel) {
		t.Errorf("Subscribe() = %v, want an error naming %s", err, n.channel)
	}
	waitSubscribers(t, admin, n.channel, 0)
	if got := s.Got(); len(got) != 0 {
		t.Errorf("versions = %v without a subscription", got)
	}
	if logs.String() != "" {
		t.Errorf("logged %q, want nothing: the error is Subscribe's to return", logs.String())
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
	testenv.Poll(t, "Subscribe to return", s.Exited)
	if err := s.Stop(); !errors.Is(err, goredis.ErrClosed) {
		t.Errorf("Subscribe() = %v after Close(), want ErrClosed", err)
	}
}

// TestNotifierReportsItsSubscriptions follows a Notifier's live subscriptions through
// a first subscription whose confirmation is lost (the caller tries again), an outage
// and their recoveries, each recovery logged once.
func TestNotifierReportsItsSubscriptions(t *testing.T) {
	t.Parallel()
	admin := open(t)
	prefix := newPrefix(t, admin)
	px, c := proxied(t)
	var logs testenv.Logs
	n := NewNotifier(c, prefix, slog.New(slog.NewTextHandler(&logs, nil)))
	n.confirm = 200 * time.Millisecond
	live := func() int {
		got := -1 // nothing reported
		n.ReportSubscriptions(func(channel string, live int) {
			if channel != n.channel {
				t.Errorf("reported channel %q, want %q", channel, n.channel)
			}
			got = live
		})
		return got
	}
	if got := live(); got != -1 {
		t.Fatalf("reported %d live subscriptions before any Subscribe, want no report", got)
	}

	px.dropRepliesAfter("subscribe")
	if err := n.Subscribe(t.Context(), func(int64) {}); !isTimeout(err) {
		t.Fatalf("Subscribe() = %v with its confirmation lost, want a timeout", err)
	}
	if got := live(); got != 0 {
		t.Errorf("%d live subscriptions after the first failed, want 0", got)
	}
	px.restore()
	s := subscribe(t, n) // as the caller tries again
	explainFailure(t, &logs, s)
	testenv.Poll(t, "a live subscription", func() bool { return live() == 1 })
	if got := logs.Count("catalog version subscription restored"); got != 1 {
		t.Errorf("logged %d recoveries after the failed first subscription, want 1:\n%s", got, logs.String())
	}

	px.cut()
	testenv.Poll(t, "the lost subscription counted out", func() bool { return live() == 0 })
	px.restore()
	testenv.Poll(t, "the subscription live again", func() bool { return live() == 1 })
	if err := s.Stop(); err != nil {
		t.Errorf("Subscribe() = %v after its context ended, want nil", err)
	}
	if got := live(); got != 0 {
		t.Errorf("%d live subscriptions after Subscribe returned, want 0", got)
	}
	if lost, restored := logs.Count("subscription lost"), logs.Count("subscription restored"); lost != 1 || restored != 2 {
		t.Errorf("logged %d losses and %d recoveries, want 1 and 2:\n%s", lost, restored, logs.String())
	}
}

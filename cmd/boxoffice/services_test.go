package main

import (
	"context"
	"log/slog"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"boxoffice/postgres"
	"boxoffice/rabbitmq"
	"boxoffice/testenv"
)

// sharedServices are the Redis and RabbitMQ that testenv finds, under a namespace of
// the test's own.
type sharedServices struct {
	redisURL, brokerURL string
	namespace           string
	rdb                 *goredis.Client // on redisURL, for the test's own checks
}

// isolatedServices returns the shared Redis and RabbitMQ under a new namespace that
// starts with prefix. When the test ends (after the processes it starts later, whose
// cleanups run first) the namespace's task queues and Redis keys are deleted.
func isolatedServices(t *testing.T, prefix string) sharedServices {
	t.Helper()
	s := sharedServices{redisURL: testenv.RedisURL(t), brokerURL: testenv.BrokerURL(t),
		namespace: prefix + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)}
	openTestBroker(t, s.brokerURL, rabbitmq.Config{Prefix: s.namespace})
	opt, err := goredis.ParseURL(s.redisURL)
	if err != nil {
		t.Fatal(err)
	}
	s.rdb = goredis.NewClient(opt)
	t.Cleanup(func() { // the processes' keys (locks, caches), then the client
		ctx := context.Background()
		for it := s.rdb.Scan(ctx, 0, s.namespace+":*", 100).Iterator(); it.Next(ctx); {
			s.rdb.Del(ctx, it.Val())
		}
		s.rdb.Close()
	})
	return s
}

// openMigrated opens a store on the test's schema (primary, and replica unless it is
// ""), migrates it and closes it when the test ends: what a test writes beside the
// processes it runs.
func openMigrated(t *testing.T, primary, replica string) *postgres.Store {
	t.Helper()
	store, err := postgres.Open(t.Context(), primary, replica, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	if err := store.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return store
}

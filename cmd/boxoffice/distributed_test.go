package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"boxoffice/httpapi"
	"boxoffice/ingest"
	"boxoffice/providersim"
	"boxoffice/rabbitmq"
	"boxoffice/testenv"
)

// proc is a boxoffice process started by a test.
type proc struct {
	name string
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{} // closed when the process has exited; err is set by then
	err  error
}

// startProc starts bin with args and env; t.Cleanup stops it with SIGTERM and, if the
// test failed, prints the tail of its logs.
func startProc(t *testing.T, bin, name string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: exec.Command(bin, args...), logs: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Dir = t.TempDir()
	p.cmd.Stderr = p.logs
	dieWithTest(p.cmd)
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			logs := p.logs.String()
			t.Logf("%s logs (last 3000 bytes):\n%s", name, logs[max(0, len(logs)-3000):])
		}
	})
	return p
}

// withSearchPath returns a PostgreSQL URL whose connections use schema.
func withSearchPath(t *testing.T, raw, schema string) string {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// TestDistributed runs each role as its own process on PostgreSQL (primary and replica),
// Redis and RabbitMQ: two APIs, two workers and two ingest processes against a
// 20k-plan catalog. A worker is killed with SIGKILL in the middle of the sync; every plan
// must still be found exactly once through both APIs.
func TestDistributed(t *testing.T) {
	if testing.Short() {
		t.Skip("starts six processes")
	}
	primary, replica := testenv.PostgresURL(t), testenv.ReplicaURL(t)
	redisURL, brokerURL := testenv.RedisURL(t), testenv.BrokerURL(t)
	ctx := t.Context()
	id := strconv.FormatInt(time.Now().UnixNano(), 36)
	schema, namespace := "e2e_"+id, "e2e-"+id

	conn, err := pgx.Connect(ctx, primary)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), primary)
		if err == nil {
			c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
			c.Close(context.Background())
		}
	})
	broker, err := rabbitmq.Open(ctx, brokerURL, rabbitmq.Config{Prefix: namespace}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		broker.DeleteTopic(context.Background(), ingest.TopicPlans)
		broker.Close()
	})

	simCfg := providersim.Config{Mode: providersim.Synthetic, Seed: 3, BasePlans: 5000, Plans: 4, Zones: 3}
	sim := providersim.New(simCfg)
	provider := httptest.NewServer(sim)
	t.Cleanup(provider.Close)
	t.Cleanup(func() { sim.Close() })
	var want []event
	for p := range sim.Catalog().Searchable([]int{1}, "fever") {
		var e event
		if err := json.Unmarshal(httpapi.EncodeEvent(p), &e); err != nil {
			t.Fatal(err)
		}
		want = append(want, e)
	}
	if len(want) != 20000 {
		t.Fatalf("the simulator serves %d searchable plans, want 20000", len(want))
	}
	slices.SortFunc(want, func(a, b event) int {
		return cmp.Or(strings.Compare(a.StartDate+a.StartTime, b.StartDate+b.StartTime), strings.Compare(a.ID, b.ID))
	})

	bin := buildBinary(t)
	env := append(os.Environ(),
		"DATABASE_WRITE_URL="+withSearchPath(t, primary, schema),
		"DATABASE_READ_URL="+withSearchPath(t, replica, schema),
		"REDIS_URL="+redisURL,
		"BROKER_URL="+brokerURL,
		"NAMESPACE="+namespace,
		"EXTERNAL_API_URL="+provider.URL+"/api/events",
		"SYNC_INTERVAL_SECONDS=300",
		"LOG_LEVEL=info",
	)
	var apis []string
	for i := range 2 {
		addr := freeAddr(t)
		startProc(t, bin, fmt.Sprintf("api%d", i+1), append(env, "HTTP_ADDR="+addr), "api")
		apis = append(apis, "http://"+addr)
	}
	// Every role listens on HTTP_ADDR for /health and /ready.
	role := func(name, cmd string) *proc {
		return startProc(t, bin, name, append(env, "HTTP_ADDR="+freeAddr(t)), cmd)
	}
	victim := role("worker1", "worker")
	role("worker2", "worker")
	role("ingest1", "ingest")
	role("ingest2", "ingest")

	// Kill worker1 as soon as the first batches are in, while the sync is under way.
	count := func() int {
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+schema+".plans").Scan(&n); err != nil {
			return 0 // the workers have not migrated the schema yet
		}
		return n
	}
	poll(t, "the first plans in the store", func() bool { return count() > 0 })
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-victim.done
	t.Logf("killed worker1 with %d of 20000 plans stored", count())

	for _, api := range apis {
		got := waitEvents(t, api+"/search", want)
		t.Logf("%s serves all %d plans (%d bytes)", api, len(want), len(got))
	}
	if n := count(); n != 20000 {
		t.Errorf("store has %d plans, want 20000", n)
	}
	// Two ingest processes, one leader: the provider was asked once in the interval.
	if n := sim.Requests(); n != 1 {
		t.Errorf("provider called %d times by two ingest processes in one interval, want 1 (one leader)", n)
	}
}

//go:build bench

package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"boxoffice/ingest"
	"boxoffice/providersim"
	"boxoffice/rabbitmq"
	"boxoffice/testenv"
)

// The synthetic catalog's shape: a size of N plans is N/plansPerBase base plans of
// plansPerBase plans, each with zonesPerPlan zones (1M = 10 000 × 100 × 2).
const (
	plansPerBase = 100
	zonesPerPlan = 2
	simSeed      = 7
)

// simConfig is the simulator's configuration for a catalog of n plans, with every
// churn rate at 0: the catalog is stable and all BasePlans × Plans plans are searchable.
func simConfig(n int) providersim.Config {
	c := providersim.DefaultConfig()
	c.Mode = providersim.Synthetic
	c.Seed = simSeed
	c.BasePlans, c.Plans, c.Zones = (n+plansPerBase-1)/plansPerBase, plansPerBase, zonesPerPlan
	c.VanishRate, c.PriceChangeRate, c.TimeChangeRate = 0, 0, 0
	c.SellModeFlipRate, c.InvalidDateRate, c.OfflineRate = 0, 0, 0
	return c
}

// buildBinary returns BENCH_BIN, or builds boxoffice into a temporary directory.
func buildBinary(t *testing.T, s settings) string {
	t.Helper()
	if s.bin != "" {
		bin, err := filepath.Abs(s.bin)
		if err != nil {
			t.Fatal(err)
		}
		return bin
	}
	bin := filepath.Join(t.TempDir(), "boxoffice")
	out, err := exec.Command("go", "build", "-o", bin, "boxoffice/cmd/boxoffice").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// freeAddr returns a loopback address with a port free at the time of the call.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// tail keeps the last bytes a process wrote to stderr, for failure reports.
type tail struct {
	mu  sync.Mutex // guards buf
	buf []byte
}

func (w *tail) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if n := len(w.buf); n > 64<<10 {
		w.buf = append(w.buf[:0], w.buf[n-32<<10:]...)
	}
	return len(p), nil
}

func (w *tail) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.buf)
}

// startProc starts bin with args and env and returns its process id; t.Cleanup stops it
// with SIGTERM (SIGKILL after 20 s) and prints the tail of its logs if the test failed
// or it died early.
func startProc(t *testing.T, bin, name string, env []string, args ...string) int {
	t.Helper()
	pid, _ := startStoppable(t, bin, name, env, args...)
	return pid
}

// startStoppable is startProc that also returns a function that stops the process
// before the test ends, the way t.Cleanup would, and waits until it exited.
func startStoppable(t *testing.T, bin, name string, env []string, args ...string) (pid int, stop func()) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env, cmd.Dir = env, t.TempDir()
	logs := &tail{}
	cmd.Stderr, cmd.Stdout = logs, logs
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	var once sync.Once
	halt := func() {
		once.Do(func() {
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				cmd.Process.Kill()
				<-done
			}
		})
	}
	stopped := false
	t.Cleanup(func() {
		select {
		case <-done:
			if !stopped {
				t.Errorf("%s exited early; its logs:\n%s", name, lastBytes(logs.String(), 3000))
				return
			}
		default:
		}
		halt()
		if t.Failed() {
			t.Logf("%s logs (last 3000 bytes):\n%s", name, lastBytes(logs.String(), 3000))
		}
	})
	return cmd.Process.Pid, func() { stopped = true; halt() }
}

func lastBytes(s string, n int) string { return s[max(0, len(s)-n):] }

// baseEnv is the environment of every boxoffice process: the test's, minus settings a
// developer's shell or .env might carry, plus quiet logs and no resync during the run.
func baseEnv() []string {
	// Rate limits off: the load comes from one address, far above what one client may
	// make (the limiter's cost is measured on its own, with limits far above the load).
	env := []string{"LOG_LEVEL=warn", "SYNC_INTERVAL_SECONDS=86400", "RATE_LIMIT_PER_SECOND=0", "RATE_LIMIT_WRITES_PER_SECOND=0"}
	for _, kv := range os.Environ() {
		k, _, _ := bytes.Cut([]byte(kv), []byte("="))
		switch string(k) {
		case "HTTP_ADDR", "DATA_DIR", "DATABASE_WRITE_URL", "DATABASE_READ_URL", "REDIS_URL", "BROKER_URL",
			"EXTERNAL_API_URL", "NAMESPACE", "LOG_LEVEL", "SYNC_INTERVAL_SECONDS", "CACHE_TTL_SECONDS",
			"RATE_LIMIT_PER_SECOND", "RATE_LIMIT_WRITES_PER_SECOND", "MAX_IN_FLIGHT":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// startMode starts boxoffice in mode (embedded or distributed) with a catalog of n
// plans and returns the process serving the API, or the error that keeps the
// distributed services from being reached.
func startMode(t *testing.T, mode, bin string, n int) (server, error) {
	t.Helper()
	if mode == "embedded" {
		return startEmbedded(t, bin, n), nil
	}
	primary, replica, redisURL, brokerURL, err := distributedServices()
	if err != nil {
		return server{}, err
	}
	return startDistributed(t, bin, n, primary, replica, redisURL, brokerURL), nil
}

// startEmbedded starts `boxoffice run` with its built-in simulator serving a catalog of
// n plans and returns its API; extraEnv adds to (and overrides) baseEnv.
func startEmbedded(t *testing.T, bin string, n int, extraEnv ...string) server {
	t.Helper()
	srv, _ := startEmbeddedOn(t, bin, simConfig(n), t.TempDir(), extraEnv...)
	return srv
}

// startEmbeddedOn is startEmbedded on dataDir, its simulator serving the synthetic
// catalog of c, and also returns the function that stops the process (startStoppable).
func startEmbeddedOn(t *testing.T, bin string, c providersim.Config, dataDir string, extraEnv ...string) (server, func()) {
	t.Helper()
	addr := freeAddr(t)
	args := []string{"run",
		"--http-addr=" + addr, "--data-dir=" + dataDir, "--env-file=/dev/null",
		"--sim-mode=synthetic", "--sim-seed=" + strconv.FormatUint(c.Seed, 10),
		"--sim-base-plans=" + strconv.Itoa(c.BasePlans), "--sim-plans=" + strconv.Itoa(c.Plans),
		"--sim-zones=" + strconv.Itoa(c.Zones),
	}
	for r, v := range map[string]float64{"vanish": c.VanishRate, "price-change": c.PriceChangeRate, "time-change": c.TimeChangeRate,
		"sell-mode-flip": c.SellModeFlipRate, "invalid-date": c.InvalidDateRate, "offline": c.OfflineRate} {
		args = append(args, "--sim-"+r+"-rate="+strconv.FormatFloat(v, 'g', -1, 64))
	}
	pid, stop := startStoppable(t, bin, "boxoffice run", append(baseEnv(), extraEnv...), args...)
	return server{name: "boxoffice", base: "http://" + addr, pid: pid, dataDir: dataDir}, stop
}

// serveProvider serves provider on a free loopback port until the test ends and returns
// the URL of its API (providersim.Path).
func serveProvider(t *testing.T, provider http.Handler) string {
	t.Helper()
	return serveLoopback(t, provider) + providersim.Path
}

// serveLoopback serves h on a free loopback port until the test ends and returns its
// base URL, http://host:port.
func serveLoopback(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// distributedServices returns the services' URLs, or ok false when one does not answer.
func distributedServices() (primary, replica, redisURL, brokerURL string, err error) {
	get := func(variable, def string) (string, error) {
		v := env(variable, def)
		u, err := url.Parse(v)
		if err != nil || u.Host == "" {
			return "", fmt.Errorf("%s: not a URL with a host", variable)
		}
		c, err := net.DialTimeout("tcp", u.Host, time.Second)
		if err != nil {
			return "", fmt.Errorf("%s: %w", variable, err)
		}
		c.Close()
		return v, nil
	}
	var errs [4]error
	primary, errs[0] = get("TEST_DATABASE_WRITE_URL", testenv.DefaultPostgresURL)
	replica, errs[1] = get("TEST_DATABASE_READ_URL", testenv.DefaultReplicaURL)
	redisURL, errs[2] = get("TEST_REDIS_URL", testenv.DefaultRedisURL)
	brokerURL, errs[3] = get("TEST_BROKER_URL", testenv.DefaultBrokerURL)
	for _, e := range errs {
		if e != nil {
			return "", "", "", "", e
		}
	}
	return primary, replica, redisURL, brokerURL, nil
}

// startDistributed starts one `api`, one `worker` and one `ingest` process on
// PostgreSQL (reads from the replica), Redis and RabbitMQ, in a schema, key prefix and
// queue prefix of their own that t.Cleanup drops, syncing from a simulator in this
// process; it returns the API process.
func startDistributed(t *testing.T, bin string, n int, primary, replica, redisURL, brokerURL string) server {
	t.Helper()
	roles := startRoles(t, bin, simConfig(n), nil, []string{"worker", "api", "ingest"}, primary, replica, redisURL, brokerURL)
	api := roles[1]
	api.name = "boxoffice"
	return api
}

// startRoles starts the given roles (the first must be the worker, which migrates the
// schema) on PostgreSQL (reads from the replica), Redis and RabbitMQ, in a schema, key
// prefix and queue prefix of their own that t.Cleanup drops, syncing from a simulator
// of sim in this process, with extraEnv added to their environment; it returns each
// role's HTTP server, in order.
func startRoles(t *testing.T, bin string, sim providersim.Config, extraEnv, roles []string, primary, replica, redisURL, brokerURL string) []server {
	t.Helper()
	simServer := providersim.New(sim)
	t.Cleanup(func() { simServer.Close() })
	servers, _ := startRolesOn(t, bin, simServer, extraEnv, roles, primary, replica, redisURL, brokerURL)
	return servers
}

// startRolesOn is startRoles syncing from provider, a handler of the provider's
// /api/events; it also returns a function that starts one more process of a role in
// the same schema and namespace, with a function that stops it.
func startRolesOn(t *testing.T, bin string, provider http.Handler, extraEnv, roles []string, primary, replica, redisURL, brokerURL string) ([]server, func(role string) (server, func())) {
	t.Helper()
	ctx := t.Context()
	id := strconv.FormatInt(time.Now().UnixNano(), 36)
	schema, namespace := "bench_"+id, "bench-"+id

	conn, err := pgx.Connect(ctx, primary)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	// Cleanups run last-registered first: the processes stop before their schema,
	// queues and keys go.
	t.Cleanup(func() {
		ctx := context.Background()
		if c, err := pgx.Connect(ctx, primary); err == nil {
			if _, err := c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
				t.Errorf("drop schema %s: %v", schema, err)
			}
			c.Close(ctx)
		}
		if b, err := rabbitmq.Open(ctx, brokerURL, rabbitmq.Config{Prefix: namespace}, slog.New(slog.DiscardHandler)); err == nil {
			b.DeleteTopic(ctx, ingest.TopicPlans)
			b.Close()
		}
		if opt, err := redis.ParseURL(redisURL); err == nil {
			rc := redis.NewClient(opt)
			iter := rc.Scan(ctx, 0, namespace+"*", 1000).Iterator()
			for iter.Next(ctx) {
				rc.Del(ctx, iter.Val())
			}
			rc.Close()
		}
	})

	providerURL := serveProvider(t, provider)

	env := append(baseEnv(),
		"DATABASE_WRITE_URL="+testenv.WithSearchPath(t, primary, schema),
		"DATABASE_READ_URL="+testenv.WithSearchPath(t, replica, schema),
		"REDIS_URL="+redisURL,
		"BROKER_URL="+brokerURL,
		"NAMESPACE="+namespace,
		"EXTERNAL_API_URL="+providerURL,
		"API_KEYS="+benchAPIKey, // the api role refuses to start without keys
	)
	env = append(env, extraEnv...)
	start := func(role string) (server, func()) {
		addr := freeAddr(t)
		pid, stop := startStoppable(t, bin, role, append(env, "HTTP_ADDR="+addr), role, "--env-file=/dev/null")
		return server{name: role, base: "http://" + addr, pid: pid, schema: schema}, stop
	}
	// The worker migrates the schema; the roles after it find the tables.
	var servers []server
	for _, role := range roles {
		srv, _ := start(role)
		servers = append(servers, srv)
	}
	return servers, start
}

// benchAPIKey is the bearer key of the write endpoints of the servers started here.
const benchAPIKey = "bench-key-0123456789abcdef"

// countPlans returns how many events base/search serves with no bounds, counting the
// "id" fields as the body streams in, so a 1M-plan response costs no memory.
func countPlans(ctx context.Context, base string) (int, error) {
	body, err := getOK(ctx, base+"/search")
	if err != nil {
		return 0, err
	}
	defer body.Close()
	return countIDs(body)
}

// getOK GETs url without compression and returns the body of a 200 response; the
// caller closes it. Any other status is an error.
func getOK(ctx context.Context, url string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := plainClient.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return nil, fmt.Errorf("status %s", resp.Status)
	}
	return resp.Body, nil
}

// countIDs counts the occurrences of `"id":` in r.
func countIDs(r io.Reader) (int, error) {
	const needle = `"id":`
	br := bufio.NewReaderSize(r, 1<<20)
	n, matched := 0, 0
	for {
		b, err := br.ReadByte()
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		switch {
		case b == needle[matched]:
			matched++
			if matched == len(needle) {
				n, matched = n+1, 0
			}
		case b == needle[0]:
			matched = 1
		default:
			matched = 0
		}
	}
}

// waitIngest polls base/search until it serves want plans and returns how long that
// took from start.
func waitIngest(t *testing.T, base string, want int, start time.Time, timeout time.Duration) time.Duration {
	t.Helper()
	every := time.Second
	if want > 100_000 {
		every = 10 * time.Second // a full response is then hundreds of MB: poll gently
	}
	deadline := start.Add(timeout)
	last, lastLog := -1, time.Now()
	for {
		got, err := countPlans(t.Context(), base)
		if err == nil && got == want {
			return time.Since(start)
		}
		if got != last || time.Since(lastLog) > time.Minute {
			t.Logf("ingest: %d of %d plans served after %s (err %v)", got, want, time.Since(start).Round(time.Second), err)
			last, lastLog = got, time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("ingest: %d of %d plans served after %s", got, want, timeout)
		}
		time.Sleep(every)
	}
}

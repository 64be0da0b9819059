package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"boxoffice/ingest"
	"boxoffice/providersim"
	"boxoffice/rabbitmq"
	"boxoffice/sqlite"
	"boxoffice/task"
	"boxoffice/testenv"
)

// decodeDeadLetters decodes the JSON lines of `boxoffice dead-letters list`.
func decodeDeadLetters(t *testing.T, out []byte) []deadLetterJSON {
	t.Helper()
	var dead []deadLetterJSON
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var d deadLetterJSON
		if err := dec.Decode(&d); err != nil {
			t.Fatalf("dead-letters list printed %q: %v", out, err)
		}
		dead = append(dead, d)
	}
	return dead
}

// TestDeadLettersReplay is the dead-letters drill on the embedded mode. boxoffice run
// (the built binary) syncs a catalog while its store refuses every plan (a trigger
// aborts the inserts, as a full disk would), so each batch is retried and then
// dead-lettered, and /metrics counts them. boxoffice dead-letters, run beside it on the
// same DATA_DIR, lists them with the store's error; purge without --yes refuses; once the
// store is back, replay sends them back and every plan is served, exactly once, as if the
// batches had never failed.
func TestDeadLettersReplay(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	_, providerURL, want := syntheticProvider(t, providersim.Config{Mode: providersim.Synthetic, Seed: 9, BasePlans: 600, Plans: 4, Zones: 2})
	bin := buildBinary(t)
	dataDir := t.TempDir()
	env := append(os.Environ(), "DATA_DIR="+dataDir, "SYNC_INTERVAL_SECONDS=3600", "LOG_LEVEL=info",
		"TASK_MAX_ATTEMPTS=2", "TASK_RETRY_SECONDS=0.05", "EXTERNAL_API_URL="+providerURL)
	cli := func(args ...string) ([]byte, error) {
		cmd := exec.Command(bin, append([]string{"dead-letters"}, args...)...)
		cmd.Env = env
		cmd.Dir = t.TempDir()
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			err = errors.Join(err, errors.New(stderr.String()))
		}
		return out, err
	}

	if out, err := exec.Command(bin, "migrate", "--data-dir", dataDir).CombinedOutput(); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	store := openFile(t, dataDir, sqlite.FileName)
	if _, err := store.ExecContext(t.Context(), `CREATE TRIGGER refuse BEFORE INSERT ON plans
		BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END`); err != nil {
		t.Fatal(err)
	}

	addr := freeAddr(t)
	run := startProc(t, bin, "run", append(env, "HTTP_ADDR="+addr), "run")
	var batches int
	testenv.Poll(t, "the sync to publish its batches", func() bool {
		m := regexp.MustCompile(`"msg":"sync".*?"batches":(\d+)`).FindStringSubmatch(run.logs.String())
		if m != nil {
			batches, _ = strconv.Atoi(m[1])
		}
		return m != nil
	})
	if batches == 0 {
		t.Fatal("the sync published no batch")
	}
	var dead []deadLetterJSON
	testenv.Poll(t, "every batch dead-lettered", func() bool {
		out, err := cli("list", "--topic", ingest.TopicPlans)
		if err != nil {
			t.Fatalf("dead-letters list: %v", err)
		}
		dead = decodeDeadLetters(t, out)
		return len(dead) == batches
	})
	for _, d := range dead {
		if d.Topic != ingest.TopicPlans || d.Attempt != 2 || !strings.Contains(d.Error, "database or disk is full") ||
			d.DiedAt == nil || time.Since(*d.DiedAt) > time.Minute || d.BodyBytes == 0 {
			t.Errorf("dead letter %+v: want a plan batch that failed twice with the store's error, just now", d)
		}
	}
	_, metrics := searchBody(t, "http://"+addr+"/metrics")
	if v, _ := metricValue(string(metrics), `boxoffice_broker_dead_letters{topic="catalog.plans"}`); v != float64(batches) {
		t.Errorf("boxoffice_broker_dead_letters{topic=catalog.plans} = %v, want %d", v, batches)
	}
	waitStatusDeadLetters(t, "http://"+addr, batches)

	if _, err := store.ExecContext(t.Context(), `DROP TRIGGER refuse`); err != nil {
		t.Fatal(err)
	}
	out, err := cli("purge")
	if exit := (*exec.ExitError)(nil); !errors.As(err, &exit) || !strings.Contains(string(out), "would purge "+strconv.Itoa(batches)+" dead letters of catalog.plans") {
		t.Errorf("purge without --yes: %v, %q; want a refusal that says how many it would purge", err, out)
	}
	out, err = cli("replay")
	if err != nil || !strings.Contains(string(out), "replayed "+strconv.Itoa(batches)+" dead letters of catalog.plans") {
		t.Fatalf("replay: %v, %q; want %d replayed", err, out, batches)
	}
	waitEvents(t, "http://"+addr+"/search", want)
	out, err = cli("list")
	if err != nil || len(out) != 0 {
		t.Errorf("list after the replay: %v, %q; want nothing", err, out)
	}
	_, metrics = searchBody(t, "http://"+addr+"/metrics")
	if v, ok := metricValue(string(metrics), `boxoffice_broker_dead_letters{topic="catalog.plans"}`); !ok || v != 0 {
		t.Errorf("boxoffice_broker_dead_letters{topic=catalog.plans} = %v (present %v) after the replay, want 0", v, ok)
	}
	waitStatusDeadLetters(t, "http://"+addr, 0)
}

// waitStatusDeadLetters polls the public status of the API at base until it counts want
// dead letters, all of them plan batches.
func waitStatusDeadLetters(t *testing.T, base string, want int) {
	t.Helper()
	testenv.Poll(t, fmt.Sprintf("/api/v1/status to count %d dead letters", want), func() bool {
		st, _ := getStatus(t, base)
		dl := st.DeadLetters
		return dl != nil && dl.Total == want && dl.Topics[ingest.TopicPlans] == want
	})
}

// TestDeadLettersOnRabbitMQ runs the command on RabbitMQ (BROKER_URL) in-process: a
// real dead letter is listed, a purge without --yes refuses, and a replay puts it back
// in the work queue.
func TestDeadLettersOnRabbitMQ(t *testing.T) {
	brokerURL := testenv.BrokerURL(t)
	namespace := "dl-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	b := openTestBroker(t, brokerURL, rabbitmq.Config{Prefix: namespace})
	ctx, stop := context.WithCancel(t.Context())
	go b.Subscribe(ctx, ingest.TopicPlans, func(context.Context, task.Message) error {
		return task.Permanent(errors.New("undecodable batch"))
	})
	if err := b.Publish(t.Context(), ingest.TopicPlans, task.Message{ID: "sync-1-0", Body: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	testenv.Poll(t, "the dead letter", func() bool { n, _ := b.CountDeadLetters(t.Context(), ingest.TopicPlans); return n == 1 })
	stop()

	env := map[string]string{"BROKER_URL": brokerURL, "NAMESPACE": namespace}
	command := func(args ...string) (string, error) {
		var stdout, stderr bytes.Buffer
		err := run(t.Context(), append([]string{"dead-letters"}, args...), func(k string) string { return env[k] }, &stdout, &stderr)
		return stdout.String(), err
	}
	out, err := command("list")
	if err != nil {
		t.Fatal(err)
	}
	dead := decodeDeadLetters(t, []byte(out))
	if len(dead) != 1 || dead[0].ID != "sync-1-0" || dead[0].Topic != ingest.TopicPlans || dead[0].Error != "undecodable batch" || dead[0].Attempt != 1 {
		t.Errorf("list = %+v, want the one dead letter with its error", dead)
	}
	if out, err := command("purge", "--topic", ingest.TopicPlans); !errors.Is(err, errPurgeUnconfirmed) || out != "would purge 1 dead letters of catalog.plans\n" {
		t.Errorf("purge without --yes = %q, %v; want a refusal", out, err)
	}
	if out, err := command("replay", "--topic", ingest.TopicPlans); err != nil || out != "replayed 1 dead letters of catalog.plans\n" {
		t.Errorf("replay = %q, %v", out, err)
	}
	if n, _, err := b.QueueDepth(t.Context(), ingest.TopicPlans); err != nil || n != 1 {
		t.Errorf("work queue holds %d messages (%v) after the replay, want 1", n, err)
	}
	if _, err := command("list", "--topic", "nope"); err == nil || !strings.Contains(err.Error(), "--topic") {
		t.Errorf("list --topic nope = %v, want an error naming --topic", err)
	}
}

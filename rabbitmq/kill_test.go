package rabbitmq_test

import (
	"bufio"
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"boxoffice/rabbitmq"
	"boxoffice/task"
	"boxoffice/task/tasktest"
	"boxoffice/testenv"
)

// helperPrefix, when set, makes TestHelperConsumer the consumer that
// TestAcksLateSurvivesKill or TestPoisonThatKillsItsConsumer kills: it names the queue
// prefix to consume under; helperLimit, the delivery limit of its queues.
const (
	helperPrefix = "BOXOFFICE_RABBITMQ_HELPER_PREFIX"
	helperLimit  = "BOXOFFICE_RABBITMQ_HELPER_LIMIT"
)

// TestHelperConsumer is not a test: TestAcksLateSurvivesKill and
// TestPoisonThatKillsItsConsumer run the test binary on it as a child process. It runs
// tasktest.KillConsumer, which blocks on the message "poison" until it is killed.
func TestHelperConsumer(t *testing.T) {
	prefix := os.Getenv(helperPrefix)
	if prefix == "" {
		t.Skip("helper process of TestAcksLateSurvivesKill and TestPoisonThatKillsItsConsumer")
	}
	retry := task.DefaultRetry
	if limit, err := strconv.Atoi(os.Getenv(helperLimit)); err == nil {
		retry = killRetry
		retry.DeliveryLimit = limit
	}
	b, err := rabbitmq.Open(t.Context(), testenv.BrokerURL(t), rabbitmq.Config{Prefix: prefix, Retry: retry}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Fatalf("KillConsumer() = %v, want to be killed first", tasktest.KillConsumer(t.Context(), b))
}

// killRetry is the policy of the poison drill: a message lost with its consumer more
// than twice in a row is dead-lettered.
var killRetry = task.RetryPolicy{MaxAttempts: 3, Countdown: 10 * time.Millisecond, MaxDelay: 10 * time.Millisecond, DeliveryLimit: 2}

// TestPoisonThatKillsItsConsumer runs the poison drill on a quorum work queue: RabbitMQ
// counts the deliveries that its consumers died with and dead-letters the message past
// the limit.
func TestPoisonThatKillsItsConsumer(t *testing.T) {
	t.Parallel()
	b := openBroker(t, testenv.BrokerURL(t), rabbitmq.Config{Retry: killRetry})
	b.use(tasktest.KillTopic)
	tasktest.TestPoisonThatKillsItsConsumer(t, b, killRetry.DeliveryLimit, func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperConsumer$", "-test.count=1")
		cmd.Env = append(os.Environ(), helperPrefix+"="+b.prefix, helperLimit+"="+strconv.Itoa(killRetry.DeliveryLimit))
		return cmd
	})
}

func TestAcksLateSurvivesKill(t *testing.T) {
	t.Parallel()
	b := openBroker(t, testenv.BrokerURL(t), rabbitmq.Config{})
	ctx := t.Context()
	if err := b.Publish(ctx, tasktest.KillTopic, task.Message{ID: "poison", Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperConsumer$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperPrefix+"="+b.prefix)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	got := make(chan string, 1)
	var output []string // the helper's stdout up to "got", for failure messages
	go func() {
		defer close(got)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			output = append(output, sc.Text())
			if id, ok := strings.CutPrefix(sc.Text(), "got "); ok {
				got <- id
				return
			}
		}
	}()
	select {
	case id, ok := <-got:
		if !ok {
			cmd.Wait()
			t.Fatalf("helper exited without the message:\n%s\n%s", strings.Join(output, "\n"), stderr.String())
		}
		if id != "poison" {
			t.Fatalf("helper got %q, want %q", id, "poison")
		}
	case <-time.After(60 * time.Second):
		t.Fatal("helper never got the message")
	}
	// The helper holds the message unacknowledged: it is not ready for anyone else.
	if n, c := depth(t, b, "kill"); n != 0 || c != 1 {
		t.Fatalf("QueueDepth() = %d messages, %d consumers while the helper works, want 0 and 1", n, c)
	}

	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no cleanup, no ack, no nack
		t.Fatal(err)
	}
	cmd.Wait()

	redelivered := make(chan task.Message, 1)
	subCtx, stop := context.WithCancel(ctx)
	defer stop()
	go b.Subscribe(subCtx, "kill", func(ctx context.Context, m task.Message) error {
		select {
		case redelivered <- m:
		default:
		}
		return nil
	})
	select {
	case m := <-redelivered:
		if m.ID != "poison" || string(m.Body) != "x" || m.Attempt != 1 {
			t.Errorf("redelivered %q %q at attempt %d, want %q %q at 1", m.ID, m.Body, m.Attempt, "poison", "x")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("message not redelivered after its consumer was killed")
	}
}

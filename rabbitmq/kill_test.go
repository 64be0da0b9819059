package rabbitmq_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"boxoffice/rabbitmq"
	"boxoffice/task"
	"boxoffice/testenv"
)

// helperPrefix, when set, makes TestHelperConsumer the consumer that
// TestAcksLateSurvivesKill kills: it names the queue prefix to consume under.
const helperPrefix = "BOXOFFICE_RABBITMQ_HELPER_PREFIX"

// TestHelperConsumer is not a test: TestAcksLateSurvivesKill runs the test binary on it
// as a child process. It consumes topic "kill", prints "got <id>" for the first
// message and blocks in the handler until the process is killed.
func TestHelperConsumer(t *testing.T) {
	prefix := os.Getenv(helperPrefix)
	if prefix == "" {
		t.Skip("helper process of TestAcksLateSurvivesKill")
	}
	b, err := rabbitmq.Open(t.Context(), testenv.BrokerURL(t), rabbitmq.Config{Prefix: prefix, Prefetch: 1}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	err = b.Subscribe(t.Context(), "kill", func(ctx context.Context, m task.Message) error {
		fmt.Printf("got %s\n", m.ID)
		<-ctx.Done() // until SIGKILL
		return ctx.Err()
	})
	t.Fatalf("Subscribe() = %v, want to be killed first", err)
}

func TestAcksLateSurvivesKill(t *testing.T) {
	t.Parallel()
	b := openBroker(t, testenv.BrokerURL(t), rabbitmq.Config{})
	ctx := t.Context()
	if err := b.Publish(ctx, "kill", task.Message{ID: "survivor", Body: []byte("x")}); err != nil {
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
		if id != "survivor" {
			t.Fatalf("helper got %q, want %q", id, "survivor")
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
		if m.ID != "survivor" || string(m.Body) != "x" || m.Attempt != 1 {
			t.Errorf("redelivered %q %q at attempt %d, want %q %q at 1", m.ID, m.Body, m.Attempt, "survivor", "x")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("message not redelivered after its consumer was killed")
	}
}

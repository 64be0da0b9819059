package sqlite_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"boxoffice/sqlite"
	"boxoffice/task"
	"boxoffice/testenv"
)

// helperDir, when set, makes TestHelperConsumer the consumer process that
// TestPoisonThatKillsItsConsumer kills: it names the data directory of the queue.
const helperDir = "BOXOFFICE_SQLITE_HELPER_DIR"

// killRetry is the policy of the drill: a message lost with its consumer more than twice
// in a row is dead-lettered.
var killRetry = task.RetryPolicy{MaxAttempts: 3, Countdown: 10 * time.Millisecond, MaxDelay: 10 * time.Millisecond, DeliveryLimit: 2}

// TestHelperConsumer is not a test: TestPoisonThatKillsItsConsumer runs the test binary
// on it as a child process. Like boxoffice run at start-up it hands back the deliveries
// that a killed predecessor left, then consumes topic "kill": it prints "got <id>" for
// each message and "done <id>" once handled; on "poison" it blocks until killed, as a
// handler that exhausts the process's memory would.
func TestHelperConsumer(t *testing.T) {
	dir := os.Getenv(helperDir)
	if dir == "" {
		t.Skip("helper process of TestPoisonThatKillsItsConsumer")
	}
	b, err := sqlite.OpenBroker(t.Context(), dir, sqlite.BrokerConfig{Retry: killRetry, Poll: 10 * time.Millisecond}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Recover(t.Context()); err != nil {
		t.Fatal(err)
	}
	err = b.Subscribe(t.Context(), "kill", func(ctx context.Context, m task.Message) error {
		fmt.Printf("got %s\n", m.ID)
		if m.ID == "poison" {
			<-ctx.Done() // until SIGKILL
		}
		fmt.Printf("done %s\n", m.ID)
		return nil
	})
	t.Fatalf("Subscribe() = %v, want to be killed first", err)
}

// TestPoisonThatKillsItsConsumer is the drill of a message that kills every process
// that handles it (which no recover can catch: OOM, SIGKILL). A consumer process is
// killed with SIGKILL each time it gets the poison message, and restarted: after the
// delivery limit the message is in the dead letters, with the reason, and every other
// message was handled exactly once.
func TestPoisonThatKillsItsConsumer(t *testing.T) {
	dir := t.TempDir()
	b := openBroker(t, dir, killRetry)
	ctx := t.Context()
	msgs := []task.Message{{ID: "poison", Body: []byte("x")}}
	for i := range 5 {
		msgs = append(msgs, task.Message{ID: fmt.Sprintf("m%d", i), Body: []byte("y")})
	}
	if err := b.Publish(ctx, "kill", msgs...); err != nil {
		t.Fatal(err)
	}

	var (
		kills int
		done  []string // the messages handled, over every consumer process
	)
	for dead := 0; dead == 0; {
		if kills > killRetry.DeliveryLimit+1 {
			t.Fatalf("the poison message killed %d consumers, want it dead-lettered after %d", kills, killRetry.DeliveryLimit+1)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperConsumer$", "-test.count=1")
		cmd.Env = append(os.Environ(), helperDir+"="+dir)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		poisoned := false
		testenv.Poll(t, "the consumer to get the poison, or the poison dead-lettered", func() bool {
			for {
				select {
				case line, ok := <-lines:
					if !ok {
						cmd.Wait()
						t.Fatalf("consumer exited: %s", stderr.String())
					}
					if id, ok := strings.CutPrefix(line, "done "); ok {
						done = append(done, id)
					}
					if line == "got poison" {
						poisoned = true
						return true
					}
					continue
				default:
				}
				var err error
				if dead, err = b.CountDeadLetters(ctx, "kill"); err != nil {
					t.Fatal(err)
				}
				return dead > 0 && len(done) == 5
			}
		})
		if err := cmd.Process.Kill(); err != nil { // SIGKILL: no settlement at all
			t.Fatal(err)
		}
		cmd.Wait()
		for range lines { // drain
		}
		if poisoned {
			kills++
		}
	}

	if kills != killRetry.DeliveryLimit+1 {
		t.Errorf("the poison message killed %d consumers, want %d (the delivery limit, plus the delivery that broke it)", kills, killRetry.DeliveryLimit+1)
	}
	slices.Sort(done)
	if want := []string{"m0", "m1", "m2", "m3", "m4"}; !slices.Equal(done, want) {
		t.Errorf("handled %v, want each other message once: %v", done, want)
	}
	dead := deadLetters(t, b, "kill")
	if len(dead) != 1 || dead[0].ID != "poison" || !strings.Contains(dead[0].Error, "without an outcome") ||
		dead[0].Headers[task.ErrorHeader] != dead[0].Error {
		t.Errorf("dead letters = %+v, want the poison message with the reason", dead)
	}
	if n, err := b.QueueDepth(ctx, "kill"); err != nil || n != 0 {
		t.Errorf("QueueDepth() = %d, %v, want 0", n, err)
	}
}

// deadLetters returns topic's dead letters, failing t on error.
func deadLetters(t *testing.T, b *sqlite.Broker, topic string) []task.DeadLetter {
	t.Helper()
	dead, err := b.ListDeadLetters(t.Context(), topic, 100)
	if err != nil {
		t.Fatal(err)
	}
	return dead
}

package sqlite_test

import (
	"log/slog"
	"os"
	"os/exec"
	"testing"
	"time"

	"boxoffice/sqlite"
	"boxoffice/task"
	"boxoffice/task/tasktest"
)

// helperDir, when set, makes TestHelperConsumer the consumer process that
// TestPoisonThatKillsItsConsumer kills: it names the data directory of the queue.
const helperDir = "BOXOFFICE_SQLITE_HELPER_DIR"

// killRetry is the policy of the drill: a message lost with its consumer more than twice
// in a row is dead-lettered.
var killRetry = task.RetryPolicy{MaxAttempts: 3, Countdown: 10 * time.Millisecond, MaxDelay: 10 * time.Millisecond, DeliveryLimit: 2}

// TestHelperConsumer is not a test: TestPoisonThatKillsItsConsumer runs the test binary
// on it as a child process. Like boxoffice run at start-up it first hands back the
// deliveries that a killed predecessor left, then runs tasktest.KillConsumer.
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
	t.Fatalf("KillConsumer() = %v, want to be killed first", tasktest.KillConsumer(t.Context(), b))
}

func TestPoisonThatKillsItsConsumer(t *testing.T) {
	dir := t.TempDir()
	b := openBroker(t, dir, killRetry)
	tasktest.TestPoisonThatKillsItsConsumer(t, b, killRetry.DeliveryLimit, func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperConsumer$", "-test.count=1")
		cmd.Env = append(os.Environ(), helperDir+"="+dir)
		return cmd
	})
}

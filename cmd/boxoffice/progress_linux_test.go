package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"boxoffice/catalog"
	"boxoffice/catalog/catalogtest"
	"boxoffice/ingest"
	"boxoffice/sqlite"
	"boxoffice/task"
	"boxoffice/testenv"
)

// openPTY opens a pseudo-terminal and returns its two ends, closed when the test ends.
func openPTY(t *testing.T) (controller, terminal *os.File) {
	t.Helper()
	controller, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("open a pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { controller.Close() })
	fd := int(controller.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	terminal, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { terminal.Close() })
	return controller, terminal
}

func TestIsTerminal(t *testing.T) {
	_, terminal := openPTY(t)
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	tests := []struct {
		name string
		give io.Writer
		want bool
	}{
		{"pseudo-terminal", terminal, true},
		{"/dev/null", devNull, false}, // a character device, but no terminal
		{"buffer", &bytes.Buffer{}, false},
	}
	for _, tt := range tests {
		if got := isTerminal(tt.give); got != tt.want {
			t.Errorf("isTerminal(%s) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestBackupProgress runs backup and restore with stderr on a terminal, where they draw
// their progress, and elsewhere, where they draw none.
func TestBackupProgress(t *testing.T) {
	dataDir := t.TempDir()
	s, err := sqlite.Open(t.Context(), dataDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	batch := make([]catalog.Plan, 500)
	for i := range batch {
		batch[i] = catalogtest.NewPlan("p", fmt.Sprint(i))
	}
	_, err = s.UpsertPlans(t.Context(), batch)
	if err := errors.Join(err, s.Close()); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"DATA_DIR": dataDir}
	file := filepath.Join(t.TempDir(), "b.db")

	controller, terminal := openPTY(t)
	args := []string{"--env-file", filepath.Join(t.TempDir(), "absent.env")}
	for _, cmd := range [][]string{{"backup", file}, {"restore", file}} {
		if err := run(t.Context(), append(append([]string{cmd[0]}, args...), cmd[1:]...), func(k string) string { return env[k] }, io.Discard, terminal); err != nil {
			t.Fatalf("%s on a terminal: %v", cmd[0], err)
		}
	}
	terminal.Close()
	shown, _ := io.ReadAll(controller) // ends with EIO once the terminal end is closed
	for _, want := range []string{"\r\033[Kbackup: copying 100%", "backup: checking integrity…", "backup: done\r\n",
		"restore: copying 100%", "restore: checking integrity…", "restore: done\r\n"} {
		if !bytes.Contains(shown, []byte(want)) {
			t.Errorf("the terminal shows %q, want it to contain %q", shown, want)
		}
	}

	var logs bytes.Buffer
	if err := run(t.Context(), append(append([]string{"backup"}, args...), "--force", file), func(k string) string { return env[k] }, io.Discard, &logs); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "\r") || strings.Contains(logs.String(), "%") || !strings.Contains(logs.String(), `"msg":"backup written"`) {
		t.Errorf("backup without a terminal wrote %q, want its log line only", logs.String())
	}
}

// TestReplayProgress runs dead-letters replay on the embedded broker with stderr on a
// terminal, where it draws its progress, and elsewhere, where it draws none; stdout
// says what it replayed either way.
func TestReplayProgress(t *testing.T) {
	dataDir := t.TempDir()
	// deadLetters publishes n plan batches on the embedded broker, and consumes them,
	// and any replayed ones, with a handler that fails for good, until want are dead.
	deadLetters := func(n, want int) {
		t.Helper()
		b, err := sqlite.OpenBroker(t.Context(), dataDir, sqlite.BrokerConfig{}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		ctx, stop := context.WithCancel(t.Context())
		defer stop()
		go b.Subscribe(ctx, ingest.TopicPlans, func(context.Context, task.Message) error {
			return task.Permanent(errors.New("undecodable batch"))
		})
		for i := range n {
			if err := b.Publish(t.Context(), ingest.TopicPlans, task.Message{ID: fmt.Sprint("batch-", want, "-", i), Body: []byte("{}")}); err != nil {
				t.Fatal(err)
			}
		}
		testenv.Poll(t, "the dead letters", func() bool { got, _ := b.CountDeadLetters(t.Context(), ingest.TopicPlans); return got == want })
	}
	env := map[string]string{"DATA_DIR": dataDir}
	args := []string{"dead-letters", "replay", "--env-file", filepath.Join(t.TempDir(), "absent.env"), "--topic", ingest.TopicPlans}

	deadLetters(4, 4)
	controller, terminal := openPTY(t)
	var stdout bytes.Buffer
	if err := run(t.Context(), args, func(k string) string { return env[k] }, &stdout, terminal); err != nil {
		t.Fatalf("replay on a terminal: %v", err)
	}
	terminal.Close()
	shown, _ := io.ReadAll(controller) // ends with EIO once the terminal end is closed
	for _, want := range []string{"\r\033[Kreplay catalog.plans: moving  25%", "replay catalog.plans: moving 100%",
		"\r\033[Kreplay catalog.plans: done\r\n"} {
		if !bytes.Contains(shown, []byte(want)) {
			t.Errorf("the terminal shows %q, want it to contain %q", shown, want)
		}
	}
	if want := "replayed 4 dead letters of catalog.plans\n"; stdout.String() != want {
		t.Errorf("replay on a terminal printed %q, want %q", &stdout, want)
	}

	deadLetters(4, 8) // and the 4 replayed die again
	var logs bytes.Buffer
	stdout.Reset()
	if err := run(t.Context(), args, func(k string) string { return env[k] }, &stdout, &logs); err != nil {
		t.Fatal(err)
	}
	if want := "replayed 8 dead letters of catalog.plans\n"; strings.Contains(logs.String(), "\r") ||
		strings.Contains(logs.String(), "%") || stdout.String() != want {
		t.Errorf("replay without a terminal wrote %q and printed %q, want no progress and %q", &logs, &stdout, want)
	}
}

package tasktest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"boxoffice/task"
)

// KillTopic is the topic of the poison drill.
const KillTopic = "kill"

// KillConsumer is the consumer process of TestPoisonThatKillsItsConsumer, run by a
// helper test in a child process: it consumes KillTopic from sub, printing "got <id>"
// for each message and "done <id>" once handled; on "poison" it blocks until the
// process is killed, as a handler that exhausts the process's memory would.
func KillConsumer(ctx context.Context, sub task.Subscriber) error {
	return sub.Subscribe(ctx, KillTopic, func(ctx context.Context, m task.Message) error {
		fmt.Printf("got %s\n", m.ID)
		if m.ID == "poison" {
			<-ctx.Done() // until SIGKILL
			return ctx.Err()
		}
		fmt.Printf("done %s\n", m.ID)
		return nil
	})
}

// TestPoisonThatKillsItsConsumer is the drill of a message that kills every process
// that handles it, which no recover can catch (OOM, SIGKILL). consumer returns a new
// command that runs KillConsumer on b's queues with the delivery limit limit. Each
// consumer process is killed with SIGKILL once it has the poison message, and another
// started: after limit+1 deaths the poison message must be a dead letter with the
// reason, and every other message handled exactly once.
func TestPoisonThatKillsItsConsumer(t *testing.T, b Broker, limit int, consumer func() *exec.Cmd) {
	ctx := t.Context()
	msgs := []task.Message{{ID: "poison", Body: []byte("x")}}
	want := []string{"m0", "m1", "m2", "m3", "m4"}
	for _, id := range want {
		msgs = append(msgs, task.Message{ID: id, Body: []byte("y")})
	}
	if err := b.Publish(ctx, KillTopic, msgs...); err != nil {
		t.Fatal(err)
	}
	var (
		kills int
		done  []string // the messages handled, over every consumer process
	)
	for dead := 0; dead == 0; {
		if kills > limit+1 {
			t.Fatalf("the poison message killed %d consumers, want it dead-lettered after %d", kills, limit+1)
		}
		cmd := consumer()
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
		deadline := time.Now().Add(60 * time.Second)
		for !poisoned && dead == 0 {
			select {
			case line, ok := <-lines:
				if !ok {
					cmd.Wait()
					t.Fatalf("consumer exited: %s", stderr.String())
				}
				if id, ok := strings.CutPrefix(line, "done "); ok {
					done = append(done, id)
				}
				poisoned = line == "got poison"
				continue
			case <-time.After(10 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("the consumer neither got the poison message nor saw it dead-lettered; handled %v", done)
			}
			if dead, err = b.CountDeadLetters(ctx, KillTopic); err != nil {
				t.Fatal(err)
			}
			if dead > 0 && len(done) < len(want) {
				dead = 0 // the others are still being handled
			}
		}
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

	if kills != limit+1 {
		t.Errorf("the poison message killed %d consumers, want %d (the delivery limit, plus the delivery that broke it)", kills, limit+1)
	}
	slices.Sort(done)
	if !slices.Equal(done, want) {
		t.Errorf("handled %v, want each other message once: %v", done, want)
	}
	list, err := b.ListDeadLetters(ctx, KillTopic, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != "poison" || list[0].Headers[task.ErrorHeader] != list[0].Error ||
		!strings.Contains(list[0].Error, "without an outcome") {
		t.Errorf("dead letters = %+v, want the poison message with the reason", list)
	}
}

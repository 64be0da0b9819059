package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"boxoffice/rabbitmq"
	"boxoffice/sqlite"
	"boxoffice/task"
)

// deadLettersActions says what each action of dead-letters does.
const deadLettersActions = `actions:
  list     show each dead letter: topic, id, attempt, when it died and why
  replay   move the dead letters back to their work queue, each with its id and body
           unchanged and a fresh attempt count, as if just published
  purge    delete the dead letters for good (needs --yes)`

// deadLettersAction checks the action given to dead-letters.
func deadLettersAction(action string) (string, error) {
	switch action {
	case "list", "replay", "purge":
		return action, nil
	case "":
		return "", errors.New("dead-letters: no action given: list, replay or purge\n" + deadLettersActions)
	default:
		return "", fmt.Errorf("dead-letters: unknown action %q: list, replay or purge\n%s", action, deadLettersActions)
	}
}

// deadLettersConfig is the dead-letters command's action and own flags.
type deadLettersConfig struct {
	Action string // list, replay or purge
	Topic  string // "" for every topic
	JSON   bool   // JSON lines even on a terminal
	Limit  int    // dead letters listed per topic
	Yes    bool   // purge without refusing
}

func (c *deadLettersConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.Topic, "topic", "", "only this topic: "+strings.Join(topics, " or ")+" (default every topic)")
	fs.BoolVar(&c.JSON, "json", false, "list: JSON lines, one dead letter each (the default when stdout is not a terminal)")
	fs.IntVar(&c.Limit, "limit", 100, "list: at most this many dead letters per topic, oldest first")
	fs.BoolVar(&c.Yes, "yes", false, "purge: delete them; without it purge only says how many it would delete")
}

func (c deadLettersConfig) validate() error {
	if c.Topic != "" && !slices.Contains(topics, c.Topic) {
		return fmt.Errorf("--topic: unknown topic %q, want %s", c.Topic, strings.Join(topics, " or "))
	}
	if c.Limit < 1 {
		return fmt.Errorf("--limit: must be at least 1: %d", c.Limit)
	}
	return nil
}

// deadLetterBroker is what the command needs of a broker.
type deadLetterBroker interface {
	task.DeadLetters
	Close() error
}

// runDeadLetters runs `boxoffice dead-letters <action>` with the settings of cfg,
// reporting on cfg.Stdout.
func runDeadLetters(ctx context.Context, cfg config, log *slog.Logger) error {
	stdout := cfg.Stdout
	b, err := openDeadLetters(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer b.Close()
	selected := topics
	if cfg.DeadLetters.Topic != "" {
		selected = []string{cfg.DeadLetters.Topic}
	}
	switch cfg.DeadLetters.Action {
	case "list":
		return listDeadLetters(ctx, b, selected, cfg.DeadLetters, stdout)
	case "replay":
		for _, topic := range selected {
			n, err := replayDeadLetters(ctx, b, topic, cfg.Progress)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "replayed %d dead letters of %s\n", n, topic)
		}
		return nil
	default: // "purge", as run checked
		return purgeDeadLetters(ctx, b, selected, cfg.DeadLetters.Yes, stdout)
	}
}

// replayDeadLetters replays topic's dead letters, drawing its progress on terminal
// when there is one (nil: none) and the broker reports it.
func replayDeadLetters(ctx context.Context, b task.DeadLetters, topic string, terminal io.Writer) (int, error) {
	rr, ok := b.(task.ReplayReporter)
	if !ok || terminal == nil {
		return b.ReplayDeadLetters(ctx, topic)
	}
	p := newProgress(terminal, "replay "+topic)
	n, err := rr.ReplayDeadLettersReporting(ctx, topic, func(moved, total int) { p.report("move", int64(moved), int64(total)) })
	p.end()
	return n, err
}

// openDeadLetters opens the broker the roles of this configuration use, without
// consuming: RabbitMQ at BROKER_URL, else the embedded queue in DATA_DIR, which must
// exist already (a DATA_DIR without one is not where boxoffice run keeps its queue).
func openDeadLetters(ctx context.Context, cfg config, log *slog.Logger) (deadLetterBroker, error) {
	if cfg.BrokerURL != "" {
		b, err := rabbitmq.Open(ctx, cfg.BrokerURL, rabbitmq.Config{Prefix: cfg.Namespace, Retry: cfg.retry(),
			ConnectionName: "boxoffice dead-letters"}, log)
		if err != nil {
			return nil, fmt.Errorf("BROKER_URL: %w", err)
		}
		return b, nil
	}
	path := filepath.Join(cfg.DataDir, sqlite.QueueFileName)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("DATA_DIR: no embedded broker queue at %s (is it the DATA_DIR of boxoffice run? or set BROKER_URL): %w", path, err)
	}
	b, err := sqlite.OpenBroker(ctx, cfg.DataDir, sqlite.BrokerConfig{Retry: cfg.retry()}, log)
	if err != nil {
		return nil, fmt.Errorf("DATA_DIR: %w", err)
	}
	return b, nil
}

// deadLetterJSON is one dead letter as `list` prints it in JSON.
type deadLetterJSON struct {
	Topic     string            `json:"topic"`
	ID        string            `json:"id"`
	Attempt   int               `json:"attempt"`
	DiedAt    *time.Time        `json:"died_at"` // null when the broker does not know
	Error     string            `json:"error"`
	Stack     string            `json:"stack,omitempty"`
	Headers   map[string]string `json:"headers,omitempty"` // the publisher's (trace context…)
	BodyBytes int               `json:"body_bytes"`
}

// listDeadLetters prints up to limit dead letters of each topic: a table on a terminal,
// JSON lines otherwise or with --json.
func listDeadLetters(ctx context.Context, b task.DeadLetters, topics []string, cfg deadLettersConfig, stdout io.Writer) error {
	var dead []task.DeadLetter
	for _, topic := range topics {
		d, err := b.ListDeadLetters(ctx, topic, cfg.Limit)
		if err != nil {
			return err
		}
		dead = append(dead, d...)
	}
	if cfg.JSON || !isTerminal(stdout) {
		enc := json.NewEncoder(stdout)
		for _, d := range dead {
			if err := enc.Encode(toJSON(d)); err != nil {
				return err
			}
		}
		return nil
	}
	if len(dead) == 0 {
		_, err := fmt.Fprintln(stdout, "no dead letters")
		return err
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TOPIC\tID\tATTEMPT\tDIED AT\tERROR")
	for _, d := range dead {
		died := "-"
		if !d.DiedAt.IsZero() {
			died = d.DiedAt.UTC().Format(time.RFC3339)
		}
		msg, _, _ := strings.Cut(d.Error, "\n")
		if len(msg) > 100 {
			msg = msg[:100] + "…"
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\n", d.Topic, d.ID, d.Attempt, died, msg)
	}
	return w.Flush()
}

func toJSON(d task.DeadLetter) deadLetterJSON {
	j := deadLetterJSON{Topic: d.Topic, ID: d.ID, Attempt: d.Attempt, Error: d.Error,
		Stack: d.Headers[task.StackHeader], BodyBytes: len(d.Body)}
	if !d.DiedAt.IsZero() {
		at := d.DiedAt.UTC()
		j.DiedAt = &at
	}
	for k, v := range d.Headers {
		if k == task.ErrorHeader || k == task.StackHeader {
			continue
		}
		if j.Headers == nil {
			j.Headers = map[string]string{}
		}
		j.Headers[k] = v
	}
	return j
}

// errPurgeUnconfirmed stops a purge without --yes.
var errPurgeUnconfirmed = errors.New("dead-letters purge deletes dead letters for good: pass --yes")

// purgeDeadLetters deletes the dead letters of topics with yes; without it, it says
// how many it would delete and fails, so that no script or slip of the keyboard drops
// them unasked.
func purgeDeadLetters(ctx context.Context, b task.DeadLetters, topics []string, yes bool, stdout io.Writer) error {
	for _, topic := range topics {
		if !yes {
			n, err := b.CountDeadLetters(ctx, topic)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "would purge %d dead letters of %s\n", n, topic)
			continue
		}
		n, err := b.PurgeDeadLetters(ctx, topic)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "purged %d dead letters of %s\n", n, topic)
	}
	if !yes {
		return errPurgeUnconfirmed
	}
	return nil
}

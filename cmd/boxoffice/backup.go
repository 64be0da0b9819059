package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"boxoffice/pricing"
	"boxoffice/sqlite"
)

// runBackup writes a backup of the embedded store in DATA_DIR to FILE: a consistent
// copy, also while boxoffice run is running (see sqlite.Backup).
func runBackup(ctx context.Context, cfg config, log *slog.Logger) error {
	file := cfg.Args[0]
	p := newProgress(cfg.Progress, "backup")
	info, err := sqlite.Backup(ctx, cfg.DataDir, file, sqlite.BackupOptions{Replace: cfg.Force, Progress: p.report})
	p.end()
	if err != nil {
		return err
	}
	log.Info("backup written", "file", file, "bytes", info.Bytes, "schema", info.Schema,
		"catalog_version", info.CatalogVersion, "plans", info.Plans, "searchable", info.Searchable)
	return nil
}

// runRestore replaces the embedded store in DATA_DIR with the backup FILE, and the
// queue with a new one holding the recalculations that the restored store had not
// finished (see sqlite.Restore).
func runRestore(ctx context.Context, cfg config, log *slog.Logger) error {
	file := cfg.Args[0]
	p := newProgress(cfg.Progress, "restore")
	var requeued int
	info, err := sqlite.Restore(ctx, cfg.DataDir, file, sqlite.RestoreOptions{
		Progress: p.report,
		Prepare: func(ctx context.Context, s *sqlite.Store, q *sqlite.Broker) error {
			ids, err := s.UnfinishedTasks(ctx, pricing.Kind)
			if err != nil {
				return err
			}
			requeued = len(ids)
			return pricing.Requeue(ctx, q, cfg.Tracing, ids...)
		},
	})
	p.end()
	if err != nil {
		return err
	}
	log.Info("store restored", "file", file, "data_dir", cfg.DataDir, "previous", info.Previous,
		"schema", info.Schema, "catalog_version", info.CatalogVersion, "plans", info.Plans,
		"searchable", info.Searchable, "recalculations_requeued", requeued)
	return nil
}

// progress draws the progress of a long command (backup, restore, dead-letters replay)
// on a terminal: one line, rewritten in place as it advances and ended when the command
// ends. Without a terminal it draws nothing, so that logs and scripts see only the
// command's output and log lines.
type progress struct {
	w     io.Writer // the terminal; nil for none
	name  string    // the command
	step  string    // last drawn
	pct   int       // last drawn; -1 for a step that cannot measure itself
	drawn bool
}

func newProgress(terminal io.Writer, name string) *progress {
	return &progress{w: terminal, name: name}
}

// report is a sqlite.Progress: it redraws the line when the step or the whole percent
// changes.
func (p *progress) report(step string, done, total int64) {
	if p.w == nil {
		return
	}
	pct := -1
	if total > 0 {
		pct = int(done * 100 / total)
	}
	if p.drawn && step == p.step && pct == p.pct {
		return
	}
	p.step, p.pct, p.drawn = step, pct, true
	what := map[string]string{"copy": "copying", "check": "checking integrity", "move": "moving"}[step]
	if what == "" {
		what = step
	}
	if pct < 0 {
		fmt.Fprintf(p.w, "\r\033[K%s: %s…", p.name, what)
		return
	}
	fmt.Fprintf(p.w, "\r\033[K%s: %s %3d%%", p.name, what, pct)
}

// end finishes the line, if one was drawn.
func (p *progress) end() {
	if p.drawn {
		fmt.Fprintf(p.w, "\r\033[K%s: done\n", p.name)
	}
}

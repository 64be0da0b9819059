package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
)

// walCapPages is the write connections' PRAGMA wal_autocheckpoint: the pages (4 KiB) the
// WAL may hold before the writer checkpoints it itself, at the end of a commit, as
// SQLite does by default at 1000 pages. A checkpointer does that work beside the
// writer, so this is only the fallback that keeps the WAL, and the disk it takes,
// bounded when the checkpointer falls behind (or commits did not signal it): 256 MiB
// plus the commit that crossed it. A batch of 20 000 new plans (embeddedBatch) writes
// 10-40 MiB of WAL while the store grows to 300k plans (BenchmarkColdIngest) and up to
// about 100 MiB at 1M. The WAL is reused from its start only by a transaction that
// begins after a complete checkpoint, and the worker begins its next batch before the
// checkpointer has copied the last one, so in a cold ingest the WAL grows to the cap
// and the writer copies the little left every few batches: boxoffice.db-wal peaked at
// 370 MB, queue.db-wal at 196 MB, in a 1M run (about 100 MB each before), and they
// keep that size until Close. A reader holding an old snapshot (a backup) keeps any
// checkpoint from going past it, the writer's as the checkpointer's, as before.
const walCapPages = 65536

// checkpointer copies a database file's WAL into the file (a PASSIVE checkpoint) on a
// goroutine and connection of its own, after the commits that signal it, so that the
// copy and its fsync run beside the writer's next transaction instead of inside its
// COMMIT, where SQLite's auto-checkpoint ran it: in a 1M cold ingest 3.7 s of the
// worker's 7.9 s of store commits and part of the queue's, all on the worker's single
// goroutine; with the checkpointer 0.25 s of checkpoints are left to the writers (CPU
// profiles of run, docs/BENCHMARKS.md). The durability is the writer's, unchanged
// (synchronous=FULL: a commit is in the fsynced WAL when it returns); a checkpoint
// fsyncs the database file before the WAL may be reused, with synchronous=FULL on its
// connection too. Store and Broker each have one.
type checkpointer struct {
	db   *sql.DB       // one connection that only checkpoints
	kick chan struct{} // holds a signal while a commit waits for a checkpoint; coalesces the rest
	// commits counts the signals; covered is commits as of the start of the last
	// checkpoint that left nothing of the WAL to copy (commits - covered: the commits
	// not yet copied). failed counts the checkpoints that failed.
	commits, covered, failed atomic.Int64
	log                      *slog.Logger
	stop                     context.CancelFunc
	done                     chan struct{} // closed when run returns
	closeOnce                sync.Once
	closeErr                 error
}

// startCheckpointer opens a connection to the database file at the absolute path (in
// WAL mode: its writer opened it) and starts the checkpointer's goroutine, which runs
// until close. log gets the checkpoints that fail.
func startCheckpointer(ctx context.Context, abs string, log *slog.Logger) (*checkpointer, error) {
	db, err := openWriter(ctx, abs, durable)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// The goroutine outlives ctx, which only bounds the opening: close stops it.
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	c := &checkpointer{db: db, kick: make(chan struct{}, 1), log: log.With("db", abs), stop: stop, done: make(chan struct{})}
	go c.run(runCtx)
	return c, nil
}

// commit commits tx, a transaction of the checkpointer's database, and signals the
// checkpointer. The writers' transactions all end here; their single statements (a
// task's state, a market event, a lease's renewal) write a page or two, copied with the
// next transaction's, or by the writer itself at walCapPages.
func (c *checkpointer) commit(tx *sql.Tx) error {
	if err := tx.Commit(); err != nil {
		return err
	}
	c.commits.Add(1)
	select {
	case c.kick <- struct{}{}:
	default: // a signal already waiting covers this commit too
	}
	return nil
}

// run checkpoints after each signal until ctx is done.
func (c *checkpointer) run(ctx context.Context) {
	defer close(c.done)
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.kick:
		}
		c.checkpoint(ctx)
	}
}

// checkpoint runs one PASSIVE checkpoint: it copies what no reader still needs and
// waits for no one, so the writer is never blocked by it. A failure is logged and
// counted, never returned: the writer's commits are durable without it, the next signal
// tries again, and the writer checkpoints itself at walCapPages.
func (c *checkpointer) checkpoint(ctx context.Context) {
	commits := c.commits.Load()
	var busy, logged, copied int
	err := c.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &logged, &copied)
	switch {
	case ctx.Err() != nil: // closing: the writer's close checkpoints
	case err != nil:
		c.failed.Add(1)
		c.log.Warn("sqlite: checkpoint the WAL; the next commit tries again", "err", err)
	case busy == 0 && copied == logged:
		c.covered.Store(commits)
	}
}

// report calls report with the checkpoints that failed and the commits whose pages
// are not all copied yet.
func (c *checkpointer) report(report func(failed, behind int64)) {
	report(c.failed.Load(), c.commits.Load()-c.covered.Load())
}

// close stops the goroutine, waiting for a checkpoint in progress (interrupted), and
// closes the connection. Calling it again returns the first call's error.
func (c *checkpointer) close() error {
	c.closeOnce.Do(func() {
		c.stop()
		<-c.done
		if err := c.db.Close(); err != nil {
			c.closeErr = fmt.Errorf("checkpointer: %w", err)
		}
	})
	return c.closeErr
}

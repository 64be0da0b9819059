package postgres

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// fault says what a failed read on the replica means for where reads go.
type fault int

const (
	faultQuery       fault = iota // the query's own error: the primary would fail it too
	faultUnavailable              // the replica can't serve: read from the primary until it answers
	faultThisRead                 // this read can't be served there: read it from the primary
)

// classify tells what err, from a read on the replica, means. A caller that gave up
// (ctx done) gets its error back, whatever it is.
func classify(ctx context.Context, err error) fault {
	if ctx.Err() != nil {
		return faultQuery
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			pgErr.Code == "57P01", // admin_shutdown
			pgErr.Code == "57P02", // crash_shutdown
			pgErr.Code == "57P03", // cannot_connect_now: starting up
			pgErr.Code == "53300": // too_many_connections
			return faultUnavailable
		case pgErr.Code == "40001", // a statement canceled by a conflict with recovery
			pgErr.Code == "40P01", // ... on a lock held by the startup process
			pgErr.Code == "42P01", // undefined_table: the schema is not replayed yet
			pgErr.Code == "42703", // undefined_column: nor is a migration that added a column
			pgErr.Code == "42704", // undefined_object: nor one that added a type
			pgErr.Code == "3F000": // invalid_schema_name: neither is the schema
			return faultThisRead
		}
		return faultQuery
	}
	var (
		connectErr *pgconn.ConnectError
		netErr     net.Error
	)
	switch {
	case errors.As(err, &connectErr), // dial refused or timed out, TLS, authentication
		errors.As(err, &netErr),                                     // reset or timed out mid-query
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), // closed mid-query
		errors.Is(err, pgconn.ErrConnClosed):
		return faultUnavailable
	}
	return faultQuery
}

// read runs fn on the pool that serves reads: the replica, unless there is none or it is
// unavailable, else the primary. A read that fails on the replica because the replica is
// unavailable (see classify) runs again on the primary, so it never fails for that alone.
// fn may run twice and must not keep results of a failed run.
func (s *Store) read(ctx context.Context, fn func(context.Context, *pgxpool.Pool) error) error {
	if s.replica != nil && !s.replicaDown.Load() {
		err := fn(ctx, s.replica)
		if err == nil {
			s.replicaReads.Add(1)
			return nil
		}
		switch classify(ctx, err) {
		case faultQuery:
			return err
		case faultUnavailable:
			s.markReplicaDown(err) //nolint:contextcheck // the probe it starts outlives this read: it stops with the Store
		case faultThisRead:
		}
	}
	if err := fn(ctx, s.primary); err != nil {
		return err
	}
	s.primaryReads.Add(1)
	return nil
}

// markReplicaDown sends reads to the primary and starts a goroutine that probes the
// replica until it answers. Only the first of concurrent calls does anything, so the
// transition is logged once.
func (s *Store) markReplicaDown(cause error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || !s.replicaDown.CompareAndSwap(false, true) {
		return
	}
	s.log.Warn("postgres replica unavailable, reading from the primary", "replica", s.replicaAddr, "err", cause)
	// Connections opened before the fault are likely dead; drop them rather than fail
	// the first reads after the replica is back.
	s.replica.Reset()
	s.probes.Add(1)
	go s.probeReplica(time.Now())
}

// probeReplica pings the replica with a growing wait between tries. It returns, and reads
// go to the replica again, once a ping succeeds; or when Close cancels s.ctx.
func (s *Store) probeReplica(since time.Time) {
	defer s.probes.Done()
	wait := probeMinWait
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-timer.C:
		}
		ctx, cancel := context.WithTimeout(s.ctx, probeTimeout)
		err := s.pingReplica(ctx)
		cancel()
		if err == nil {
			s.replicaDown.Store(false)
			s.log.Info("postgres replica available again, reading from it", "replica", s.replicaAddr,
				"down_for", time.Since(since).Round(time.Millisecond).String())
			return
		}
		wait = min(2*wait, probeMaxWait)
		timer.Reset(wait)
	}
}

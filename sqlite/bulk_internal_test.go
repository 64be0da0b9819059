package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"testing"

	"boxoffice/testenv"
)

// TestRawAfterCancelRunsNothing cancels a write transaction's context and waits until
// database/sql has rolled the transaction back: a statement run on the driver
// connection then would commit on its own, so writeTx.raw must not run it.
func TestRawAfterCancelRunsNothing(t *testing.T) {
	s := openInternal(t)
	ctx, cancel := context.WithCancel(t.Context())
	tx, err := s.beginWrite(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.end()
	cancel()
	testenv.Poll(t, "the transaction rolled back", func() bool {
		_, err := tx.ExecContext(context.Background(), `SELECT 1`)
		return errors.Is(err, sql.ErrTxDone)
	})

	err = tx.raw(ctx, func(c driver.Conn) error {
		_, err := c.(driver.ExecerContext).ExecContext(context.Background(),
			`INSERT INTO pending_chores (name) VALUES ('raw after cancel')`, nil)
		return err
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("raw after cancel = %v, want context.Canceled", err)
	}
	tx.end()
	var n int
	if err := s.read.QueryRowContext(t.Context(), `SELECT count(*) FROM pending_chores WHERE name = 'raw after cancel'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("raw after cancel stored %d rows, want none", n)
	}
}

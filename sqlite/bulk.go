package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"strings"
)

// writeTx is a write transaction held with its connection, so that bulkInsert can run
// statements on the driver connection inside the transaction (raw).
type writeTx struct {
	*sql.Tx
	conn *sql.Conn
}

// beginWrite takes the write connection and begins an immediate transaction on it. The
// caller ends it with Commit or end.
func (s *Store) beginWrite(ctx context.Context) (*writeTx, error) {
	conn, err := s.write.Conn(ctx)
	if err != nil {
		return nil, err
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return &writeTx{Tx: tx, conn: conn}, nil
}

// end rolls the transaction back unless it was committed, and gives the connection back.
func (t *writeTx) end() {
	t.Rollback()
	t.conn.Close()
}

// raw calls f with the driver connection, inside the transaction: ctx must be the one
// the transaction began with. database/sql rolls a transaction back when its context is
// done, and a statement run on the connection after that would commit on its own; it
// cannot happen while f runs (Raw holds the connection), and f does not run once ctx is
// done.
func (t *writeTx) raw(ctx context.Context, f func(driver.Conn) error) error {
	return t.conn.Raw(func(dc any) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return f(dc.(driver.Conn))
	})
}

// bulkParams bounds the parameters of one multi-row INSERT, well under SQLite's limit
// of 32766. Each statement runs once per bulkParams/columns rows where one per row ran
// before: the driver's and database/sql's cost per statement (a context watcher, a
// rows or result, the bindings' locks) is paid once for them all.
const bulkParams = 1000

// bulkInsert inserts rows into one table inside a transaction with multi-row INSERT
// statements: add buffers a row and runs the prepared statement of a full chunk when
// one fills up; flush inserts what is left. Rows go in the order they are added.
//
// It runs its statements on the driver connection (writeTx.raw) with arguments it
// reuses, so its values must be driver.Values: database/sql converted the arguments
// of every Exec into a new []driver.NamedValue, 40 KB a full chunk, 1.5 GB of the 13.4
// GB a 1M cold ingest allocated.
type bulkInsert struct {
	tx      *writeTx
	head    string // INSERT INTO t (a, b, …) VALUES
	columns int
	rows    int         // per full chunk
	full    driver.Stmt // on tx's driver connection
	args    []driver.NamedValue
}

func newBulkInsert(tx *writeTx, head string, columns int) *bulkInsert {
	rows := max(1, bulkParams/columns)
	return &bulkInsert{tx: tx, head: head, columns: columns, rows: rows,
		args: make([]driver.NamedValue, 0, rows*columns)}
}

// add buffers a row of b.columns values, each a driver.Value (int64, not int).
func (b *bulkInsert) add(ctx context.Context, values ...any) error {
	if len(values) != b.columns {
		panic(fmt.Sprintf("sqlite: bulk insert of %d columns given %d values", b.columns, len(values)))
	}
	for _, v := range values {
		if !driver.IsValue(v) {
			panic(fmt.Sprintf("sqlite: bulk insert given a %T, not a driver.Value", v))
		}
		b.args = append(b.args, driver.NamedValue{Ordinal: len(b.args) + 1, Value: v})
	}
	if len(b.args) < b.rows*b.columns {
		return nil
	}
	err := b.tx.raw(ctx, func(c driver.Conn) error {
		if b.full == nil {
			st, err := c.(driver.ConnPrepareContext).PrepareContext(ctx, b.statement(b.rows))
			if err != nil {
				return err
			}
			b.full = st
		}
		_, err := b.full.(driver.StmtExecContext).ExecContext(ctx, b.args)
		return err
	})
	if err != nil {
		return err
	}
	b.reset()
	return nil
}

// flush inserts the buffered rows.
func (b *bulkInsert) flush(ctx context.Context) error {
	if len(b.args) == 0 {
		return nil
	}
	err := b.tx.raw(ctx, func(c driver.Conn) error {
		_, err := c.(driver.ExecerContext).ExecContext(ctx, b.statement(len(b.args)/b.columns), b.args)
		return err
	})
	if err != nil {
		return err
	}
	b.reset()
	return nil
}

func (b *bulkInsert) reset() {
	clear(b.args) // let go of the values
	b.args = b.args[:0]
}

// Close closes the prepared statement.
func (b *bulkInsert) Close() {
	if b.full != nil {
		_ = b.tx.conn.Raw(func(any) error { return b.full.Close() }) // as sql.Stmt.Close's: nothing to act on
		b.full = nil
	}
}

func (b *bulkInsert) statement(rows int) string {
	row := "(?" + strings.Repeat(", ?", b.columns-1) + ")"
	var q strings.Builder
	q.Grow(len(b.head) + rows*(len(row)+2))
	q.WriteString(b.head)
	for i := range rows {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString(row)
	}
	return q.String()
}

package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// bulkParams bounds the parameters of one multi-row INSERT, well under SQLite's limit
// of 32766. Each statement runs once per bulkParams/columns rows where one per row ran
// before: the driver's and database/sql's cost per statement (a context watcher, a
// rows or result, the bindings' locks) is paid once for them all.
const bulkParams = 1000

// bulkInsert inserts rows into one table inside a transaction with multi-row INSERT
// statements: add buffers a row and runs the prepared statement of a full chunk when
// one fills up; flush inserts what is left. Rows go in the order they are added.
type bulkInsert struct {
	tx      *sql.Tx
	head    string // INSERT INTO t (a, b, …) VALUES
	columns int
	rows    int // per full chunk
	full    *sql.Stmt
	args    []any
}

func newBulkInsert(tx *sql.Tx, head string, columns int) *bulkInsert {
	rows := max(1, bulkParams/columns)
	return &bulkInsert{tx: tx, head: head, columns: columns, rows: rows, args: make([]any, 0, rows*columns)}
}

// add buffers a row of b.columns values.
func (b *bulkInsert) add(ctx context.Context, values ...any) error {
	if len(values) != b.columns {
		panic(fmt.Sprintf("sqlite: bulk insert of %d columns given %d values", b.columns, len(values)))
	}
	b.args = append(b.args, values...)
	if len(b.args) < b.rows*b.columns {
		return nil
	}
	if b.full == nil {
		st, err := b.tx.PrepareContext(ctx, b.statement(b.rows))
		if err != nil {
			return err
		}
		b.full = st
	}
	if _, err := b.full.ExecContext(ctx, b.args...); err != nil {
		return err
	}
	clear(b.args)
	b.args = b.args[:0]
	return nil
}

// flush inserts the buffered rows.
func (b *bulkInsert) flush(ctx context.Context) error {
	if len(b.args) == 0 {
		return nil
	}
	if _, err := b.tx.ExecContext(ctx, b.statement(len(b.args)/b.columns), b.args...); err != nil {
		return err
	}
	clear(b.args)
	b.args = b.args[:0]
	return nil
}

// Close closes the prepared statement.
func (b *bulkInsert) Close() {
	if b.full != nil {
		b.full.Close()
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

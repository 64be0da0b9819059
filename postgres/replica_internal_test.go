package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		give error
		want fault
	}{
		{give: &pgconn.PgError{Code: "08006"}, want: faultUnavailable},
		{give: fmt.Errorf("begin: %w", &pgconn.PgError{Code: "57P01"}), want: faultUnavailable},
		{give: &pgconn.PgError{Code: "57P03"}, want: faultUnavailable},
		{give: &pgconn.PgError{Code: "53300"}, want: faultUnavailable},
		{give: &pgconn.PgError{Code: "40001"}, want: faultThisRead},
		{give: &pgconn.PgError{Code: "42P01"}, want: faultThisRead},
		{give: &pgconn.PgError{Code: "42703"}, want: faultThisRead},
		{give: &pgconn.PgError{Code: "42704"}, want: faultThisRead},
		{give: &pgconn.PgError{Code: "3F000"}, want: faultThisRead},
		{give: &pgconn.PgError{Code: "42601"}, want: faultQuery},
		{give: &pgconn.PgError{Code: "22P02"}, want: faultQuery},
		{give: &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}, want: faultUnavailable},
		{give: fmt.Errorf("receive message: %w", io.ErrUnexpectedEOF), want: faultUnavailable},
		{give: io.EOF, want: faultUnavailable},
		{give: fmt.Errorf("begin: %w", pgconn.ErrConnClosed), want: faultUnavailable},
		{give: errors.New("plan 1: zones: unexpected end of JSON input"), want: faultQuery},
	}
	for _, tt := range tests {
		if got := classify(context.Background(), tt.give); got != tt.want {
			t.Errorf("classify(%v) = %d, want %d", tt.give, got, tt.want)
		}
	}
}

// TestClassifyCallerGaveUp checks that a read whose context is done is never retried on
// the primary, whatever its error looks like.
func TestClassifyCallerGaveUp(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := &net.OpError{Op: "read", Net: "tcp", Err: context.Canceled}
	if got := classify(ctx, err); got != faultQuery {
		t.Errorf("classify(canceled context, %v) = %d, want %d", err, got, faultQuery)
	}
}

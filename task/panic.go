package task

import (
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
)

// Headers that a broker sets on a dead letter, beside the publisher's own.
const (
	// ErrorHeader carries the text of the error that dead-lettered the message: the
	// handler's last error, its panic, or the broker's account of a message whose
	// consumers kept dying.
	ErrorHeader = "boxoffice-error"
	// StackHeader carries, when the handler panicked, the stack of the goroutine at the
	// panic.
	StackHeader = "boxoffice-stack"
)

// Bounds on the texts a dead letter's headers keep.
const (
	maxErrorText = 4096
	maxStackText = 16384
)

// PanicError is a panic recovered from a handler or a loop: its value and the stack
// of the goroutine that panicked. The Worker treats it as a permanent failure.
type PanicError struct {
	Value any
	Stack string
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// Recover turns a panic of the function that defers it into a *PanicError in *err:
//
//	func (x *X) step(ctx context.Context) (err error) {
//		defer task.Recover(&err)
//		…
//	}
//
// It must be deferred directly (recover works only there). A function that does not
// panic keeps its own error.
func Recover(err *error) {
	if v := recover(); v != nil {
		*err = &PanicError{Value: v, Stack: string(debug.Stack())}
	}
}

// DeadLetterHeaders returns the headers that record why err dead-lettered a message:
// ErrorHeader, and StackHeader when err holds a *PanicError, each cut to a bound (4 KiB
// and 16 KiB) so that a huge error cannot bloat the message.
func DeadLetterHeaders(err error) map[string]string {
	h := map[string]string{ErrorHeader: cut(err.Error(), maxErrorText)}
	var p *PanicError
	if errors.As(err, &p) {
		h[StackHeader] = cut(p.Stack, maxStackText)
	}
	return h
}

// cut returns s cut to at most n bytes of valid UTF-8, marked with "…" when cut.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

package testenv

import (
	"bytes"
	"strings"
	"sync"
)

// Logs collects log output that a test reads while the code under test may still
// write it: the sink of a slog handler (slog.NewTextHandler(&logs, nil)).
type Logs struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// Count returns how many lines contain s.
func (l *Logs) Count(s string) int { return len(l.Lines(s)) }

// Lines returns the lines that contain s.
func (l *Logs) Lines(s string) []string {
	var found []string
	for line := range strings.Lines(l.String()) {
		if strings.Contains(line, s) {
			found = append(found, line)
		}
	}
	return found
}

// String returns everything written so far.
func (l *Logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

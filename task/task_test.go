package task

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestRetryPolicyDelay(t *testing.T) {
	p := RetryPolicy{MaxAttempts: 6, Countdown: time.Second, MaxDelay: 5 * time.Second}
	tests := []struct {
		attempt int
		want    time.Duration
	}{
		{1, time.Second},
		{2, 2 * time.Second},
		{3, 4 * time.Second},
		{4, 5 * time.Second},
		{50, 5 * time.Second},
	}
	for _, tt := range tests {
		if got := p.Delay(tt.attempt); got != tt.want {
			t.Errorf("Delay(%d) = %v, want %v", tt.attempt, got, tt.want)
		}
	}
}

func TestPermanent(t *testing.T) {
	base := errors.New("undecodable")
	err := fmt.Errorf("batch 3: %w", Permanent(base))
	if !IsPermanent(err) || !errors.Is(err, base) {
		t.Errorf("IsPermanent(%v) = %v, errors.Is(base) = %v, want both true", err, IsPermanent(err), errors.Is(err, base))
	}
	if IsPermanent(base) || Permanent(nil) != nil {
		t.Error("a plain error counts as permanent, or Permanent(nil) is not nil")
	}
}

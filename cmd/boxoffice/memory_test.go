package main

import "testing"

func TestMemoryLimit(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name        string
		index, live int64
		want        int64
	}{
		{"live heap above the index", 400 * mib, 420 * mib, 484 * mib},
		{"index not collected yet", 400 * mib, 100 * mib, 464 * mib},
		{"nothing live yet", 0, 0, 64 * mib},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := memoryLimit(tt.index, tt.live); got != tt.want {
				t.Errorf("memoryLimit(%d, %d) = %d, want %d", tt.index, tt.live, got, tt.want)
			}
		})
	}
}

package main

import "testing"

func TestMemoryLimit(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name            string
		index, l1, live int64
		want            int64
	}{
		{"index and L1 above the live heap", 400 * mib, 64 * mib, 420 * mib, 528 * mib},
		{"live heap above the index and L1", 10 * mib, 64 * mib, 300 * mib, 364 * mib},
		{"nothing live yet", 0, 64 * mib, 0, 128 * mib},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := memoryLimit(tt.index, tt.l1, tt.live); got != tt.want {
				t.Errorf("memoryLimit(%d, %d, %d) = %d, want %d", tt.index, tt.l1, tt.live, got, tt.want)
			}
		})
	}
}

//go:build bench

package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// settings are TestBench's knobs; see the package comment for their variables.
type settings struct {
	sizes, distributedSizes []int
	modes                   []string
	duration                time.Duration
	rate                    int
	wrkThreads, wrkConns    int
	repeat                  int
	gzip                    bool // the load generators send Accept-Encoding: gzip
	ingestTimeout           time.Duration
	bin, out                string
}

func loadSettings() (settings, error) {
	var s settings
	var err error
	sizes := env("BENCH_SIZES", "10k,1m")
	if s.sizes, err = parseSizes(sizes); err != nil {
		return s, fmt.Errorf("BENCH_SIZES: %w", err)
	}
	if s.distributedSizes, err = parseSizes(env("BENCH_DISTRIBUTED_SIZES", sizes)); err != nil {
		return s, fmt.Errorf("BENCH_DISTRIBUTED_SIZES: %w", err)
	}
	for m := range strings.SplitSeq(env("BENCH_MODES", "embedded,distributed"), ",") {
		switch m = strings.TrimSpace(m); m {
		case "embedded", "distributed":
			s.modes = append(s.modes, m)
		case "":
		default:
			return s, fmt.Errorf("BENCH_MODES: unknown mode %q (want embedded or distributed)", m)
		}
	}
	if s.duration, err = time.ParseDuration(env("BENCH_DURATION", "10s")); err != nil || s.duration < time.Second {
		return s, fmt.Errorf("BENCH_DURATION: want a duration of at least 1s: %q", os.Getenv("BENCH_DURATION"))
	}
	if s.ingestTimeout, err = time.ParseDuration(env("BENCH_INGEST_TIMEOUT", "40m")); err != nil {
		return s, fmt.Errorf("BENCH_INGEST_TIMEOUT: %w", err)
	}
	for _, n := range []struct {
		name, def string
		p         *int
	}{
		{"BENCH_RATE", "10000", &s.rate},
		{"BENCH_WRK_THREADS", "2", &s.wrkThreads},
		{"BENCH_WRK_CONNECTIONS", "64", &s.wrkConns},
		{"BENCH_REPEAT", "1", &s.repeat},
	} {
		v, err := strconv.Atoi(env(n.name, n.def))
		if err != nil || v <= 0 {
			return s, fmt.Errorf("%s: want a positive number: %q", n.name, os.Getenv(n.name))
		}
		*n.p = v
	}
	switch v := env("BENCH_GZIP", "1"); v {
	case "1", "0":
		s.gzip = v == "1"
	default:
		return s, fmt.Errorf("BENCH_GZIP: want 1 or 0: %q", v)
	}
	s.bin, s.out = os.Getenv("BENCH_BIN"), os.Getenv("BENCH_OUT")
	return s, nil
}

func env(name, def string) string {
	if v := strings.TrimSpace(os.Getenv(name)); v != "" {
		return v
	}
	return def
}

// parseSizes reads a list of catalog sizes such as "10k,1m,250000".
func parseSizes(v string) ([]int, error) {
	var sizes []int
	for f := range strings.SplitSeq(strings.ToLower(v), ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		mult := 1
		switch {
		case strings.HasSuffix(f, "k"):
			mult, f = 1_000, strings.TrimSuffix(f, "k")
		case strings.HasSuffix(f, "m"):
			mult, f = 1_000_000, strings.TrimSuffix(f, "m")
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 || n*mult < plansPerBase {
			return nil, fmt.Errorf("want sizes like 10k or 1m, at least %d: %q", plansPerBase, v)
		}
		sizes = append(sizes, n*mult)
	}
	return sizes, nil
}

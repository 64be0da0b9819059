package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"

	"boxoffice/providersim"
)

// simConfig configures the provider simulator of `provider-sim` and of `run` without
// EXTERNAL_API_URL. provider-sim takes its flags as they are (--mode); run takes them
// with a sim- prefix (--sim-mode), so they cannot be mistaken for the service's own.
type simConfig struct {
	providersim.Config
	Addr string // provider-sim only: where it listens

	flags  bool   // register was called: the command takes these settings
	prefix string // of the flags' names
}

// register adds the simulator's flags to fs, named with prefix.
func (s *simConfig) register(fs *flag.FlagSet, prefix string) {
	s.flags, s.prefix = true, prefix
	s.Config = providersim.DefaultConfig()
	c := &s.Config
	fs.Func(prefix+"mode", "simulator mode: rotate (the provider's samples), synthetic or sequence (default rotate)", func(v string) error {
		c.Mode = providersim.Mode(v)
		return nil
	})
	fs.StringVar(&c.Format, prefix+"format", "planList", "document format: planList, eventList or json")
	fs.StringVar(&c.Sequence, prefix+"sequence", c.Sequence, "sequence mode's steps, e.g. 1,2,malformed,500,slow,3")
	fs.DurationVar(&c.SlowDelay, prefix+"slow-delay", c.SlowDelay, "how long a slow step waits")
	fs.Uint64Var(&c.Seed, prefix+"seed", c.Seed, "seed of the synthetic catalog and of the faults")
	fs.IntVar(&c.BasePlans, prefix+"base-plans", c.BasePlans, "synthetic base plans")
	fs.IntVar(&c.Plans, prefix+"plans", c.Plans, "synthetic plans per base plan")
	fs.IntVar(&c.Zones, prefix+"zones", c.Zones, "synthetic zones per plan")
	for _, r := range []struct {
		name, usage string
		p           *float64
	}{
		{"vanish-rate", "fraction of plans absent from each response", &c.VanishRate},
		{"price-change-rate", "fraction of plans whose prices change between calls", &c.PriceChangeRate},
		{"time-change-rate", "fraction of plans whose times change between calls", &c.TimeChangeRate},
		{"sell-mode-flip-rate", "fraction of base plans whose sell_mode flips between calls", &c.SellModeFlipRate},
		{"invalid-date-rate", "fraction of plans served with dates that do not exist", &c.InvalidDateRate},
		{"offline-rate", "fraction of base plans that start offline", &c.OfflineRate},
		{"error-rate", "fraction of calls answered 500 or 503", &c.ErrorRate},
		{"malformed-rate", "fraction of calls answered with malformed XML", &c.MalformedRate},
		{"truncate-rate", "fraction of calls answered with a truncated document", &c.TruncateRate},
		{"hang-rate", "fraction of calls that hang half-way", &c.HangRate},
	} {
		fs.Float64Var(r.p, prefix+r.name, *r.p, r.usage)
	}
	fs.DurationVar(&c.Latency, prefix+"latency", c.Latency, "latency added to every call")
}

// validate checks the simulator settings of a command that takes them; errors name the
// flag with its prefix.
func (s *simConfig) validate() error {
	if !s.flags {
		return nil
	}
	if err := s.Config.Validate(); err != nil {
		return fmt.Errorf("--%s%w", s.prefix, err)
	}
	return nil
}

// startSimulator listens on a loopback port for run's built-in simulator and returns its
// URL and a function that serves it until ctx is done.
func startSimulator(ctx context.Context, cfg simConfig, log *slog.Logger) (url string, serve func(ctx context.Context) error, err error) {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("start provider simulator: %w", err)
	}
	sim := providersim.New(cfg.Config)
	return "http://" + ln.Addr().String() + "/api/events", func(ctx context.Context) error {
		// Close releases slow and hanging calls at once, so shutdown does not wait on them.
		context.AfterFunc(ctx, func() { sim.Close() })
		return serveHTTP(ctx, ln, sim, log.With("component", "provider-sim"))
	}, nil
}

// runProviderSim serves the simulator on its own.
func runProviderSim(ctx context.Context, cfg config, log *slog.Logger) error {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.Sim.Addr)
	if err != nil {
		return fmt.Errorf("--addr: %w", err)
	}
	sim := providersim.New(cfg.Sim.Config)
	context.AfterFunc(ctx, func() { sim.Close() })
	log.Info("provider simulator", "url", "http://"+ln.Addr().String()+"/api/events", "mode", cfg.Sim.Mode, "format", cfg.Sim.Format,
		"base_plans", cfg.Sim.BasePlans, "plans", cfg.Sim.Plans, "zones", cfg.Sim.Zones)
	return serveHTTP(ctx, ln, sim, log)
}

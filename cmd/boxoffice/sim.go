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
	fs.StringVar(&c.Feeds, prefix+"feeds", "", "more providers, each `name=format` (planList, eventList or json) served at /NAME/api/events\n"+
		"with these settings, e.g. \"acme=json legacy=eventList\" (/api/events keeps -"+prefix+"format)")
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

// simProvider is one provider that run's built-in simulator serves.
type simProvider struct{ name, url string }

// checkFeedNames reports a feed named defaultName, the name of the provider at
// /api/events in run, for a command that takes the simulator's settings.
func (s *simConfig) checkFeedNames(defaultName string) error {
	if !s.flags {
		return nil
	}
	feeds, _ := providersim.ParseFeeds(s.Feeds) // checked by validate
	for _, f := range feeds {
		if f.Name == defaultName {
			return fmt.Errorf("--%sfeeds: feed %q has the name of the provider at /api/events (PROVIDER_NAME)", s.prefix, f.Name)
		}
	}
	return nil
}

// startSimulator listens on a loopback port for run's built-in simulator and returns
// its providers, the one at /api/events named defaultName and one per feed named after
// it, and a function that serves them until ctx is done.
func startSimulator(ctx context.Context, cfg simConfig, defaultName string, log *slog.Logger) (providers []simProvider, serve func(ctx context.Context) error, err error) {
	feeds, _ := providersim.ParseFeeds(cfg.Feeds) // checked by validate and checkFeedNames
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, fmt.Errorf("start provider simulator: %w", err)
	}
	sim := providersim.New(cfg.Config)
	return simProviders(ln.Addr().String(), defaultName, feeds), func(ctx context.Context) error {
		// Close releases slow and hanging calls at once, so shutdown does not wait on them.
		context.AfterFunc(ctx, func() { sim.Close() })
		return serveHTTP(ctx, ln, sim, log.With("component", "provider-sim"))
	}, nil
}

// simProviders returns the providers a simulator listening on addr serves.
func simProviders(addr, defaultName string, feeds []providersim.Feed) []simProvider {
	out := make([]simProvider, 0, 1+len(feeds))
	out = append(out, simProvider{defaultName, "http://" + addr + providersim.Path})
	for _, f := range feeds {
		out = append(out, simProvider{f.Name, "http://" + addr + providersim.FeedPath(f.Name)})
	}
	return out
}

// runProviderSim serves the simulator on its own.
func runProviderSim(ctx context.Context, cfg config, log *slog.Logger) error {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.Sim.Addr)
	if err != nil {
		return fmt.Errorf("--addr: %w", err)
	}
	sim := providersim.New(cfg.Sim.Config)
	context.AfterFunc(ctx, func() { sim.Close() })
	addr := "http://" + ln.Addr().String()
	log.Info("provider simulator", "url", addr+providersim.Path, "mode", cfg.Sim.Mode, "format", cfg.Sim.Format,
		"base_plans", cfg.Sim.BasePlans, "plans", cfg.Sim.Plans, "zones", cfg.Sim.Zones)
	feeds, _ := providersim.ParseFeeds(cfg.Sim.Feeds) // checked by validate
	for _, f := range feeds {
		log.Info("provider simulator feed", "feed", f.Name, "url", addr+providersim.FeedPath(f.Name), "format", f.Format)
	}
	return serveHTTP(ctx, ln, sim, log)
}

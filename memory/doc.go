// Package memory holds the in-process adapters of the embedded mode: a lock, the price
// quote cache, the market events bus and the catalog-version notifier. They are
// production code for one process, not test doubles: they pass the same contract suites
// as the Redis adapters, except that nothing survives the process, which none of them
// needs (a lock dies with its holder, a cache refills, market events are in the store
// before the bus carries them, and catalog versions are in the store before they are
// announced). The lock and the cache expire on the clock.Clock they are given, so
// their tests advance a manual clock instead of waiting. The embedded broker, whose
// messages must survive, is sqlite.Broker.
package memory

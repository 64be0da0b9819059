// Package memory holds the in-process adapters of the embedded mode: a lock, the price
// quote cache and the market events bus. They are production code for one process, not
// test doubles: they keep the same contracts as the Redis adapters, except that nothing
// survives the process, which none of them needs (a lock dies with its holder, a cache
// refills, and market events are in the store before the bus carries them). The
// embedded broker, whose messages must survive, is sqlite.Broker.
package memory

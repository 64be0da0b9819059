// Package catalog holds the plans that boxoffice integrates from its provider and
// answers searches over them by time window.
//
// Concepts:
//
//   - A base plan is what the provider sells (a show, a concert): it has a title and a
//     sell mode, "online" or "offline".
//   - A plan is one dated occurrence of a base plan, with a start, an end and zones.
//     The provider's plan ids are only unique inside a base plan, so a plan is known by
//     (provider, base plan id, plan id) and its ID is a UUIDv5 of those three: stable
//     across restarts, databases and deployments.
//   - A zone is a sellable part of a plan's venue, with a price and a capacity. Zone ids
//     may repeat inside a plan (a numbered and an unnumbered part of the same area), so a
//     zone is known by its position in the plan.
//   - Ever-online: a plan is searchable once it has been seen inside a base plan whose
//     sell mode was "online". That is sticky: the plan stays searchable when its base
//     plan goes offline or vanishes from the provider, and it keeps its latest values.
//   - Revision: when ingest observed a plan (the start of the provider sync that saw it).
//     The latest revision wins; an older or redelivered batch never regresses a plan.
//   - Catalog version: a counter that each committed change to the searchable catalog
//     advances. Readers key caches and in-memory indexes by it, so invalidation is
//     automatic, and a reader labels data only with the version it read it at.
//   - An IDTable keeps a number for each plan ID in about 25 bytes a plan, for whoever
//     holds one for every plan: the index writer (each plan's start) and a re-sync
//     (each stored plan's fingerprint, see ingest.Baseline).
//
// Times: the provider publishes local wall-clock times without a zone. boxoffice keeps
// them as UTC instants with the same wall clock, and a search bound given without a
// zone is read the same way, so both sides compare like with like.
package catalog

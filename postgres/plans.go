package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"boxoffice/catalog"
	"boxoffice/ingest"
	"boxoffice/pricing"
)

const planColumns = `id, provider, base_plan_id, plan_id, title, coalesce(organizer_company_id, ''),
	sell_mode, starts_at, ends_at, sell_from, sell_to, sold_out, zones, revision, version`

// prepareBatch readies a transaction for mergeBatch, in one round trip. The staging
// table receives a batch, one row per plan ID; each connection creates it on first use
// and empties it at every commit, so batches cause no catalog churn. Hash and merge
// joins are off because the staging table has no statistics and, up to a few hundred
// thousand plans, the planner would rather hash all of plans than probe its primary key
// once per staged row: a batch must cost the same whatever the size of the catalog.
// Parallel plans are off too: starting workers costs more than any statement of a batch.
const prepareBatch = `SET LOCAL enable_hashjoin = off;
SET LOCAL enable_mergejoin = off;
SET LOCAL max_parallel_workers_per_gather = 0;
CREATE TEMP TABLE IF NOT EXISTS pg_temp.upsert_batch (
	id                   uuid      NOT NULL,
	provider             text      NOT NULL,
	base_plan_id         text      NOT NULL,
	plan_id              text      NOT NULL,
	title                text      NOT NULL,
	organizer_company_id text,
	sell_mode            text      NOT NULL,
	online               boolean   NOT NULL, -- any occurrence in the batch was online
	starts_at            timestamp NOT NULL,
	ends_at              timestamp NOT NULL,
	sell_from            timestamp NOT NULL,
	sell_to              timestamp NOT NULL,
	sold_out             boolean   NOT NULL,
	zones                text      NOT NULL, -- JSON, parsed only for the rows written
	min_price_cents      bigint,
	max_price_cents      bigint,
	revision             bigint    NOT NULL,
	fingerprint          bigint    NOT NULL
) ON COMMIT DELETE ROWS`

var stagingColumns = []string{"id", "provider", "base_plan_id", "plan_id", "title", "organizer_company_id",
	"sell_mode", "online", "starts_at", "ends_at", "sell_from", "sell_to", "sold_out", "zones",
	"min_price_cents", "max_price_cents", "revision", "fingerprint"}

// mergeBatch applies the staged batch, observations of stored plans (insertPlans
// inserts the others), to plans, one WHEN clause per case of the catalog.Store contract;
// the first that matches a row applies. $1 is the version the batch commits as if it
// changes the searchable catalog, which it stamps on the plans it changes that are, or
// become, ever-online, and as products_version on those of them whose products change:
// that become ever-online, or whose zones, sold_out or starts_at change (see
// replaceProducts).
const mergeBatch = `MERGE INTO plans AS p
USING pg_temp.upsert_batch AS b ON p.id = b.id
-- A newer catalog.Observation with other values replaces them, unless it is late ($2: a tracked
-- batch below $3, the latest sync of its provider; see catalog.Decide).
WHEN MATCHED AND b.revision > p.revision AND b.fingerprint <> p.fingerprint AND NOT ($2 AND b.revision < $3) THEN
	UPDATE SET provider = b.provider, base_plan_id = b.base_plan_id, plan_id = b.plan_id, title = b.title,
		organizer_company_id = b.organizer_company_id, sell_mode = b.sell_mode,
		ever_online = p.ever_online OR b.online,
		starts_at = b.starts_at, ends_at = b.ends_at, sell_from = b.sell_from, sell_to = b.sell_to,
		sold_out = b.sold_out, zones = b.zones::jsonb,
		min_price_cents = b.min_price_cents, max_price_cents = b.max_price_cents,
		revision = b.revision,
		version = CASE WHEN p.ever_online OR b.online THEN $1::bigint ELSE p.version END,
		fingerprint = b.fingerprint,
		products_version = CASE
			WHEN NOT (p.ever_online OR b.online) THEN p.products_version
			WHEN NOT p.ever_online OR p.sold_out <> b.sold_out OR p.starts_at <> b.starts_at
				OR p.zones <> b.zones::jsonb THEN $1::bigint
			ELSE p.products_version END
-- Ever-online is sticky: any online catalog.Observation, late or not, makes the stored values searchable.
WHEN MATCHED AND b.online AND NOT p.ever_online THEN
	UPDATE SET revision = greatest(p.revision, b.revision), ever_online = true, version = $1::bigint,
		products_version = $1::bigint
-- A newer catalog.Observation of the same values: only the revision moves, so that an older one can't regress it;
-- in a tracked batch nothing does.
WHEN MATCHED AND b.revision > p.revision AND NOT $2 THEN
	UPDATE SET revision = b.revision`

// UpsertPlans applies batch in one transaction on the primary and returns the catalog
// version after it; see catalog.Store for the rules. The batch's plans are merged in Go
// (the highest revision wins, the first occurrence among equals, online if any was);
// the new ones are copied into plans, with their products, and those of stored plans
// copied into a temporary table and merged into plans by one MERGE statement, so a
// batch costs a few round trips whatever its size, and a redelivered batch writes no
// plan row. Concurrent calls take turns on the catalog_version row, which they lock first:
// versions are assigned in commit order, and two batches never deadlock on plan rows.
// The products of the plans it changes that are, or become, ever-online are replaced
// in the same transaction (see replaceProducts and insertPlans).
func (s *Store) UpsertPlans(ctx context.Context, batch []catalog.Plan) (int64, error) {
	if len(batch) == 0 {
		v, err := readVersion(ctx, s.primary)
		if err != nil {
			return 0, fmt.Errorf("upsert no plans: %w", err)
		}
		return v, nil
	}
	obs, err := observe(batch)
	if err != nil {
		return 0, fmt.Errorf("upsert %d plans: %w", len(batch), err)
	}
	v, err := s.upsert(ctx, obs, nil)
	if err != nil {
		return 0, fmt.Errorf("upsert %d plans: %w", len(batch), err)
	}
	return v, nil
}

// observe folds batch (catalog.Observe) and reports text that PostgreSQL would refuse
// to store.
func observe(batch []catalog.Plan) ([]catalog.Observation, error) {
	obs := catalog.Observe(batch)
	for i := range obs {
		if err := checkText(&obs[i].Plan); err != nil {
			return nil, fmt.Errorf("plan %s: %w", obs[i].Plan.ID, err)
		}
	}
	return obs, nil
}

// checkText reports a string of p that a text or jsonb column refuses: invalid UTF-8 or
// a NUL. Parsers of XML never emit one.
func checkText(p *catalog.Plan) error {
	fields := []struct{ name, value string }{
		{"provider", p.Provider}, {"base_plan_id", p.BasePlanID}, {"plan_id", p.PlanID}, {"title", p.Title},
		{"organizer_company_id", p.OrganizerCompanyID}, {"sell_mode", string(p.SellMode)},
	}
	for _, f := range fields {
		if !storableText(f.value) {
			return fmt.Errorf("%s: not UTF-8 text without NUL bytes", f.name)
		}
	}
	for i, z := range p.Zones {
		if !storableText(z.ZoneID) || !storableText(z.Name) {
			return fmt.Errorf("zone %d: not UTF-8 text without NUL bytes", i)
		}
	}
	return nil
}

// storableText reports whether a text column takes s. catalog.Observe has made every
// string valid UTF-8 (see catalog.Store), which PostgreSQL requires; a NUL byte it
// refuses still.
func storableText(s string) bool { return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 }

// upsert applies obs and, unless sync is nil, records sync's batch (recordBatch), in
// one transaction.
func (s *Store) upsert(ctx context.Context, obs []catalog.Observation, sync *ingest.Batch) (int64, error) {
	tx, err := s.primary.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(ctx)

	// First, before any plan row: this orders the writers (see the package comment).
	var cur int64
	if err := tx.QueryRow(ctx, `SELECT version FROM catalog_version WHERE id = 1 FOR UPDATE`).Scan(&cur); err != nil {
		return 0, fmt.Errorf("lock catalog version: %w", err)
	}
	next := cur + 1
	var floor catalog.Floor
	if sync != nil {
		floor.Tracked = true
		if floor.Revision, err = latestSync(ctx, tx, sync.Provider); err != nil {
			return 0, err
		}
	}
	merged, inserted, err := writes(ctx, tx, obs, floor)
	if err != nil {
		return 0, err
	}
	v := cur
	if len(merged) > 0 {
		changed, err := mergePlans(ctx, tx, merged, next, floor)
		if err != nil {
			return 0, err
		}
		if changed {
			v = next
		}
	}
	if len(inserted) > 0 {
		online, err := insertPlans(ctx, tx, inserted, next)
		if err != nil {
			return 0, err
		}
		if online && v != next {
			if _, err := tx.Exec(ctx, `UPDATE catalog_version SET version = $1 WHERE id = 1`, next); err != nil {
				return 0, fmt.Errorf("advance catalog version: %w", err)
			}
			v = next
		}
	}
	if sync != nil {
		if err := recordBatch(ctx, tx, sync); err != nil {
			return 0, err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("commit: %w", err)
	}
	return v, nil
}

// mergePlans merges obs, observations of stored plans, into plans by one MERGE through
// the staging table, and reports whether it advanced the catalog version to next: whether
// it stamped next on a searchable plan. If it did, it brings the products of the plans
// it changed in step (replaceProducts).
func mergePlans(ctx context.Context, tx pgx.Tx, obs []catalog.Observation, next int64, floor catalog.Floor) (bool, error) {
	if _, err := tx.Exec(ctx, prepareBatch); err != nil {
		return false, fmt.Errorf("prepare staging table: %w", err)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"pg_temp", "upsert_batch"}, stagingColumns, pgx.CopyFromSlice(len(obs), func(i int) ([]any, error) {
		return stagingRow(&obs[i]), nil
	})); err != nil {
		return false, fmt.Errorf("copy batch: %w", err)
	}
	tag, err := tx.Exec(ctx, mergeBatch, next, floor.Tracked, floor.Revision)
	if err != nil {
		return false, fmt.Errorf("merge batch: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return false, nil
	}
	// Only this transaction can have stamped next: it holds the version's lock.
	tag, err = tx.Exec(ctx, `UPDATE catalog_version SET version = $1
		WHERE id = 1 AND EXISTS (SELECT FROM plans WHERE ever_online AND version = $1)`, next)
	if err != nil {
		return false, fmt.Errorf("advance catalog version: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return false, nil
	}
	return true, replaceProducts(ctx, tx, obs, next)
}

// insertPlans copies obs, observations of plans not stored, straight into plans, as the
// merge would insert them (the catalog_version lock rules out a concurrent insert of
// the same ID), and the products of the online ones into products, computed from the
// batch alone: a new plan has none stored. It reports whether any of obs was online,
// which stamps next on it.
func insertPlans(ctx context.Context, tx pgx.Tx, obs []catalog.Observation, next int64) (bool, error) {
	var online []catalog.Plan
	for i := range obs {
		if obs[i].Online {
			online = append(online, obs[i].Plan)
		}
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"plans"}, insertColumns, pgx.CopyFromSlice(len(obs), func(i int) ([]any, error) {
		return insertRow(&obs[i], next), nil
	})); err != nil {
		return false, fmt.Errorf("copy %d new plans: %w", len(obs), err)
	}
	if err := copyProducts(ctx, tx, pricing.NewProducts(online)); err != nil {
		return false, err
	}
	return len(online) > 0, nil
}

// writes returns the observations of obs that the merge would write (catalog.Decide),
// read from the stored fingerprints and revisions in one query, so that the plans it
// would leave as they are cost a lookup of their primary key and nothing more: those
// of stored plans (merged) and those of plans not stored (inserted). The caller holds
// the catalog_version lock, so a plan not stored stays so until it commits.
func writes(ctx context.Context, tx pgx.Tx, obs []catalog.Observation, floor catalog.Floor) (merged, inserted []catalog.Observation, err error) {
	ids := make([][16]byte, len(obs))
	for i := range obs {
		ids[i] = obs[i].Plan.ID
	}
	rows, err := tx.Query(ctx, `SELECT id, revision, ever_online, fingerprint FROM plans WHERE id = ANY($1::uuid[])`, ids)
	if err != nil {
		return nil, nil, fmt.Errorf("read stored plans: %w", err)
	}
	old := make(map[catalog.ID]catalog.Stored, len(obs))
	for rows.Next() {
		var (
			id catalog.ID
			st = catalog.Stored{Exists: true}
		)
		if err := rows.Scan((*[16]byte)(&id), &st.Revision, &st.EverOnline, &st.Fingerprint); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("read stored plans: %w", err)
		}
		old[id] = st
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("read stored plans: %w", err)
	}
	for i := range obs {
		st := old[obs[i].Plan.ID]
		switch w, _, _ := catalog.Decide(&obs[i], st, floor); {
		case w == catalog.WriteNothing:
		case st.Exists:
			merged = append(merged, obs[i])
		default:
			inserted = append(inserted, obs[i])
		}
	}
	return merged, inserted, nil
}

// insertColumns are the columns of plans that insertPlans writes, in insertRow's order.
var insertColumns = []string{"id", "provider", "base_plan_id", "plan_id", "title", "organizer_company_id",
	"sell_mode", "ever_online", "starts_at", "ends_at", "sell_from", "sell_to", "sold_out", "zones",
	"min_price_cents", "max_price_cents", "revision", "version", "fingerprint", "products_version"}

// insertRow returns the values of a new plan's row for o, in the order of insertColumns:
// an online one is stamped with next (version and products_version), an offline one
// with 0, which ChangedSince never reads.
func insertRow(o *catalog.Observation, next int64) []any {
	version := int64(0)
	if o.Online {
		version = next
	}
	row := stagingRow(o) // the same values up to revision, then fingerprint
	return append(row[:len(row)-1], version, o.Fingerprint, version)
}

// stagingRow returns the values of o in the order of stagingColumns.
func stagingRow(o *catalog.Observation) []any {
	p := &o.Plan
	var organizer, lo, hi any
	if p.OrganizerCompanyID != "" {
		organizer = p.OrganizerCompanyID
	}
	if l, h, ok := p.PriceRange(); ok {
		lo, hi = int64(l), int64(h)
	}
	return []any{[16]byte(p.ID), p.Provider, p.BasePlanID, p.PlanID, p.Title, organizer,
		string(p.SellMode), o.Online, wallClock(p.StartsAt), wallClock(p.EndsAt),
		wallClock(p.SellFrom), wallClock(p.SellTo), p.SoldOut, o.Zones, lo, hi, p.Revision, o.Fingerprint}
}

// wallClock returns t as stored: in UTC, whose wall clock is the provider's, to the second.
func wallClock(t time.Time) time.Time { return t.UTC().Truncate(time.Second) }

// SearchPlans returns the ever-online plans inside w, ordered by start, then ID, from
// the replica (see Store).
func (s *Store) SearchPlans(ctx context.Context, w catalog.Window) ([]catalog.Plan, error) {
	var plans []catalog.Plan
	err := s.read(ctx, func(ctx context.Context, pool *pgxpool.Pool) error {
		plans = nil // a run on the replica that failed may have read some
		return eachPlan(ctx, pool, w, func(p catalog.Plan) error {
			plans = append(plans, p)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("search plans: %w", err)
	}
	return plans, nil
}

// EachPlan calls fn with each ever-online plan inside w, ordered by start, then ID, as
// it reads them, from one query on the replica (see Store): a window of any size in the
// memory of one plan. A replica found unavailable before the first plan is read again
// from the primary; after it, the read fails, for fn has seen plans that a second run
// would repeat. An error from fn stops the read and is returned as it is.
func (s *Store) EachPlan(ctx context.Context, w catalog.Window, fn func(catalog.Plan) error) error {
	var fnErr, failed error // fn's own error; the error of a run after plans went to fn
	sent := false
	err := s.read(ctx, func(ctx context.Context, pool *pgxpool.Pool) error {
		if sent {
			return failed // the replica failed part-way: the primary would repeat plans
		}
		failed = eachPlan(ctx, pool, w, func(p catalog.Plan) error {
			sent = true
			if fnErr = fn(p); fnErr != nil {
				return errStopped // not fn's error, which read might take for the replica's (a broken pipe)
			}
			return nil
		})
		return failed
	})
	switch {
	case fnErr != nil:
		return fnErr
	case err != nil:
		return fmt.Errorf("search plans: %w", err)
	}
	return nil
}

// errStopped ends a read that EachPlan's fn stopped.
var errStopped = errors.New("stopped by the caller")

// eachPlan runs EachPlan's query on pool.
func eachPlan(ctx context.Context, pool *pgxpool.Pool, w catalog.Window, fn func(catalog.Plan) error) error {
	from, to := windowBounds(w)
	// A plan never ends before it starts (catalog.Plan.Validate), so starts_at <= to
	// bounds the index range without losing any plan.
	rows, err := pool.Query(ctx, `SELECT `+planColumns+` FROM plans
		WHERE ever_online AND starts_at >= $1 AND starts_at <= $2 AND ends_at <= $2
		ORDER BY starts_at, id`, from, to)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		p, err := scanPlan(rows)
		if err != nil {
			return err
		}
		if err := fn(p); err != nil {
			return err
		}
	}
	return rows.Err()
}

// windowBounds returns w's bounds as stored times compare with them, open ones as
// infinities.
func windowBounds(w catalog.Window) (from, to pgtype.Timestamp) {
	from = pgtype.Timestamp{InfinityModifier: pgtype.NegativeInfinity, Valid: true}
	to = pgtype.Timestamp{InfinityModifier: pgtype.Infinity, Valid: true}
	if !w.From.IsZero() {
		// Stored times are whole seconds: the first one at or after From.
		t := wallClock(w.From)
		if t.Before(w.From) {
			t = t.Add(time.Second)
		}
		from = pgtype.Timestamp{Time: t, Valid: true}
	}
	if !w.To.IsZero() {
		to = pgtype.Timestamp{Time: wallClock(w.To), Valid: true}
	}
	return from, to
}

// SearchPage returns at most limit ever-online plans inside w after the position after
// (from the start of w when nil), ordered by start, then ID, with the catalog version,
// both read from the replica (see Store) in one repeatable-read transaction: a keyset
// query on the search index (plans_window), so a page costs the same wherever it is in
// the window.
func (s *Store) SearchPage(ctx context.Context, w catalog.Window, after *catalog.Position, limit int) (catalog.Page, error) {
	var page catalog.Page
	err := s.read(ctx, func(ctx context.Context, pool *pgxpool.Pool) error {
		var err error
		page, err = searchPage(ctx, pool, w, after, limit)
		return err
	})
	if err != nil {
		return catalog.Page{}, fmt.Errorf("search page: %w", err)
	}
	return page, nil
}

func searchPage(ctx context.Context, pool *pgxpool.Pool, w catalog.Window, after *catalog.Position, limit int) (catalog.Page, error) {
	from, to := windowBounds(w)
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return catalog.Page{}, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(ctx) // read only: nothing to commit
	version, err := readVersion(ctx, tx)
	if err != nil {
		return catalog.Page{}, err
	}
	// One more than the page, to tell whether more follow.
	query, args := `SELECT `+planColumns+` FROM plans
		WHERE ever_online AND starts_at >= $1 AND starts_at <= $2 AND ends_at <= $2
		ORDER BY starts_at, id LIMIT $3`, []any{from, to, limit + 1}
	if after != nil {
		start := pgtype.Timestamp{Time: time.Unix(after.Start, 0).UTC(), Valid: true}
		query, args = `SELECT `+planColumns+` FROM plans
		WHERE ever_online AND starts_at >= $1 AND starts_at <= $2 AND ends_at <= $2 AND (starts_at, id) > ($4, $5)
		ORDER BY starts_at, id LIMIT $3`, []any{from, to, limit + 1, start, [16]byte(after.ID)}
	}
	rows, err := tx.Query(ctx, query, args...)
	if err != nil {
		return catalog.Page{}, err
	}
	plans, err := scanPlans(rows)
	if err != nil {
		return catalog.Page{}, err
	}
	return catalog.NewPage(plans, version, limit), nil
}

// ChangedSince returns the ever-online plans changed after version, in no particular
// order, and the catalog version, both read from the replica (see Store) in one
// repeatable-read transaction: one snapshot, so the plans are exactly those of the
// version it reports, which on a lagging replica is the version it had replayed.
func (s *Store) ChangedSince(ctx context.Context, version int64) (catalog.Changes, error) {
	var ch catalog.Changes
	err := s.read(ctx, func(ctx context.Context, pool *pgxpool.Pool) error {
		ch = catalog.Changes{} // a run on the replica that failed may have read some
		var err error
		// One page of any length: its slice is never reused, so it is the result.
		ch.Version, err = eachChange(ctx, pool, version, math.MaxInt, func(page catalog.Changes) error {
			ch.Plans = page.Plans
			return nil
		})
		return err
	})
	if err != nil {
		return catalog.Changes{}, fmt.Errorf("plans changed since version %d: %w", version, err)
	}
	return ch, nil
}

// EachChange calls fn with the ever-online plans changed after version in pages of at
// most limit, and returns the catalog version, all read from the replica (see Store) by
// one query in one repeatable-read transaction: one snapshot, as ChangedSince. Rows are
// read as fn takes the pages, so a catalog of any size costs the memory of a page. A
// replica found unavailable before the first page went to fn is read again from the
// primary; after it, the read fails, for the primary's snapshot is another one. An
// error from fn stops the read and is returned as it is.
func (s *Store) EachChange(ctx context.Context, version int64, limit int, fn func(catalog.Changes) error) (int64, error) {
	var fnErr, failed error // fn's own error; the error of a run after a page went to fn
	sent := false
	var cur int64
	err := s.read(ctx, func(ctx context.Context, pool *pgxpool.Pool) error {
		if sent {
			return failed // the replica failed part-way: the primary would read another snapshot
		}
		cur, failed = eachChange(ctx, pool, version, limit, func(page catalog.Changes) error {
			sent = true
			if fnErr = fn(page); fnErr != nil {
				return errStopped // not fn's error, which read might take for the replica's
			}
			return nil
		})
		return failed
	})
	switch {
	case fnErr != nil:
		return 0, fnErr
	case err != nil:
		return 0, fmt.Errorf("plans changed since version %d: %w", version, err)
	}
	return cur, nil
}

// eachChange runs EachChange's query on pool and returns the catalog version it read.
func eachChange(ctx context.Context, pool *pgxpool.Pool, version int64, limit int, fn func(catalog.Changes) error) (int64, error) {
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return 0, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(ctx) // read only: nothing to commit
	cur, err := readVersion(ctx, tx)
	if err != nil {
		return 0, err
	}
	if version >= cur {
		return cur, nil
	}
	rows, err := tx.Query(ctx, `SELECT `+planColumns+` FROM plans WHERE ever_online AND version > $1`, version)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	if err := catalog.EachPage(rows, func() (catalog.Plan, error) { return scanPlan(rows) }, cur, limit, fn); err != nil {
		return 0, err
	}
	return cur, nil
}

// queryer is what a pool and a transaction share.
type queryer interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func readVersion(ctx context.Context, q queryer) (int64, error) {
	var v int64
	if err := q.QueryRow(ctx, `SELECT version FROM catalog_version WHERE id = 1`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read catalog version: %w", err)
	}
	return v, nil
}

// scanPlans reads every row of rows, selected as planColumns from ever-online plans, and
// closes it.
func scanPlans(rows pgx.Rows) ([]catalog.Plan, error) {
	defer rows.Close()
	var plans []catalog.Plan
	for rows.Next() {
		p, err := scanPlan(rows)
		if err != nil {
			return nil, err
		}
		plans = append(plans, p)
	}
	return plans, rows.Err()
}

// scanPlan reads the plan of the current row, of columns planColumns.
func scanPlan(rows pgx.Rows) (catalog.Plan, error) {
	var (
		p     catalog.Plan
		mode  string
		zones []byte
	)
	if err := rows.Scan((*[16]byte)(&p.ID), &p.Provider, &p.BasePlanID, &p.PlanID, &p.Title, &p.OrganizerCompanyID,
		&mode, &p.StartsAt, &p.EndsAt, &p.SellFrom, &p.SellTo, &p.SoldOut, &zones, &p.Revision, &p.Version); err != nil {
		return catalog.Plan{}, err
	}
	p.SellMode = catalog.SellMode(mode)
	p.EverOnline = true
	var err error
	if p.Zones, err = catalog.DecodeZonesJSON(zones); err != nil {
		return catalog.Plan{}, fmt.Errorf("plan %s: zones: %w", p.ID, err)
	}
	return p, nil
}

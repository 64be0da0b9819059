package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"boxoffice/catalog"
	"boxoffice/pricing"
)

var _ pricing.Store = (*Store)(nil)

// productColumns are the columns scanPriced reads, from products pr joined with their
// plan p, which gives SoldOut and StartsAt.
const productColumns = `pr.id, pr.plan_id, pr.zone_id, pr.name, pr.numbered, pr.base_price_cents, pr.capacity,
	p.sold_out, p.starts_at, pr.position, pr.surcharge_bp, pr.price_cents, pr.version`

// EventProducts returns the products of the ever-online plan event in zone order, or
// pricing.ErrNotFound; an ever-online plan without zones has none. It reads the plan and
// its products in one read transaction.
func (s *Store) EventProducts(ctx context.Context, event catalog.ID) ([]pricing.Priced, error) {
	ps, err := s.eventProducts(ctx, event)
	if err != nil {
		return nil, fmt.Errorf("products of event %s: %w", event, err)
	}
	return ps, nil
}

func (s *Store) eventProducts(ctx context.Context, event catalog.ID) ([]pricing.Priced, error) {
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	var n int
	err = tx.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM products WHERE plan_id = p.id) FROM plans p
		WHERE p.id = ? AND p.ever_online = 1`, event[:]).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, pricing.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+productColumns+` FROM products pr JOIN plans p ON p.id = pr.plan_id
		WHERE pr.plan_id = ? ORDER BY pr.position`, event[:])
	if err != nil {
		return nil, err
	}
	return scanPriced(rows, n)
}

// Product returns one product, or pricing.ErrNotFound. SQLite has no replica: primary
// changes nothing.
func (s *Store) Product(ctx context.Context, id catalog.ID, primary bool) (pricing.Priced, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+productColumns+` FROM products pr JOIN plans p ON p.id = pr.plan_id
		WHERE pr.id = ?`, id[:])
	if err != nil {
		return pricing.Priced{}, fmt.Errorf("product %s: %w", id, err)
	}
	ps, err := scanPriced(rows, 1)
	if err != nil {
		return pricing.Priced{}, fmt.Errorf("product %s: %w", id, err)
	}
	if len(ps) == 0 {
		return pricing.Priced{}, fmt.Errorf("product %s: %w", id, pricing.ErrNotFound)
	}
	return ps[0], nil
}

// Market returns the market that applies to location (its own, else the global one,
// else Neutral), labelled with location, and the pricing version, in one statement.
func (s *Store) Market(ctx context.Context, location string, primary bool) (pricing.Market, int64, error) {
	m := pricing.Market{Location: location}
	var version int64
	err := s.read.QueryRowContext(ctx, `SELECT COALESCE(m.multiplier_bp, g.multiplier_bp, ?),
		COALESCE(m.demand_bp, g.demand_bp, 0), s.version
		FROM pricing_state s LEFT JOIN markets m ON m.location = ? LEFT JOIN markets g ON g.location = ?
		WHERE s.id = 1`, int64(pricing.One), location, pricing.GlobalLocation).Scan(&m.Multiplier, &m.Demand, &version)
	if err != nil {
		return pricing.Market{}, 0, fmt.Errorf("market %q: %w", location, err)
	}
	return m, version, nil
}

// AddMarketEvent records ev, whose ID it ignores, and returns the id it assigned.
func (s *Store) AddMarketEvent(ctx context.Context, ev pricing.MarketEvent) (int64, error) {
	var id int64
	err := s.write.QueryRowContext(ctx, `INSERT INTO market_events (location, multiplier_bp, demand_bp, source, received_at)
		VALUES (?, ?, ?, ?, ?) RETURNING id`,
		ev.Location, nullRate(ev.Multiplier), nullRate(ev.Demand), ev.Source, micros(ev.ReceivedAt)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("add market event for %q: %w", ev.Location, err)
	}
	return id, nil
}

// PricingState reads the state in one statement.
func (s *Store) PricingState(ctx context.Context) (pricing.State, error) {
	st, err := readState(ctx, s.read)
	if err != nil {
		return pricing.State{}, fmt.Errorf("read pricing state: %w", err)
	}
	return st, nil
}

func readState(ctx context.Context, q queryer) (pricing.State, error) {
	var st pricing.State
	err := q.QueryRowContext(ctx, `SELECT COALESCE((SELECT requested FROM task_generations WHERE kind = ?), 0), done, version,
		COALESCE((SELECT max(id) FROM market_events), 0), applied FROM pricing_state WHERE id = 1`,
		pricing.Kind).Scan(&st.Requested, &st.Done, &st.Version, &st.Events, &st.Applied)
	return st, err
}

// BeginRun folds the market events above the applied one into the markets, in id
// order, in one immediate transaction that also reads the generation of the last
// recalculation trigger: a run covers exactly the triggers and events before it.
func (s *Store) BeginRun(ctx context.Context, now time.Time) (pricing.Run, error) {
	run, err := s.beginRun(ctx, now)
	if err != nil {
		return pricing.Run{}, fmt.Errorf("begin pricing run: %w", err)
	}
	return run, nil
}

func (s *Store) beginRun(ctx context.Context, now time.Time) (pricing.Run, error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return pricing.Run{}, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	st, err := readState(ctx, tx)
	if err != nil {
		return pricing.Run{}, fmt.Errorf("read state: %w", err)
	}
	events, err := newEvents(ctx, tx, st.Applied)
	if err != nil {
		return pricing.Run{}, fmt.Errorf("read market events: %w", err)
	}
	run := pricing.Run{Gen: st.Requested, Version: st.Version + 1, Events: len(events)}

	markets := make(map[string]pricing.Market)
	for _, loc := range append([]string{pricing.GlobalLocation}, eventLocations(events)...) {
		if err := readMarket(ctx, tx, loc, markets); err != nil {
			return pricing.Run{}, err
		}
	}
	if len(events) > 0 {
		last := events[len(events)-1].ID
		for _, m := range pricing.Fold(markets, events) {
			if _, err := tx.ExecContext(ctx, `INSERT INTO markets (location, multiplier_bp, demand_bp, updated_at, event_id)
				VALUES (?, ?, ?, ?, ?) ON CONFLICT (location) DO UPDATE SET multiplier_bp = excluded.multiplier_bp,
				demand_bp = excluded.demand_bp, updated_at = excluded.updated_at, event_id = excluded.event_id`,
				m.Location, int64(m.Multiplier), int64(m.Demand), now.UnixMicro(), last); err != nil {
				return pricing.Run{}, fmt.Errorf("write market %q: %w", m.Location, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE pricing_state SET applied = ? WHERE id = 1`, last); err != nil {
			return pricing.Run{}, fmt.Errorf("record applied event %d: %w", last, err)
		}
	}
	run.Global = pricing.MarketOf(markets, pricing.GlobalLocation)
	if err := tx.Commit(); err != nil {
		return pricing.Run{}, fmt.Errorf("commit: %w", err)
	}
	return run, nil
}

// eventLocations returns the locations of events, each once.
func eventLocations(events []pricing.MarketEvent) []string {
	seen := make(map[string]bool)
	var locs []string
	for _, ev := range events {
		if !seen[ev.Location] {
			seen[ev.Location] = true
			locs = append(locs, ev.Location)
		}
	}
	return locs
}

// newEvents reads the market events above id applied, in id order.
func newEvents(ctx context.Context, tx *sql.Tx, applied int64) ([]pricing.MarketEvent, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, location, multiplier_bp, demand_bp FROM market_events
		WHERE id > ? ORDER BY id`, applied)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var events []pricing.MarketEvent
	for rows.Next() {
		var (
			ev   pricing.MarketEvent
			m, d sql.NullInt64
		)
		if err := rows.Scan(&ev.ID, &ev.Location, &m, &d); err != nil {
			return nil, err
		}
		if m.Valid {
			ev.Multiplier = new(pricing.BasisPoints(m.Int64))
		}
		if d.Valid {
			ev.Demand = new(pricing.BasisPoints(d.Int64))
		}
		events = append(events, ev)
	}
	return events, rows.Err()
}

// readMarket adds the stored market of location to markets, when it has one.
func readMarket(ctx context.Context, tx *sql.Tx, location string, markets map[string]pricing.Market) error {
	m := pricing.Market{Location: location}
	err := tx.QueryRowContext(ctx, `SELECT multiplier_bp, demand_bp FROM markets WHERE location = ?`, location).
		Scan(&m.Multiplier, &m.Demand)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("read market %q: %w", location, err)
	}
	markets[location] = m
	return nil
}

// ProductsAfter returns up to limit products with ids above after, in id order.
func (s *Store) ProductsAfter(ctx context.Context, after catalog.ID, limit int) ([]pricing.Priced, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+productColumns+` FROM products pr JOIN plans p ON p.id = pr.plan_id
		WHERE pr.id > ? ORDER BY pr.id LIMIT ?`, after[:], limit)
	if err != nil {
		return nil, fmt.Errorf("products after %s: %w", after, err)
	}
	ps, err := scanPriced(rows, limit)
	if err != nil {
		return nil, fmt.Errorf("products after %s: %w", after, err)
	}
	return ps, nil
}

// SavePrices writes the Surcharge, Price and Version of each product in one immediate
// transaction. Products that are gone, replaced by a plan upsert since they were read,
// are skipped: the next run prices their successors.
func (s *Store) SavePrices(ctx context.Context, prices []pricing.Priced) error {
	if len(prices) == 0 {
		return nil
	}
	if err := s.savePrices(ctx, prices); err != nil {
		return fmt.Errorf("save %d prices: %w", len(prices), err)
	}
	return nil
}

func (s *Store) savePrices(ctx context.Context, prices []pricing.Priced) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	update, err := tx.PrepareContext(ctx, `UPDATE products SET surcharge_bp = ?, price_cents = ?, version = ? WHERE id = ?`)
	if err != nil {
		return fmt.Errorf("prepare: %w", err)
	}
	defer update.Close()
	for i := range prices {
		p := &prices[i]
		if _, err := update.ExecContext(ctx, int64(p.Surcharge), int64(p.Price), p.Version, p.ID[:]); err != nil {
			return fmt.Errorf("product %s: %w", p.ID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// CompleteRun raises Done to run.Gen and Version to run.Version, never lowering either,
// and returns the state after it.
func (s *Store) CompleteRun(ctx context.Context, run pricing.Run, now time.Time) (pricing.State, error) {
	st, err := s.completeRun(ctx, run, now)
	if err != nil {
		return pricing.State{}, fmt.Errorf("complete pricing run of generation %d, version %d: %w", run.Gen, run.Version, err)
	}
	return st, nil
}

func (s *Store) completeRun(ctx context.Context, run pricing.Run, now time.Time) (pricing.State, error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return pricing.State{}, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `UPDATE pricing_state SET done = max(done, ?), version = max(version, ?),
		completed_at = ? WHERE id = 1`, run.Gen, run.Version, micros(now)); err != nil {
		return pricing.State{}, err
	}
	st, err := readState(ctx, tx)
	if err != nil {
		return pricing.State{}, fmt.Errorf("read state: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return pricing.State{}, fmt.Errorf("commit: %w", err)
	}
	return st, nil
}

// scanPriced reads every row of rows, selected as productColumns, and closes it. n is a
// capacity hint.
func scanPriced(rows *sql.Rows, n int) ([]pricing.Priced, error) {
	defer rows.Close()
	ps := make([]pricing.Priced, 0, n)
	for rows.Next() {
		var (
			p                 pricing.Priced
			id, plan          sql.RawBytes
			numbered, soldOut int64
			start             int64
			surcharge, base   int64
			price             int64
		)
		if err := rows.Scan(&id, &plan, &p.ZoneID, &p.Name, &numbered, &base, &p.Capacity,
			&soldOut, &start, &p.Position, &surcharge, &price, &p.Version); err != nil {
			return nil, err
		}
		if len(id) != len(p.ID) || len(plan) != len(p.PlanID) {
			return nil, fmt.Errorf("product %x of plan %x: ids of %d and %d bytes, want %d", id, plan, len(id), len(plan), len(p.ID))
		}
		p.ID, p.PlanID = catalog.ID(id), catalog.ID(plan)
		p.Numbered, p.SoldOut = numbered != 0, soldOut != 0
		p.BasePrice, p.Surcharge, p.Price = catalog.Money(base), pricing.BasisPoints(surcharge), catalog.Money(price)
		p.StartsAt = unixUTC(start)
		ps = append(ps, p)
	}
	return ps, rows.Err()
}

// productWriter keeps the products of plans in step with their zones inside a plan
// upsert's transaction. Its statements are prepared on first use.
type productWriter struct {
	tx                           *sql.Tx
	byPlan, insert, update, drop *sql.Stmt
}

func (w *productWriter) prepare(ctx context.Context) error {
	if w.byPlan != nil {
		return nil
	}
	var err error
	prep := func(q string) *sql.Stmt {
		if err != nil {
			return nil
		}
		var st *sql.Stmt
		st, err = w.tx.PrepareContext(ctx, q)
		return st
	}
	w.insert = prep(`INSERT INTO products (id, plan_id, position, zone_id, name, numbered, base_price_cents, capacity)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
	w.update = prep(`UPDATE products SET position = ?, base_price_cents = ?, capacity = ? WHERE id = ?`)
	w.drop = prep(`DELETE FROM products WHERE id = ?`)
	w.byPlan = prep(`SELECT id, position, base_price_cents, capacity FROM products WHERE plan_id = ?`)
	if err != nil {
		w.Close()
		return fmt.Errorf("prepare product statements: %w", err)
	}
	return nil
}

// Close closes the prepared statements.
func (w *productWriter) Close() {
	for _, st := range []*sql.Stmt{w.byPlan, w.insert, w.update, w.drop} {
		if st != nil {
			st.Close()
		}
	}
	w.byPlan, w.insert, w.update, w.drop = nil, nil, nil, nil
}

// replace makes the products of plan those of zones (pricing.DiffProducts): it inserts
// the new ones, updates the position, base price and capacity of surviving IDs (whose
// priced columns stay), and deletes the vanished ones. had is false for a plan known to
// have no products, which saves reading them. Products here keep no SoldOut or
// StartsAt (they read them from their plan), so the diff compares neither.
func (w *productWriter) replace(ctx context.Context, plan catalog.ID, zones []catalog.Zone, had bool) error {
	if err := w.prepare(ctx); err != nil {
		return err
	}
	var have map[catalog.ID]pricing.Priced
	if had {
		var err error
		if have, err = w.stored(ctx, plan); err != nil {
			return fmt.Errorf("read products of plan %s: %w", plan, err)
		}
	}
	d := pricing.DiffProducts([]catalog.Plan{{ID: plan, Zones: zones}}, have)
	for _, p := range d.Added {
		if _, err := w.insert.ExecContext(ctx, p.ID[:], plan[:], p.Position, p.ZoneID, p.Name, p.Numbered,
			int64(p.BasePrice), p.Capacity); err != nil {
			return fmt.Errorf("write product %s of plan %s: %w", p.ID, plan, err)
		}
	}
	for _, p := range d.Moved {
		if _, err := w.update.ExecContext(ctx, p.Position, int64(p.BasePrice), p.Capacity, p.ID[:]); err != nil {
			return fmt.Errorf("write product %s of plan %s: %w", p.ID, plan, err)
		}
	}
	for _, id := range d.Gone {
		if _, err := w.drop.ExecContext(ctx, id[:]); err != nil {
			return fmt.Errorf("delete product %s of plan %s: %w", id, plan, err)
		}
	}
	return nil
}

// stored reads the products of plan: their position, base price and capacity.
func (w *productWriter) stored(ctx context.Context, plan catalog.ID) (map[catalog.ID]pricing.Priced, error) {
	rows, err := w.byPlan.QueryContext(ctx, plan[:])
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	have := make(map[catalog.ID]pricing.Priced)
	for rows.Next() {
		var (
			id sql.RawBytes
			p  pricing.Priced
		)
		if err := rows.Scan(&id, &p.Position, (*int64)(&p.BasePrice), &p.Capacity); err != nil {
			return nil, err
		}
		if len(id) != len(catalog.ID{}) {
			return nil, fmt.Errorf("product id %x: %d bytes", id, len(id))
		}
		p.ID = catalog.ID(id)
		have[p.ID] = p
	}
	return have, rows.Err()
}

// zonesBefore reads, before an upsert writes its plan rows, the stored zones of the
// plans whose products it may have to change: the ever-online plans it replaces the
// values of, and the plans that become ever-online with their stored values. The map is
// keyed by rowid.
func zonesBefore(ctx context.Context, tx *sql.Tx, obs []observation, old map[catalog.ID]stored) (map[int64][]byte, error) {
	var rowids []any
	for i := range obs {
		o := &obs[i]
		st := old[o.Plan.ID]
		if o.ever && (o.write == writeValues && st.everOnline || o.write == writeState) {
			rowids = append(rowids, st.rowid)
		}
	}
	zones := make(map[int64][]byte, len(rowids))
	err := queryIn(ctx, tx, `SELECT rowid, zones FROM plans WHERE rowid`, rowids, func(rows *sql.Rows) error {
		var (
			rowid int64
			raw   []byte
		)
		if err := rows.Scan(&rowid, &raw); err != nil {
			return err
		}
		zones[rowid] = raw
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read stored zones: %w", err)
	}
	return zones, nil
}

// writeProducts keeps products in step with the plan rows an upsert wrote, given the
// zones stored before it (zonesBefore): a plan ever-online after the upsert whose
// values it replaced gets the products of its new zones, unless they are the stored
// ones; a plan that became ever-online keeping its stored values gets the products of
// those. Only ever-online plans have products, so a plan that was not has none to read.
func writeProducts(ctx context.Context, tx *sql.Tx, obs []observation, old map[catalog.ID]stored, before map[int64][]byte) error {
	w := productWriter{tx: tx}
	defer w.Close()
	for i := range obs {
		o := &obs[i]
		if !o.ever {
			continue
		}
		st := old[o.Plan.ID]
		var (
			zones []catalog.Zone
			err   error
		)
		switch {
		case o.write == writeValues && st.everOnline && bytes.Equal(before[st.rowid], o.Zones):
			continue
		case o.write == writeValues:
			zones = o.Plan.Zones
		case o.write == writeState:
			if zones, err = catalog.DecodeZonesJSON(before[st.rowid]); err != nil {
				err = fmt.Errorf("plan %s: zones: %w", o.Plan.ID, err)
			}
		default:
			continue
		}
		if err != nil {
			return err
		}
		if err := w.replace(ctx, o.Plan.ID, zones, st.everOnline); err != nil {
			return err
		}
	}
	return nil
}

// backfillChunk is how many plans one backfill transaction gives products.
const backfillChunk = 500

// backfillProducts gives products to the ever-online plans with zones and none, which
// a database migrated before products existed has. It finds them on a read connection
// and writes each chunk in its own immediate transaction, checking again there, so it
// is idempotent and never holds the write lock for long. A database with nothing to
// fill costs one scan of the plans.
func (s *Store) backfillProducts(ctx context.Context) error {
	var after catalog.ID // plan IDs are UUIDv5, never zero
	for {
		ids, err := s.productlessPlans(ctx, after)
		if err != nil {
			return fmt.Errorf("find plans without products: %w", err)
		}
		if len(ids) == 0 {
			return nil
		}
		if err := s.fillProducts(ctx, ids); err != nil {
			return fmt.Errorf("give products to %d plans after %s: %w", len(ids), after, err)
		}
		after = ids[len(ids)-1]
	}
}

const productless = `ever_online = 1 AND zones <> '[]' AND NOT EXISTS (SELECT 1 FROM products WHERE plan_id = plans.id)`

func (s *Store) productlessPlans(ctx context.Context, after catalog.ID) ([]catalog.ID, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT id FROM plans WHERE id > ? AND `+productless+` ORDER BY id LIMIT ?`,
		after[:], backfillChunk)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []catalog.ID
	for rows.Next() {
		var id sql.RawBytes
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		if len(id) != len(catalog.ID{}) {
			return nil, fmt.Errorf("plan id %x: %d bytes", id, len(id))
		}
		ids = append(ids, catalog.ID(id))
	}
	return ids, rows.Err()
}

func (s *Store) fillProducts(ctx context.Context, ids []catalog.ID) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	w := productWriter{tx: tx}
	defer w.Close()
	for _, id := range ids {
		var raw []byte
		err := tx.QueryRowContext(ctx, `SELECT zones FROM plans WHERE id = ? AND `+productless, id[:]).Scan(&raw)
		if errors.Is(err, sql.ErrNoRows) {
			continue // given products since it was found
		}
		if err != nil {
			return fmt.Errorf("read zones of plan %s: %w", id, err)
		}
		zones, err := catalog.DecodeZonesJSON(raw)
		if err != nil {
			return fmt.Errorf("plan %s: zones: %w", id, err)
		}
		if err := w.replace(ctx, id, zones, false); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// micros returns t in Unix microseconds for a nullable column: NULL for the zero time.
func micros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

// atMicros returns t as the store returns it: in UTC, truncated to the microsecond.
func atMicros(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return time.UnixMicro(t.UnixMicro()).UTC()
}

// fromNullMicros is the inverse of micros: the time in UTC, or the zero time for NULL.
func fromNullMicros(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMicro(v.Int64).UTC()
}

// nullRate returns a rate for a nullable column: NULL for nil.
func nullRate(r *pricing.BasisPoints) any {
	if r == nil {
		return nil
	}
	return int64(*r)
}

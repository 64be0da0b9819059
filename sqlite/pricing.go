package sqlite

import (
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
// plan p, which gives its id, SoldOut and StartsAt.
const productColumns = `pr.id, p.id, pr.zone_id, pr.name, pr.numbered, pr.base_price_cents, pr.capacity,
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
	err = tx.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM products WHERE plan_seq = p.seq) FROM plans p
		WHERE p.id = ? AND p.ever_online = 1`, event[:]).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, pricing.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+productColumns+` FROM plans p JOIN products pr ON pr.plan_seq = p.seq
		WHERE p.id = ? ORDER BY pr.position`, event[:])
	if err != nil {
		return nil, err
	}
	return scanPriced(rows, n)
}

// Product returns one product, or pricing.ErrNotFound. SQLite has no replica: primary
// changes nothing.
func (s *Store) Product(ctx context.Context, id catalog.ID, primary bool) (pricing.Priced, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+productColumns+` FROM products pr JOIN plans p ON p.seq = pr.plan_seq
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
//
// Alike postgres's BeginRun in shape only: the fold is pricing.Fold; the transaction is SQLite's.
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
	if err := s.ckpt.commit(tx); err != nil {
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
	rows, err := s.read.QueryContext(ctx, `SELECT `+productColumns+` FROM products pr JOIN plans p ON p.seq = pr.plan_seq
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
	if err := s.ckpt.commit(tx); err != nil {
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
	if err := s.ckpt.commit(tx); err != nil {
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

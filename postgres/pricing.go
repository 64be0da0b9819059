package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"boxoffice/catalog"
	"boxoffice/pricing"
)

var _ pricing.Store = (*Store)(nil)

// productColumns are the columns of products that scanPriced reads, in its order.
const productColumns = `id, plan_id, position, zone_id, name, numbered, base_price_cents, capacity,
	sold_out, starts_at, surcharge_bp, price_cents, version`

// EventProducts returns the products of the ever-online plan event in zone order, read
// from the replica (see Store), or pricing.ErrNotFound.
func (s *Store) EventProducts(ctx context.Context, event catalog.ID) ([]pricing.Priced, error) {
	var products []pricing.Priced
	err := s.read(ctx, func(ctx context.Context, pool *pgxpool.Pool) error {
		var err error
		products, err = eventProducts(ctx, pool, event)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("products of event %s: %w", event, err)
	}
	return products, nil
}

func eventProducts(ctx context.Context, pool *pgxpool.Pool, event catalog.ID) ([]pricing.Priced, error) {
	rows, err := pool.Query(ctx, `SELECT `+productColumns+` FROM products WHERE plan_id = $1 ORDER BY position`,
		[16]byte(event))
	if err != nil {
		return nil, err
	}
	products, err := pgx.CollectRows(rows, scanPriced)
	if err != nil || len(products) > 0 {
		return products, err
	}
	// No products: an ever-online plan without zones, or no such plan.
	var known bool
	if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT FROM plans WHERE id = $1 AND ever_online)`,
		[16]byte(event)).Scan(&known); err != nil {
		return nil, err
	}
	if !known {
		return nil, pricing.ErrNotFound
	}
	return []pricing.Priced{}, nil
}

// Product returns one product, from the primary when primary is true, else from the
// replica (see Store), or pricing.ErrNotFound.
func (s *Store) Product(ctx context.Context, id catalog.ID, primary bool) (pricing.Priced, error) {
	var p pricing.Priced
	err := s.readOn(ctx, primary, func(ctx context.Context, pool *pgxpool.Pool) error {
		rows, err := pool.Query(ctx, `SELECT `+productColumns+` FROM products WHERE id = $1`, [16]byte(id))
		if err != nil {
			return err
		}
		p, err = pgx.CollectExactlyOneRow(rows, scanPriced)
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		err = pricing.ErrNotFound
	}
	if err != nil {
		return pricing.Priced{}, fmt.Errorf("product %s: %w", id, err)
	}
	return p, nil
}

// scanPriced reads a row selected as productColumns.
func scanPriced(row pgx.CollectableRow) (pricing.Priced, error) {
	var p pricing.Priced
	err := row.Scan((*[16]byte)(&p.ID), (*[16]byte)(&p.PlanID), &p.Position, &p.ZoneID, &p.Name, &p.Numbered,
		(*int64)(&p.BasePrice), &p.Capacity, &p.SoldOut, &p.StartsAt,
		(*int64)(&p.Surcharge), (*int64)(&p.Price), &p.Version)
	return p, err
}

// Market returns the market of location (its own, else the global one, else
// pricing.Neutral) and the pricing version, both read by one statement from the primary
// when primary is true, else from the replica (see Store).
func (s *Store) Market(ctx context.Context, location string, primary bool) (pricing.Market, int64, error) {
	m := pricing.Market{Location: location}
	var version int64
	err := s.readOn(ctx, primary, func(ctx context.Context, pool *pgxpool.Pool) error {
		// Each market row has both values, so a coalesce takes both from the same row.
		return pool.QueryRow(ctx, `SELECT coalesce(o.multiplier_bp, g.multiplier_bp, $3),
				coalesce(o.demand_bp, g.demand_bp, 0), s.version
			FROM pricing_state s
			LEFT JOIN markets o ON o.location = $1
			LEFT JOIN markets g ON g.location = $2
			WHERE s.id = 1`, location, pricing.GlobalLocation, int64(pricing.One),
		).Scan((*int64)(&m.Multiplier), (*int64)(&m.Demand), &version)
	})
	if err != nil {
		return pricing.Market{}, 0, fmt.Errorf("market %q: %w", location, err)
	}
	return m, version, nil
}

// readOn runs fn on the primary when primary is true, else as read does.
func (s *Store) readOn(ctx context.Context, primary bool, fn func(context.Context, *pgxpool.Pool) error) error {
	if primary {
		return fn(ctx, s.primary)
	}
	return s.read(ctx, fn)
}

// AddMarketEvent records ev on the primary and returns its id. The id is taken from
// pricing_state under its row lock, so ids are assigned in commit order and BeginRun,
// which holds that lock, never misses an event committed below the last it folded.
func (s *Store) AddMarketEvent(ctx context.Context, ev pricing.MarketEvent) (int64, error) {
	var id int64
	err := s.primary.QueryRow(ctx, `WITH s AS (UPDATE pricing_state SET events = events + 1 WHERE id = 1 RETURNING events)
		INSERT INTO market_events (id, location, multiplier_bp, demand_bp, source, received_at)
		SELECT events, $1, $2, $3, $4, $5 FROM s
		RETURNING id`,
		ev.Location, nullBasisPoints(ev.Multiplier), nullBasisPoints(ev.Demand), ev.Source, ev.ReceivedAt,
	).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("add market event for %q: %w", ev.Location, err)
	}
	return id, nil
}

func nullBasisPoints(b *pricing.BasisPoints) any {
	if b == nil {
		return nil
	}
	return int64(*b)
}

// storedTime returns t as a timestamptz column keeps it: in UTC, to the microsecond.
func storedTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// nullTime returns t for a nullable timestamptz column: NULL for the zero time.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return storedTime(t)
}

// stateColumns select a pricing.State from pricing_state, with $1 the task kind of
// recalculations.
const stateColumns = `coalesce((SELECT requested FROM task_generations WHERE kind = $1), 0), done, version, events, applied`

// PricingState reads the state from the primary.
func (s *Store) PricingState(ctx context.Context) (pricing.State, error) {
	var st pricing.State
	err := s.primary.QueryRow(ctx, `SELECT `+stateColumns+` FROM pricing_state WHERE id = 1`, pricing.Kind).
		Scan(&st.Requested, &st.Done, &st.Version, &st.Events, &st.Applied)
	if err != nil {
		return pricing.State{}, fmt.Errorf("read pricing state: %w", err)
	}
	return st, nil
}

// BeginRun folds the market events above the last folded one into markets, in id
// order, in one transaction on the primary that holds the pricing_state row lock: runs
// take turns, and AddMarketEvent waits, so no event can commit below the ones folded.
func (s *Store) BeginRun(ctx context.Context, now time.Time) (pricing.Run, error) {
	run, err := s.beginRun(ctx, now)
	if err != nil {
		return pricing.Run{}, fmt.Errorf("begin pricing run: %w", err)
	}
	return run, nil
}

func (s *Store) beginRun(ctx context.Context, now time.Time) (pricing.Run, error) {
	tx, err := s.primary.Begin(ctx)
	if err != nil {
		return pricing.Run{}, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(ctx)

	var (
		run     pricing.Run
		applied int64
		events  []pricing.MarketEvent
		markets = make(map[string]pricing.Market)
	)
	b := &pgx.Batch{}
	// First: the lock.
	b.Queue(`SELECT `+stateColumns+` FROM pricing_state WHERE id = 1 FOR UPDATE`, pricing.Kind).QueryRow(func(row pgx.Row) error {
		var st pricing.State
		if err := row.Scan(&st.Requested, &st.Done, &st.Version, &st.Events, &st.Applied); err != nil {
			return fmt.Errorf("lock pricing state: %w", err)
		}
		run.Gen, run.Version, applied = st.Requested, st.Version+1, st.Applied
		return nil
	})
	const pending = `SELECT applied FROM pricing_state WHERE id = 1`
	b.Queue(`SELECT id, location, multiplier_bp, demand_bp FROM market_events WHERE id > (` + pending + `) ORDER BY id`).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var (
				ev   pricing.MarketEvent
				m, d *int64
			)
			if err := rows.Scan(&ev.ID, &ev.Location, &m, &d); err != nil {
				return fmt.Errorf("read market events: %w", err)
			}
			ev.Multiplier, ev.Demand = (*pricing.BasisPoints)(m), (*pricing.BasisPoints)(d)
			events = append(events, ev)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read market events: %w", err)
		}
		return nil
	})
	b.Queue(`SELECT location, multiplier_bp, demand_bp FROM markets
		WHERE location = $1 OR location IN (SELECT location FROM market_events WHERE id > (`+pending+`))`,
		pricing.GlobalLocation).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var m pricing.Market
			if err := rows.Scan(&m.Location, (*int64)(&m.Multiplier), (*int64)(&m.Demand)); err != nil {
				return fmt.Errorf("read markets: %w", err)
			}
			markets[m.Location] = m
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read markets: %w", err)
		}
		return nil
	})
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return pricing.Run{}, err
	}

	if len(events) > 0 {
		changed := pricing.Fold(markets, events)
		locations, mult, demand := make([]string, len(changed)), make([]int64, len(changed)), make([]int64, len(changed))
		for i, m := range changed {
			locations[i], mult[i], demand[i] = m.Location, int64(m.Multiplier), int64(m.Demand)
		}
		last := events[len(events)-1].ID
		b := &pgx.Batch{}
		b.Queue(`INSERT INTO markets (location, multiplier_bp, demand_bp, updated_at, event_id)
			SELECT l, m, d, $4, $5 FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS u (l, m, d)
			ON CONFLICT (location) DO UPDATE SET multiplier_bp = excluded.multiplier_bp, demand_bp = excluded.demand_bp,
				updated_at = excluded.updated_at, event_id = excluded.event_id`,
			locations, mult, demand, storedTime(now), last)
		b.Queue(`UPDATE pricing_state SET applied = $1 WHERE id = 1`, max(applied, last))
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return pricing.Run{}, fmt.Errorf("fold %d market events: %w", len(events), err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return pricing.Run{}, fmt.Errorf("commit: %w", err)
	}
	run.Events = len(events)
	run.Global = pricing.MarketOf(markets, pricing.GlobalLocation)
	return run, nil
}

// CompleteRun publishes run on the primary: Done becomes at least run.Gen and Version at
// least run.Version, so a late completion of an older run never moves them back.
func (s *Store) CompleteRun(ctx context.Context, run pricing.Run, now time.Time) (pricing.State, error) {
	var st pricing.State
	err := s.primary.QueryRow(ctx, `UPDATE pricing_state
		SET done = greatest(done, $2), version = greatest(version, $3), completed_at = $4
		WHERE id = 1
		RETURNING `+stateColumns, pricing.Kind, run.Gen, run.Version, storedTime(now),
	).Scan(&st.Requested, &st.Done, &st.Version, &st.Events, &st.Applied)
	if err != nil {
		return pricing.State{}, fmt.Errorf("complete pricing run %d: %w", run.Version, err)
	}
	return st, nil
}

// ProductsAfter returns up to limit products with IDs above after, in ID order (the
// uuid order is the IDs' byte order), from the primary.
func (s *Store) ProductsAfter(ctx context.Context, after catalog.ID, limit int) ([]pricing.Priced, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.primary.Query(ctx, `SELECT `+productColumns+` FROM products WHERE id > $1 ORDER BY id LIMIT $2`,
		[16]byte(after), limit)
	if err != nil {
		return nil, fmt.Errorf("products after %s: %w", after, err)
	}
	products, err := pgx.CollectRows(rows, scanPriced)
	if err != nil {
		return nil, fmt.Errorf("products after %s: %w", after, err)
	}
	return products, nil
}

// SavePrices writes the Surcharge, Price and Version of each of prices by one statement,
// on the primary. Products no longer there (a plan change replaced them) are skipped. It
// holds the catalog_version row in share mode, so that it runs beside other price
// writers but never beside an upsert replacing products, which could deadlock with it.
func (s *Store) SavePrices(ctx context.Context, prices []pricing.Priced) error {
	if len(prices) == 0 {
		return nil
	}
	ids := make([][16]byte, len(prices))
	surcharge, price, version := make([]int64, len(prices)), make([]int64, len(prices)), make([]int64, len(prices))
	for i, p := range prices {
		ids[i], surcharge[i], price[i], version[i] = p.ID, int64(p.Surcharge), int64(p.Price), p.Version
	}
	err := pgx.BeginFunc(ctx, s.primary, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(`SELECT FROM catalog_version WHERE id = 1 FOR SHARE`)
		b.Queue(`UPDATE products p SET surcharge_bp = u.surcharge, price_cents = u.price, version = u.version
			FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::bigint[]) AS u (id, surcharge, price, version)
			WHERE p.id = u.id`, ids, surcharge, price, version)
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return fmt.Errorf("save %d prices: %w", len(prices), err)
	}
	return nil
}

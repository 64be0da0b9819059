package postgres

// Where the catalog meets the pricing. A product is a zone of an ever-online plan, so
// the plan upsert (UpsertPlans, plans.go) keeps products in step inside its own
// transaction: insertPlans copies the products of the new plans it inserts, computed
// from the batch, and for stored plans the merge stamps products_version on those whose
// products must change, and replaceProducts brings those in step.
// What the products of a plan are, and what changed in them, is the pricing's rule
// (pricing.DiffProducts, pricing.NewProducts); this file does the I/O.
//
// Products are kept in step with plans by UpsertPlans, in the transaction that changes a
// plan (see replaceProducts), and by Migrate for plans stored before there were products
// (see backfillProducts). Both hold the catalog_version lock, and SavePrices holds it in
// share mode, so a replacement never interleaves with a price write on the same rows.

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"boxoffice/catalog"
	"boxoffice/pricing"
)

// newProductColumns are the columns that copyProducts writes, in its order: a new
// product's, unpriced.
var newProductColumns = []string{"id", "plan_id", "position", "zone_id", "name", "numbered",
	"base_price_cents", "capacity", "sold_out", "starts_at"}

// replaceProducts brings in step, in tx, the products of the plans that the merge
// stamped with products_version next: those that became ever-online, and the
// ever-online ones whose zones, sold_out or starts_at changed.
//
// The products are computed in Go, from the batch's values where the stored ones are
// the same (the fingerprints match), else from the stored ones (a late online
// observation makes an older plan's newer stored values searchable), and compared with
// the stored ones: only the differences are written, and the product IDs that stay keep
// their prices.
func replaceProducts(ctx context.Context, tx pgx.Tx, obs []catalog.Observation, next int64) error {
	byID := make(map[catalog.ID]*catalog.Observation, len(obs))
	for i := range obs {
		byID[obs[i].Plan.ID] = &obs[i]
	}
	var (
		ids    [][16]byte
		plans  []catalog.Plan
		stored [][16]byte // plans whose stored values are not the batch's
	)
	rows, err := tx.Query(ctx, `SELECT id, fingerprint FROM plans
		WHERE ever_online AND version = $1 AND products_version = $1`, next)
	if err != nil {
		return fmt.Errorf("find plans with changed products: %w", err)
	}
	for rows.Next() {
		var (
			id          catalog.ID
			fingerprint int64
		)
		if err := rows.Scan((*[16]byte)(&id), &fingerprint); err != nil {
			rows.Close()
			return fmt.Errorf("find plans with changed products: %w", err)
		}
		ids = append(ids, id)
		if o := byID[id]; o != nil && o.Fingerprint == fingerprint {
			plans = append(plans, o.Plan)
		} else {
			stored = append(stored, id)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("find plans with changed products: %w", err)
	}
	if len(ids) == 0 {
		return nil
	}

	old := make(map[catalog.ID]pricing.Priced)
	b := &pgx.Batch{}
	if len(stored) > 0 {
		b.Queue(`SELECT id, zones, sold_out, starts_at FROM plans WHERE id = ANY($1)`, stored).Query(func(rows pgx.Rows) error {
			more, err := scanProductPlans(rows)
			plans = append(plans, more...)
			return err
		})
	}
	// A nested loop on products_plan: the transaction has hash and merge joins off.
	b.Queue(`SELECT p.id, p.position, p.base_price_cents, p.capacity, p.sold_out, p.starts_at
		FROM unnest($1::uuid[]) AS c (id) JOIN products p ON p.plan_id = c.id`, ids).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var p pricing.Priced
			if err := rows.Scan((*[16]byte)(&p.ID), &p.Position, (*int64)(&p.BasePrice), &p.Capacity,
				&p.SoldOut, &p.StartsAt); err != nil {
				return err
			}
			old[p.ID] = p
		}
		return rows.Err()
	})
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("read products of %d changed plans: %w", len(ids), err)
	}

	for i := range plans {
		plans[i].StartsAt = wallClock(plans[i].StartsAt) // as the column keeps it, so that only a change compares unequal
	}
	d := pricing.DiffProducts(plans, old)
	if err := copyProducts(ctx, tx, d.Added); err != nil {
		return err
	}
	return moveProducts(ctx, tx, d.Moved, d.Gone)
}

// moveProducts writes the position, base price, capacity, sold_out and starts_at of
// moved, keeping their prices, and deletes the products gone, in one round trip.
func moveProducts(ctx context.Context, tx pgx.Tx, moved []pricing.Priced, gone []catalog.ID) error {
	b := &pgx.Batch{}
	if n := len(moved); n > 0 {
		ids, pos, base, capacity := make([][16]byte, n), make([]int32, n), make([]int64, n), make([]int64, n)
		soldOut, startsAt := make([]bool, n), make([]time.Time, n)
		for i, p := range moved {
			ids[i], pos[i], base[i], capacity[i] = p.ID, int32(p.Position), int64(p.BasePrice), p.Capacity
			soldOut[i], startsAt[i] = p.SoldOut, p.StartsAt
		}
		b.Queue(`UPDATE products p SET position = u.position, base_price_cents = u.base, capacity = u.capacity,
				sold_out = u.sold_out, starts_at = u.starts_at
			FROM unnest($1::uuid[], $2::integer[], $3::bigint[], $4::bigint[], $5::boolean[], $6::timestamp[])
				AS u (id, position, base, capacity, sold_out, starts_at)
			WHERE p.id = u.id`, ids, pos, base, capacity, soldOut, startsAt)
	}
	if len(gone) > 0 {
		ids := make([][16]byte, len(gone))
		for i, id := range gone {
			ids[i] = id
		}
		b.Queue(`DELETE FROM products p USING unnest($1::uuid[]) AS g (id) WHERE p.id = g.id`, ids)
	}
	if b.Len() == 0 {
		return nil
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("update %d products, delete %d: %w", len(moved), len(gone), err)
	}
	return nil
}

// copyProducts inserts products that do not exist yet, unpriced.
func copyProducts(ctx context.Context, tx pgx.Tx, products []pricing.Priced) error {
	if len(products) == 0 {
		return nil
	}
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"products"}, newProductColumns, pgx.CopyFromSlice(len(products), func(i int) ([]any, error) {
		p := &products[i]
		return []any{[16]byte(p.ID), [16]byte(p.PlanID), int32(p.Position), p.ZoneID, p.Name, p.Numbered,
			int64(p.BasePrice), p.Capacity, p.SoldOut, wallClock(p.StartsAt)}, nil
	}))
	if err != nil {
		return fmt.Errorf("copy %d new products: %w", len(products), err)
	}
	return nil
}

// scanProductPlans reads every row of rows, plans selected as (id, zones, sold_out,
// starts_at): all that pricing.Products reads. It closes rows.
func scanProductPlans(rows pgx.Rows) ([]catalog.Plan, error) {
	defer rows.Close()
	var plans []catalog.Plan
	for rows.Next() {
		var (
			p     catalog.Plan
			zones []byte
		)
		if err := rows.Scan((*[16]byte)(&p.ID), &zones, &p.SoldOut, &p.StartsAt); err != nil {
			return nil, err
		}
		var err error
		if p.Zones, err = catalog.DecodeZonesJSON(zones); err != nil {
			return nil, fmt.Errorf("plan %s: zones: %w", p.ID, err)
		}
		plans = append(plans, p)
	}
	return plans, rows.Err()
}

// backfillPage is how many plans backfillProducts gives products per transaction.
const backfillPage = 5000

// backfillProducts gives products to the ever-online plans with zones that have none:
// plans stored before the products table existed. Each page of plans is a transaction
// that holds the catalog_version lock, so it never races an upsert. It runs while the
// chore is pending (migration 0011) and ends it, so a process that starts on a store
// where it is done reads one row, not every plan.
func (s *Store) backfillProducts(ctx context.Context) error {
	var pending bool
	if err := s.primary.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pending_chores WHERE name = $1)`,
		choreBackfillProducts).Scan(&pending); err != nil {
		return fmt.Errorf("read pending chores: %w", err)
	}
	if !pending {
		return nil
	}
	var after catalog.ID
	for {
		n, last, err := s.backfillPage(ctx, after)
		if err != nil {
			return fmt.Errorf("backfill products after plan %s: %w", after, err)
		}
		if n < backfillPage {
			break
		}
		after = last
	}
	if _, err := s.primary.Exec(ctx, `DELETE FROM pending_chores WHERE name = $1`, choreBackfillProducts); err != nil {
		return fmt.Errorf("end the products backfill: %w", err)
	}
	return nil
}

// choreBackfillProducts is backfillProducts' row in pending_chores.
const choreBackfillProducts = "backfill_products"

// backfillPage backfills up to backfillPage plans with IDs above after and returns how
// many it read and the last one's ID.
func (s *Store) backfillPage(ctx context.Context, after catalog.ID) (int, catalog.ID, error) {
	tx, err := s.primary.Begin(ctx)
	if err != nil {
		return 0, after, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT FROM catalog_version WHERE id = 1 FOR UPDATE`); err != nil {
		return 0, after, fmt.Errorf("lock catalog version: %w", err)
	}
	rows, err := tx.Query(ctx, `SELECT id, zones, sold_out, starts_at FROM plans p
		WHERE id > $1 AND ever_online AND jsonb_array_length(zones) > 0
			AND NOT EXISTS (SELECT FROM products WHERE plan_id = p.id)
		ORDER BY id LIMIT $2`, [16]byte(after), backfillPage)
	if err != nil {
		return 0, after, fmt.Errorf("read plans: %w", err)
	}
	plans, err := scanProductPlans(rows)
	if err != nil {
		return 0, after, fmt.Errorf("read plans: %w", err)
	}
	if len(plans) == 0 {
		return 0, after, nil
	}
	if err := copyProducts(ctx, tx, pricing.NewProducts(plans)); err != nil {
		return 0, after, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, after, fmt.Errorf("commit: %w", err)
	}
	return len(plans), plans[len(plans)-1].ID, nil
}

package sqlite

// Where the catalog meets the pricing. A product is a zone of an ever-online plan, so
// the plan upsert (UpsertPlans, plans.go) keeps products in step inside its own
// transaction, through two calls and nothing else: zonesBefore, before it writes the
// plan rows, and writeProducts, after. What the products of a plan are, and what
// changed in them, is the pricing's rule (pricing.DiffProducts, pricing.ProductIDs);
// this file does the I/O. Migrate backfills the products of plans stored before
// products existed (backfillProducts).

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"boxoffice/catalog"
	"boxoffice/pricing"
)

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
	w.insert = prep(`INSERT INTO products (plan_seq, id, position, zone_id, name, numbered, base_price_cents, capacity)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
	w.update = prep(`UPDATE products SET position = ?, base_price_cents = ?, capacity = ? WHERE plan_seq = ? AND id = ?`)
	w.drop = prep(`DELETE FROM products WHERE plan_seq = ? AND id = ?`)
	w.byPlan = prep(`SELECT id, position, base_price_cents, capacity FROM products WHERE plan_seq = ?`)
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

// replace makes the products of plan, stored under seq, those of zones
// (pricing.DiffProducts): it inserts
// the new ones, updates the position, base price and capacity of surviving IDs (whose
// priced columns stay), and deletes the vanished ones. had is false for a plan known to
// have no products, which saves reading them. Products here keep no SoldOut or
// StartsAt (they read them from their plan), so the diff compares neither.
func (w *productWriter) replace(ctx context.Context, plan catalog.ID, seq int64, zones []catalog.Zone, had bool) error {
	if err := w.prepare(ctx); err != nil {
		return err
	}
	var have map[catalog.ID]pricing.Priced
	if had {
		var err error
		if have, err = w.stored(ctx, seq); err != nil {
			return fmt.Errorf("read products of plan %s: %w", plan, err)
		}
	}
	d := pricing.DiffProducts([]catalog.Plan{{ID: plan, Zones: zones}}, have)
	for _, p := range d.Added {
		if _, err := w.insert.ExecContext(ctx, seq, p.ID[:], p.Position, p.ZoneID, p.Name, p.Numbered,
			int64(p.BasePrice), p.Capacity); err != nil {
			return fmt.Errorf("write product %s of plan %s: %w", p.ID, plan, err)
		}
	}
	for _, p := range d.Moved {
		if _, err := w.update.ExecContext(ctx, p.Position, int64(p.BasePrice), p.Capacity, seq, p.ID[:]); err != nil {
			return fmt.Errorf("write product %s of plan %s: %w", p.ID, plan, err)
		}
	}
	for _, id := range d.Gone {
		if _, err := w.drop.ExecContext(ctx, seq, id[:]); err != nil {
			return fmt.Errorf("delete product %s of plan %s: %w", id, plan, err)
		}
	}
	return nil
}

// stored reads the products of the plan stored under seq: their position, base price
// and capacity.
func (w *productWriter) stored(ctx context.Context, seq int64) (map[catalog.ID]pricing.Priced, error) {
	rows, err := w.byPlan.QueryContext(ctx, seq)
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
// keyed by seq.
func zonesBefore(ctx context.Context, tx *sql.Tx, obs []observation) (map[int64][]byte, error) {
	var seqs []any
	for i := range obs {
		o := &obs[i]
		st := o.old
		if o.ever && (o.write == writeValues && st.everOnline || o.write == writeState) {
			seqs = append(seqs, st.seq)
		}
	}
	zones := make(map[int64][]byte, len(seqs))
	err := queryIn(ctx, tx, `SELECT seq, zones FROM plans WHERE seq`, seqs, ``, func(rows *sql.Rows) error {
		var (
			seq int64
			raw []byte
		)
		if err := rows.Scan(&seq, &raw); err != nil {
			return err
		}
		zones[seq] = raw
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
func writeProducts(ctx context.Context, tx *writeTx, obs []observation, before map[int64][]byte) error {
	w := productWriter{tx: tx.Tx}
	defer w.Close()
	var (
		fresh []newProduct // of plans that had none
		ids   []catalog.ID
	)
	for i := range obs {
		o := &obs[i]
		if !o.ever {
			continue
		}
		st := o.old
		var (
			zones []catalog.Zone
			err   error
		)
		switch {
		case o.write == writeValues && st.everOnline && bytes.Equal(before[st.seq], o.Zones):
			continue
		case o.write == writeValues:
			zones = o.Plan.Zones
		case o.write == writeState:
			if zones, err = catalog.DecodeZonesJSON(before[st.seq]); err != nil {
				err = fmt.Errorf("plan %s: zones: %w", o.Plan.ID, err)
			}
		default:
			continue
		}
		if err != nil {
			return err
		}
		if !st.everOnline {
			if fresh == nil {
				fresh = make([]newProduct, 0, zoneCount(obs[i:]))
			}
			ids = pricing.ProductIDs(ids[:0], o.Plan.ID, zones)
			for pos, id := range ids {
				fresh = append(fresh, newProduct{id: id, seq: o.seq, position: int64(pos), zone: &zones[pos]})
			}
			continue
		}
		if err := w.replace(ctx, o.Plan.ID, o.seq, zones, true); err != nil {
			return err
		}
	}
	return insertProducts(ctx, tx, fresh)
}

// zoneCount is the number of zones of the plans of obs: at most as many products as a
// batch inserts, give or take the plans that become ever-online with their stored
// zones.
func zoneCount(obs []observation) int {
	n := 0
	for i := range obs {
		n += len(obs[i].Plan.Zones)
	}
	return n
}

// newProduct is a product of a plan that had none: its ID (pricing.ProductIDs), its
// plan's seq, its position and its zone, whose values are the product's (as in
// pricing.Products). At 40 bytes, where a pricing.Priced with a seq took 160, the
// products of a batch of 20 000 plans of two zones sort in 1.6 MB.
type newProduct struct {
	id       catalog.ID
	seq      int64
	position int64
	zone     *catalog.Zone
}

// insertProducts inserts products, of plans that had none, in product ID order with
// multi-row statements (bulkInsert): the products' ID index (products_id) takes their
// entries in one pass, as insertNew does the plans'. The table itself, keyed by plan
// seq, takes them at its end, among the pages the batch already holds. OR ROLLBACK and
// the key to the plan checked at commit (migration 0012) spare each statement a
// statement journal, as in insertNew.
func insertProducts(ctx context.Context, tx *writeTx, products []newProduct) error {
	if len(products) == 0 {
		return nil
	}
	slices.SortFunc(products, func(a, b newProduct) int { return bytes.Compare(a.id[:], b.id[:]) })
	ins := newBulkInsert(tx, `INSERT OR ROLLBACK INTO products (plan_seq, id, position, zone_id, name, numbered, base_price_cents, capacity)
		VALUES `, 8)
	defer ins.Close()
	for i := range products {
		p := &products[i]
		z := p.zone
		if err := ins.add(ctx, p.seq, p.id[:], p.position, z.ZoneID, z.Name, z.Numbered, int64(z.Price), z.Capacity); err != nil {
			return fmt.Errorf("insert %d products: %w", len(products), err)
		}
	}
	if err := ins.flush(ctx); err != nil {
		return fmt.Errorf("insert %d products: %w", len(products), err)
	}
	return nil
}

// backfillChunk is how many plans one backfill transaction gives products.
const backfillChunk = 500

// backfillProducts gives products to the ever-online plans with zones and none, which
// a database migrated before products existed has. It finds them on a read connection
// and writes each chunk in its own immediate transaction, checking again there, so it
// is idempotent and never holds the write lock for long. It runs while the chore is
// pending (migration 0011) and ends it, so a process that starts on a database where it
// is done reads one row, not every plan.
func (s *Store) backfillProducts(ctx context.Context) error {
	var pending bool
	if err := s.read.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pending_chores WHERE name = ?)`,
		choreBackfillProducts).Scan(&pending); err != nil {
		return fmt.Errorf("read pending chores: %w", err)
	}
	if !pending {
		return nil
	}
	var after catalog.ID // plan IDs are UUIDv5, never zero
	for {
		ids, err := s.productlessPlans(ctx, after)
		if err != nil {
			return fmt.Errorf("find plans without products: %w", err)
		}
		if len(ids) == 0 {
			if _, err := s.write.ExecContext(ctx, `DELETE FROM pending_chores WHERE name = ?`, choreBackfillProducts); err != nil {
				return fmt.Errorf("end the products backfill: %w", err)
			}
			return nil
		}
		if err := s.fillProducts(ctx, ids); err != nil {
			return fmt.Errorf("give products to %d plans after %s: %w", len(ids), after, err)
		}
		after = ids[len(ids)-1]
	}
}

// choreBackfillProducts is backfillProducts' row in pending_chores.
const choreBackfillProducts = "backfill_products"

const productless = `ever_online = 1 AND zones <> '[]' AND NOT EXISTS (SELECT 1 FROM products WHERE plan_seq = plans.seq)`

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
		var (
			seq int64
			raw []byte
		)
		err := tx.QueryRowContext(ctx, `SELECT seq, zones FROM plans WHERE id = ? AND `+productless, id[:]).Scan(&seq, &raw)
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
		if err := w.replace(ctx, id, seq, zones, false); err != nil {
			return err
		}
	}
	if err := s.ckpt.commit(tx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

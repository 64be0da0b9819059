package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"boxoffice/catalog"
	"boxoffice/ingest"
)

// lookupChunk is how many plan IDs one query of the stored state asks for, well under
// SQLite's limit of 32766 parameters.
const lookupChunk = 500

const planColumns = `id, provider, base_plan_id, plan_id, title, COALESCE(organizer_company_id, ''),
	sell_mode, starts_at, ends_at, sell_from, sell_to, sold_out, zones, revision, ever_online, version`

// UpsertPlans applies batch in one immediate transaction and returns the catalog version
// after it; see catalog.Store for the rules. The batch's plans are merged in Go (the
// highest revision wins, the first occurrence among equals), compared with the stored
// revision, ever-online flag and fingerprint of each, and only rows whose stored state
// moves are written, so a redelivered batch costs reads only. The same transaction keeps
// the products (pricing.Store) of the plans whose rows it wrote in step with their zones.
func (s *Store) UpsertPlans(ctx context.Context, batch []catalog.Plan) (int64, error) {
	if len(batch) == 0 {
		v, err := readVersion(ctx, s.read)
		if err != nil {
			return 0, fmt.Errorf("upsert no plans: %w", err)
		}
		return v, nil
	}
	v, err := s.upsert(ctx, observe(batch), nil)
	if err != nil {
		return 0, fmt.Errorf("upsert %d plans: %w", len(batch), err)
	}
	return v, nil
}

// observation is what one batch says about one plan (catalog.Observe), and what the
// upsert decided to write for it against the stored row.
type observation struct {
	*catalog.Observation // in the slice catalog.Observe returns: a copy took 7 MB a batch of 20 000

	old    stored // the stored row, when exists (lookup)
	exists bool

	write    writeKind
	seq      int64 // of the stored row, for writeState and writeRevision; writeRows sets it for writeValues
	revision int64
	ever     bool
	version  int64
}

func observe(batch []catalog.Plan) []observation {
	folded := catalog.Observe(batch)
	obs := make([]observation, len(folded))
	for i := range folded {
		obs[i].Observation = &folded[i]
	}
	return obs
}

type writeKind int

const (
	writeNothing  writeKind = iota
	writeValues             // insert the row or replace all its values
	writeState              // it becomes ever-online: revision, ever_online and version move
	writeRevision           // a newer observation of the same values: only the revision moves
)

// stored is the part of a stored plan that decides an upsert.
type stored struct {
	seq         int64 // the plan's key, stable: its products are stored under it
	revision    int64
	everOnline  bool
	fingerprint int64
	version     int64
}

// upsert applies obs and, unless sync is nil, records sync's batch (recordBatch), in
// one transaction.
func (s *Store) upsert(ctx context.Context, obs []observation, sync *ingest.Batch) (int64, error) {
	tx, err := s.beginWrite(ctx)
	if err != nil {
		return 0, fmt.Errorf("begin: %w", err)
	}
	defer tx.end()

	cur, err := readVersion(ctx, tx)
	if err != nil {
		return 0, err
	}
	byID := sortByID(obs)
	if err := lookup(ctx, tx.Tx, byID); err != nil {
		return 0, err
	}
	next := cur + 1
	floor := int64(math.MinInt64) // untracked: no sync is newer
	if sync != nil {
		if floor, err = latestSync(ctx, tx, sync.Provider); err != nil {
			return 0, err
		}
	}
	changed := decide(obs, cur, next, catalog.Floor{Tracked: sync != nil, Revision: floor})
	if !changed && !anyWrite(obs) && sync == nil {
		return cur, nil // a redelivery: nothing to commit
	}
	zones, err := zonesBefore(ctx, tx.Tx, obs)
	if err != nil {
		return 0, err
	}
	if err := writeRows(ctx, tx, obs, byID); err != nil {
		return 0, err
	}
	if err := writeProducts(ctx, tx, obs, zones); err != nil {
		return 0, err
	}
	v := cur
	if changed {
		v = next
		if _, err := tx.ExecContext(ctx, `UPDATE catalog_version SET version = ? WHERE id = 1`, v); err != nil {
			return 0, fmt.Errorf("advance catalog version: %w", err)
		}
	}
	if sync != nil {
		if err := recordBatch(ctx, tx.Tx, sync); err != nil {
			return 0, err
		}
	}
	if err := s.ckpt.commit(tx.Tx); err != nil {
		return 0, fmt.Errorf("commit: %w", err)
	}
	return v, nil
}

// decide sets what to write for each observation given its stored row, by
// catalog.Decide, stamping the plans whose searchable state changes with version next,
// and reports whether any did. cur is the catalog version before the batch.
func decide(obs []observation, cur, next int64, floor catalog.Floor) (changed bool) {
	for i := range obs {
		o := &obs[i]
		st, ok := o.old, o.exists
		var w catalog.Write
		w, o.revision, o.ever = catalog.Decide(o.Observation, catalog.Stored{
			Exists: ok, Revision: st.revision, EverOnline: st.everOnline, Fingerprint: st.fingerprint,
		}, floor)
		switch w {
		case catalog.WriteValues:
			o.write = writeValues
		case catalog.WriteState:
			o.write = writeState
		case catalog.WriteRevision:
			o.write = writeRevision
		default:
			o.write = writeNothing
			continue
		}
		o.seq, o.version = st.seq, cur
		if ok {
			o.version = st.version
		}
		if o.ever && (o.write == writeValues || !st.everOnline) {
			o.version = next
			changed = true
		}
	}
	return changed
}

func anyWrite(obs []observation) bool {
	for i := range obs {
		if obs[i].write != writeNothing {
			return true
		}
	}
	return false
}

// sortByID returns pointers to the observations of obs in ID order: the order in which
// lookup reads their stored rows and insertNew inserts the new ones.
func sortByID(obs []observation) []*observation {
	byID := make([]*observation, len(obs))
	for i := range obs {
		byID[i] = &obs[i]
	}
	slices.SortFunc(byID, func(a, b *observation) int { return bytes.Compare(a.Plan.ID[:], b.Plan.ID[:]) })
	return byID
}

// lookup sets the stored row of each observation of byID, in ID order, whose plan is
// stored. Its queries return the rows in ID order too, so it walks them beside byID:
// no map by ID (100 MB per 1M new plans in BenchmarkColdIngest).
func lookup(ctx context.Context, tx *sql.Tx, byID []*observation) error {
	ids := make([]any, len(byID))
	for i, o := range byID {
		ids[i] = o.Plan.ID[:]
	}
	next := 0 // of byID, the first that no row has passed
	err := queryIn(ctx, tx, `SELECT id, seq, revision, ever_online, fingerprint, version FROM plans WHERE id`, ids,
		`ORDER BY id`, func(rows *sql.Rows) error {
			var (
				id   sql.RawBytes
				st   stored
				ever int64
			)
			if err := rows.Scan(&id, &st.seq, &st.revision, &ever, &st.fingerprint, &st.version); err != nil {
				return err
			}
			st.everOnline = ever != 0
			for next < len(byID) && bytes.Compare(byID[next].Plan.ID[:], id) < 0 {
				next++
			}
			if next == len(byID) || !bytes.Equal(byID[next].Plan.ID[:], id) {
				return fmt.Errorf("plan %x: out of ID order", id)
			}
			byID[next].old, byID[next].exists = st, true
			next++
			return nil
		})
	if err != nil {
		return fmt.Errorf("read stored plans: %w", err)
	}
	return nil
}

// queryIn runs `head IN (?, …) tail` with the values of args, lookupChunk at a time,
// and calls scan on each row it reads.
func queryIn(ctx context.Context, tx *sql.Tx, head string, args []any, tail string, scan func(*sql.Rows) error) error {
	for start := 0; start < len(args); start += lookupChunk {
		chunk := args[start:min(start+lookupChunk, len(args))]
		q := head + ` IN (?` + strings.Repeat(",?", len(chunk)-1) + `) ` + tail
		if err := queryRows(ctx, tx, q, chunk, scan); err != nil {
			return err
		}
	}
	return nil
}

// queryRows runs q with args in db and calls scan on each row.
func queryRows(ctx context.Context, db querier, q string, args []any, scan func(*sql.Rows) error) error {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// writeRows writes the decided rows, and sets the seq of each row it inserts or
// replaces the values of. The new plans (none stored under their ID) go first, in
// insertNew; the rest with a prepared statement per kind of write.
func writeRows(ctx context.Context, tx *writeTx, obs []observation, byID []*observation) error {
	if err := insertNew(ctx, tx, byID); err != nil {
		return err
	}
	values, err := tx.PrepareContext(ctx, `INSERT INTO plans (id, provider, base_plan_id, plan_id, title,
		organizer_company_id, sell_mode, ever_online, starts_at, ends_at, sell_from, sell_to, sold_out,
		zones, min_price_cents, max_price_cents, revision, version, fingerprint)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET provider = excluded.provider, base_plan_id = excluded.base_plan_id,
		plan_id = excluded.plan_id, title = excluded.title, organizer_company_id = excluded.organizer_company_id,
		sell_mode = excluded.sell_mode, ever_online = excluded.ever_online, starts_at = excluded.starts_at,
		ends_at = excluded.ends_at, sell_from = excluded.sell_from, sell_to = excluded.sell_to,
		sold_out = excluded.sold_out, zones = excluded.zones, min_price_cents = excluded.min_price_cents,
		max_price_cents = excluded.max_price_cents, revision = excluded.revision, version = excluded.version,
		fingerprint = excluded.fingerprint
		RETURNING seq`)
	if err != nil {
		return fmt.Errorf("prepare plan upsert: %w", err)
	}
	defer values.Close()
	state, err := tx.PrepareContext(ctx, `UPDATE plans SET revision = ?, ever_online = 1, version = ? WHERE seq = ?`)
	if err != nil {
		return fmt.Errorf("prepare plan state update: %w", err)
	}
	defer state.Close()
	// Setting only the revision leaves every index alone.
	revision, err := tx.PrepareContext(ctx, `UPDATE plans SET revision = ? WHERE seq = ?`)
	if err != nil {
		return fmt.Errorf("prepare plan revision update: %w", err)
	}
	defer revision.Close()

	var row []any
	for i := range obs {
		o := &obs[i]
		p := &o.Plan
		if isNew(o) {
			continue // inserted by insertNew
		}
		switch o.write {
		case writeValues:
			row = o.appendRow(row[:0])
			err = values.QueryRowContext(ctx, row...).Scan(&o.seq)
		case writeState:
			_, err = state.ExecContext(ctx, o.revision, o.version, o.seq)
		case writeRevision:
			_, err = revision.ExecContext(ctx, o.revision, o.seq)
		}
		if err != nil {
			return fmt.Errorf("write plan %s: %w", p.ID, err)
		}
	}
	return nil
}

// insertNew inserts the plans of byID, in ID order, that are to write and not stored,
// with multi-row statements (bulkInsert), each taking the next seq: the plans' ID index
// (plans.id) then takes their entries in one pass from its first page to its last,
// each of its pages read and dirtied once per batch, where a random order may read a
// page again after the cache let it go. A new plan's seq is the next one, as the rowid
// SQLite picks would be. OR ROLLBACK: a statement of many rows that may abort on a
// constraint keeps a statement journal, to undo its own rows alone, in a temporary
// file: a write(2) of every page it changes, about 7 KiB a plan for the plans and as
// much for their products in BenchmarkColdIngest. A conflict here (none can happen: the
// transaction just read that no such ID is stored) fails the whole transaction, which
// fails anyway.
func insertNew(ctx context.Context, tx *writeTx, byID []*observation) error {
	n := 0
	for _, o := range byID {
		if isNew(o) {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	var seq int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(max(seq), 0) FROM plans`).Scan(&seq); err != nil {
		return fmt.Errorf("read the last plan seq: %w", err)
	}
	ins := newBulkInsert(tx, `INSERT OR ROLLBACK INTO plans (seq, id, provider, base_plan_id, plan_id, title,
		organizer_company_id, sell_mode, ever_online, starts_at, ends_at, sell_from, sell_to, sold_out,
		zones, min_price_cents, max_price_cents, revision, version, fingerprint) VALUES `, 20)
	defer ins.Close()
	row := make([]any, 0, 20)
	for _, o := range byID {
		if !isNew(o) {
			continue
		}
		seq++
		o.seq = seq
		row = o.appendRow(append(row[:0], o.seq))
		if err := ins.add(ctx, row...); err != nil {
			return fmt.Errorf("insert %d new plans: %w", n, err)
		}
	}
	if err := ins.flush(ctx); err != nil {
		return fmt.Errorf("insert %d new plans: %w", n, err)
	}
	return nil
}

// isNew tells whether o writes a plan that is not stored: one insertNew inserts.
func isNew(o *observation) bool {
	return !o.exists && o.write == writeValues
}

// appendRow appends to row the values of o's plan row, in the column order of the
// inserts from id to fingerprint: no organizer and no price range are NULL.
func (o *observation) appendRow(row []any) []any {
	p := &o.Plan
	var organizer, lo, hi any
	if p.OrganizerCompanyID != "" {
		organizer = p.OrganizerCompanyID
	}
	if l, h, ok := p.PriceRange(); ok {
		lo, hi = int64(l), int64(h)
	}
	return append(row, p.ID[:], p.Provider, p.BasePlanID, p.PlanID, p.Title,
		organizer, string(p.SellMode), o.ever, p.StartsAt.Unix(), p.EndsAt.Unix(),
		p.SellFrom.Unix(), p.SellTo.Unix(), p.SoldOut, string(o.Zones), lo, hi, o.revision, o.version, o.Fingerprint)
}

// SearchPlans returns the ever-online plans inside w, ordered by start, then ID, from
// the read pool.
func (s *Store) SearchPlans(ctx context.Context, w catalog.Window) ([]catalog.Plan, error) {
	plans := []catalog.Plan{}
	if err := s.EachPlan(ctx, w, func(p catalog.Plan) error {
		plans = append(plans, p)
		return nil
	}); err != nil {
		return nil, err
	}
	return plans, nil
}

// EachPlan calls fn with each ever-online plan inside w, ordered by start, then ID, as
// it reads them, from one query (one WAL snapshot): a window of any size in the memory
// of one plan. An error from fn stops the read and is returned as it is.
func (s *Store) EachPlan(ctx context.Context, w catalog.Window, fn func(catalog.Plan) error) error {
	from, to := windowBounds(w)
	// A plan never ends before it starts (catalog.Plan.Validate), so starts_at <= to
	// bounds the index range without losing any plan.
	rows, err := s.read.QueryContext(ctx, `SELECT `+planColumns+` FROM plans
		WHERE ever_online = 1 AND starts_at >= ? AND starts_at <= ? AND ends_at <= ?
		ORDER BY starts_at, id`, from, to, to)
	if err != nil {
		return fmt.Errorf("search plans: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		p, err := scanPlan(rows)
		if err != nil {
			return fmt.Errorf("search plans: %w", err)
		}
		if err := fn(p); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("search plans: %w", err)
	}
	return nil
}

// windowBounds returns w's bounds as stored times compare with them: the first whole
// second at or after From and the last at or before To, open bounds as the extremes.
func windowBounds(w catalog.Window) (from, to int64) {
	from, to = int64(math.MinInt64), int64(math.MaxInt64)
	if !w.From.IsZero() {
		from = w.From.Unix()
		if w.From.Nanosecond() > 0 {
			from++ // stored times are whole seconds: the first one at or after From
		}
	}
	if !w.To.IsZero() {
		to = w.To.Unix()
	}
	return from, to
}

// SearchPage returns at most limit ever-online plans inside w after the position after
// (from the start of w when nil), ordered by start, then ID, with the catalog version,
// both read in one read transaction (one WAL snapshot): a keyset query on the search
// index (plans_window), so a page costs the same wherever it is in the window.
func (s *Store) SearchPage(ctx context.Context, w catalog.Window, after *catalog.Position, limit int) (catalog.Page, error) {
	page, err := s.searchPage(ctx, w, after, limit)
	if err != nil {
		return catalog.Page{}, fmt.Errorf("search page: %w", err)
	}
	return page, nil
}

func (s *Store) searchPage(ctx context.Context, w catalog.Window, after *catalog.Position, limit int) (catalog.Page, error) {
	from, to := windowBounds(w)
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return catalog.Page{}, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	version, err := readVersion(ctx, tx)
	if err != nil {
		return catalog.Page{}, err
	}
	// One more than the page, to tell whether more follow.
	query, args := `SELECT `+planColumns+` FROM plans
		WHERE ever_online = 1 AND starts_at >= ? AND starts_at <= ? AND ends_at <= ?
		ORDER BY starts_at, id LIMIT ?`, []any{from, to, to, limit + 1}
	if after != nil {
		query, args = `SELECT `+planColumns+` FROM plans
		WHERE ever_online = 1 AND starts_at >= ? AND starts_at <= ? AND ends_at <= ? AND (starts_at, id) > (?, ?)
		ORDER BY starts_at, id LIMIT ?`, []any{from, to, to, after.Start, after.ID[:], limit + 1}
	}
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return catalog.Page{}, err
	}
	plans, err := scanPlans(rows, limit+1)
	if err != nil {
		return catalog.Page{}, err
	}
	return catalog.NewPage(plans, version, limit), nil
}

// ChangedSince returns the ever-online plans changed after version, in no particular
// order, and the catalog version, both read in one read transaction: WAL gives it one
// snapshot, so the plans are exactly those of the version it reports.
func (s *Store) ChangedSince(ctx context.Context, version int64) (catalog.Changes, error) {
	var ch catalog.Changes
	var err error
	// One page of any length: its slice is never reused, so it is the result.
	ch.Version, err = s.eachChange(ctx, version, math.MaxInt, func(page catalog.Changes) error {
		ch.Plans = page.Plans
		return nil
	})
	if err != nil {
		return catalog.Changes{}, fmt.Errorf("plans changed since version %d: %w", version, err)
	}
	return ch, nil
}

// EachChange calls fn with the ever-online plans changed after version in pages of at
// most limit, and returns the catalog version, all read by one query in one read
// transaction: one WAL snapshot, as ChangedSince. Rows are read as fn takes the pages,
// so a catalog of any size costs the memory of a page. An error from fn stops the read
// and is returned as it is.
func (s *Store) EachChange(ctx context.Context, version int64, limit int, fn func(catalog.Changes) error) (int64, error) {
	var fnErr error
	v, err := s.eachChange(ctx, version, limit, func(page catalog.Changes) error {
		fnErr = fn(page)
		return fnErr
	})
	switch {
	case fnErr != nil:
		return 0, fnErr
	case err != nil:
		return 0, fmt.Errorf("plans changed since version %d: %w", version, err)
	}
	return v, nil
}

func (s *Store) eachChange(ctx context.Context, version int64, limit int, fn func(catalog.Changes) error) (int64, error) {
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return 0, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	cur, err := readVersion(ctx, tx)
	if err != nil {
		return 0, err
	}
	if version >= cur {
		return cur, nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+planColumns+` FROM plans WHERE ever_online = 1 AND version > ?`, version) //nolint:rowserrcheck // catalog.EachPage checks rows.Err
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
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func readVersion(ctx context.Context, q queryer) (int64, error) {
	var v int64
	if err := q.QueryRowContext(ctx, `SELECT version FROM catalog_version WHERE id = 1`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read catalog version: %w", err)
	}
	return v, nil
}

// scanPlans reads every row of rows, selected as planColumns, and closes it. n is a
// capacity hint.
func scanPlans(rows *sql.Rows, n int) ([]catalog.Plan, error) {
	defer rows.Close()
	plans := make([]catalog.Plan, 0, n)
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
func scanPlan(rows *sql.Rows) (catalog.Plan, error) {
	var (
		p                            catalog.Plan
		id, zones                    sql.RawBytes
		mode                         string
		start, end, sellFrom, sellTo int64
		soldOut, ever                int64
	)
	if err := rows.Scan(&id, &p.Provider, &p.BasePlanID, &p.PlanID, &p.Title, &p.OrganizerCompanyID,
		&mode, &start, &end, &sellFrom, &sellTo, &soldOut, &zones, &p.Revision, &ever, &p.Version); err != nil {
		return catalog.Plan{}, err
	}
	if len(id) != len(p.ID) {
		return catalog.Plan{}, fmt.Errorf("plan id %x: %d bytes, want %d", id, len(id), len(p.ID))
	}
	p.ID = catalog.ID(id)
	p.SellMode = catalog.SellMode(mode)
	p.StartsAt, p.EndsAt = unixUTC(start), unixUTC(end)
	p.SellFrom, p.SellTo = unixUTC(sellFrom), unixUTC(sellTo)
	p.SoldOut, p.EverOnline = soldOut != 0, ever != 0
	var err error
	if p.Zones, err = catalog.DecodeZonesJSON(zones); err != nil {
		return catalog.Plan{}, fmt.Errorf("plan %s: zones: %w", p.ID, err)
	}
	return p, nil
}

func unixUTC(sec int64) time.Time { return time.Unix(sec, 0).UTC() }

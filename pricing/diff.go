package pricing

import "boxoffice/catalog"

// NewProducts returns the products of plans, each plan's in its zone order with its
// Position, unpriced: what a store writes for plans that have none (a plan that
// becomes ever-online, or the backfill of plans stored before products existed).
func NewProducts(plans []catalog.Plan) []Priced {
	n := 0
	for i := range plans {
		n += len(plans[i].Zones)
	}
	out := make([]Priced, 0, n)
	for i := range plans {
		for pos, p := range Products(plans[i]) {
			out = append(out, Priced{Product: p, Position: pos})
		}
	}
	return out
}

// ProductDiff is what a store writes to bring the stored products of some plans in
// step with the plans' values.
type ProductDiff struct {
	Added []Priced     // products to insert, unpriced
	Moved []Priced     // products whose plan-derived values changed; their prices stay
	Gone  []catalog.ID // products to delete
}

// DiffProducts compares the products of plans with old, the stored products of the
// same plans by ID (which it consumes: what is left in it is gone), and returns what
// to write. A product is moved
// when its Position, BasePrice, Capacity, SoldOut or StartsAt differ from the stored
// one's; its ID already says its zone id, name and numbered flag. A store that does not
// keep SoldOut or StartsAt per product passes plans and old without them. Gone is in
// no particular order.
func DiffProducts(plans []catalog.Plan, old map[catalog.ID]Priced) ProductDiff {
	var d ProductDiff
	for _, now := range NewProducts(plans) {
		was, ok := old[now.ID]
		switch {
		case !ok:
			d.Added = append(d.Added, now)
		case was.Position != now.Position || was.BasePrice != now.BasePrice || was.Capacity != now.Capacity ||
			was.SoldOut != now.SoldOut || !was.StartsAt.Equal(now.StartsAt):
			d.Moved = append(d.Moved, now)
		}
		delete(old, now.ID)
	}
	for id := range old {
		d.Gone = append(d.Gone, id)
	}
	return d
}

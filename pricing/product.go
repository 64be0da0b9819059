package pricing

import (
	"crypto/sha1"
	"strconv"
	"time"

	"boxoffice/catalog"
)

// ProductNamespace is the UUID namespace of product IDs. Changing it changes every ID.
var ProductNamespace = catalog.ID{0x6b, 0x3e, 0x1f, 0x52, 0x0c, 0x8d, 0x4a, 0x61, 0x9e, 0x27, 0x55, 0xd4, 0x10, 0xa9, 0xc3, 0x7f}

// Product is one zone of one plan, as priced.
type Product struct {
	ID        catalog.ID
	PlanID    catalog.ID
	ZoneID    string
	Name      string
	Numbered  bool
	BasePrice catalog.Money // the provider's price
	Capacity  int64         // remaining, as the provider last said
	SoldOut   bool          // the plan's sold_out flag
	StartsAt  time.Time     // the plan's start, for urgency
}

// NewProductID returns the ID of the occurrence-th zone (0 for the first) of plan whose
// zone_id, numbered flag and name are the given ones: a UUIDv5 in ProductNamespace of
// "<plan id>/<zone_id>/<numbered>/<name>/<occurrence>".
func NewProductID(plan catalog.ID, zoneID string, numbered bool, name string, occurrence int) catalog.ID {
	b := make([]byte, 0, 128) // on the stack unless the names are long
	b = append(b, ProductNamespace[:]...)
	b = plan.AppendText(b)
	b = append(append(append(b, '/'), zoneID...), '/')
	b = strconv.AppendBool(b, numbered)
	b = append(append(append(b, '/'), name...), '/')
	b = strconv.AppendInt(b, int64(occurrence), 10)
	sum := sha1.Sum(b)
	var id catalog.ID
	copy(id[:], sum[:])
	id[6] = id[6]&0x0f | 0x50 // version 5
	id[8] = id[8]&0x3f | 0x80 // RFC 4122 variant
	return id
}

// Products returns the products of plan p, one per zone in the provider's order.
func Products(p catalog.Plan) []Product {
	var buf [8]catalog.ID
	ids := ProductIDs(buf[:0], p.ID, p.Zones)
	out := make([]Product, len(p.Zones))
	for i, z := range p.Zones {
		out[i] = Product{
			ID:        ids[i],
			PlanID:    p.ID,
			ZoneID:    z.ZoneID,
			Name:      z.Name,
			Numbered:  z.Numbered,
			BasePrice: z.Price,
			Capacity:  z.Capacity,
			SoldOut:   p.SoldOut,
			StartsAt:  p.StartsAt,
		}
	}
	return out
}

// ProductIDs appends to ids the IDs of the products of the plan with ID plan and
// zones, in zone order: those of Products, without the products, for a store that
// writes the zones' values as they are (the SQLite store's cold ingest, where the
// products of 1M plans cost 2.3 GB of garbage).
func ProductIDs(ids []catalog.ID, plan catalog.ID, zones []catalog.Zone) []catalog.ID {
	type key struct {
		zoneID, name string
		numbered     bool
	}
	seen := make(map[key]int) // no size: on the stack up to 8 zones
	for _, z := range zones {
		k := key{z.ZoneID, z.Name, z.Numbered}
		ids = append(ids, NewProductID(plan, z.ZoneID, z.Numbered, z.Name, seen[k]))
		seen[k]++
	}
	return ids
}

// Priced is a product with what the last recalculation computed for it.
type Priced struct {
	Product
	Position  int         // the zone's place in the plan's zones, from 0
	Surcharge BasisPoints // demand from scarcity and urgency, before market demand and the clamp
	Price     catalog.Money
	// Price is the list price: at the global market, without discount.
	Version int64 // the pricing version Surcharge and Price were computed for; 0: never
}

// Package catalogtest holds the contract suite that every catalog.Store adapter runs,
// TestStore, and helpers that build test plans for it and for other tests.
package catalogtest

import (
	"fmt"
	"time"

	"boxoffice/catalog"
)

// Provider is the provider of the plans NewPlan builds.
const Provider = "catalogtest"

// Epoch is when the plans NewPlan builds start unless told otherwise: a provider wall
// clock at second precision, as UTC, like every time a parser emits.
var Epoch = time.Date(2021, time.June, 30, 21, 0, 0, 0, time.UTC)

// Option changes a plan that NewPlan builds.
type Option func(*catalog.Plan)

// NewPlan returns a valid plan of base plan base with plan id plan: online, at
// Revision 1, starting at Epoch for two hours, on sale the month before, with one
// zone, its ID derived from Provider, base and plan as ingest derives it. Options
// change it; they run in order.
func NewPlan(base, plan string, opts ...Option) catalog.Plan {
	p := catalog.Plan{
		ID:                 catalog.NewID(Provider, base, plan),
		Provider:           Provider,
		BasePlanID:         base,
		PlanID:             plan,
		Title:              "Plan " + base,
		OrganizerCompanyID: "org-" + base,
		SellMode:           catalog.Online,
		StartsAt:           Epoch,
		EndsAt:             Epoch.Add(2 * time.Hour),
		SellFrom:           Epoch.AddDate(0, -1, 0),
		SellTo:             Epoch.Add(-time.Hour),
		Zones: []catalog.Zone{
			{ZoneID: "1", Name: "Platea", Capacity: 100, Price: 2000, Numbered: true},
		},
		Revision: 1,
	}
	for _, o := range opts {
		o(&p)
	}
	return p
}

// At makes the plan start at start and last d. It panics on a negative d, which no
// valid plan has.
func At(start time.Time, d time.Duration) Option {
	if d < 0 {
		panic(fmt.Sprintf("catalogtest.At: negative duration %s", d))
	}
	return func(p *catalog.Plan) {
		p.StartsAt = start
		p.EndsAt = start.Add(d)
	}
}

// Revision sets the plan's Revision, the order of observations of the same plan.
func Revision(r int64) Option {
	return func(p *catalog.Plan) { p.Revision = r }
}

// Title sets the plan's title, the easiest value to tell two observations apart by.
func Title(s string) Option {
	return func(p *catalog.Plan) { p.Title = s }
}

// Zones replaces the plan's zones; with no argument the plan has none.
func Zones(z ...catalog.Zone) Option {
	return func(p *catalog.Plan) { p.Zones = z }
}

// Offline makes the plan observed inside a base plan that is not sold online.
func Offline(p *catalog.Plan) { p.SellMode = catalog.Offline }

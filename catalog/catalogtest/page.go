package catalogtest

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"boxoffice/catalog"
)

// Pager is a Store that reads a window a page at a time (httpapi.PageStore): the
// capability paginated searches of a catalog without an index use.
type Pager interface {
	SearchPage(ctx context.Context, w catalog.Window, after *catalog.Position, limit int) (catalog.Page, error)
}

// TestPages runs the page contract against an adapter that implements Pager: paging
// through a window by keyset, at any page size, returns exactly what SearchPlans does,
// in order, with the catalog version, and says on which page it ends. open is as for
// TestStore.
func TestPages(t *testing.T, open func(t *testing.T) catalog.Store) {
	t.Parallel()
	s := open(t)
	pager, ok := s.(Pager)
	if !ok {
		t.Fatalf("%T does not implement catalogtest.Pager", s)
	}
	var plans []catalog.Plan
	for i := range 7 { // a tie on the start: the ID orders them
		plans = append(plans, NewPlan("tie", strconv.Itoa(i)))
	}
	for i := range 6 {
		plans = append(plans, NewPlan("day", strconv.Itoa(i), At(Epoch.AddDate(0, 0, i-2), time.Hour)))
	}
	plans = append(plans,
		NewPlan("long", "1", At(Epoch.Add(time.Minute), 10*24*time.Hour)), // starts inside the bounded window, ends after it
		NewPlan("off", "1", Offline),
	)
	v := upsert(t, s, plans...)
	upsert(t, s, NewPlan("off", "2", Offline)) // unsearchable: the version stays

	windows := []catalog.Window{
		{},
		{From: Epoch, To: Epoch.AddDate(0, 0, 2)},
		{From: Epoch.Add(time.Nanosecond)},
		{From: Epoch.AddDate(1, 0, 0)},
	}
	for _, w := range windows {
		want := search(t, s, w)
		for _, limit := range []int{1, 2, 3, 7, 100} {
			t.Run(formatWindow(w)+"/"+strconv.Itoa(limit), func(t *testing.T) {
				var got []catalog.Plan
				var after *catalog.Position
				for pages := 0; ; pages++ {
					if pages > len(want)+1 {
						t.Fatalf("SearchPage(%s, limit %d): more than %d pages", formatWindow(w), limit, pages)
					}
					page, err := pager.SearchPage(t.Context(), w, after, limit)
					if err != nil {
						t.Fatalf("SearchPage(%s, %v, %d): %v", formatWindow(w), after, limit, err)
					}
					checkUTC(t, "SearchPage", page.Plans)
					if page.Version != v {
						t.Errorf("SearchPage(%s).Version = %d, want %d", formatWindow(w), page.Version, v)
					}
					if len(page.Plans) > limit || page.More && len(page.Plans) != limit {
						t.Fatalf("SearchPage(%s, %v, %d) = %d plans, more %v", formatWindow(w), after, limit, len(page.Plans), page.More)
					}
					got = append(got, page.Plans...)
					if !page.More {
						break
					}
					last := catalog.PositionOf(page.Plans[len(page.Plans)-1])
					after = &last
				}
				if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("pages of %s at %d mismatch SearchPlans (-want +got):\n%s", formatWindow(w), limit, diff)
				}
			})
		}
	}

	t.Run("AfterTheLast", func(t *testing.T) {
		all := search(t, s, catalog.Window{})
		last := catalog.PositionOf(all[len(all)-1])
		page, err := pager.SearchPage(t.Context(), catalog.Window{}, &last, 10)
		if err != nil || len(page.Plans) != 0 || page.More {
			t.Errorf("SearchPage(after the last) = %d plans, more %v, %v; want none", len(page.Plans), page.More, err)
		}
		// A position no plan has resumes at the next one.
		mid := catalog.Position{Start: Epoch.Unix(), ID: catalog.ID{}}
		page, err = pager.SearchPage(t.Context(), catalog.Window{}, &mid, 1)
		i := slices.IndexFunc(all, func(p catalog.Plan) bool { return !p.StartsAt.Before(Epoch) })
		if err != nil || len(page.Plans) != 1 || page.Plans[0].ID != all[i].ID {
			t.Errorf("SearchPage(after a position between plans) = %v, %v; want %s", page.Plans, err, all[i].ID)
		}
	})
}

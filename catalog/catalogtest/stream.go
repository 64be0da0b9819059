package catalogtest

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"boxoffice/catalog"
)

// Streamer is a Store that hands a window's plans over one at a time as it reads them
// (httpapi.StreamStore): the capability unpaginated searches of a catalog without an
// index use to stream a window of any size in bounded memory.
type Streamer interface {
	EachPlan(ctx context.Context, w catalog.Window, fn func(catalog.Plan) error) error
}

// TestStream runs the stream contract against an adapter that implements Streamer:
// EachPlan gives exactly what SearchPlans returns, in order, one plan at a time; an
// error from fn stops it at once and comes back as it is; a canceled context fails
// it. open is as for TestStore.
func TestStream(t *testing.T, open func(t *testing.T) catalog.Store) {
	t.Parallel()
	s := open(t)
	st, ok := s.(Streamer)
	if !ok {
		t.Fatalf("%T does not implement catalogtest.Streamer", s)
	}
	var plans []catalog.Plan
	for i := range 5 { // a tie on the start: the ID orders them
		plans = append(plans, NewPlan("tie", strconv.Itoa(i)))
	}
	for i := range 40 {
		plans = append(plans, NewPlan("hour", strconv.Itoa(i), At(Epoch.Add(time.Duration(i-20)*time.Hour), time.Hour)))
	}
	plans = append(plans, NewPlan("off", "1", Offline))
	upsert(t, s, plans...)

	for _, w := range []catalog.Window{
		{},
		{From: Epoch, To: Epoch.Add(5 * time.Hour)},
		{From: Epoch.Add(time.Nanosecond)},
		{From: Epoch.AddDate(1, 0, 0)},
	} {
		want := search(t, s, w)
		var got []catalog.Plan
		if err := st.EachPlan(t.Context(), w, func(p catalog.Plan) error {
			got = append(got, p)
			return nil
		}); err != nil {
			t.Fatalf("EachPlan(%s): %v", formatWindow(w), err)
		}
		checkUTC(t, "EachPlan", got)
		if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("EachPlan(%s) mismatch SearchPlans (-want +got):\n%s", formatWindow(w), diff)
		}
	}

	stop := errors.New("enough")
	calls := 0
	if err := st.EachPlan(t.Context(), catalog.Window{}, func(catalog.Plan) error {
		calls++
		if calls == 3 {
			return stop
		}
		return nil
	}); err != stop || calls != 3 { // fn's error comes back as it is, not wrapped
		t.Errorf("EachPlan with fn failing on the 3rd plan = %v after %d calls, want %v after 3", err, calls, stop)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := st.EachPlan(ctx, catalog.Window{}, func(catalog.Plan) error { return nil }); err == nil {
		t.Errorf("EachPlan(canceled context) = nil, want an error")
	}
}

package catalog

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func at(s string) time.Time {
	t, err := time.Parse(time.DateTime, s)
	if err != nil {
		panic(err)
	}
	return t
}

func plan(base, id, start, end string) Plan {
	return Plan{ID: NewID("p", base, id), Provider: "p", BasePlanID: base, PlanID: id, SellMode: Online,
		StartsAt: at(start), EndsAt: at(end), Title: base + "/" + id}
}

// encodeTitle encodes a plan as its title, so that results read as titles.
func encodeTitle(p Plan) []byte { return []byte(p.Title) }

func search(ix *Index, w Window) []string {
	var got []string
	for doc := range ix.Search(w) {
		got = append(got, string(doc))
	}
	return got
}

func TestIndexSearch(t *testing.T) {
	ix := NewIndex(1, []Plan{
		plan("a", "1", "2021-06-30 21:00:00", "2021-06-30 22:00:00"),
		plan("b", "1", "2021-02-10 20:00:00", "2021-02-10 21:30:00"),
		plan("c", "1", "2021-07-31 20:00:00", "2021-07-31 21:00:00"),
		plan("d", "1", "2021-07-31 20:30:00", "2021-08-01 01:00:00"),
	}, encodeTitle)
	tests := []struct {
		name     string
		from, to string
		want     []string
	}{
		{"everything", "", "", []string{"b/1", "a/1", "c/1", "d/1"}},
		{"open end", "2021-06-30 21:00:00", "", []string{"a/1", "c/1", "d/1"}},
		{"open start", "", "2021-07-31 21:00:00", []string{"b/1", "a/1", "c/1"}},
		{"exact plan", "2021-06-30 21:00:00", "2021-06-30 22:00:00", []string{"a/1"}},
		{"a second too short", "2021-06-30 21:00:00", "2021-06-30 21:59:59", nil},
		{"starts too early", "2021-06-30 21:00:01", "2021-06-30 23:00:00", nil},
		{"before everything", "2020-01-01 00:00:00", "2020-12-31 00:00:00", nil},
		{"ends past window", "2021-07-31 00:00:00", "2021-07-31 23:59:59", []string{"c/1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w Window
			if tt.from != "" {
				w.From = at(tt.from)
			}
			if tt.to != "" {
				w.To = at(tt.to)
			}
			if diff := cmp.Diff(tt.want, search(ix, w)); diff != "" {
				t.Errorf("Search(%s..%s) (-want +got):\n%s", tt.from, tt.to, diff)
			}
		})
	}
}

func TestIndexOrdersTiesByID(t *testing.T) {
	var plans []Plan
	for _, base := range []string{"x", "y", "z", "w", "v"} {
		plans = append(plans, plan(base, "1", "2021-01-01 10:00:00", "2021-01-01 11:00:00"))
	}
	ix := NewIndex(1, plans, func(p Plan) []byte { return []byte(p.ID.String()) })
	got := search(ix, Window{})
	if !slices.IsSorted(got) || len(got) != len(plans) {
		t.Errorf("Search() = %v, want all %d ids in ascending order", got, len(plans))
	}
}

func TestIndexFractionalBounds(t *testing.T) {
	ix := NewIndex(1, []Plan{plan("a", "1", "2021-01-01 10:00:00", "2021-01-01 11:00:00")}, encodeTitle)
	w := Window{From: at("2021-01-01 09:59:59").Add(500 * time.Millisecond), To: at("2021-01-01 11:00:00").Add(500 * time.Millisecond)}
	if got := search(ix, w); len(got) != 1 {
		t.Errorf("Search(%v) = %v, want the plan", w, got)
	}
	w.From = at("2021-01-01 10:00:00").Add(time.Millisecond)
	if got := search(ix, w); len(got) != 0 {
		t.Errorf("Search(%v) = %v, want nothing: the plan starts before", w, got)
	}
}

func TestIndexApply(t *testing.T) {
	a := plan("a", "1", "2021-01-01 10:00:00", "2021-01-01 11:00:00")
	b := plan("b", "1", "2021-01-02 10:00:00", "2021-01-02 11:00:00")
	ix1 := NewIndex(1, []Plan{a, b}, encodeTitle)

	moved := a
	moved.StartsAt, moved.EndsAt = at("2021-01-03 10:00:00"), at("2021-01-03 11:00:00")
	moved.Title = "a moved"
	c := plan("c", "1", "2021-01-01 09:00:00", "2021-01-01 09:30:00")
	ix2 := ix1.Apply(Changes{Plans: []Plan{moved, c}, Version: 2}, encodeTitle)

	if diff := cmp.Diff([]string{"c/1", "b/1", "a moved"}, search(ix2, Window{})); diff != "" {
		t.Errorf("after Apply (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"a/1", "b/1"}, search(ix1, Window{})); diff != "" {
		t.Errorf("Apply changed the old index (-want +got):\n%s", diff)
	}
	if ix2.Version() != 2 || ix2.Len() != 3 || ix2.Size() != len("c/1b/1a moved") {
		t.Errorf("Version, Len, Size = %d, %d, %d, want 2, 3, %d", ix2.Version(), ix2.Len(), ix2.Size(), len("c/1b/1a moved"))
	}
	var nilIndex *Index
	if got := nilIndex.Apply(Changes{Plans: []Plan{a}, Version: 7}, encodeTitle); got.Len() != 1 || got.Version() != 7 {
		t.Errorf("nil.Apply() = %d plans at version %d, want 1 at 7", got.Len(), got.Version())
	}
}

func TestWindowValidate(t *testing.T) {
	w := Window{From: at("2021-01-02 00:00:00"), To: at("2021-01-01 00:00:00")}
	if err := w.Validate(); err != ErrInvertedWindow {
		t.Errorf("Validate() = %v, want ErrInvertedWindow", err)
	}
	w.To = w.From
	if err := w.Validate(); err != nil {
		t.Errorf("Validate() of an empty-duration window = %v, want nil", err)
	}
}

func BenchmarkIndexSearch(b *testing.B) {
	var plans []Plan
	start := at("2021-01-01 00:00:00")
	for i := range 100_000 {
		s := start.Add(time.Duration(i) * time.Hour)
		p := plan("b", strings.Repeat("x", i%7)+string(rune('a'+i%26)), s.Format(time.DateTime), s.Add(2*time.Hour).Format(time.DateTime))
		p.ID = NewID("p", "b", s.String())
		plans = append(plans, p)
	}
	ix := NewIndex(1, plans, encodeTitle)
	w := Window{From: start.Add(5000 * time.Hour), To: start.Add(5100 * time.Hour)}
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		for range ix.Search(w) {
			n++
		}
		if n != 99 {
			b.Fatalf("found %d plans, want 99", n)
		}
	}
}

// pageThrough pages through w of ix at limit and returns the pages' documents.
func pageThrough(t *testing.T, ix *Index, w Window, limit int) [][]string {
	t.Helper()
	var pages [][]string
	var after *Position
	for {
		docs, last, more := ix.Page(w, after, limit, nil)
		var page []string
		for _, d := range docs {
			page = append(page, string(d))
		}
		pages = append(pages, page)
		if !more {
			return pages
		}
		if len(docs) != limit {
			t.Fatalf("Page(%v, limit %d) = %d docs and more, want a full page", after, limit, len(docs))
		}
		if len(pages) > ix.Len()+1 {
			t.Fatalf("Page: more than %d pages", len(pages))
		}
		after = &last
	}
}

func TestIndexPage(t *testing.T) {
	var plans []Plan
	for _, base := range []string{"x", "y", "z", "w", "v"} { // ties on the start
		plans = append(plans, plan(base, "1", "2021-01-01 10:00:00", "2021-01-01 11:00:00"))
	}
	plans = append(plans,
		plan("early", "1", "2020-12-31 10:00:00", "2020-12-31 11:00:00"),
		plan("long", "1", "2021-01-01 09:00:00", "2021-02-01 00:00:00"), // ends after the bounded window
		plan("late", "1", "2021-01-02 10:00:00", "2021-01-02 11:00:00"),
		plan("later", "1", "2021-01-03 10:00:00", "2021-01-03 11:00:00"),
	)
	ix := NewIndex(1, plans, encodeTitle)
	for _, w := range []Window{{}, {From: at("2021-01-01 00:00:00"), To: at("2021-01-02 12:00:00")}, {From: at("2022-01-01 00:00:00")}} {
		want := search(ix, w)
		for _, limit := range []int{1, 2, 3, 5, 9, 100} {
			pages := pageThrough(t, ix, w, limit)
			if diff := cmp.Diff(want, slices.Concat(pages...)); diff != "" {
				t.Errorf("pages of %v at limit %d concatenated (-want +got):\n%s", w, limit, diff)
			}
			if wantPages := max(1, (len(want)+limit-1)/limit); len(pages) != wantPages {
				t.Errorf("pages of %v at limit %d = %d pages, want %d (no empty last page)", w, limit, len(pages), wantPages)
			}
		}
		if n, size := ix.Measure(w); n != len(want) || size != len(strings.Join(want, "")) {
			t.Errorf("Measure(%v) = %d, %d; want %d, %d", w, n, size, len(want), len(strings.Join(want, "")))
		}
	}
	// A position no plan has (the plan there changed since) resumes at the next one.
	gone := Position{Start: at("2021-01-01 10:00:00").Unix(), ID: ID{}}
	docs, _, _ := ix.Page(Window{}, &gone, 1, nil)
	if first := search(ix, Window{From: at("2021-01-01 10:00:00")})[0]; len(docs) != 1 || string(docs[0]) != first {
		t.Errorf("Page(after a vanished position) = %q, want %q", docs, first)
	}
}

func TestPositionCompare(t *testing.T) {
	a := Position{Start: 10, ID: ID{1}}
	tests := []struct {
		name string
		give Position
		want int
	}{
		{"same", a, 0},
		{"later start, lower id", Position{Start: 11, ID: ID{0}}, -1},
		{"earlier start, higher id", Position{Start: 9, ID: ID{2}}, 1},
		{"same start, higher id", Position{Start: 10, ID: ID{1, 1}}, -1},
		{"same start, lower id", Position{Start: 10, ID: ID{0, 9}}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := a.Compare(tt.give); got != tt.want {
				t.Errorf("%v.Compare(%v) = %d, want %d", a, tt.give, got, tt.want)
			}
		})
	}
}

func BenchmarkIndexPage(b *testing.B) {
	var plans []Plan
	start := at("2021-01-01 00:00:00")
	for i := range 100_000 {
		s := start.Add(time.Duration(i) * time.Minute)
		p := plan("b", "x", s.Format(time.DateTime), s.Add(2*time.Hour).Format(time.DateTime))
		p.ID = NewID("p", "b", s.String())
		plans = append(plans, p)
	}
	ix := NewIndex(1, plans, encodeTitle)
	_, last, _ := ix.Page(Window{}, nil, 90_000, nil) // deep in the window
	docs := make([][]byte, 0, 100)
	b.ReportAllocs()
	for b.Loop() {
		docs, _, _ = ix.Page(Window{}, &last, 100, docs[:0])
		if len(docs) != 100 {
			b.Fatalf("found %d plans, want 100", len(docs))
		}
	}
}

package bench

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
)

// element is an SVG element as the charts' tests read it: its name, attributes and
// text.
type element struct {
	name  string
	attrs map[string]string
	text  string
}

// parseSVG decodes doc as XML, failing t when it is not well-formed, and returns its
// elements in document order.
func parseSVG(t *testing.T, doc []byte) []element {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(doc))
	d.Strict = true
	var (
		els  []element
		open []int // indexes in els of the elements not yet closed
	)
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, doc)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			e := element{name: tok.Name.Local, attrs: map[string]string{}}
			for _, a := range tok.Attr {
				e.attrs[a.Name.Local] = a.Value
			}
			els = append(els, e)
			open = append(open, len(els)-1)
		case xml.EndElement:
			open = open[:len(open)-1]
		case xml.CharData:
			if len(open) > 0 {
				els[open[len(open)-1]].text += string(tok)
			}
		}
	}
	if len(els) == 0 || els[0].name != "svg" {
		t.Fatalf("the document's root is not <svg>:\n%s", doc)
	}
	return els
}

func attr(t *testing.T, e element, name string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(e.attrs[name], 64)
	if err != nil {
		t.Fatalf("<%s %s=%q>: %v", e.name, name, e.attrs[name], err)
	}
	return v
}

func texts(els []element) []string {
	var s []string
	for _, e := range els {
		if e.name == "text" {
			s = append(s, e.text)
		}
	}
	return s
}

func TestBarChart(t *testing.T) {
	c := barChart{
		Title: `Ratio <to> the "trivial" handler & co`, YLabel: "ratio",
		Groups: []string{"hot", "random"}, Series: []string{"embedded 10k", "distributed <10k>"},
		Values: [][]float64{{0.5, 1.0}, {2.0, math.NaN()}},
		Ref:    1, RefLabel: "as fast as the trivial handler",
	}
	els := parseSVG(t, c.SVG())
	got := texts(els)
	for _, want := range []string{c.Title, "hot", "random", "embedded 10k", "distributed <10k>", c.RefLabel} {
		if !strings.Contains(strings.Join(got, "\n"), want) {
			t.Errorf("texts %q lack %q", got, want)
		}
	}
	var heights []float64
	for _, e := range els {
		if e.name == "rect" && e.attrs["fill"] != "#ffffff" && e.attrs["width"] != "12" { // not the background or a legend key
			heights = append(heights, attr(t, e, "height"))
		}
	}
	// Bars in order: embedded hot 0.5, distributed hot 2.0, embedded random 1.0; the
	// missing value draws no bar.
	if len(heights) != 3 {
		t.Fatalf("%d bars, want 3 (one value is missing): %v", len(heights), heights)
	}
	if r := heights[1] / heights[0]; math.Abs(r-4) > 0.01 {
		t.Errorf("bar of 2.0 is %.3f times the bar of 0.5, want 4", r)
	}
	if r := heights[2] / heights[0]; math.Abs(r-2) > 0.01 {
		t.Errorf("bar of 1.0 is %.3f times the bar of 0.5, want 2", r)
	}
	if top := float64(chartHeight - plotBottom - plotTop); heights[1] > top {
		t.Errorf("the highest bar (%.1f) overflows the plot (%.1f)", heights[1], top)
	}
}

func TestLineChartLogX(t *testing.T) {
	c := lineChart{
		Title: "Served after", XLabel: "plans", YLabel: "seconds",
		Lines: []line{
			{Name: "embedded", Points: []point{{1e4, 1}, {1e5, 15}, {1e6, 430}}},
			{Name: "distributed & <2> workers", Points: []point{{1e4, 3}, {1e5, 10}}},
		},
		XTick: sizeTick,
	}
	for _, logY := range []bool{false, true} {
		c.LogY = logY
		els := parseSVG(t, c.SVG())
		var xs, ys []float64
		for _, e := range els {
			if e.name == "circle" {
				xs, ys = append(xs, attr(t, e, "cx")), append(ys, attr(t, e, "cy"))
			}
		}
		if len(xs) != 5 {
			t.Fatalf("LogY %v: %d points, want 5", logY, len(xs))
		}
		// Decades are equally spaced on the x axis.
		if d1, d2 := xs[1]-xs[0], xs[2]-xs[1]; d1 <= 0 || math.Abs(d1-d2) > 0.02 {
			t.Errorf("LogY %v: 10k→100k spans %.2f, 100k→1M %.2f, want equal and positive", logY, d1, d2)
		}
		if xs[3] != xs[0] || xs[4] != xs[1] {
			t.Errorf("LogY %v: the same sizes at different x: %v", logY, xs)
		}
		// Higher values are higher up (smaller y); on a log scale, a decade is a decade.
		if !(ys[0] > ys[1] && ys[1] > ys[2]) {
			t.Errorf("LogY %v: y of 1, 15, 430 = %v, want decreasing", logY, ys[:3])
		}
		if logY {
			// 1 → 10 and 10 → 100 take the same height: compare 1 (ys[0]) with 3 and 10 (ys[3], ys[4]).
			one, ten := ys[0], ys[4]
			if want := one - (one-ten)*math.Log10(3); math.Abs(ys[3]-want) > 0.02 {
				t.Errorf("y of 3 = %.2f, want %.2f on a log scale from 1 (%.2f) to 10 (%.2f)", ys[3], want, one, ten)
			}
		}
		got := strings.Join(texts(els), "\n")
		for _, want := range []string{"10k", "100k", "1M", "distributed & <2> workers"} {
			if !strings.Contains(got, want) {
				t.Errorf("LogY %v: texts lack %q:\n%s", logY, want, got)
			}
		}
	}
}

func TestLabelsAreEscaped(t *testing.T) {
	doc := barChart{Title: `a<b>&"c"`, Groups: []string{"</svg>"}, Series: []string{"x"}, Values: [][]float64{{1}}}.SVG()
	if bytes.Contains(doc, []byte("a<b>")) || bytes.Count(doc, []byte("</svg>")) != 1 {
		t.Errorf("labels are written unescaped:\n%s", doc)
	}
	parseSVG(t, doc)
}

func TestNiceStep(t *testing.T) {
	tests := []struct {
		span float64
		n    int
		want float64
	}{
		{1, 5, 0.2},
		{1.3, 5, 0.5},
		{430, 5, 100},
		{1046, 5, 500},
		{0, 5, 1},
	}
	for _, tt := range tests {
		if got := niceStep(tt.span, tt.n); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("niceStep(%v, %d) = %v, want %v", tt.span, tt.n, got, tt.want)
		}
	}
}

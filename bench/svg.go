package bench

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math"
	"strconv"
)

// The bench draws its results as SVG charts itself, with no dependency: a grouped bar
// chart (the ratio to the trivial handler per workload and mode) and a line chart on a
// logarithmic x axis (ingest time and peak memory against catalog size). This file is
// plain code, not behind the bench tag, so that `make test` runs its unit test.

// Chart geometry, in SVG user units (pixels).
const (
	chartWidth  = 720
	chartHeight = 400
	plotLeft    = 70  // room for the y axis's labels
	plotRight   = 180 // room for the legend
	plotTop     = 40  // room for the title
	plotBottom  = 60  // room for the x axis's labels and name
)

// palette colours the series, in order (colour-blind safe: Okabe and Ito).
var palette = []string{"#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"}

// barChart is a grouped bar chart: for each group (a workload), one bar per series (a
// mode). Values[s][g] is series s in group g; NaN leaves the bar out.
type barChart struct {
	Title, YLabel string
	Groups        []string
	Series        []string
	Values        [][]float64
	Ref           float64 // when above 0, a dashed horizontal line at this value
	RefLabel      string
}

// lineChart draws series of points on a logarithmic x axis, with a linear or a
// logarithmic y axis. XTick names an x value on the axis (nil: the number).
type lineChart struct {
	Title, XLabel, YLabel string
	LogY                  bool
	Lines                 []line
	XTick                 func(x float64) string
}

// line is one series of a lineChart; X values must be above 0, and so must Y values
// when the y axis is logarithmic.
type line struct {
	Name   string
	Points []point
}

type point struct{ X, Y float64 }

// svgWriter accumulates an SVG document.
type svgWriter struct{ b bytes.Buffer }

func newSVG(title string) *svgWriter {
	w := &svgWriter{}
	fmt.Fprintf(&w.b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		chartWidth, chartHeight, chartWidth, chartHeight)
	w.b.WriteString(`<rect width="100%" height="100%" fill="#ffffff"/>` + "\n")
	w.text(chartWidth/2, 22, "middle", title, `font-size="15" font-weight="bold"`)
	return w
}

// esc escapes s for XML text and attribute values.
func esc(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s)) // writing to a bytes.Buffer never fails
	return b.String()
}

// num writes a coordinate with at most two decimals.
func num(f float64) string { return strconv.FormatFloat(math.Round(f*100)/100, 'f', -1, 64) }

func (w *svgWriter) text(x, y float64, anchor, s, attrs string) {
	fmt.Fprintf(&w.b, `<text x="%s" y="%s" text-anchor="%s" %s>%s</text>`+"\n", num(x), num(y), anchor, attrs, esc(s))
}

func (w *svgWriter) line(x1, y1, x2, y2 float64, attrs string) {
	fmt.Fprintf(&w.b, `<line x1="%s" y1="%s" x2="%s" y2="%s" %s/>`+"\n", num(x1), num(y1), num(x2), num(y2), attrs)
}

// axes draws the plot's frame, the y axis's name, the x axis's name, and the legend.
func (w *svgWriter) axes(xLabel, yLabel string, legend []string) {
	x0, y0, x1, y1 := float64(plotLeft), float64(plotTop), float64(chartWidth-plotRight), float64(chartHeight-plotBottom)
	w.line(x0, y1, x1, y1, `stroke="#333333"`)
	w.line(x0, y0, x0, y1, `stroke="#333333"`)
	w.text(16, (y0+y1)/2, "middle", yLabel, fmt.Sprintf(`transform="rotate(-90 16 %s)"`, num((y0+y1)/2)))
	if xLabel != "" {
		w.text((x0+x1)/2, chartHeight-14, "middle", xLabel, "")
	}
	for i, name := range legend {
		y := y0 + 10 + float64(i)*20
		fmt.Fprintf(&w.b, `<rect x="%s" y="%s" width="12" height="12" fill="%s"/>`+"\n", num(x1+16), num(y-10), palette[i%len(palette)])
		w.text(x1+34, y, "start", name, "")
	}
}

// yGrid draws a horizontal grid line and its label at y (in plot units).
func (w *svgWriter) yGrid(y float64, label string) {
	w.line(plotLeft, y, chartWidth-plotRight, y, `stroke="#dddddd"`)
	w.text(plotLeft-6, y+4, "end", label, "")
}

func (w *svgWriter) bytes() []byte {
	w.b.WriteString("</svg>\n")
	return w.b.Bytes()
}

// niceStep returns a round step (1, 2 or 5 times a power of ten) that splits span into
// about n intervals.
func niceStep(span float64, n int) float64 {
	if span <= 0 {
		return 1
	}
	raw := span / float64(n)
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

// label writes a tick value briefly: 0.5, 2, 250, 1200.
func label(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }

// SVG draws the bar chart. The y axis starts at 0 and ends at a round value above the
// highest bar and the reference line.
func (c barChart) SVG() []byte {
	w := newSVG(c.Title)
	top := c.Ref * 1.1 // the reference line stays inside the plot
	for _, vs := range c.Values {
		for _, v := range vs {
			if !math.IsNaN(v) {
				top = max(top, v)
			}
		}
	}
	step := niceStep(top, 5)
	top = math.Max(step, math.Ceil(top/step)*step)
	x0, x1, y1 := float64(plotLeft), float64(chartWidth-plotRight), float64(chartHeight-plotBottom)
	height := y1 - plotTop
	y := func(v float64) float64 { return y1 - v/top*height }
	for v := 0.0; v <= top+step/2; v += step {
		w.yGrid(y(v), label(v))
	}
	groupWidth := (x1 - x0) / float64(max(1, len(c.Groups)))
	barWidth := groupWidth * 0.8 / float64(max(1, len(c.Series)))
	for g, name := range c.Groups {
		left := x0 + float64(g)*groupWidth + groupWidth*0.1
		for s := range c.Series {
			v := math.NaN()
			if s < len(c.Values) && g < len(c.Values[s]) {
				v = c.Values[s][g]
			}
			if math.IsNaN(v) {
				continue
			}
			bx := left + float64(s)*barWidth
			fmt.Fprintf(&w.b, `<rect x="%s" y="%s" width="%s" height="%s" fill="%s"><title>%s</title></rect>`+"\n",
				num(bx+1), num(y(v)), num(barWidth-2), num(y1-y(v)), palette[s%len(palette)], esc(c.Series[s]+", "+name+": "+label(v)))
			w.text(bx+barWidth/2, y(v)-4, "middle", strconv.FormatFloat(v, 'f', 2, 64), `font-size="10"`)
		}
		w.text(left+groupWidth*0.4, y1+18, "middle", name, "")
	}
	if c.Ref > 0 {
		w.line(x0, y(c.Ref), x1, y(c.Ref), `stroke="#333333" stroke-dasharray="6 4"`)
		w.text(x1-4, y(c.Ref)-5, "end", c.RefLabel, `font-size="11"`)
	}
	w.axes("", c.YLabel, c.Series)
	return w.bytes()
}

// SVG draws the line chart: x on a log scale over the decades that hold the points, y
// from 0 (linear) or over its decades (logarithmic).
func (c lineChart) SVG() []byte {
	w := newSVG(c.Title)
	xmin, xmax, ymin, ymax := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, l := range c.Lines {
		for _, p := range l.Points {
			xmin, xmax, ymin, ymax = min(xmin, p.X), max(xmax, p.X), min(ymin, p.Y), max(ymax, p.Y)
		}
	}
	if math.IsInf(xmin, 0) { // no points
		xmin, xmax, ymin, ymax = 1, 10, 1, 10
	}
	lx0, lx1 := math.Floor(math.Log10(xmin)), math.Ceil(math.Log10(xmax))
	if lx1 == lx0 {
		lx1++
	}
	x0, x1, y1 := float64(plotLeft), float64(chartWidth-plotRight), float64(chartHeight-plotBottom)
	height := y1 - plotTop
	pad := (x1 - x0) * 0.04 // points at the ends of the axis stay clear of the frame
	x := func(v float64) float64 {
		return x0 + pad + (math.Log10(v)-lx0)/(lx1-lx0)*(x1-x0-2*pad)
	}
	var y func(v float64) float64
	if c.LogY {
		ly0, ly1 := math.Floor(math.Log10(ymin)), math.Ceil(math.Log10(ymax))
		if ly1 == ly0 {
			ly1++
		}
		y = func(v float64) float64 { return y1 - (math.Log10(v)-ly0)/(ly1-ly0)*height }
		for d := ly0; d <= ly1; d++ {
			w.yGrid(y(math.Pow(10, d)), label(math.Pow(10, d)))
		}
	} else {
		step := niceStep(ymax, 5)
		top := math.Max(step, math.Ceil(ymax/step)*step)
		y = func(v float64) float64 { return y1 - v/top*height }
		for v := 0.0; v <= top+step/2; v += step {
			w.yGrid(y(v), label(v))
		}
	}
	tick := c.XTick
	if tick == nil {
		tick = label
	}
	for d := lx0; d <= lx1; d++ {
		v := math.Pow(10, d)
		w.line(x(v), y1, x(v), y1+5, `stroke="#333333"`)
		w.text(x(v), y1+18, "middle", tick(v), "")
	}
	for i, l := range c.Lines {
		colour := palette[i%len(palette)]
		var pts bytes.Buffer
		for j, p := range l.Points {
			if j > 0 {
				pts.WriteByte(' ')
			}
			pts.WriteString(num(x(p.X)) + "," + num(y(p.Y)))
		}
		fmt.Fprintf(&w.b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", pts.String(), colour)
		for _, p := range l.Points {
			fmt.Fprintf(&w.b, `<circle cx="%s" cy="%s" r="3.5" fill="%s"><title>%s</title></circle>`+"\n",
				num(x(p.X)), num(y(p.Y)), colour, esc(l.Name+": "+tick(p.X)+": "+label(p.Y)))
		}
	}
	names := make([]string, len(c.Lines))
	for i, l := range c.Lines {
		names[i] = l.Name
	}
	w.axes(c.XLabel, c.YLabel, names)
	return w.bytes()
}

// sizeName writes a catalog size back the way BENCH_SIZES takes it: 10k, 1M.
func sizeName(n int) string {
	switch {
	case n%1_000_000 == 0:
		return strconv.Itoa(n/1_000_000) + "M"
	case n%1_000 == 0:
		return strconv.Itoa(n/1_000) + "k"
	}
	return strconv.Itoa(n)
}

// sizeTick names a catalog size on a chart's x axis.
func sizeTick(x float64) string { return sizeName(int(math.Round(x))) }

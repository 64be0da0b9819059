package httpapi

import (
	"encoding/json"
	"html"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"boxoffice/catalog"
)

// hostileTitle and hostileZone are markup a provider might send as a title and a zone
// name; the console must show them as text. Were either parsed as HTML, the DOM would
// hold an <img> or a <script> element (whatever the Content-Security-Policy then lets
// run).
const (
	hostileTitle = `<img src=x onerror="document.body.dataset.pwned=1">`
	hostileZone  = `<script>document.body.dataset.pwned=2</script>`
)

// TestConsoleInBrowser loads the console in headless Chromium, with every origin but the
// test server's unreachable, over a known catalog. Driven by its URL and a test script
// that clicks as a person would, the page must render the status, search a window and
// show exactly the events inside it with their prices, list an event's products and
// quote one, show markup from the catalog as text, and break its
// Content-Security-Policy nowhere.
func TestConsoleInBrowser(t *testing.T) {
	chromium := findChromium(t)
	e := newPricingEnv(t)
	plans := testPlans(t)
	x := newPlan(t, "x", hostileTitle, "2021-07-01 12:00:00", "2021-07-01 13:00:00", "5")
	x.Zones[0].Name = hostileZone
	plans["x"] = x
	list := make([]catalog.Plan, 0, len(plans))
	for _, p := range plans {
		list = append(list, p)
	}
	e.upsert(t, list...)
	status := &fakeStatus{pricing: 4, dead: map[string]int{"catalog.plans": 2, "pricing.recalculate": 0}}
	api := New(fixedCatalog{ix: catalog.NewIndex(9, list, EncodeEvent)}, e.log, Config{Pricing: e.h.pricing, Status: status})

	products, err := e.store.EventProducts(t.Context(), x.ID)
	if err != nil || len(products) != 1 {
		t.Fatalf("products of the hostile plan: %v, %v", products, err)
	}
	product := products[0].ID.String()
	rec := serveBody(api, http.MethodPost, "/api/v1/price", `{"product_id":"`+product+`","user_location":"madrid"}`)
	var quote struct {
		Final json.Number `json:"final_price"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &quote); rec.Code != http.StatusOK || err != nil {
		t.Fatalf("quote of %s: %d %s (%v)", product, rec.Code, rec.Body, err)
	}

	// The page as served, plus the script that drives it (drivenMux); and providers'
	// syncs, with markup in a name.
	withProviders := drivenMux(t, api)
	withProviders.HandleFunc("GET /api/v1/providers", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, []byte(`{"providers":[`+
			`{"name":"fever","sync_id":"s1","outcome":"ok","plans_parsed":7,"error":null,"extra":{"a":1}},`+
			`{"name":"<b>acme</b>","sync_id":"s2","outcome":"failed","plans_parsed":0,"error":"<i>timeout</i>"}]}`))
	})
	driving := httptest.NewServer(withProviders)
	t.Cleanup(driving.Close)
	plain := httptest.NewServer(api)
	t.Cleanup(plain.Close)

	t.Run("search, products and quote", func(t *testing.T) {
		t.Parallel()
		url := driving.URL + "/driven?starts_at=2021-06-30T00:00&ends_at=2021-07-31T23:59:59&drive_event=" + x.ID.String()
		dom := renderConsole(t, chromium, url)
		wantRows := [][]string{
			{plans["b"].ID.String(), "Los Morancos", "2021-06-30 21:00:00", "2021-06-30 23:00:00", "20.00", "20.00"},
			{plans["a"].ID.String(), "Camela", "2021-06-30 21:00:00", "2021-06-30 22:00:00", "15.00", "30.00"},
			{x.ID.String(), hostileTitle, "2021-07-01 12:00:00", "2021-07-01 13:00:00", "5.00", "5.00"},
			{plans["c"].ID.String(), "Tributo a Juanito Valderrama", "2021-07-31 20:00:00", "2021-07-31 23:59:59", "10.00", "10.00"},
		}
		if diff := cmp.Diff(wantRows, tableRows(t, dom, "events-body", 5)); diff != "" {
			t.Errorf("search rows (-want +got):\n%s", diff)
		}
		wantProducts := [][]string{{product, "a", hostileZone, "no", "10", "5.00", "—"}}
		if diff := cmp.Diff(wantProducts, tableRows(t, dom, "products-body", 6)); diff != "" {
			t.Errorf("product rows (-want +got):\n%s", diff)
		}
		for _, want := range []string{
			`4 events from 2021-06-30T00:00 to 2021-07-31T23:59:59.`,
			`>Products of ` + domText.Replace(hostileTitle) + `</h2>`,
			`<dd id="quote-final" class="">` + quote.Final.String() + `</dd>`,
			`Quote for product ` + product + `.`,
			// the status
			`<dd id="catalog-plans" class="">7</dd>`, `<dd id="catalog-version" class="">9</dd>`,
			`<dd id="pricing-version" class="">4</dd>`,
			`<dd id="dead-letters" class="warn">2 (catalog.plans 2, pricing.recalculate 0)</dd>`,
			// the providers, whatever their fields
			`<thead><tr><th>name</th><th>outcome</th><th>plans parsed</th><th>error</th><th>extra.a</th></tr></thead>`,
			`<td>&lt;b&gt;acme&lt;/b&gt;</td>`, `<td class="bad">failed</td>`, `<td>&lt;i&gt;timeout&lt;/i&gt;</td>`, `2 providers.`,
		} {
			if !strings.Contains(dom, want) {
				t.Errorf("rendered DOM lacks %s", want)
			}
		}
	})

	t.Run("no search, no providers", func(t *testing.T) {
		t.Parallel()
		dom := renderConsole(t, chromium, plain.URL+"/")
		for _, want := range []string{
			`<dd id="catalog-version" class="">9</dd>`,
			`Not available: this server has no /api/v1/providers.`,
			`<table id="events" hidden="">`,
		} {
			if !strings.Contains(dom, want) {
				t.Errorf("rendered DOM lacks %s", want)
			}
		}
	})
}

// drivenMux serves api and, at /driven, the console as api serves it plus the script
// that drives it in a test (testdata/console-drive.js, at /test/drive.js), both under
// the console's Content-Security-Policy.
func drivenMux(t *testing.T, api http.Handler) *http.ServeMux {
	t.Helper()
	page := serveBody(api, http.MethodGet, "/", "").Body.String()
	driven := strings.Replace(page, "</head>", `<script src="/test/drive.js" defer></script></head>`, 1)
	drive, err := os.ReadFile("testdata/console-drive.js")
	if err != nil {
		t.Fatal(err)
	}
	testFiles := staticFiles{csp: consoleCSP, files: map[string]*docsFile{
		"/driven":        {body: []byte(driven), contentType: "text/html; charset=utf-8", etag: `"driven"`, cacheControl: cacheRevalidate},
		"/test/drive.js": {body: drive, contentType: "text/javascript; charset=utf-8", etag: `"drive"`, cacheControl: cacheRevalidate},
	}}
	mux := http.NewServeMux()
	mux.Handle("/", api)
	mux.Handle("GET /driven", testFiles)
	mux.Handle("GET /test/", testFiles)
	return mux
}

// TestConsoleMoreInBrowser searches a window of 250 events in headless Chromium, which
// the console asks for in pages of 100: the first page shows "More", each click on it
// appends the next page's rows (by next_cursor), and once the last page is shown the
// table holds exactly the window's events in order and "More" is gone.
func TestConsoleMoreInBrowser(t *testing.T) {
	chromium := findChromium(t)
	plans := manyPlans(t, 250)
	api := New(fixedCatalog{ix: catalog.NewIndex(3, plans, EncodeEvent)}, slog.New(slog.DiscardHandler), Config{})
	srv := httptest.NewServer(drivenMux(t, api))
	t.Cleanup(srv.Close)
	var all [][]string
	for _, p := range plans { // one an hour: the window's order
		all = append(all, []string{p.ID.String(), p.Title, p.StartsAt.Format(time.DateTime), p.EndsAt.Format(time.DateTime), "15.00", "30.00"})
	}
	const window = "starts_at=2021-01-01T00:00&ends_at=2021-12-31T23:59:59"
	for _, tt := range []struct {
		clicks   int
		rows     int
		state    string
		moreShow bool
	}{
		{0, 100, "100 events so far from 2021-01-01T00:00 to 2021-12-31T23:59:59.", true},
		{1, 200, "200 events so far from 2021-01-01T00:00 to 2021-12-31T23:59:59.", true},
		{5, 250, "250 events from 2021-01-01T00:00 to 2021-12-31T23:59:59.", false}, // clicks while More shows: two
	} {
		t.Run(strconv.Itoa(tt.clicks), func(t *testing.T) {
			t.Parallel()
			dom := renderConsole(t, chromium, srv.URL+"/driven?"+window+"&drive_more="+strconv.Itoa(tt.clicks))
			if diff := cmp.Diff(all[:tt.rows], tableRows(t, dom, "events-body", 5)); diff != "" {
				t.Errorf("rows after %d clicks on More (-want +got):\n%s", tt.clicks, diff)
			}
			if !strings.Contains(dom, tt.state) {
				t.Errorf("rendered DOM lacks the state %q", tt.state)
			}
			if more := strings.Contains(dom, `<button type="button" id="more">`); more != tt.moreShow {
				t.Errorf("More shown: %v, want %v", more, tt.moreShow)
			}
		})
	}
}

// renderConsole loads url in Chromium (see dumpDOM) and returns the rendered DOM, failing t
// if the page made an element of data, or broke its Content-Security-Policy.
func renderConsole(t *testing.T, chromium, url string) string {
	t.Helper()
	dom, console := dumpDOM(t, chromium, url)
	for _, bad := range []string{"<img", "<script>document", "<b>", "<i>", "data-pwned"} {
		if strings.Contains(dom, bad) {
			t.Errorf("rendered DOM holds %s: data was parsed as HTML", bad)
		}
	}
	for line := range strings.Lines(console) {
		if strings.Contains(line, "Content Security Policy") || strings.Contains(line, "Uncaught") {
			t.Errorf("console: %s", line)
		}
	}
	if t.Failed() {
		t.Logf("DOM (%d bytes):\n%.8000s\nconsole:\n%s", len(dom), dom, console)
	}
	return dom
}

// domText escapes text as Chromium serializes a text node.
var domText = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "\u00a0", "&nbsp;")

var (
	rowPattern  = regexp.MustCompile(`(?s)<tr data-id="([^"]*)">(.*?)</tr>`)
	cellPattern = regexp.MustCompile(`(?s)<td[^>]*>(.*?)</td>`)
)

// tableRows returns the rows of the table body with id in dom: each row's data-id, then
// the text of its first n cells, unescaped.
func tableRows(t *testing.T, dom, id string, n int) [][]string {
	t.Helper()
	start := strings.Index(dom, `<tbody id="`+id+`">`)
	if start < 0 {
		t.Errorf("rendered DOM has no tbody %s", id)
		return nil
	}
	body, _, _ := strings.Cut(dom[start:], "</tbody>")
	var rows [][]string
	for _, m := range rowPattern.FindAllStringSubmatch(body, -1) {
		row := []string{m[1]}
		for i, c := range cellPattern.FindAllStringSubmatch(m[2], -1) {
			if i < n {
				row = append(row, html.UnescapeString(c[1]))
			}
		}
		rows = append(rows, row)
	}
	return rows
}

// serveBody serves a request with body, from a loopback client, and returns the response.
func serveBody(h http.Handler, method, target, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

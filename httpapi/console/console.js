// The boxoffice console: reads the public API and shows it. Everything shown is set
// with textContent on elements built here, never parsed as HTML, so a title or a name
// that holds markup is shown as text.
"use strict";

(function () {
  const refreshMs = 10000; // the status and the providers, while the page is visible
  const pageSize = 100; // events per /search page, when the server paginates

  const $ = (id) => document.getElementById(id);

  // el returns a new element with text as its content.
  function el(tag, text, className) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) {
      e.textContent = String(text);
    }
    if (className) {
      e.className = className;
    }
    return e;
  }

  // show sets the text of the element with id, and its class.
  function show(id, text, className) {
    const e = $(id);
    e.textContent = text;
    e.className = className || "";
  }

  // row returns a table row for the item id: a cell for each of cells, [text] or [text,
  // className], and a last one with a button labelled label that calls onClick.
  function row(id, cells, label, onClick) {
    const tr = el("tr");
    tr.dataset.id = id;
    for (const [text, className] of cells) {
      tr.append(el("td", text, className));
    }
    const button = el("button", label);
    button.type = "button";
    button.addEventListener("click", onClick);
    const td = el("td");
    td.append(button);
    tr.append(td);
    return tr;
  }

  function money(v) {
    return typeof v === "number" ? v.toFixed(2) : "—";
  }

  // getJSON fetches url and returns {status, body}; body is null when the response is
  // not JSON.
  async function getJSON(url, init) {
    const resp = await fetch(url, Object.assign({ headers: { Accept: "application/json" } }, init));
    let body = null;
    try {
      body = await resp.json();
    } catch (e) {
      body = null;
    }
    return { status: resp.status, body: body };
  }

  // problem describes a failed response: the API's error message when it has one.
  function problem(res) {
    if (res.body && res.body.error && typeof res.body.error.message === "string") {
      return res.body.error.message + " (" + res.status + ")";
    }
    return "HTTP " + res.status;
  }

  // load fetches url and returns its JSON body when the answer is a 200. Otherwise it
  // says what went wrong in the element stateId, with className, and returns null: "what:
  // the API's message", or opts.notFound for a 404 when given.
  async function load(url, stateId, what, className, opts) {
    opts = opts || {};
    let res;
    try {
      res = await getJSON(url, opts.init);
    } catch (e) {
      show(stateId, "The server did not answer: " + e.message, className);
      return null;
    }
    if (res.status === 404 && opts.notFound) {
      show(stateId, opts.notFound, "note");
      return null;
    }
    if (res.status !== 200 || !res.body) {
      show(stateId, what + ": " + problem(res), className);
      return null;
    }
    return res.body;
  }

  // Catalog at a glance: GET /api/v1/status.
  async function loadStatus() {
    const body = await load("/api/v1/status", "status-note", "Status not available", "note bad");
    if (!body || !body.data) {
      return;
    }
    const d = body.data;
    const c = d.catalog;
    show("catalog-plans", c ? (c.plans === null ? "not in memory" : c.plans.toLocaleString("en")) : "unavailable");
    show("catalog-version", c ? String(c.version) : "unavailable");
    show("pricing-version", d.pricing ? String(d.pricing.version) : "unavailable");
    const dl = d.dead_letters;
    if (dl) {
      const parts = Object.keys(dl.topics).sort().map((t) => t + " " + dl.topics[t]);
      show("dead-letters", dl.total + (parts.length ? " (" + parts.join(", ") + ")" : ""), dl.total > 0 ? "warn" : "");
    } else {
      show("dead-letters", "unavailable");
    }
    const missing = Array.isArray(d.unavailable) ? d.unavailable : [];
    let note = missing.length ? "Could not read: " + missing.join(", ") + "." : "";
    if (dl && dl.total > 0) {
      note += (note ? " " : "") + "Dead letters wait for an operator: boxoffice dead-letters list, then replay or purge.";
    }
    show("status-note", note, missing.length ? "note bad" : "note");
  }

  // flatten turns an object into [key, value] pairs, nested objects one level down as
  // "outer.inner".
  function flatten(obj) {
    const out = [];
    for (const k of Object.keys(obj)) {
      const v = obj[k];
      if (v && typeof v === "object" && !Array.isArray(v)) {
        for (const k2 of Object.keys(v)) {
          out.push([k + "." + k2, v[k2]]);
        }
      } else {
        out.push([k, v]);
      }
    }
    return out;
  }

  function cellText(v) {
    if (v === null || v === undefined) {
      return "—";
    }
    if (typeof v === "object") {
      return JSON.stringify(v);
    }
    return String(v);
  }

  // providerColumns are the fields of GET /api/v1/providers shown first, in this order;
  // providerHidden those left out (the full record is one request away).
  const providerColumns = ["name", "outcome", "finished_at", "duration_ms", "plans_parsed", "plans_skipped",
    "next_sync_at", "last_success_at", "error"];
  const providerHidden = ["sync_id", "started_at", "batches", "attempts"];

  // Providers' syncs: GET /api/v1/providers, a table of the fields the providers have:
  // providerColumns first, then the others in the order the server gives them.
  async function loadProviders() {
    const table = $("providers");
    const res = await load("/api/v1/providers", "providers-state", "Providers not available", "note bad",
      { notFound: "Not available: this server has no /api/v1/providers." });
    if (!res) {
      table.hidden = true;
      return;
    }
    const data = res.data !== undefined ? res.data : res; // with or without the envelope
    const list = Array.isArray(data) ? data : data && Array.isArray(data.providers) ? data.providers : [];
    if (list.length === 0) {
      table.hidden = true;
      show("providers-state", "No providers configured.", "note");
      return;
    }
    const rows = list.map((p) => (p && typeof p === "object" ? flatten(p) : [["provider", p]]));
    const seen = [];
    for (const row of rows) {
      for (const [k] of row) {
        if (!seen.includes(k)) {
          seen.push(k);
        }
      }
    }
    // The fields a person reads first, in this order, then any others but the
    // bookkeeping ones.
    const keys = providerColumns.filter((k) => seen.includes(k))
      .concat(seen.filter((k) => !providerColumns.includes(k) && !providerHidden.includes(k)));
    const head = el("tr");
    for (const k of keys) {
      head.append(el("th", k.replace(/_/g, " ")));
    }
    const body = document.createElement("tbody");
    for (const row of rows) {
      const values = new Map(row);
      const tr = el("tr");
      for (const k of keys) {
        const v = values.get(k);
        tr.append(el("td", cellText(v), v === "failed" || v === "error" ? "bad" : ""));
      }
      body.append(tr);
    }
    table.tHead.replaceChildren(head);
    table.tBodies[0].replaceWith(body);
    table.hidden = false;
    show("providers-state", list.length === 1 ? "1 provider." : list.length + " providers.", "note");
  }

  // Search: the form's window, in the page's URL so that a search can be shared and
  // reloaded, against GET /search.
  let cursorNext = null; // the next page's cursor, when the server paginates
  let searchQuery = null; // the window of the search shown
  let shown = 0; // events in the table

  function windowFromURL() {
    const q = new URLSearchParams(location.search);
    const w = new URLSearchParams();
    for (const name of ["starts_at", "ends_at"]) {
      const v = q.get(name);
      if (v) {
        w.set(name, v);
      }
    }
    return w;
  }

  // fillForm puts the window's bounds in the pickers, when they take them.
  function fillForm(w) {
    for (const [id, name] of [["starts-at", "starts_at"], ["ends-at", "ends_at"]]) {
      const v = w.get(name) || "";
      const m = /^(\d{4}-\d{2}-\d{2})(?:[Tt](\d{2}:\d{2}(?::\d{2})?))?$/.exec(v);
      $(id).value = m ? m[1] + "T" + (m[2] || "00:00") : "";
    }
  }

  async function search(w, cursor) {
    const q = new URLSearchParams(w);
    q.set("limit", String(pageSize));
    if (cursor) {
      q.set("cursor", cursor);
    } else {
      searchQuery = w;
      shown = 0;
      $("events-body").replaceChildren();
      $("events").hidden = true;
    }
    $("more").hidden = true;
    show("search-state", "Searching…");
    const res = await load("/search?" + q.toString(), "search-state", "Search failed", "bad");
    if (!res || !res.data) {
      return;
    }
    const events = Array.isArray(res.data.events) ? res.data.events : [];
    const body = $("events-body");
    for (const ev of events) {
      const cells = [[ev.title], [ev.start_date + " " + ev.start_time], [ev.end_date + " " + ev.end_time],
        [money(ev.min_price), "num"], [money(ev.max_price), "num"]];
      body.append(row(ev.id, cells, "Products", () => loadProducts(ev.id, ev.title)));
    }
    shown += events.length;
    $("events").hidden = shown === 0;
    cursorNext = typeof res.data.next_cursor === "string" ? res.data.next_cursor : null;
    $("more").hidden = cursorNext === null;
    const range = describeWindow(searchQuery);
    show("search-state", (shown === 1 ? "1 event" : shown + " events") + (cursorNext ? " so far" : "") + " " + range + ".");
  }

  function describeWindow(w) {
    const from = w.get("starts_at");
    const to = w.get("ends_at");
    if (!from && !to) {
      return "at any time";
    }
    return "from " + (from || "the beginning") + " to " + (to || "the end");
  }

  // Products of an event: GET /api/v1/events/{id}/products.
  async function loadProducts(id, title) {
    $("products-section").hidden = false;
    show("products-title", "Products of " + title);
    $("products-body").replaceChildren();
    $("products").hidden = true;
    show("products-state", "Loading…");
    const res = await load("/api/v1/events/" + encodeURIComponent(id) + "/products", "products-state",
      "Products not available", "bad");
    if (!res) {
      return;
    }
    const products = Array.isArray(res.products) ? res.products : [];
    const body = $("products-body");
    for (const p of products) {
      const cells = [[p.zone_id], [p.name], [p.numbered ? "yes" : "no"], [p.capacity, "num"],
        [money(p.base_price), "num"], [money(p.price), "num"]];
      body.append(row(p.product_id, cells, "Quote", () => {
        $("product-id").value = p.product_id;
        $("quote-form").requestSubmit();
      }));
    }
    $("products").hidden = products.length === 0;
    show("products-state", products.length === 1 ? "1 product." : products.length + " products.");
    $("products-section").scrollIntoView({ block: "nearest" });
  }

  // A product's quote: POST /api/v1/price.
  async function quote() {
    $("quote").hidden = true;
    show("quote-state", "Quoting…");
    const q = await load("/api/v1/price", "quote-state", "No quote", "bad", {
      init: {
        method: "POST",
        headers: { Accept: "application/json", "Content-Type": "application/json" },
        body: JSON.stringify({
          product_id: $("product-id").value.trim(),
          user_location: $("location").value,
          is_prime_member: $("prime").checked,
        }),
      },
    });
    if (!q) {
      return;
    }
    show("quote-final", money(q.final_price));
    show("quote-base", money(q.base_price));
    show("quote-discount", typeof q.discount_rate === "number" ? Math.round(q.discount_rate * 10000) / 100 + "%" : "—");
    show("quote-source", q.source);
    $("quote").hidden = false;
    show("quote-state", "Quote for product " + q.product_id + ".");
  }

  function start() {
    $("search-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const w = new URLSearchParams();
      for (const [id, name] of [["starts-at", "starts_at"], ["ends-at", "ends_at"]]) {
        if ($(id).value) {
          w.set(name, $(id).value);
        }
      }
      history.pushState(null, "", w.toString() ? "/?" + w.toString() : "/");
      search(w, null);
    });
    $("more").addEventListener("click", () => search(searchQuery, cursorNext));
    $("quote-form").addEventListener("submit", (e) => {
      e.preventDefault();
      quote();
    });
    window.addEventListener("popstate", () => {
      const w = windowFromURL();
      fillForm(w);
      search(w, null);
    });

    const w = windowFromURL();
    fillForm(w);
    if (w.toString()) {
      search(w, null);
    }
    loadStatus();
    loadProviders();
    setInterval(() => {
      if (!document.hidden) {
        loadStatus();
        loadProviders();
      }
    }, refreshMs);
  }

  start();
})();

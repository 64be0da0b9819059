package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"
)

// StatusSource is what GET /api/v1/status reads besides the catalog index. The command
// implements it over the store and the broker.
type StatusSource interface {
	// PricingVersion returns the version of the prices last published; 0 before the
	// first recalculation.
	PricingVersion(ctx context.Context) (int64, error)
	// DeadLetters returns, by topic, the messages dead-lettered and not yet replayed or
	// purged.
	DeadLetters(ctx context.Context) (map[string]int, error)
}

// statusTimeout bounds the reads of one status document, whatever the request that
// asked for it: requests within statusMaxAge share it.
const statusTimeout = 2 * time.Second

// statusMaxAge is how old the status document may be: a page that polls it, or many,
// cost the store and the broker one read a second at most.
const statusMaxAge = time.Second

// Sections of the status document, as its unavailable list names them.
const (
	sectionCatalog     = "catalog"
	sectionPricing     = "pricing"
	sectionDeadLetters = "dead_letters"
)

// statusDoc is the data of GET /api/v1/status. A section that could not be read is
// null and named in Unavailable; why is logged, not shown.
type statusDoc struct {
	Catalog     *catalogStatus     `json:"catalog"`
	Pricing     *pricingStatus     `json:"pricing"`
	DeadLetters *deadLettersStatus `json:"dead_letters"`
	Unavailable []string           `json:"unavailable"`
}

// catalogStatus is the catalog this process serves: its version and, with an index in
// memory, the searchable plans in it (null without one: searches read the store).
type catalogStatus struct {
	Version int64 `json:"version"`
	Indexed bool  `json:"indexed"`
	Plans   *int  `json:"plans"`
}

type pricingStatus struct {
	Version int64 `json:"version"`
}

type deadLettersStatus struct {
	Total  int            `json:"total"`
	Topics map[string]int `json:"topics"`
}

// statusCache is the last status document.
type statusCache struct {
	mu   sync.Mutex // guards the fields; held while the document is read
	at   time.Time
	body []byte
}

// serveStatus answers GET /api/v1/status: the catalog at a glance, the pricing version
// and the dead letters waiting, public and read-only, for the console and for scripts.
// The document is at most statusMaxAge old; requests within that share one read (one
// that comes while it runs waits for it), and each part is read within statusTimeout.
func (h *Handler) serveStatus(w http.ResponseWriter, r *http.Request) {
	c := &h.statusCache
	c.mu.Lock()
	if c.body == nil || h.now().Sub(c.at) >= statusMaxAge {
		// The reads outlive a request that goes away: the others wait for them.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), statusTimeout)
		c.body = h.readStatus(ctx)
		cancel()
		c.at = h.now()
	}
	body := c.body
	c.mu.Unlock()
	writeJSON(w, http.StatusOK, body)
}

// readStatus reads the status document and returns the response body.
func (h *Handler) readStatus(ctx context.Context) []byte {
	doc := statusDoc{Unavailable: []string{}}
	unavailable := func(section string, err error) {
		doc.Unavailable = append(doc.Unavailable, section)
		if err != nil {
			h.log.Warn("status", "section", section, "err", err)
		}
	}
	if ix := h.catalog.Index(); ix != nil {
		n := ix.Len()
		doc.Catalog = &catalogStatus{Version: ix.Version(), Indexed: true, Plans: &n}
	} else if h.store != nil {
		if v, err := h.storeVersion(ctx); err != nil {
			unavailable(sectionCatalog, err)
		} else {
			doc.Catalog = &catalogStatus{Version: v}
		}
	} else {
		unavailable(sectionCatalog, nil) // not loaded yet, and no store to ask
	}
	if h.status == nil {
		unavailable(sectionPricing, nil)
		unavailable(sectionDeadLetters, nil)
	} else {
		if v, err := h.status.PricingVersion(ctx); err != nil {
			unavailable(sectionPricing, err)
		} else {
			doc.Pricing = &pricingStatus{Version: v}
		}
		if topics, err := h.status.DeadLetters(ctx); err != nil {
			unavailable(sectionDeadLetters, err)
		} else {
			if topics == nil {
				topics = map[string]int{}
			}
			dl := &deadLettersStatus{Topics: topics}
			for _, n := range topics {
				dl.Total += n
			}
			doc.DeadLetters = dl
		}
	}
	body, err := json.Marshal(struct {
		Data  statusDoc `json:"data"`
		Error any       `json:"error"`
	}{Data: doc})
	if err != nil {
		panic(err) // numbers and strings always encode
	}
	return body
}

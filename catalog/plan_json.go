package catalog

import (
	"fmt"
	"strconv"
	"time"
)

// AppendJSON appends p's JSON encoding to b: the object encoding/json writes for a Plan
// (the same keys in the same order, omitempty alike, times in RFC 3339 with
// nanoseconds, prices with two decimals), which encoding/json decodes back to p. It
// escapes only what JSON requires, not '<', '>' and '&' as encoding/json does, and
// writes invalid UTF-8 as U+FFFD like it. It is the wire form of plan batches, written
// several times faster than by reflection. Like encoding/json, it fails on a time whose
// year is outside 0–9999.
func (p *Plan) AppendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"id":"`...)
	b = p.ID.AppendText(b)
	b = append(b, `","provider":`...)
	b = appendJSONString(b, p.Provider)
	b = append(b, `,"base_plan_id":`...)
	b = appendJSONString(b, p.BasePlanID)
	b = append(b, `,"plan_id":`...)
	b = appendJSONString(b, p.PlanID)
	b = append(b, `,"title":`...)
	b = appendJSONString(b, p.Title)
	if p.OrganizerCompanyID != "" {
		b = append(b, `,"organizer_company_id":`...)
		b = appendJSONString(b, p.OrganizerCompanyID)
	}
	b = append(b, `,"sell_mode":`...)
	b = appendJSONString(b, string(p.SellMode))
	for _, t := range []struct {
		key string
		t   time.Time
	}{{`,"starts_at":"`, p.StartsAt}, {`,"ends_at":"`, p.EndsAt}, {`,"sell_from":"`, p.SellFrom}, {`,"sell_to":"`, p.SellTo}} {
		if y := t.t.Year(); y < 0 || y > 9999 {
			return b, fmt.Errorf("plan %s: %s: year %d outside of 0–9999", p.ID, t.key[2:len(t.key)-3], y)
		}
		b = append(b, t.key...)
		b = t.t.AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	}
	b = append(b, `,"sold_out":`...)
	b = strconv.AppendBool(b, p.SoldOut)
	b = append(b, `,"zones":`...)
	if p.Zones == nil {
		b = append(b, "null"...)
	} else {
		b = appendZones(b, p.Zones, true)
	}
	b = append(b, `,"revision":`...)
	b = strconv.AppendInt(b, p.Revision, 10)
	if p.EverOnline {
		b = append(b, `,"ever_online":true`...)
	}
	if p.Version != 0 {
		b = append(b, `,"version":`...)
		b = strconv.AppendInt(b, p.Version, 10)
	}
	return append(b, '}'), nil
}

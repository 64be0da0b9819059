package ingest

import (
	"context"
	"errors"

	"boxoffice/catalog"
)

// Validators are the cache validators of the provider's last full response, sent back
// on the next fetch as a conditional request.
type Validators struct {
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
}

// Fetched describes one fetch of the provider's catalog.
type Fetched struct {
	NotModified bool       // the provider answered 304: nothing was emitted
	Validators  Validators // to send on the next fetch; empty when the provider sent none
	Format      string     // "planList" or the legacy "eventList"
	Parsed      int        // plans emitted
	Skipped     int        // plans skipped for bad data
	SkipReasons []string   // the first few reasons, for the log: `plan 291/1642: plan_end_date: day out of range`
}

// ErrMalformed marks a document that is not well-formed XML or not a plan list. It
// aborts the sync without a retry: the provider answered, and asking again right away
// rarely helps.
var ErrMalformed = errors.New("malformed provider document")

// Source fetches the provider's current catalog once (one attempt, no retries: the
// Syncer retries), streaming every valid plan to emit in document order and skipping
// plans with bad data. An error from emit stops the fetch and is returned.
//
// Errors: ErrMalformed (wrapped) for a bad document; task.Permanent errors for answers
// that a retry cannot fix (a 4xx status); any other error (a timeout, a refused
// connection, a 5xx status, a body cut short by the network) is transient.
type Source interface {
	Fetch(ctx context.Context, since Validators, emit func(catalog.Plan) error) (Fetched, error)
}

package httpapi

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"net/http"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
)

// openAPIYAML is the API's OpenAPI document: the provider-search spec we were given,
// extended with what boxoffice adds and never broken.
//
//go:embed openapi.yaml
var openAPIYAML []byte

// openAPIJSON converts the OpenAPI document to JSON and returns it with a strong ETag.
func openAPIJSON(yaml []byte) (doc []byte, etag string, err error) {
	spec, err := openapi3.NewLoader().LoadFromData(yaml)
	if err != nil {
		return nil, "", fmt.Errorf("load: %w", err)
	}
	doc, err = spec.MarshalJSON()
	if err != nil {
		return nil, "", fmt.Errorf("marshal: %w", err)
	}
	sum := sha256.Sum256(doc)
	return doc, `"` + hex.EncodeToString(sum[:16]) + `"`, nil
}

// serveOpenAPI answers GET /openapi.json with the OpenAPI document; its ETag lets
// clients revalidate it with If-None-Match.
func (h *Handler) serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Type", contentTypeJSON)
	hd.Set("ETag", h.specETag)
	hd.Set("Cache-Control", "no-cache") // revalidate: a new release may change it
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(h.spec))
}

package pricing

import (
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
)

// tracerName names the spans of this package.
const tracerName = "boxoffice/pricing"

// tracer returns this package's tracer from the global provider: OpenTelemetry's
// no-op one unless cmd/boxoffice installed an SDK.
func tracer() trace.Tracer { return otel.Tracer(tracerName) }

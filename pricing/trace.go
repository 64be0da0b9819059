package pricing

import (
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// tracerName names the spans of this package.
const tracerName = "boxoffice/pricing"

// tracer returns this package's tracer from the global provider: OpenTelemetry's
// no-op one unless cmd/boxoffice installed an SDK.
func tracer() trace.Tracer { return otel.Tracer(tracerName) }

// fail marks span as failed with err, when err is not nil.
func fail(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
}

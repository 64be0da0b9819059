package pricing

// tracerName names the spans of this package, made by the TracerProvider each
// component is given (see spans.Tracer).
const tracerName = "boxoffice/pricing"

// Package telemetry installs OpenTelemetry tracing in a boxoffice process: an SDK
// tracer provider that batches spans and exports them over OTLP/HTTP when the standard
// OTEL_* variables name an endpoint, and nothing at all when they do not, so that an
// untraced process pays nothing. It also puts the trace and span ids of a log record's
// context into the logs.
//
// Only cmd/boxoffice imports it. The domain packages and the adapters use the
// OpenTelemetry API alone: the global tracer provider and propagator that Setup
// installs, or the provider that cmd/boxoffice hands them.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"boxoffice/redact"
)

// Tracing is what Setup installed: an SDK tracer provider, or nothing. The zero value
// and nil are tracing off.
type Tracing struct {
	provider *sdktrace.TracerProvider // nil when tracing is off
}

// Setup configures the tracing of a process whose service is named service (such as
// "boxoffice-api") from the standard OpenTelemetry variables:
//
//   - Tracing is on when OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT
//     is set, unless OTEL_SDK_DISABLED is true or OTEL_TRACES_EXPORTER is none. The
//     traces endpoint is used as it is; the generic one gets /v1/traces appended.
//   - Spans are exported in batches (OTEL_BSP_*) over OTLP/HTTP with protobuf, the one
//     protocol supported: OTEL_EXPORTER_OTLP_PROTOCOL grpc or http/json is an error.
//     The exporter's other settings (OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT,
//     _COMPRESSION, _CERTIFICATE…) and sampling (OTEL_TRACES_SAMPLER, default
//     parent-based always-on) are the SDK's, as documented by OpenTelemetry.
//   - The resource is service.name service and service.version version, overridden
//     by OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
//
// getenv decides whether tracing is on and where spans go; the SDK reads its other
// settings from the process environment. Setup installs the provider as the global
// one, and the W3C trace context and baggage propagator in any case, so a process
// without tracing still hands on the context of the messages it passes along. When
// tracing is off the global provider stays OpenTelemetry's no-op provider and every
// span costs next to nothing. Export errors go to log, at warn level.
func Setup(ctx context.Context, service, version string, getenv func(string) string, log *slog.Logger) (*Tracing, error) {
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	endpoint, err := endpointURL(getenv)
	if endpoint == "" || err != nil {
		return &Tracing{}, err
	}
	exporter, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(endpoint))
	if err != nil {
		return nil, fmt.Errorf("opentelemetry: OTLP exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(service), semconv.ServiceVersion(version)),
		resource.WithFromEnv(), // after the defaults: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
		resource.WithTelemetrySDK(),
	)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("opentelemetry: resource: %w", err), exporter.Shutdown(ctx))
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("opentelemetry", "err", err)
	}))
	log.Info("tracing on: exporting spans over OTLP/HTTP", "endpoint", endpoint, "service", service)
	return &Tracing{provider: tp}, nil
}

// endpointURL returns the URL spans are exported to, or "" when tracing is off, and an
// error for settings boxoffice cannot honour.
func endpointURL(getenv func(string) string) (string, error) {
	if disabled, _ := strconv.ParseBool(strings.TrimSpace(getenv("OTEL_SDK_DISABLED"))); disabled {
		return "", nil
	}
	switch exp := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); exp {
	case "none":
		return "", nil
	case "", "otlp":
	default:
		return "", fmt.Errorf("OTEL_TRACES_EXPORTER: %q is not supported: want otlp or none", exp)
	}
	for _, name := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if p := strings.TrimSpace(getenv(name)); p != "" {
			if p != "http/protobuf" {
				return "", fmt.Errorf("%s: %q is not supported: boxoffice exports http/protobuf", name, p)
			}
			break // the signal's own setting beats the generic one
		}
	}
	if u := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")); u != "" {
		return u, checkURL("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", u)
	}
	if u := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_ENDPOINT")); u != "" {
		return strings.TrimSuffix(u, "/") + "/v1/traces", checkURL("OTEL_EXPORTER_OTLP_ENDPOINT", u)
	}
	return "", nil
}

// checkURL reports an endpoint that is not an http(s) URL with a host, which the
// exporter would otherwise ignore in favour of localhost:4318.
func checkURL(name, u string) error {
	scheme, rest, ok := strings.Cut(u, "://")
	host, _, _ := strings.Cut(rest, "/")
	if !ok || (scheme != "http" && scheme != "https") || host == "" {
		return fmt.Errorf("%s: want an http:// or https:// URL with a host: %q", name, redact.URL(u))
	}
	return nil
}

// TracerProvider returns the provider spans are recorded with, or nil when tracing is
// off, so that adapters can leave their instrumentation out altogether.
func (t *Tracing) TracerProvider() trace.TracerProvider {
	if t == nil || t.provider == nil {
		return nil
	}
	return t.provider
}

// Shutdown exports the spans still buffered and stops the provider; spans that end
// after it are dropped. It returns when ctx is done, with ctx's error, even when spans
// remain. It does nothing when tracing is off.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil || t.provider == nil {
		return nil
	}
	if err := t.provider.Shutdown(ctx); err != nil {
		return fmt.Errorf("opentelemetry: shut down: %w", err)
	}
	return nil
}

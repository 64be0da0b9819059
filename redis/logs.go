package redis

import (
	"context"
	"fmt"
	"log/slog"

	goredis "github.com/redis/go-redis/v9"
)

// driverLog sends go-redis's own messages to a slog logger.
type driverLog struct{ log *slog.Logger }

func (d driverLog) Printf(ctx context.Context, format string, v ...any) {
	d.log.DebugContext(ctx, "redis driver", "msg_text", fmt.Sprintf(format, v...))
}

// RouteDriverLogs sends the go-redis driver's messages (a failed dial on every pool
// attempt while Redis is down, for instance) to log at debug level, instead of plain
// text on stderr. The driver's logger is process-wide: call it once, from main. The
// adapters log what matters themselves, once per outage.
func RouteDriverLogs(log *slog.Logger) {
	goredis.SetLogger(driverLog{log.With("component", "redis")})
}

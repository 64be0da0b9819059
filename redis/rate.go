package redis

import (
	"context"
	"fmt"
	"time"

	"github.com/go-redis/redis_rate/v10"
)

// Rates keeps request budgets that API instances share: one GCRA bucket per key, in
// Redis, through redis_rate (a Lua script, so each update is atomic and uses Redis's
// clock). Keys are rate:<namespace>:<key>, with a TTL of the time the bucket takes to
// refill, so idle clients cost nothing. It is safe for concurrent use.
type Rates struct {
	l      *redis_rate.Limiter
	prefix string
}

// NewRates returns the shared budgets on c under namespace.
func NewRates(c *Client, namespace string) *Rates {
	return &Rates{l: redis_rate.NewLimiter(c.rdb), prefix: namespace + ":"}
}

// Take spends up to n requests of key's budget (perSecond, up to burst) and returns how
// long the bucket takes to refill after them: the bucket is full again then, and
// empty, so that requests are refused now, when that is longer than the burst's worth.
// Requests beyond the budget are not recorded: the bucket is empty either way.
func (r *Rates) Take(ctx context.Context, key string, perSecond float64, burst, n int) (time.Duration, error) {
	if perSecond <= 0 || burst <= 0 || n <= 0 {
		return 0, fmt.Errorf("take %d of %s: rate %g/s and burst %d must be positive", n, key, perSecond, burst)
	}
	// One request per emission interval: a rate of any precision, not only whole ones.
	limit := redis_rate.Limit{Rate: 1, Burst: burst, Period: time.Duration(float64(time.Second) / perSecond)}
	res, err := r.l.AllowAtMost(ctx, r.prefix+key, limit, n)
	if err != nil {
		return 0, fmt.Errorf("take %d of rate limit %s: %w", n, key, err)
	}
	return res.ResetAfter, nil
}

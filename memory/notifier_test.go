package memory

import (
	"testing"

	"boxoffice/catalog"
	"boxoffice/catalog/catalogtest"
)

func TestNotifier(t *testing.T) {
	catalogtest.TestNotifier(t, func(t *testing.T) catalogtest.Notifiers {
		n := NewNotifier()
		return catalogtest.Notifiers{
			New: func() catalog.Notifier { return n },
			Subscriptions: func() int {
				n.mu.Lock()
				defer n.mu.Unlock()
				return len(n.subs)
			},
		}
	})
}

package memory_test

import (
	"testing"
	"time"

	"boxoffice/clock/clocktest"
	"boxoffice/memory"
	"boxoffice/task"
	"boxoffice/task/tasktest"
)

func TestLocker(t *testing.T) {
	c := clocktest.NewManual(time.Unix(0, 0))
	tasktest.TestLocker(t, func(t *testing.T) task.Locker { return memory.NewLocker(c) }, c.Advance)
}

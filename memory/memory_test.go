package memory_test

import (
	"testing"

	"boxoffice/memory"
	"boxoffice/task"
	"boxoffice/task/tasktest"
)

func TestLocker(t *testing.T) {
	tasktest.TestLocker(t, func(t *testing.T) task.Locker { return memory.NewLocker() })
}

package fakes_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run when a test leaves a goroutine behind: a fake that
// keeps a handler running after Close, or a client left waiting on one,
// would otherwise go unnoticed.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

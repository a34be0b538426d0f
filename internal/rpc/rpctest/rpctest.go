// Package rpctest holds what the adapters' table tests share. It is imported
// only by tests.
package rpctest

import (
	"errors"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/aura-p2p/aura/internal/rpc"
)

// CheckOutcome checks one adapter call as a client sees it: the status code
// the API edge gives err, whether the call reached the domain fake (bad
// input must be refused before it does), and that the domain's own error
// survives the adapter. It returns the status message for further checks.
func CheckOutcome(t testing.TB, err error, want codes.Code, calls int, wantReached bool, domainErr error) string {
	t.Helper()
	st, _ := rpc.ToStatus(err)
	if st.Code() != want {
		t.Fatalf("code %v (%v), want %v", st.Code(), err, want)
	}
	if reached := calls > 0; reached != wantReached {
		t.Fatalf("domain called %d times, want reached=%v", calls, wantReached)
	}
	if domainErr != nil && !errors.Is(err, domainErr) {
		t.Fatalf("the domain's error was not kept: %v", err)
	}
	return st.Message()
}

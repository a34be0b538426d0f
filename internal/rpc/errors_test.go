package rpc

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/aura-p2p/aura/internal/core"
)

func TestToStatusMapsEverySentinel(t *testing.T) {
	tests := []struct {
		err     error
		code    codes.Code
		message string
	}{
		{fmt.Errorf("fact x: %w", core.ErrInvalidArgument), codes.InvalidArgument, "fact x"},
		{fmt.Errorf("fact x: %w", core.ErrNotFound), codes.NotFound, "fact x"},
		{fmt.Errorf("ns: %w", core.ErrAlreadyExists), codes.AlreadyExists, "ns"},
		{fmt.Errorf("kind: %w", core.ErrFailedPrecondition), codes.FailedPrecondition, "kind"},
		{fmt.Errorf("retry: %w", core.ErrAborted), codes.Aborted, "retry"},
		{fmt.Errorf("budget: %w", core.ErrResourceExhausted), codes.ResourceExhausted, "budget"},
		{fmt.Errorf("member: %w", core.ErrPermissionDenied), codes.PermissionDenied, "member"},
		{fmt.Errorf("token: %w", core.ErrUnauthenticated), codes.Unauthenticated, "token"},
		{fmt.Errorf("closing: %w", core.ErrUnavailable), codes.Unavailable, "closing"},
		{fmt.Errorf("corrupt: %w", core.ErrInternal), codes.Internal, "corrupt"},
		{fmt.Errorf("waiting: %w", context.Canceled), codes.Canceled, "waiting"},
		{fmt.Errorf("waiting: %w", context.DeadlineExceeded), codes.DeadlineExceeded, "waiting"},
		{status.Error(codes.OutOfRange, "as is"), codes.OutOfRange, "as is"},
		{errors.New("a bug"), codes.Internal, "internal error: a bug"},
		{status.Error(codes.Unknown, "opaque"), codes.Internal, "internal error: rpc error: code = Unknown desc = opaque"},
	}
	for _, tc := range tests {
		t.Run(tc.err.Error(), func(t *testing.T) {
			st, _ := ToStatus(tc.err)
			if st.Code() != tc.code || st.Message() != tc.message {
				t.Fatalf("got %v %q, want %v %q", st.Code(), st.Message(), tc.code, tc.message)
			}
		})
	}
	// Every sentinel in core is in the table: nothing reaches a client as Unknown.
	for _, s := range []error{core.ErrInvalidArgument, core.ErrNotFound, core.ErrAlreadyExists, core.ErrFailedPrecondition,
		core.ErrAborted, core.ErrResourceExhausted, core.ErrUnavailable, core.ErrPermissionDenied, core.ErrUnauthenticated, core.ErrInternal} {
		if st, _ := ToStatus(s); st.Code() == codes.Unknown || (st.Code() == codes.Internal && s != core.ErrInternal) {
			t.Errorf("%v maps to %v", s, st.Code())
		}
	}
}

func TestMergeRefusesDuplicates(t *testing.T) {
	if _, err := Merge(Permissions{"/a/B": Read}, Permissions{"/a/B": Write}); err == nil {
		t.Fatal("duplicate entry accepted")
	}
}

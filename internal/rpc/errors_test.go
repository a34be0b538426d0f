package rpc

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"
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
		{fmt.Errorf("page 7: %w", core.ErrDataLoss), codes.DataLoss, "page 7"},
		{fmt.Errorf("waiting: %w", context.Canceled), codes.Canceled, "waiting"},
		{fmt.Errorf("waiting: %w", context.DeadlineExceeded), codes.DeadlineExceeded, "waiting"},
		{status.Error(codes.OutOfRange, "as is"), codes.OutOfRange, "as is"},
		{errors.New("a bug"), codes.Internal, "internal error: a bug"},
		{status.Error(codes.Unknown, "opaque"), codes.Internal, "internal error: rpc error: code = Unknown desc = opaque"},
		// A full disk is the operator's to fix, not a daemon to wait for.
		{fmt.Errorf("commit: %w: %w", &fs.PathError{Op: "write", Path: "/data/journal.db", Err: syscall.ENOSPC}, core.ErrUnavailable),
			codes.ResourceExhausted, "disk full: commit: write /data/journal.db: no space left on device"},
		{fmt.Errorf("commit: %w: %w", &fs.PathError{Op: "write", Path: "/data/journal.db", Err: syscall.EDQUOT}, core.ErrUnavailable),
			codes.ResourceExhausted, "disk quota exceeded: commit: write /data/journal.db: disk quota exceeded"},
		{fmt.Errorf("write lock: %w", syscall.ENOSPC), codes.ResourceExhausted, "disk full: write lock: no space left on device"},
		{hiddenErrno{syscall.ENOSPC}, codes.ResourceExhausted, "disk full: store failed (no space left on device)"},
		// bbolt flattens some errors with %s: only the text is left.
		{fmt.Errorf("commit: %w: %w", errors.New("mmap allocate error: file resize error: no space left on device"), core.ErrUnavailable),
			codes.ResourceExhausted, "disk full: commit: mmap allocate error: file resize error: no space left on device"},
		// The same text echoed from a client's input is not a full disk.
		{fmt.Errorf("name %q: %w", "no space left on device", core.ErrInvalidArgument), codes.InvalidArgument, `name "no space left on device"`},
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
		core.ErrAborted, core.ErrResourceExhausted, core.ErrUnavailable, core.ErrPermissionDenied, core.ErrUnauthenticated, core.ErrInternal, core.ErrDataLoss} {
		if st, _ := ToStatus(s); st.Code() == codes.Unknown || (st.Code() == codes.Internal && s != core.ErrInternal) {
			t.Errorf("%v maps to %v", s, st.Code())
		}
	}
}

// hiddenErrno wraps an errno without showing its text.
type hiddenErrno struct{ errno syscall.Errno }

func (e hiddenErrno) Error() string { return "store failed" }
func (e hiddenErrno) Unwrap() error { return e.errno }

func TestToStatusCapsLongMessages(t *testing.T) {
	long := strings.Repeat("é", 3000) // 6000 bytes; the cut must not split a character
	st, _ := ToStatus(fmt.Errorf("%s: %w", long, core.ErrInvalidArgument))
	want := strings.Repeat("é", maxMessage/2) + "…(6000 bytes)"
	if st.Code() != codes.InvalidArgument || st.Message() != want {
		t.Fatalf("got %v %q…, want %q…", st.Code(), st.Message()[:20], want[:20])
	}
}

func TestMergeRefusesDuplicates(t *testing.T) {
	if _, err := Merge(Permissions{"/a/B": Read}, Permissions{"/a/B": Write}); err == nil {
		t.Fatal("duplicate entry accepted")
	}
}

// A peer failure keeps the code its sentinel gives and carries the reason that
// tells it from the daemon being unavailable; nothing else carries it.
func TestToStatusPeerUnreachable(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		code   codes.Code
		reason string
	}{
		{"dial failed", PeerUnreachable(fmt.Errorf("send to d1: dial refused: %w", core.ErrUnavailable)), codes.Unavailable, ReasonPeerUnreachable},
		{"no pong", PeerUnreachable(fmt.Errorf("no pong from d1: %w", context.DeadlineExceeded)), codes.DeadlineExceeded, ReasonPeerUnreachable},
		{"wrapped mark", fmt.Errorf("ping: %w", PeerUnreachable(fmt.Errorf("x: %w", core.ErrUnavailable))), codes.Unavailable, ReasonPeerUnreachable},
		{"long message keeps the reason", PeerUnreachable(fmt.Errorf("%s: %w", strings.Repeat("x", 2*maxMessage), core.ErrUnavailable)), codes.Unavailable, ReasonPeerUnreachable},
		{"daemon unavailable", fmt.Errorf("closing: %w", core.ErrUnavailable), codes.Unavailable, ""},
		{"nil mark", PeerUnreachable(nil), codes.OK, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, _ := ToStatus(tc.err)
			if st.Code() != tc.code {
				t.Fatalf("code %v, want %v", st.Code(), tc.code)
			}
			if got := Reason(st.Err()); got != tc.reason {
				t.Fatalf("reason %q, want %q", got, tc.reason)
			}
		})
	}
}

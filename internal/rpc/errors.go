package rpc

import (
	"context"
	"errors"
	"strings"
	"syscall"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/aura-p2p/aura/internal/core"
)

// codeTable maps each sentinel to its code. Order matters only if an error
// wraps two sentinels; the first match wins, most specific first.
var codeTable = []struct {
	err  error
	code codes.Code
}{
	{core.ErrInvalidArgument, codes.InvalidArgument},
	{core.ErrNotFound, codes.NotFound},
	{core.ErrAlreadyExists, codes.AlreadyExists},
	{core.ErrFailedPrecondition, codes.FailedPrecondition},
	{core.ErrAborted, codes.Aborted},
	{core.ErrResourceExhausted, codes.ResourceExhausted},
	{core.ErrPermissionDenied, codes.PermissionDenied},
	{core.ErrUnauthenticated, codes.Unauthenticated},
	{core.ErrUnavailable, codes.Unavailable},
	{core.ErrDataLoss, codes.DataLoss},
	{core.ErrInternal, codes.Internal},
	{context.Canceled, codes.Canceled},
	{context.DeadlineExceeded, codes.DeadlineExceeded},
}

// diskErrors are the errnos of a full disk. The journal reports a failed
// commit as Unavailable, which tells a client to wait for the daemon; a full
// disk waits for the operator instead, so it is ResourceExhausted, and says
// which errno (hence which resource) ran out. They are checked before the
// sentinels because a failed commit wraps both.
var diskErrors = []struct {
	errno  syscall.Errno
	prefix string
}{
	{syscall.ENOSPC, "disk full"},
	{syscall.EDQUOT, "disk quota exceeded"},
}

// ToStatus converts a domain error into a gRPC status. Errors that are already
// statuses pass through; errors wrapping no sentinel are bugs and become
// Internal (bug reports false), never Unknown. Messages longer than
// maxMessage are cut.
func ToStatus(err error) (st *status.Status, known bool) {
	if err == nil {
		return nil, true
	}
	st, known = toStatus(err)
	if msg := capMessage(st.Message()); msg != st.Message() {
		st = status.New(st.Code(), msg)
	}
	var pe *peerError
	if errors.As(err, &pe) && len(st.Details()) == 0 {
		if d, derr := st.WithDetails(&errdetails.ErrorInfo{Reason: ReasonPeerUnreachable, Domain: ErrorDomain}); derr == nil {
			st = d
		}
	}
	return st, known
}

// ErrorDomain and the reasons of the google.rpc.ErrorInfo detail that aurad
// attaches where the code alone does not say who failed.
const (
	ErrorDomain = "aurad"
	// ReasonPeerUnreachable: a peer or the network between the devices
	// failed (no address, dial refused, stream reset, no answer in time).
	// The code stays what the cause maps to, usually Unavailable, which a
	// client would otherwise read as "the daemon is unavailable".
	ReasonPeerUnreachable = "PEER_UNREACHABLE"
)

// PeerUnreachable marks err as a failure to reach a peer, so that its status
// carries ReasonPeerUnreachable. Adapters mark what they know came from the
// network; the error's sentinel still decides the code.
func PeerUnreachable(err error) error {
	if err == nil {
		return nil
	}
	return &peerError{err: err}
}

type peerError struct{ err error }

func (e *peerError) Error() string { return e.err.Error() }
func (e *peerError) Unwrap() error { return e.err }

// Reason returns the ErrorInfo reason aurad attached to err's status, or "".
func Reason(err error) string {
	st, ok := status.FromError(err)
	if !ok {
		return ""
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == ErrorDomain {
			return info.GetReason()
		}
	}
	return ""
}

func toStatus(err error) (*status.Status, bool) {
	if s, ok := status.FromError(err); ok && s.Code() != codes.Unknown {
		return s, true
	}
	if msg, ok := diskFull(err); ok {
		return status.New(codes.ResourceExhausted, msg), true
	}
	for _, e := range codeTable {
		if errors.Is(err, e.err) {
			return status.New(e.code, message(err, e.err)), e.code != codes.Internal
		}
	}
	return status.New(codes.Internal, "internal error: "+err.Error()), false
}

// diskFull recognises a full disk or quota: "disk full: commit: write
// /data/journal.db: no space left on device".
func diskFull(err error) (string, bool) {
	msg := err.Error()
	for _, e := range codeTable {
		if errors.Is(err, e.err) {
			msg = message(err, e.err)
			break
		}
	}
	for _, d := range diskErrors {
		text := d.errno.Error()
		// bbolt formats some I/O errors with %s ("file resize error: no
		// space left on device"), losing the errno, so its text is matched
		// too; but only in server-side failures, since a client's input
		// echoed in an InvalidArgument message may contain any text.
		byText := serverFailure(err) && strings.Contains(msg, text)
		if !errors.Is(err, d.errno) && !byText {
			continue
		}
		if !strings.Contains(msg, text) {
			msg += " (" + text + ")"
		}
		return d.prefix + ": " + msg, true
	}
	return "", false
}

// serverFailure: err wraps no sentinel, or one that means the server failed.
func serverFailure(err error) bool {
	for _, e := range codeTable {
		if errors.Is(err, e.err) {
			return e.err == core.ErrUnavailable || e.err == core.ErrDataLoss || e.err == core.ErrInternal
		}
	}
	return true
}

// message drops the sentinel's own text, which domain errors append when they
// wrap it ("object x: not found"): the status code already says it.
func message(err, sentinel error) string {
	msg := err.Error()
	for {
		trimmed := strings.TrimSuffix(msg, ": "+sentinel.Error())
		if trimmed == msg {
			return msg
		}
		msg = trimmed
	}
}

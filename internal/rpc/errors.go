package rpc

import (
	"context"
	"errors"
	"strings"

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
	{core.ErrInternal, codes.Internal},
	{context.Canceled, codes.Canceled},
	{context.DeadlineExceeded, codes.DeadlineExceeded},
}

// ToStatus converts a domain error into a gRPC status. Errors that are already
// statuses pass through; errors wrapping no sentinel are bugs and become
// Internal (bug reports false), never Unknown.
func ToStatus(err error) (st *status.Status, known bool) {
	if err == nil {
		return nil, true
	}
	if s, ok := status.FromError(err); ok && s.Code() != codes.Unknown {
		return s, true
	}
	for _, e := range codeTable {
		if errors.Is(err, e.err) {
			return status.New(e.code, message(err, e.err)), e.code != codes.Internal
		}
	}
	return status.New(codes.Internal, "internal error: "+err.Error()), false
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

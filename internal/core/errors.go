package core

import "errors"

// Sentinel errors. Domain code wraps them with %w and context
// ("fact %s: %w", id, core.ErrNotFound); callers branch with errors.Is; the RPC
// layer maps them to gRPC codes in exactly one place. Anything that wraps none of
// these is a bug and surfaces as codes.Internal.
var (
	ErrInvalidArgument    = errors.New("invalid argument")
	ErrNotFound           = errors.New("not found")
	ErrAlreadyExists      = errors.New("already exists")
	ErrFailedPrecondition = errors.New("failed precondition")
	ErrAborted            = errors.New("aborted")
	ErrResourceExhausted  = errors.New("resource exhausted")
	ErrUnavailable        = errors.New("unavailable")
	ErrPermissionDenied   = errors.New("permission denied")
	ErrUnauthenticated    = errors.New("unauthenticated")
	ErrInternal           = errors.New("internal error")
	// ErrDataLoss: stored data is damaged. Never caused by client input.
	ErrDataLoss = errors.New("data loss")
)

package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/aura-p2p/aura/internal/rpc/safetext"
)

// Exit codes. Scripts branch on these, so they are part of auractl's interface:
// never renumber one, only add.
const (
	ExitOK                 = 0
	ExitError              = 1 // Internal, Unknown and anything not listed below
	ExitUsage              = 2 // bad flags or arguments; nothing was sent
	ExitUnavailable        = 3 // aurad is not running or not answering
	ExitInvalidArgument    = 4 // InvalidArgument, OutOfRange
	ExitNotFound           = 5
	ExitAlreadyExists      = 6
	ExitFailedPrecondition = 7
	ExitResourceExhausted  = 8
	ExitPermissionDenied   = 9 // PermissionDenied, Unauthenticated
	ExitDeadlineExceeded   = 10
	ExitAborted            = 11 // Aborted, Canceled
	ExitDataLoss           = 12 // aurad's journal is damaged (run aurad check)
	ExitPeerUnreachable    = 13 // aurad answered: a peer or the network failed
)

// exitCodeHelp is the table shown in `auractl --help`; errors_test.go checks that
// it agrees with exitCodeFor.
const exitCodeHelp = `Exit codes:
   0  success
   1  internal or unknown error
   2  usage error (bad flags or arguments)
   3  aurad not running or unavailable
   4  invalid argument, out of range
   5  not found
   6  already exists
   7  failed precondition
   8  resource exhausted
   9  permission denied, unauthenticated
  10  deadline exceeded (see --timeout)
  11  aborted, canceled
  12  data loss: aurad's journal is damaged (stop aurad, run aurad check)
  13  peer unreachable or network failure (aurad itself answered)`

// exitCodeFor maps a gRPC status code to auractl's exit code.
func exitCodeFor(c codes.Code) int {
	switch c {
	case codes.OK:
		return ExitOK
	case codes.Unavailable:
		return ExitUnavailable
	case codes.InvalidArgument, codes.OutOfRange:
		return ExitInvalidArgument
	case codes.NotFound:
		return ExitNotFound
	case codes.AlreadyExists:
		return ExitAlreadyExists
	case codes.FailedPrecondition:
		return ExitFailedPrecondition
	case codes.ResourceExhausted:
		return ExitResourceExhausted
	case codes.PermissionDenied, codes.Unauthenticated:
		return ExitPermissionDenied
	case codes.DeadlineExceeded:
		return ExitDeadlineExceeded
	case codes.Aborted, codes.Canceled:
		return ExitAborted
	case codes.DataLoss:
		return ExitDataLoss
	default:
		return ExitError
	}
}

// codeName spells a code the way the error line shows it; codes.Code.String
// gives "InvalidArgument", which reads badly in a sentence.
func codeName(c codes.Code) string {
	switch c {
	case codes.OK:
		return "ok"
	case codes.Canceled:
		return "canceled"
	case codes.Unknown:
		return "unknown"
	case codes.InvalidArgument:
		return "invalid argument"
	case codes.DeadlineExceeded:
		return "deadline exceeded"
	case codes.NotFound:
		return "not found"
	case codes.AlreadyExists:
		return "already exists"
	case codes.PermissionDenied:
		return "permission denied"
	case codes.ResourceExhausted:
		return "resource exhausted"
	case codes.FailedPrecondition:
		return "failed precondition"
	case codes.Aborted:
		return "aborted"
	case codes.OutOfRange:
		return "out of range"
	case codes.Unimplemented:
		return "unimplemented"
	case codes.Internal:
		return "internal"
	case codes.Unavailable:
		return "unavailable"
	case codes.DataLoss:
		return "data loss"
	case codes.Unauthenticated:
		return "unauthenticated"
	default:
		return strings.ToLower(c.String())
	}
}

// usageError marks a mistake in the command line itself, so the caller learns it
// from the exit code without a round trip to the daemon.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// notRunningError is reported instead of the transport's error text, which
// talks about dialing and transports rather than the daemon the user cares about.
type notRunningError struct{ socket string }

func (e *notRunningError) Error() string { return "aurad is not running at " + e.socket }

// The google.rpc.ErrorInfo that aurad attaches to a status whose cause was a
// peer or the network (internal/rpc's ErrorDomain and ReasonPeerUnreachable;
// errors_test.go checks they agree). Without it, Unavailable from aurad
// would read as aurad itself being unavailable.
const (
	errorDomain           = "aurad"
	reasonPeerUnreachable = "PEER_UNREACHABLE"
)

// abortPeerUnreachable is the session abort code (session.proto's
// AbortReason.code) of a send that failed at the network.
const abortPeerUnreachable = "peer_unreachable"

// withPeerReason marks a status auractl makes itself, for a failure that aurad
// reported as a peer's, the way aurad marks its own.
func withPeerReason(st *status.Status) *status.Status {
	marked, err := st.WithDetails(&errdetails.ErrorInfo{Domain: errorDomain, Reason: reasonPeerUnreachable})
	if err != nil {
		// Only a detail that cannot be marshalled fails; ErrorInfo always can.
		return st
	}
	return marked
}

// peerUnreachable reports whether st is aurad saying that a peer or the
// network failed.
func peerUnreachable(st *status.Status) bool {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == errorDomain && info.GetReason() == reasonPeerUnreachable {
			return true
		}
	}
	return false
}

// grpcStatus finds a gRPC status anywhere in err's chain.
func grpcStatus(err error) (*status.Status, bool) {
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) {
		return se.GRPCStatus(), true
	}
	return nil, false
}

// exitCode decides the process exit code for the error a command returned.
func exitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var ue usageError
	if errors.As(err, &ue) {
		return ExitUsage
	}
	var nr *notRunningError
	if errors.As(err, &nr) {
		return ExitUnavailable
	}
	if st, ok := grpcStatus(err); ok {
		if peerUnreachable(st) {
			return ExitPeerUnreachable
		}
		return exitCodeFor(st.Code())
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return ExitDeadlineExceeded
	case errors.Is(err, context.Canceled):
		return ExitAborted
	}
	return ExitError
}

// errorMessage is the text of err as users should read it: the status message
// alone for gRPC errors, since whatever wrapped it on the way here is auractl's
// plumbing, not something the user can act on.
func errorMessage(err error) string {
	var nr *notRunningError
	if errors.As(err, &nr) {
		return nr.Error()
	}
	if st, ok := grpcStatus(err); ok {
		return codeName(st.Code()) + ": " + st.Message()
	}
	return err.Error()
}

// errorLine renders err as the single line auractl writes to stderr.
func errorLine(err error) string {
	line := "Error: " + errorMessage(err)
	// One line, always: scripts read stderr line by line and server messages
	// may carry newlines. Whatever else they carry that a terminal would
	// hide or act on (they may quote names and input) is shown escaped.
	line = strings.ReplaceAll(line, "\r\n", " ")
	line = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, line)
	return safetext.Escape(line, "\t")
}

package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/rpc"
)

func TestExitCodeFor(t *testing.T) {
	tests := []struct {
		code codes.Code
		want int
	}{
		{codes.OK, ExitOK},
		{codes.Canceled, ExitAborted},
		{codes.Unknown, ExitError},
		{codes.InvalidArgument, ExitInvalidArgument},
		{codes.DeadlineExceeded, ExitDeadlineExceeded},
		{codes.NotFound, ExitNotFound},
		{codes.AlreadyExists, ExitAlreadyExists},
		{codes.PermissionDenied, ExitPermissionDenied},
		{codes.ResourceExhausted, ExitResourceExhausted},
		{codes.FailedPrecondition, ExitFailedPrecondition},
		{codes.Aborted, ExitAborted},
		{codes.OutOfRange, ExitInvalidArgument},
		{codes.Unimplemented, ExitError},
		{codes.Internal, ExitError},
		{codes.Unavailable, ExitUnavailable},
		{codes.DataLoss, ExitDataLoss},
		{codes.Unauthenticated, ExitPermissionDenied},
		{codes.Code(99), ExitError},
	}
	for _, tt := range tests {
		t.Run(tt.code.String(), func(t *testing.T) {
			if got := exitCodeFor(tt.code); got != tt.want {
				t.Errorf("exitCodeFor(%v) = %d, want %d", tt.code, got, tt.want)
			}
		})
	}
}

// The help text is the only place users see the table, so it must list every
// code exitCodeFor can produce, plus usage.
func TestExitCodeHelpListsEveryCode(t *testing.T) {
	seen := map[int]bool{ExitUsage: true, ExitPeerUnreachable: true}
	for c := codes.OK; c <= codes.Unauthenticated; c++ {
		seen[exitCodeFor(c)] = true
	}
	for code := range seen {
		if !strings.Contains(exitCodeHelp, fmt.Sprintf("\n%4d  ", code)) {
			t.Errorf("exit code %d missing from help:\n%s", code, exitCodeHelp)
		}
	}
}

func TestExitCodeAndLine(t *testing.T) {
	tests := []struct {
		name string
		err  error
		code int
		line string
	}{
		{
			name: "status",
			err:  status.Error(codes.InvalidArgument, "payload is 70000 bytes, limit 65536"),
			code: ExitInvalidArgument,
			line: "Error: invalid argument: payload is 70000 bytes, limit 65536",
		},
		{
			name: "wrapped status keeps only the status message",
			err:  fmt.Errorf("append fact: %w", status.Error(codes.NotFound, "fact ab12 not found")),
			code: ExitNotFound,
			line: "Error: not found: fact ab12 not found",
		},
		{
			name: "not running",
			err:  &notRunningError{socket: "/run/aurad/aurad.sock"},
			code: ExitUnavailable,
			line: "Error: aurad is not running at /run/aurad/aurad.sock",
		},
		{
			name: "usage",
			err:  usagef("--by must not be 0"),
			code: ExitUsage,
			line: "Error: --by must not be 0",
		},
		{
			name: "usage wins over a wrapped status",
			err:  usageError{status.Error(codes.NotFound, "x")},
			code: ExitUsage,
			line: "Error: not found: x",
		},
		{
			name: "plain error",
			err:  errors.New("write output: broken pipe"),
			code: ExitError,
			line: "Error: write output: broken pipe",
		},
		{
			name: "context deadline",
			err:  fmt.Errorf("read: %w", context.DeadlineExceeded),
			code: ExitDeadlineExceeded,
			line: "Error: read: context deadline exceeded",
		},
		{
			name: "aurad unavailable",
			err:  status.Error(codes.Unavailable, "aurad is shutting down"),
			code: ExitUnavailable,
			line: "Error: unavailable: aurad is shutting down",
		},
		{
			name: "peer unreachable",
			err:  peerStatus(fmt.Errorf("send to d1: failed to dial: no addresses: %w", core.ErrUnavailable)),
			code: ExitPeerUnreachable,
			line: "Error: unavailable: send to d1: failed to dial: no addresses",
		},
		{
			name: "peer did not answer in time",
			err:  fmt.Errorf("ping: %w", peerStatus(fmt.Errorf("no pong from d1: %w", context.DeadlineExceeded))),
			code: ExitPeerUnreachable,
			line: "Error: deadline exceeded: no pong from d1",
		},
		{
			name: "another domain's reason is not ours",
			err:  withInfo(codes.Unavailable, "x", &errdetails.ErrorInfo{Domain: "elsewhere", Reason: reasonPeerUnreachable}),
			code: ExitUnavailable,
			line: "Error: unavailable: x",
		},
		{
			name: "multi-line message becomes one line",
			err:  status.Error(codes.Internal, "first\nsecond\r\nthird"),
			code: ExitError,
			line: "Error: internal: first second third",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := exitCode(tt.err); got != tt.code {
				t.Errorf("exitCode = %d, want %d", got, tt.code)
			}
			if got := errorLine(tt.err); got != tt.line {
				t.Errorf("errorLine = %q, want %q", got, tt.line)
			}
		})
	}
	if exitCode(nil) != ExitOK {
		t.Error("exitCode(nil) != 0")
	}
}

func withInfo(c codes.Code, msg string, info *errdetails.ErrorInfo) error {
	st, err := status.New(c, msg).WithDetails(info)
	if err != nil {
		panic(err)
	}
	return st.Err()
}

// peerStatus is what aurad sends for a peer failure: internal/rpc's ToStatus
// of a marked domain error.
func peerStatus(domainErr error) error {
	st, _ := rpc.ToStatus(rpc.PeerUnreachable(domainErr))
	return st.Err()
}

// auractl keeps its own copy of the reason, so that it does not link the
// server's packages; the copies must agree.
func TestPeerReasonMatchesServer(t *testing.T) {
	if errorDomain != rpc.ErrorDomain || reasonPeerUnreachable != rpc.ReasonPeerUnreachable {
		t.Fatalf("auractl reads %s/%s, aurad sends %s/%s", errorDomain, reasonPeerUnreachable, rpc.ErrorDomain, rpc.ReasonPeerUnreachable)
	}
}

func TestCodeNamesAreLowercaseWords(t *testing.T) {
	for c := codes.OK; c <= codes.Unauthenticated; c++ {
		n := codeName(c)
		if n != strings.ToLower(n) || strings.ReplaceAll(n, " ", "") != strings.ToLower(c.String()) {
			t.Errorf("codeName(%v) = %q", c, n)
		}
	}
}

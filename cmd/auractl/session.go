package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sessionv1 "github.com/aura-p2p/aura/api/proto/aura/session/v1"
)

func newSessionCmd(a *app) *cobra.Command {
	cmd := groupCmd("session", "Start and follow sessions of the daemon's embedded protocols")
	cmd.AddCommand(newSessionStartCmd(a), newSessionListCmd(a), newSessionShowCmd(a), newSessionWatchCmd(a))
	return cmd
}

// stateName is a session state without the enum prefix.
func stateName(s sessionv1.SessionState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "SESSION_STATE_"))
}

func reasonText(r *sessionv1.AbortReason) string {
	if r == nil {
		return "-"
	}
	s := r.GetCode()
	if r.GetBy() != "" {
		if r.GetRemote() {
			s += " (reported by " + r.GetBy() + ")"
		} else {
			s += " (at " + r.GetBy() + ")"
		}
	}
	if r.GetDetail() != "" {
		s += ": " + r.GetDetail()
	}
	return s
}

func writeSession(w io.Writer, s *sessionv1.Session) error {
	rows := []kv{
		{"id", s.GetId()},
		{"protocol", s.GetProtocol()},
		{"role", s.GetRole()},
		{"state", stateName(s.GetState())},
		{"steps", fmt.Sprint(s.GetSteps())},
	}
	if s.GetState() == sessionv1.SessionState_SESSION_STATE_ABORTED {
		rows = append(rows, kv{"reason", reasonText(s.GetReason())})
	}
	for _, r := range s.GetRoles() {
		rows = append(rows, kv{"role " + r.GetRole(), r.GetDeviceId()})
	}
	ctxText := s.GetContext()
	if ctxText == "" {
		ctxText = "pairwise link contexts"
	}
	rows = append(rows, kv{"context", ctxText})
	if len(s.GetChoices()) > 0 {
		rows = append(rows, kv{"choices", strings.Join(s.GetChoices(), ",")})
	}
	rows = append(rows, kv{"started", formatTime(s.GetStarted())}, kv{"ended", formatTime(s.GetEnded())})
	if err := writeKVs(w, rows); err != nil {
		return err
	}
	if len(s.GetLog()) == 0 {
		return nil
	}
	fmt.Fprintln(w, "\nSTEP\tDIR\tPEER\tLABEL\tBRANCH\tBYTES")
	for i, st := range s.GetLog() {
		branch := st.GetBranch()
		if branch == "" {
			branch = "-"
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%d\n", i+1, st.GetDirection(), st.GetPeer(), st.GetLabel(), branch, st.GetSize())
	}
	return nil
}

// sessionLine is one row of `session list` and `session watch`.
func sessionLine(w io.Writer, s *sessionv1.Session) {
	reason := ""
	if r := s.GetReason(); r != nil {
		reason = r.GetCode()
	}
	fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", shortHex(s.GetId(), shortIDLen), s.GetProtocol(), s.GetRole(),
		stateName(s.GetState()), s.GetSteps(), reason, formatTime(s.GetStarted()))
}

const sessionHeader = "ID\tPROTOCOL\tROLE\tSTATE\tSTEPS\tREASON\tSTARTED"

func newSessionStartCmd(a *app) *cobra.Command {
	var (
		roles   []string
		ctxID   string
		choices []string
		wait    bool
	)
	cmd := &cobra.Command{
		Use:   "start PROTOCOL --role ROLE=DEVICE ...",
		Short: "Start a session of an embedded protocol; this device plays one role",
		Long: `Start a session of PROTOCOL, one of aurad's embedded protocols that has a
handler on every participating device (the demo protocols Relay, RelayLoop and
Relay10 are served by the built-in relay handler). Every role is assigned with
--role ROLE=DEVICE, where DEVICE is a device id, a peer id, or "self" for this
device. Each message passes the guard chain with its annotations: capability,
flow cost (charged to each pair's link context unless --context names one) and
journal facts.

--choice gives the branch labels the relay handler takes, in order, at each
choice its role decides (default: the first branch). --wait blocks until the
session ends (not bound by --timeout unless it is given) and exits 11 if it
aborted, 13 if it aborted because a peer could not be reached.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := &sessionv1.StartSessionRequest{Protocol: args[0], Context: ctxID, Choices: choices, Wait: wait}
			for _, r := range roles {
				role, dev, ok := strings.Cut(r, "=")
				if !ok || role == "" || dev == "" {
					return usagef("%s: --role %q: want ROLE=DEVICE", cmd.CommandPath(), r)
				}
				req.Roles = append(req.Roles, &sessionv1.RoleAssignment{Role: role, DeviceId: dev})
			}
			if wait && !cmd.Flag("timeout").Changed {
				// A session ends by itself: each step has a timeout in aurad.
				a.timeout = 0
			}
			resp, err := unary(cmd.Context(), a, func(ctx context.Context, cc grpc.ClientConnInterface) (*sessionv1.StartSessionResponse, error) {
				return sessionv1.NewSessionServiceClient(cc).StartSession(ctx, req)
			})
			if err != nil {
				return err
			}
			s := resp.GetSession()
			if err := a.printer().message(resp, func(w io.Writer) error { return writeSession(w, s) }); err != nil {
				return err
			}
			if s.GetState() == sessionv1.SessionState_SESSION_STATE_ABORTED {
				st := status.Newf(codes.Aborted, "session %s aborted: %s", s.GetId(), reasonText(s.GetReason()))
				if s.GetReason().GetCode() == abortPeerUnreachable {
					st = withPeerReason(st)
				}
				return st.Err()
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&roles, "role", nil, "ROLE=DEVICE (device id, peer id or self); once per role")
	f.StringVar(&ctxID, "context", "", "context to charge every message to (default: each pair's link context)")
	f.StringArrayVar(&choices, "choice", nil, "branch label for the relay handler's next choice; repeatable, in order")
	f.BoolVar(&wait, "wait", false, "wait until the session ends")
	_ = cmd.MarkFlagRequired("role")
	return cmd
}

func newSessionListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List running and finished sessions, newest first",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := unary(cmd.Context(), a, func(ctx context.Context, cc grpc.ClientConnInterface) (*sessionv1.ListSessionsResponse, error) {
				return sessionv1.NewSessionServiceClient(cc).ListSessions(ctx, &sessionv1.ListSessionsRequest{})
			})
			if err != nil {
				return err
			}
			return a.printer().message(resp, func(w io.Writer) error {
				fmt.Fprintln(w, sessionHeader)
				for _, s := range resp.GetSessions() {
					sessionLine(w, s)
				}
				return nil
			})
		},
	}
}

func newSessionShowCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show a session with its step log",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			resp, err := unary(cmd.Context(), a, func(ctx context.Context, cc grpc.ClientConnInterface) (*sessionv1.GetSessionResponse, error) {
				return sessionv1.NewSessionServiceClient(cc).GetSession(ctx, &sessionv1.GetSessionRequest{Id: args[0]})
			})
			if err != nil {
				return err
			}
			return a.printer().message(resp, func(w io.Writer) error { return writeSession(w, resp.GetSession()) })
		},
	}
}

func newSessionWatchCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "watch",
		Short: "Print a line each time a session starts, takes a step or ends",
		Long: `Follow the daemon's sessions until interrupted. With -o json each event is one
line of compact JSON.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			p := a.printer()
			if !p.json {
				fmt.Fprintln(a.out, strings.ReplaceAll(sessionHeader, "\t", " "))
			}
			return stream(cmd.Context(), a, func(ctx context.Context, cc grpc.ClientConnInterface) (grpc.ServerStreamingClient[sessionv1.WatchSessionsResponse], error) {
				return sessionv1.NewSessionServiceClient(cc).WatchSessions(ctx, &sessionv1.WatchSessionsRequest{})
			}, func(m *sessionv1.WatchSessionsResponse) error {
				return p.streamed(m, func(w io.Writer) error {
					var b strings.Builder
					sessionLine(&b, m.GetSession())
					_, err := io.WriteString(w, strings.ReplaceAll(b.String(), "\t", " "))
					return err
				})
			})
		},
	}
}

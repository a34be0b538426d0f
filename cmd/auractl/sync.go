package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	syncv1 "github.com/aura-p2p/aura/api/proto/aura/sync/v1"
	"github.com/aura-p2p/aura/internal/progress"
)

func newSyncCmd(a *app) *cobra.Command {
	cmd := groupCmd("sync", "Anti-entropy: reconciliation status per peer and namespace, sync now")
	cmd.AddCommand(newSyncStatusCmd(a), newSyncNowCmd(a))
	return cmd
}

// Both commands take the peer and namespace as aurad resolves them.
const syncRefHelp = `A peer is a device id, a peer id, or a unique prefix of at least 8 hex
digits of a peer that ` + "`auractl sync status`" + ` lists (its table shows such
prefixes). A namespace is authority/<id> or context/<id>, where <id> may be a
unique prefix of at least 8 hex digits of a namespace the status lists.`

func newSyncStatusCmd(a *app) *cobra.Command {
	var peer, ns string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the last reconciliation and totals per peer and namespace",
		Long: `Show, for each peer and each namespace shared with it, the last
reconciliation (when it ended, its mode, this device's role, its round trips,
why it failed) and the totals since aurad started: facts and bytes received
(in) and sent (out), and facts the peer sent that failed verification
(refused). --peer and --namespace keep only the rows they name.

` + syncRefHelp + `

-o json prints every field, the totals of sessions and failures included.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := &syncv1.GetSyncStatusRequest{Peer: peer, Namespace: ns}
			resp, err := unary(cmd.Context(), a, func(ctx context.Context, cc grpc.ClientConnInterface) (*syncv1.GetSyncStatusResponse, error) {
				return syncv1.NewSyncServiceClient(cc).GetSyncStatus(ctx, req)
			})
			if err != nil {
				return err
			}
			now := time.Now()
			return a.printer().message(resp, func(w io.Writer) error {
				fmt.Fprintln(w, "PEER\tNAMESPACE\tLAST\tMODE\tROLE\tROUNDS\tFACTS IN/OUT\tBYTES IN/OUT\tREFUSED\tERROR")
				for _, s := range resp.GetStatuses() {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%d/%d\t%s/%s\t%d\t%s\n",
						shortHex(s.GetPeerDeviceId(), shortIDLen), shortNamespace(s.GetNamespace()), lastSync(s, now),
						syncModeName(s.GetLastMode()), enumName(s.GetLastRole().String(), "SYNC_ROLE_"), s.GetLastRounds(),
						s.GetFactsIn(), s.GetFactsOut(), progress.Bytes(s.GetBytesIn()), progress.Bytes(s.GetBytesOut()),
						s.GetRefused(), orDash(s.GetLastError()))
				}
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&peer, "peer", "", "only this peer")
	f.StringVar(&ns, "namespace", "", "only this namespace")
	return cmd
}

func newSyncNowCmd(a *app) *cobra.Command {
	var ns string
	cmd := &cobra.Command{
		Use:   "now [PEER]",
		Short: "Reconcile now with PEER (default: every peer) and show the progress",
		Long: `Reconcile at once, one session per namespace shared with PEER, or with every
device this one shares a namespace with when PEER is not given; --namespace
limits it to one namespace. Missing facts are fetched and verified, and
facts the peer lacks are sent, each message through the guard chain.

` + syncRefHelp + `

While the sessions run, a bar of the facts received against those known to
be missing is drawn on stderr when it is a terminal; at the end one line per
session says how it went. With -o json, each progress report is one line of
compact JSON as it comes, the last of a session with phase SYNC_PHASE_DONE
or SYNC_PHASE_FAILED.

A failed session, or a peer that cannot be reached, exits 13 with a line
naming the peer and the reason; a peer that shares no namespace (or not the
one asked for) exits 5. The run is not bound by the default --timeout; a
--timeout given explicitly bounds it (exit 10 when it passes).`,
		Args: rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := &syncv1.SyncNowRequest{Namespace: ns}
			if len(args) == 1 {
				req.Peer = args[0]
			}
			// Not bound by the default --timeout: a bootstrap may take
			// minutes, and each step has its own timeout in aurad.
			ctx := cmd.Context()
			if cmd.Flag("timeout").Changed && a.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, a.timeout)
				defer cancel()
			}
			return a.syncNow(ctx, req)
		},
	}
	cmd.Flags().StringVar(&ns, "namespace", "", "only this namespace")
	return cmd
}

// syncKey names one session of a sync now.
type syncKey struct{ peer, namespace string }

func (a *app) syncNow(ctx context.Context, req *syncv1.SyncNowRequest) error {
	p := a.printer()
	var bar *progress.Bar
	if !p.json {
		bar = progress.New(a.err, "sync", progress.Count("facts"))
	}
	latest := map[syncKey]*syncv1.SyncProgress{}
	var got, expected uint64
	err := stream(ctx, a, func(ctx context.Context, cc grpc.ClientConnInterface) (grpc.ServerStreamingClient[syncv1.SyncProgress], error) {
		return syncv1.NewSyncServiceClient(cc).SyncNow(ctx, req)
	}, func(m *syncv1.SyncProgress) error {
		latest[syncKey{m.GetPeerDeviceId(), m.GetNamespace()}] = m
		if p.json {
			return p.writeJSON(m, "")
		}
		got, expected = 0, 0
		for _, s := range latest {
			got += s.GetFactsIn()
			expected += s.GetFactsExpected()
		}
		// Until a difference is known there is nothing to measure.
		if expected > 0 {
			bar.Update(got, expected)
		}
		return nil
	})
	sessions := make([]*syncv1.SyncProgress, 0, len(latest))
	for _, s := range latest {
		sessions = append(sessions, s)
	}
	sort.Slice(sessions, func(i, j int) bool {
		if sessions[i].GetPeerDeviceId() != sessions[j].GetPeerDeviceId() {
			return sessions[i].GetPeerDeviceId() < sessions[j].GetPeerDeviceId()
		}
		return sessions[i].GetNamespace() < sessions[j].GetNamespace()
	})
	var failed []*syncv1.SyncProgress
	unfinished := 0
	for _, s := range sessions {
		switch s.GetPhase() {
		case syncv1.SyncPhase_SYNC_PHASE_FAILED:
			failed = append(failed, s)
		case syncv1.SyncPhase_SYNC_PHASE_DONE:
		default:
			unfinished++
		}
	}
	bar.Finish(err == nil && unfinished == 0 && len(failed) == 0 && expected > 0)
	if !p.json {
		if werr := writeSyncSummary(a.out, sessions); werr != nil {
			return werr
		}
	}
	if len(failed) > 0 {
		st, ok := grpcStatus(err)
		// aurad ends the call as a peer's failure when a session failed;
		// the sessions' own reports say which and why more plainly.
		if err == nil || ok && peerUnreachable(st) {
			return syncFailed(failed)
		}
	}
	if err != nil {
		return err
	}
	if ctx.Err() != nil && (len(sessions) == 0 || unfinished > 0) {
		code, why := codes.Canceled, "interrupted"
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			code, why = codes.DeadlineExceeded, fmt.Sprintf("--timeout %s passed", a.timeout)
		}
		return status.Errorf(code, "%s: %d of %d sessions finished", why, len(sessions)-unfinished, len(sessions))
	}
	return nil
}

// syncFailed is the error of a run in which sessions failed: one line
// naming the first one's peer, namespace and reason. It exits as a peer's
// failure.
func syncFailed(failed []*syncv1.SyncProgress) error {
	f := failed[0]
	msg := fmt.Sprintf("sync with %s over %s failed: %s", shortHex(f.GetPeerDeviceId(), shortIDLen), shortNamespace(f.GetNamespace()), orDash(f.GetError()))
	if n := len(failed) - 1; n > 0 {
		msg += fmt.Sprintf(" (and %d more session%s failed)", n, plural(n))
	}
	return withPeerReason(status.New(codes.Unavailable, msg)).Err()
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// writeSyncSummary prints one line per session, as it ended (or where it
// stood when the run stopped).
func writeSyncSummary(out io.Writer, sessions []*syncv1.SyncProgress) error {
	tw := newTabWriter(out)
	ew := &escapingWriter{w: tw}
	if len(sessions) == 0 {
		fmt.Fprintln(ew, "no sessions ran: no peer shares such a namespace")
	} else {
		fmt.Fprintln(ew, "PEER\tNAMESPACE\tRESULT\tMODE\tROUNDS\tFACTS IN/OUT\tBYTES IN/OUT")
	}
	for _, s := range sessions {
		result := enumName(s.GetPhase().String(), "SYNC_PHASE_")
		if s.GetPhase() == syncv1.SyncPhase_SYNC_PHASE_FAILED {
			result += ": " + orDash(s.GetError())
		}
		fmt.Fprintf(ew, "%s\t%s\t%s\t%s\t%d\t%d/%d\t%s/%s\n",
			shortHex(s.GetPeerDeviceId(), shortIDLen), shortNamespace(s.GetNamespace()), result, syncModeName(s.GetMode()),
			s.GetRounds(), s.GetFactsIn(), s.GetFactsOut(), progress.Bytes(s.GetBytesIn()), progress.Bytes(s.GetBytesOut()))
	}
	if err := ew.flush(); err != nil {
		return err
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// enumName is an enum value without its prefix, lowercased; "-" for the
// unspecified value.
func enumName(name, prefix string) string {
	s := strings.ToLower(strings.TrimPrefix(name, prefix))
	if s == "unspecified" {
		return "-"
	}
	return s
}

func syncModeName(m syncv1.SyncMode) string { return enumName(m.String(), "SYNC_MODE_") }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// shortNamespace shortens the id of kind/<id> as tables shorten ids; the
// result still names the namespace where a prefix is accepted.
func shortNamespace(ns string) string {
	kind, id, ok := strings.Cut(ns, "/")
	if !ok {
		return ns
	}
	return kind + "/" + shortHex(id, shortIDLen)
}

// lastSync is when the last session of a row ended, relative to now, or
// that one is running or none ran.
func lastSync(s *syncv1.PeerSyncStatus, now time.Time) string {
	started, finished := s.GetLastStarted(), s.GetLastFinished()
	switch {
	case started == nil && finished == nil:
		return "never"
	case finished == nil || started != nil && started.AsTime().After(finished.AsTime()):
		return "running"
	}
	return ago(finished.AsTime(), now)
}

// ago says how long before now t was, in the largest whole unit.
func ago(t, now time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Second:
		// Also a clock a little ahead of ours.
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d/time.Minute))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh ago", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd ago", int(d/(24*time.Hour)))
}

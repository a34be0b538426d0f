package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	peerv1 "github.com/aura-p2p/aura/api/proto/aura/peer/v1"
)

func newPeerCmd(a *app) *cobra.Command {
	cmd := groupCmd("peer", "Add, list, connect and ping the devices aurad talks to")
	cmd.AddCommand(newPeerAddCmd(a), newPeerRmCmd(a), newPeerListCmd(a), newPeerConnectCmd(a), newPeerPingCmd(a))
	return cmd
}

func newPeerAddCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "add MULTIADDR",
		Short: "Remember a peer's address, e.g. /ip4/192.0.2.1/tcp/4001/p2p/12D3KooW…",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			resp, err := unary(cmd.Context(), a, func(ctx context.Context, cc grpc.ClientConnInterface) (*peerv1.AddPeerResponse, error) {
				return peerv1.NewPeerServiceClient(cc).AddPeer(ctx, &peerv1.AddPeerRequest{Addr: args[0]})
			})
			if err != nil {
				return err
			}
			return a.printer().message(resp, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "added %s\n", resp.GetPeer().GetDeviceId())
				return err
			})
		},
	}
}

func newPeerRmCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "rm PEER",
		Short: "Forget a peer (device id or peer id) and disconnect it",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			resp, err := unary(cmd.Context(), a, func(ctx context.Context, cc grpc.ClientConnInterface) (*peerv1.RemovePeerResponse, error) {
				return peerv1.NewPeerServiceClient(cc).RemovePeer(ctx, &peerv1.RemovePeerRequest{Peer: args[0]})
			})
			if err != nil {
				return err
			}
			return a.printer().message(resp, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "removed %s\n", args[0])
				return err
			})
		},
	}
}

func newPeerListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List remembered and connected peers",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := unary(cmd.Context(), a, func(ctx context.Context, cc grpc.ClientConnInterface) (*peerv1.ListPeersResponse, error) {
				return peerv1.NewPeerServiceClient(cc).ListPeers(ctx, &peerv1.ListPeersRequest{})
			})
			if err != nil {
				return err
			}
			return a.printer().message(resp, func(w io.Writer) error {
				tw := newTabWriter(w)
				fmt.Fprintln(tw, "DEVICE\tSTATE\tLATENCY\tADDRS")
				for _, p := range resp.GetPeers() {
					state := "known"
					switch {
					case p.GetBackedOff():
						state = "backed-off"
					case p.GetConnected():
						state = "connected"
					case !p.GetKnown():
						state = "seen"
					}
					latency := "-"
					if p.GetLatency() != nil {
						latency = p.GetLatency().AsDuration().Round(time.Microsecond).String()
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", shortHex(p.GetDeviceId(), shortIDLen), state, latency, strings.Join(p.GetAddrs(), ","))
				}
				return tw.Flush()
			})
		},
	}
}

func newPeerConnectCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "connect PEER",
		Short: "Connect to a peer by device id, peer id or /p2p/ multiaddr",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			resp, err := unary(cmd.Context(), a, func(ctx context.Context, cc grpc.ClientConnInterface) (*peerv1.ConnectResponse, error) {
				return peerv1.NewPeerServiceClient(cc).Connect(ctx, &peerv1.ConnectRequest{Peer: args[0]})
			})
			if err != nil {
				return err
			}
			return a.printer().message(resp, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "connected to %s\n", resp.GetPeer().GetDeviceId())
				return err
			})
		},
	}
}

func newPeerPingCmd(a *app) *cobra.Command {
	var (
		count      uint32
		ctxID      string
		interval   time.Duration
		capability string
		tokenText  string
	)
	cmd := &cobra.Command{
		Use:   "ping PEER",
		Short: "Measure round trips through the full guard chain and show the budget charged",
		Long: `Send pings to PEER (device id, peer id or /p2p/ multiaddr). Each ping and each
answer passes the guard chain: capability check, a persisted flow-budget charge
and a signed receipt, so the round trip is what real traffic costs. The ping is
charged to the pairwise link context unless --context names another.

With -o json each reply is one line of compact JSON. A peer that cannot be
reached (no address, dial refused, no answer within 10s) exits 13; exit 3
means aurad itself did not answer. The run is not bound by the default
--timeout; a --timeout given explicitly bounds it (exit 10 when it passes).`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// aurad reads 0 as "unset" and would send one ping.
			if count == 0 {
				return usagef("%s: --count must be at least 1", cmd.CommandPath())
			}
			req := &peerv1.PingRequest{Peer: args[0], Count: count, Context: ctxID, Interval: durationpb.New(interval), Capability: capability}
			if tokenText != "" {
				if capability == "" {
					return usagef("%s: --token needs --capability, the capability it grants", cmd.CommandPath())
				}
				tok, err := readToken(a, cmd, tokenText)
				if err != nil {
					return err
				}
				req.Token = tok
			}
			p := a.printer()
			var rtts []time.Duration
			var charged uint64
			// Not bound by the default --timeout: aurad gives each ping 10s
			// and the run lasts as long as the pings do. An explicit
			// --timeout bounds the whole run.
			ctx := cmd.Context()
			if cmd.Flag("timeout").Changed && a.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, a.timeout)
				defer cancel()
			}
			err := stream(ctx, a, func(ctx context.Context, cc grpc.ClientConnInterface) (grpc.ServerStreamingClient[peerv1.PingResponse], error) {
				return peerv1.NewPeerServiceClient(cc).Ping(ctx, req)
			}, func(m *peerv1.PingResponse) error {
				rtt := m.GetRtt().AsDuration()
				rtts = append(rtts, rtt)
				charged += m.GetCharged()
				return p.streamed(m, func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "seq=%d rtt=%s charged=%d context=%s\n", m.GetSeq(), rtt.Round(time.Microsecond), m.GetCharged(), shortHex(strings.TrimPrefix(m.GetContext(), "context/"), shortIDLen))
					return err
				})
			})
			if err != nil {
				return err
			}
			if errors.Is(ctx.Err(), context.DeadlineExceeded) && len(rtts) < int(count) {
				return status.Errorf(codes.DeadlineExceeded, "%d of %d pings answered within --timeout %s", len(rtts), count, a.timeout)
			}
			if a.output == outputTable && len(rtts) > 0 {
				lo, hi, sum := rtts[0], rtts[0], time.Duration(0)
				for _, r := range rtts {
					lo, hi, sum = min(lo, r), max(hi, r), sum+r
				}
				fmt.Fprintf(a.out, "%d pings, rtt min/avg/max = %s/%s/%s, budget charged %d\n",
					len(rtts), lo.Round(time.Microsecond), (sum / time.Duration(len(rtts))).Round(time.Microsecond), hi.Round(time.Microsecond), charged)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.Uint32VarP(&count, "count", "c", 1, "number of pings")
	f.StringVar(&ctxID, "context", "", "context to charge (default: the pairwise link context)")
	f.DurationVarP(&interval, "interval", "i", time.Second, "pause between pings")
	f.StringVar(&capability, "capability", "", "a capability each ping claims (checked at both ends)")
	f.StringVar(&tokenText, "token", "", "the capability token that grants --capability (auractl cap issue prints one; - reads stdin)")
	return cmd
}

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

	nodev1 "github.com/aura-p2p/aura/api/proto/aura/node/v1"
	treev1 "github.com/aura-p2p/aura/api/proto/aura/tree/v1"
)

// Joining an account: how long the ceremony may take, and how aurad's
// restart under the joined account is waited for.
const (
	// joinTimeout replaces the default --timeout, which is sized for local
	// calls: the ceremony talks to the inviter over the network.
	joinTimeout = 2 * time.Minute
	// joinWait is how long aurad gets to come back as a device of the
	// joined account.
	joinWait = 30 * time.Second
	// restartPoll is the pause between two status calls while aurad
	// restarts, and restartAttempt bounds each.
	restartPoll    = 200 * time.Millisecond
	restartAttempt = 2 * time.Second
)

func newDeviceCmd(a *app) *cobra.Command {
	cmd := groupCmd("device", "Devices of this account: invite a new one, join an account, list them, remove one")
	cmd.AddCommand(newDeviceInviteCmd(a), newDeviceJoinCmd(a), newDeviceListCmd(a), newDeviceRemoveCmd(a))
	return cmd
}

func newDeviceInviteCmd(a *app) *cobra.Command {
	var expires time.Duration
	cmd := &cobra.Command{
		Use:   "invite",
		Short: "Make a code that enrolls a new device into this account",
		Long: `Make a one-time device invitation and print its code, one line. On the new
device, run 'auractl device join CODE': it becomes a device of this account
once the enrollment ceremony commits. Whoever holds the code can join, so
pass it only over a channel you trust, and keep --expires short.

-o json prints the invitation id and expiry with the code.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flag("expires").Changed && expires <= 0 {
				return usagef("%s: --expires must be positive", cmd.CommandPath())
			}
			req := &treev1.InviteDeviceRequest{}
			if expires > 0 {
				req.Expires = durationpb.New(expires)
			}
			resp, err := unary(cmd.Context(), a, func(ctx context.Context, cc grpc.ClientConnInterface) (*treev1.InviteDeviceResponse, error) {
				return treev1.NewTreeServiceClient(cc).InviteDevice(ctx, req)
			})
			if err != nil {
				return err
			}
			return a.printer().message(resp, func(w io.Writer) error {
				_, err := fmt.Fprintln(w, resp.GetCode())
				return err
			})
		},
	}
	cmd.Flags().DurationVar(&expires, "expires", 0, "how long the code can be used (default 1h; 1m to 168h)")
	return cmd
}

func newDeviceJoinCmd(a *app) *cobra.Command {
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "join CODE",
		Short: "Join the account that made CODE: this device becomes one of its devices",
		Long: `Reach the device that made CODE ('auractl device invite' there) and run the
enrollment ceremony with it. Once the ceremony commits, aurad restarts itself
as a device of the joined account; auractl waits until it answers as that
account (up to --wait), then prints the account id and its devices.

The ceremony is bound by --timeout when that flag is given, else by ` + joinTimeout.String() + `.
An inviter that cannot be reached exits 13. A join that committed but after
which aurad does not answer as the joined account within --wait exits 3 (or
10 if aurad answers, still as the old account), with one line naming the
joined account.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if wait <= 0 {
				return usagef("%s: --wait must be positive", cmd.CommandPath())
			}
			if !cmd.Flag("timeout").Changed {
				a.timeout = joinTimeout
			}
			resp, err := unary(cmd.Context(), a, func(ctx context.Context, cc grpc.ClientConnInterface) (*treev1.JoinAccountResponse, error) {
				return treev1.NewTreeServiceClient(cc).JoinAccount(ctx, &treev1.JoinAccountRequest{Code: args[0]})
			})
			if err != nil {
				return err
			}
			joined := resp.GetView().GetAuthorityId()
			if joined == "" {
				return status.Error(codes.Internal, "aurad reported the join without naming the joined account")
			}
			if err := a.awaitAccount(cmd.Context(), joined, wait); err != nil {
				return err
			}
			return a.printer().message(resp, func(w io.Writer) error {
				if err := writeKVs(w, []kv{{"account", joined}}); err != nil {
					return err
				}
				fmt.Fprintln(w)
				writeDevices(w, resp.GetView().GetDevices())
				return nil
			})
		},
	}
	cmd.Flags().DurationVar(&wait, "wait", joinWait, "how long aurad may take to restart as a device of the joined account")
	return cmd
}

// awaitAccount waits, up to within, until aurad answers as a device of
// authority. After a join, aurad restarts itself under the joined account,
// so for a while its socket is gone or refuses connections, the new daemon
// answers Unavailable while it starts, or the old one still answers as the
// old account; each of these is waited out, any other failure ends the
// wait. Each attempt dials afresh: the restarted daemon's socket is a new
// file, vetted again as the first one was, and a fresh connection does not
// sit out gRPC's reconnect backoff.
func (a *app) awaitAccount(ctx context.Context, authority string, within time.Duration) error {
	wctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	// A call into a daemon that is going away must not use up the wait.
	a.timeout = restartAttempt
	// What the last attempt saw, for the line that says it did not work.
	code, last := codes.Unavailable, ""
	for {
		st, err := a.freshStatus(wctx)
		switch {
		case err == nil && st.GetAuthorityId() == authority:
			return nil
		case err != nil && wctx.Err() != nil && last != "":
			// The wait ran out during this attempt: the one before
			// says more about where aurad is.
		case err == nil:
			code, last = codes.DeadlineExceeded, "it still answers as account "+st.GetAuthorityId()
		case restarting(err):
			code, last = codes.Unavailable, "last: "+errorMessage(err)
		default:
			return err
		}
		select {
		case <-wctx.Done():
			if err := ctx.Err(); err != nil {
				return err
			}
			return status.Errorf(code, "joined account %s, but aurad did not come back as its device within %s (%s)", authority, within, last)
		case <-time.After(restartPoll):
		}
	}
}

// freshStatus asks for aurad's status on a new connection.
func (a *app) freshStatus(ctx context.Context) (*nodev1.GetStatusResponse, error) {
	if err := a.close(); err != nil {
		return nil, err
	}
	return getStatus(ctx, a)
}

// restarting reports whether err is what a daemon that is restarting gives:
// no socket, no listener, Unavailable from aurad itself (not a peer's), or
// no answer in time.
func restarting(err error) bool {
	var nr *notRunningError
	if errors.As(err, &nr) {
		return true
	}
	st, ok := grpcStatus(err)
	if !ok {
		return false
	}
	switch st.Code() {
	case codes.Unavailable:
		return !peerUnreachable(st)
	case codes.DeadlineExceeded:
		return true
	}
	return false
}

func newDeviceListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the devices and guardians of this account, in leaf order",
		Long: `List the occupied leaves of the account's tree: the leaf index, the device id
(shortened; -o json has it whole), its role (device, or guardian: guardians
help recover the account but do not attest its changes) and which one is
this device.

-o json prints the whole tree view, as 'auractl tree show -o json' does.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := showTree(cmd.Context(), a)
			if err != nil {
				return err
			}
			return a.printer().message(resp, func(w io.Writer) error {
				writeDevices(w, resp.GetView().GetDevices())
				return nil
			})
		},
	}
}

// Device ids on the command line: a whole id, or a prefix of one as long as
// git's shortest, which is what aurad accepts for other ids.
const (
	deviceIDLen     = 64
	devicePrefixLen = 8
)

func newDeviceRemoveCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "remove DEVICE",
		Short: "Remove another device from this account, then rotate the account's keys",
		Long: `Take DEVICE out of the account's tree (a RemoveLeaf op), then rotate the
account's keys (an UpdatePath op from this device) so that the removed device
cannot derive them from then on, and print the devices that remain, as
'auractl device list' does.

DEVICE is a device id, 64 hex digits, or a prefix of at least 8 hex digits
of exactly one of the ids 'auractl device list' shows; a prefix is resolved
against that list first. A prefix that matches no device exits 5, one that
matches several exits 4 and names them. This device cannot remove itself
(remove it from another device of the account), and the account's last
device cannot be removed: both exit 7.

-o json prints the whole tree view after the removal, as 'auractl tree show
-o json' does.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := strings.ToLower(strings.TrimSpace(args[0]))
			if len(id) < devicePrefixLen || len(id) > deviceIDLen || strings.Trim(id, "0123456789abcdef") != "" {
				return usagef("%s: DEVICE %q: want a device id (%d hex digits) or a prefix of at least %d of its digits",
					cmd.CommandPath(), args[0], deviceIDLen, devicePrefixLen)
			}
			if len(id) < deviceIDLen {
				shown, err := showTree(cmd.Context(), a)
				if err != nil {
					return err
				}
				if id, err = resolveDevice(id, shown.GetView().GetDevices()); err != nil {
					return err
				}
			}
			resp, err := unary(cmd.Context(), a, func(ctx context.Context, cc grpc.ClientConnInterface) (*treev1.RemoveDeviceResponse, error) {
				return treev1.NewTreeServiceClient(cc).RemoveDevice(ctx, &treev1.RemoveDeviceRequest{DeviceId: id})
			})
			if err != nil {
				return err
			}
			return a.printer().message(resp, func(w io.Writer) error {
				writeDevices(w, resp.GetView().GetDevices())
				return nil
			})
		},
	}
}

// resolveDevice finds the one device whose id starts with prefix. Ambiguity
// is the input's fault and names the candidates, so that the user can pick
// one; a prefix of no device is NotFound, as aurad says of a whole id.
func resolveDevice(prefix string, devices []*treev1.Device) (string, error) {
	var matches []string
	for _, d := range devices {
		if strings.HasPrefix(d.GetDeviceId(), prefix) {
			matches = append(matches, d.GetDeviceId())
		}
	}
	switch len(matches) {
	case 0:
		return "", status.Errorf(codes.NotFound, "no device of this account has an id starting %s", prefix)
	case 1:
		return matches[0], nil
	}
	return "", status.Errorf(codes.InvalidArgument, "device id prefix %s is ambiguous: %s; give more digits", prefix, strings.Join(matches, ", "))
}

func showTree(ctx context.Context, a *app) (*treev1.ShowResponse, error) {
	return unary(ctx, a, func(ctx context.Context, cc grpc.ClientConnInterface) (*treev1.ShowResponse, error) {
		return treev1.NewTreeServiceClient(cc).Show(ctx, &treev1.ShowRequest{})
	})
}

func writeDevices(w io.Writer, devices []*treev1.Device) {
	fmt.Fprintln(w, "LEAF\tDEVICE\tROLE\tTHIS DEVICE")
	for _, d := range devices {
		self := "-"
		if d.GetSelf() {
			self = "yes"
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\n", d.GetLeaf(), shortHex(d.GetDeviceId(), shortIDLen), d.GetRole(), self)
	}
}

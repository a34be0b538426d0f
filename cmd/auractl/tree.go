package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	treev1 "github.com/aura-p2p/aura/api/proto/aura/tree/v1"
)

func newTreeCmd(a *app) *cobra.Command {
	cmd := groupCmd("tree", "The account's commitment tree: its state, leaves and ops, its group key, key updates")
	cmd.AddCommand(newTreeShowCmd(a), newTreeKeyCmd(a), newTreeUpdateCmd(a))
	return cmd
}

func newTreeShowCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "show",
		Short: "Show the account's tree: epoch, root commitment, policy, leaves and ops",
		Long: `Show the account's commitment tree as this device reduced it: the account id,
the epoch and root commitment that name the current state, the threshold
policy on tree ops with the number of devices that must attest the next
one, the occupied leaves, then every tree op this device knows with its
status:

  applied     it won at its parent state and is on the chain
  superseded  valid at its parent, where a higher op won (DETAIL names it)
  rejected    invalid at its parent (DETAIL says why)
  pending     its parent state is not on the chain

Ids are shortened; -o json has them whole.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := showTree(cmd.Context(), a)
			if err != nil {
				return err
			}
			return a.printer().message(resp, func(w io.Writer) error { return writeTree(w, resp.GetView()) })
		},
	}
}

func newTreeKeyCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "key",
		Short: "Name the account's current group key: its epoch, root commitment and fingerprint",
		Long: `Print which group key this device holds for the account: the epoch and root
commitment of the tree state whose epoch secret yields it, and its
fingerprint, the first 16 bytes of a tagged hash of the key (never the key
itself, which does not leave aurad). Devices that print the same epoch and
fingerprint hold the same key.

A device that cannot derive the current epoch's key, say because it missed
the path update that carries it, exits 7; 'auractl tree update' on a device
that holds the key sends a new one.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := unary(cmd.Context(), a, func(ctx context.Context, cc grpc.ClientConnInterface) (*treev1.KeyResponse, error) {
				return treev1.NewTreeServiceClient(cc).Key(ctx, &treev1.KeyRequest{})
			})
			if err != nil {
				return err
			}
			return a.printer().message(resp, func(w io.Writer) error {
				return writeKVs(w, []kv{
					{"epoch", strconv.FormatUint(resp.GetEpoch(), 10)},
					{"root commitment", resp.GetRoot()},
					{"fingerprint", resp.GetFingerprint()},
				})
			})
		},
	}
}

func newTreeUpdateCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "update",
		Short: "Give this device a fresh leaf secret and the account new keys (an UpdatePath op)",
		Long: `Issue an UpdatePath op: this device draws a fresh leaf secret and derives new
keys up its path in the tree, which moves the account to a new epoch with a
new group key. Run it on a device whose secrets may have leaked, to heal
it, or to send a new key to a device that missed the current one. Prints
the epoch and root commitment of the new state. A device that cannot derive
the current epoch's key itself exits 7.

-o json prints the whole tree view after the op, as 'auractl tree show
-o json' does.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := unary(cmd.Context(), a, func(ctx context.Context, cc grpc.ClientConnInterface) (*treev1.UpdatePathResponse, error) {
				return treev1.NewTreeServiceClient(cc).UpdatePath(ctx, &treev1.UpdatePathRequest{})
			})
			if err != nil {
				return err
			}
			return a.printer().message(resp, func(w io.Writer) error {
				return writeKVs(w, []kv{
					{"epoch", strconv.FormatUint(resp.GetView().GetEpoch(), 10)},
					{"root commitment", resp.GetView().GetRootCommitment()},
				})
			})
		},
	}
}

// writeTree prints the state, the leaves and the ops as three blocks; the
// blank lines between them keep tabwriter from aligning one block's columns
// with another's.
func writeTree(w io.Writer, v *treev1.TreeView) error {
	if err := writeKVs(w, []kv{
		{"account", v.GetAuthorityId()},
		{"epoch", strconv.FormatUint(v.GetEpoch(), 10)},
		{"root commitment", v.GetRootCommitment()},
		{"policy", v.GetPolicy()},
		{"required signers", strconv.FormatUint(uint64(v.GetRequired()), 10)},
	}); err != nil {
		return err
	}
	fmt.Fprintln(w)
	writeDevices(w, v.GetDevices())
	fmt.Fprintln(w)
	fmt.Fprintln(w, "OP\tKIND\tAUTHOR\tPARENT\tSTATUS\tDETAIL")
	for _, op := range v.GetOps() {
		fmt.Fprintf(w, "%s\t%s\t%d\t%d/%s\t%s\t%s\n", shortHex(op.GetOpId(), shortIDLen), op.GetKind(), op.GetAuthorLeaf(),
			op.GetParentEpoch(), shortHex(op.GetParentCommitment(), shortIDLen), op.GetStatus(), opDetail(op))
	}
	return nil
}

// opDetail is the op that won over a superseded op and what this device
// made again in its place (or why it made nothing), or why an op was
// rejected, on one line.
func opDetail(op *treev1.TreeOp) string {
	// Tabs and line breaks would break the table.
	reason := strings.Join(strings.Fields(op.GetReason()), " ")
	switch {
	case op.GetSupersededBy() != "" && op.GetReproposedAs() != "":
		return "by " + shortHex(op.GetSupersededBy(), shortIDLen) + ", made again as " + shortHex(op.GetReproposedAs(), shortIDLen)
	case op.GetSupersededBy() != "" && reason != "":
		return "by " + shortHex(op.GetSupersededBy(), shortIDLen) + ", " + reason
	case op.GetSupersededBy() != "":
		return "by " + shortHex(op.GetSupersededBy(), shortIDLen)
	case reason != "":
		return reason
	}
	return "-"
}

package main

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	budgetv1 "github.com/aura-p2p/aura/api/proto/aura/budget/v1"
)

func newBudgetCmd(a *app) *cobra.Command {
	cmd := groupCmd("budget", "Show and set flow budgets and their receipts")
	cmd.AddCommand(newBudgetListCmd(a), newBudgetShowCmd(a), newBudgetSetCmd(a), newBudgetReceiptsCmd(a))
	return cmd
}

func writeBudgets(w io.Writer, bs []*budgetv1.Budget) error {
	tw := newTabWriter(w)
	fmt.Fprintln(tw, "CONTEXT\tPEER\tCLASS\tEPOCH\tSPENT/LIMIT\tRECEIVED/GRANTED\tNONCE")
	for _, b := range bs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d/%d\t%d/%d\t%d\n",
			shortHex(b.GetContext(), shortIDLen), shortHex(b.GetPeer(), shortIDLen), b.GetClass(), b.GetEpoch(),
			b.GetSpent(), b.GetLimit(), b.GetReceived(), b.GetReceivedLimit(), b.GetLastNonce())
	}
	return tw.Flush()
}

func newBudgetListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List every (context, peer) budget",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := unary(cmd.Context(), a, func(ctx context.Context, cc grpc.ClientConnInterface) (*budgetv1.ListBudgetsResponse, error) {
				return budgetv1.NewBudgetServiceClient(cc).ListBudgets(ctx, &budgetv1.ListBudgetsRequest{})
			})
			if err != nil {
				return err
			}
			return a.printer().message(resp, func(w io.Writer) error { return writeBudgets(w, resp.GetBudgets()) })
		},
	}
}

func newBudgetShowCmd(a *app) *cobra.Command {
	var ctxID string
	cmd := &cobra.Command{
		Use:   "show PEER",
		Short: "Show the budget with PEER in a context (default: the pairwise link context)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			resp, err := unary(cmd.Context(), a, func(ctx context.Context, cc grpc.ClientConnInterface) (*budgetv1.GetBudgetResponse, error) {
				return budgetv1.NewBudgetServiceClient(cc).GetBudget(ctx, &budgetv1.GetBudgetRequest{Context: ctxID, Peer: args[0]})
			})
			if err != nil {
				return err
			}
			return a.printer().message(resp, func(w io.Writer) error {
				b := resp.GetBudget()
				return writeKVs(w, []kv{
					{"context", b.GetContext()},
					{"peer", b.GetPeer()},
					{"class", b.GetClass()},
					{"epoch", strconv.FormatUint(b.GetEpoch(), 10)},
					{"spent", fmt.Sprintf("%d of %d", b.GetSpent(), b.GetLimit())},
					{"received", fmt.Sprintf("%d of %d granted", b.GetReceived(), b.GetReceivedLimit())},
					{"last nonce", strconv.FormatUint(b.GetLastNonce(), 10)},
				})
			})
		},
	}
	cmd.Flags().StringVar(&ctxID, "context", "", "context id (default: the pairwise link context)")
	return cmd
}

func newBudgetSetCmd(a *app) *cobra.Command {
	var ctxID string
	cmd := &cobra.Command{
		Use:   "set PEER LIMIT",
		Short: "Set the operator's limit for PEER in a context; it can only lower the class default",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			limit, err := strconv.ParseUint(args[1], 10, 64)
			if err != nil {
				return usagef("LIMIT must be a non-negative integer, got %q", args[1])
			}
			resp, err := unary(cmd.Context(), a, func(ctx context.Context, cc grpc.ClientConnInterface) (*budgetv1.SetLimitResponse, error) {
				return budgetv1.NewBudgetServiceClient(cc).SetLimit(ctx, &budgetv1.SetLimitRequest{Context: ctxID, Peer: args[0], Limit: limit})
			})
			if err != nil {
				return err
			}
			return a.printer().message(resp, func(w io.Writer) error { return writeBudgets(w, []*budgetv1.Budget{resp.GetBudget()}) })
		},
	}
	cmd.Flags().StringVar(&ctxID, "context", "", "context id (default: the pairwise link context)")
	return cmd
}

func newBudgetReceiptsCmd(a *app) *cobra.Command {
	var (
		ctxID string
		limit uint32
	)
	cmd := &cobra.Command{
		Use:   "receipts PEER",
		Short: "List the most recent receipts exchanged with PEER, and the checkpoints it signed",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			resp, err := unary(cmd.Context(), a, func(ctx context.Context, cc grpc.ClientConnInterface) (*budgetv1.ListReceiptsResponse, error) {
				return budgetv1.NewBudgetServiceClient(cc).ListReceipts(ctx, &budgetv1.ListReceiptsRequest{Context: ctxID, Peer: args[0], Limit: limit})
			})
			if err != nil {
				return err
			}
			return a.printer().message(resp, func(w io.Writer) error {
				tw := newTabWriter(w)
				fmt.Fprintln(tw, "EPOCH\tNONCE\tCOST\tSRC\tDST\tHASH\tPREV")
				for _, r := range resp.GetReceipts() {
					fmt.Fprintf(tw, "%d\t%d\t%d\t%s\t%s\t%s\t%s\n", r.GetEpoch(), r.GetNonce(), r.GetCost(),
						shortHex(r.GetSrc(), shortIDLen), shortHex(r.GetDst(), shortIDLen), shortHex(r.GetHash(), shortIDLen), shortHex(r.GetPrev(), shortIDLen))
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				if len(resp.GetCheckpoints()) == 0 {
					return nil
				}
				fmt.Fprintln(w)
				tw = newTabWriter(w)
				fmt.Fprintln(tw, "CHECKPOINT EPOCH\tNONCE\tCUMULATIVE\tSRC\tHEAD")
				for _, cp := range resp.GetCheckpoints() {
					fmt.Fprintf(tw, "%d\t%d\t%d\t%s\t%s\n", cp.GetEpoch(), cp.GetNonce(), cp.GetCumulative(), shortHex(cp.GetSrc(), shortIDLen), shortHex(cp.GetHead(), shortIDLen))
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().StringVar(&ctxID, "context", "", "context id (default: the pairwise link context)")
	cmd.Flags().Uint32Var(&limit, "limit", 20, "how many receipts")
	return cmd
}

func newLeakageCmd(a *app) *cobra.Command {
	cmd := groupCmd("leakage", "Show metadata-leakage budgets")
	cmd.AddCommand(&cobra.Command{
		Use:   "show CONTEXT",
		Short: "Show this epoch's metadata leakage in a context, per observer class",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			resp, err := unary(cmd.Context(), a, func(ctx context.Context, cc grpc.ClientConnInterface) (*budgetv1.GetLeakageResponse, error) {
				return budgetv1.NewBudgetServiceClient(cc).GetLeakage(ctx, &budgetv1.GetLeakageRequest{Context: args[0]})
			})
			if err != nil {
				return err
			}
			return a.printer().message(resp, func(w io.Writer) error {
				l := resp.GetLeakage()
				return writeKVs(w, []kv{
					{"context", l.GetContext()},
					{"epoch", strconv.FormatUint(l.GetEpoch(), 10)},
					{"external", fmt.Sprintf("%d of %d", l.GetExternal(), l.GetExternalLimit())},
					{"neighbor", fmt.Sprintf("%d of %d", l.GetNeighbor(), l.GetNeighborLimit())},
					{"in-group", fmt.Sprintf("%d of %d", l.GetInGroup(), l.GetInGroupLimit())},
				})
			})
		},
	})
	return cmd
}

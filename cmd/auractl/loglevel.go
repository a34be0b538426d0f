package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	nodev1 "github.com/aura-p2p/aura/api/proto/aura/node/v1"
)

func newLogLevelCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "log-level [debug|info|warn|error]",
		Short: "Show or change aurad's log level while it runs (admin)",
		Long: `With no argument, print aurad's log level; with one, change it at once, without
a restart, and print the change. The level resets to the configured one
([log] level) when aurad restarts. Logs never carry key material,
invitation secrets or tokens, at any level. Needs admin permission.`,
		Args: cobra.RangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := &nodev1.SetLogLevelRequest{}
			if len(args) == 1 {
				switch args[0] {
				case "debug", "info", "warn", "error":
					req.Level = args[0]
				default:
					return usagef("%s: level %q: want debug, info, warn or error", cmd.CommandPath(), args[0])
				}
			}
			resp, err := unary(cmd.Context(), a, func(ctx context.Context, cc grpc.ClientConnInterface) (*nodev1.SetLogLevelResponse, error) {
				return nodev1.NewNodeServiceClient(cc).SetLogLevel(ctx, req)
			})
			if err != nil {
				return err
			}
			return a.printer().message(resp, func(w io.Writer) error {
				if req.Level == "" || resp.GetPrevious() == resp.GetLevel() {
					_, err := fmt.Fprintln(w, resp.GetLevel())
					return err
				}
				_, err := fmt.Fprintf(w, "%s (was %s)\n", resp.GetLevel(), resp.GetPrevious())
				return err
			})
		},
	}
}

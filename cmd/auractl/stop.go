package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	nodev1 "github.com/aura-p2p/aura/api/proto/aura/node/v1"
)

// stopPollInterval is how often `stop --wait` checks whether the socket still
// answers; aurad drains in well under its 5 s budget, so this is plenty.
const stopPollInterval = 50 * time.Millisecond

func newStopCmd(a *app) *cobra.Command {
	var wait bool
	cmd := &cobra.Command{
		Use:   "stop",
		Short: "Ask aurad to drain and exit, as SIGTERM does",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			// One deadline covers both the request and the wait, so --timeout
			// bounds the whole command.
			ctx, cancel := a.commandContext(cmd.Context())
			defer cancel()
			resp, err := unary(ctx, a, func(ctx context.Context, cc grpc.ClientConnInterface) (*nodev1.ShutdownResponse, error) {
				return nodev1.NewNodeServiceClient(cc).Shutdown(ctx, &nodev1.ShutdownRequest{})
			})
			if err != nil {
				return err
			}
			// Nothing more to ask aurad; holding the connection open while
			// it drains would only give it one more client to close.
			if err := a.close(); err != nil {
				return err
			}
			msg := "aurad at " + a.sockPath + " is shutting down"
			if wait {
				if err := a.waitStopped(ctx); err != nil {
					return err
				}
				msg = "aurad at " + a.sockPath + " has stopped"
			}
			return a.printer().message(resp, func(w io.Writer) error {
				_, err := fmt.Fprintln(w, msg)
				return err
			})
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until aurad no longer answers on its socket (bounded by --timeout)")
	return cmd
}

// waitStopped polls the socket until nothing accepts on it.
func (a *app) waitStopped(ctx context.Context) error {
	t := time.NewTicker(stopPollInterval)
	defer t.Stop()
	for a.daemonListening(ctx) {
		select {
		case <-ctx.Done():
			return status.Errorf(codes.DeadlineExceeded, "aurad at %s still answers after %s", a.sockPath, a.timeout)
		case <-t.C:
		}
	}
	return nil
}

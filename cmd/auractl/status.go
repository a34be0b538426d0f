package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	nodev1 "github.com/aura-p2p/aura/api/proto/aura/node/v1"
)

func newStatusCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the daemon's identity, version, uptime and journal counts",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := getStatus(cmd.Context(), a)
			if err != nil {
				return err
			}
			return a.printer().message(resp, func(w io.Writer) error {
				return writeStatus(w, resp)
			})
		},
	}
}

func getStatus(ctx context.Context, a *app) (*nodev1.GetStatusResponse, error) {
	return unary(ctx, a, func(ctx context.Context, cc grpc.ClientConnInterface) (*nodev1.GetStatusResponse, error) {
		return nodev1.NewNodeServiceClient(cc).GetStatus(ctx, &nodev1.GetStatusRequest{})
	})
}

func writeStatus(w io.Writer, s *nodev1.GetStatusResponse) error {
	uptime := "-"
	if s.GetUptime() != nil {
		uptime = s.GetUptime().AsDuration().Round(time.Second).String()
	}
	j := s.GetJournal()
	return writeKVs(w, []kv{
		{"device id", s.GetDeviceId()},
		{"authority id", s.GetAuthorityId()},
		{"peer id", s.GetPeerId()},
		{"version", s.GetVersion()},
		{"started at", formatTime(s.GetStartedAt())},
		{"uptime", uptime},
		{"data dir", s.GetDataDir()},
		{"socket", s.GetSocket()},
		{"facts", strconv.FormatUint(j.GetFactCount(), 10)},
		{"namespaces", strconv.FormatUint(j.GetNamespaceCount(), 10)},
		{"last seq", strconv.FormatUint(j.GetLastSeq(), 10)},
		{"orphans", fmt.Sprintf("%d (%d bytes, %d evicted)", j.GetOrphans(), j.GetOrphanBytes(), j.GetOrphansEvicted())},
		{"peers", strconv.FormatUint(s.GetTransport().GetConnectedPeers(), 10)},
		{"traffic", fmt.Sprintf("%d messages (%d bytes) sent, %d (%d bytes) received", s.GetTransport().GetSent(), s.GetTransport().GetBytesSent(), s.GetTransport().GetReceived(), s.GetTransport().GetBytesReceived())},
		{"listen", strings.Join(s.GetListenAddrs(), "\n               ")},
	})
}

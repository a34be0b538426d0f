package noderpc

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	nodev1 "github.com/aura-p2p/aura/api/proto/aura/node/v1"
	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
	"github.com/aura-p2p/aura/internal/rpc"
)

// statusDaemon reports fixed counters, or fails Stats with err.
type statusDaemon struct {
	fakeDaemon
	stats     journal.Stats
	net       Network
	err       error
	shutdowns int
}

func (d *statusDaemon) Stats(context.Context) (journal.Stats, error) { return d.stats, d.err }
func (d *statusDaemon) Network() Network                             { return d.net }
func (d *statusDaemon) RequestShutdown()                             { d.shutdowns++ }

// GetStatus keeps the journal's error and its code; it never reports zero
// counters in place of a failure.
func TestGetStatusCodes(t *testing.T) {
	tests := []struct {
		name string
		err  error
		code codes.Code
	}{
		{"journal closed", fmt.Errorf("closed: %w", core.ErrUnavailable), codes.Unavailable},
		{"journal damaged", fmt.Errorf("meta: %w", core.ErrDataLoss), codes.DataLoss},
		{"ok", nil, codes.OK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := &statusDaemon{err: tc.err, stats: journal.Stats{Facts: 3}}
			resp, err := New(Identity{}, d, core.NewManualClock(time.UnixMilli(0))).GetStatus(context.Background(), &nodev1.GetStatusRequest{})
			st, _ := rpc.ToStatus(err)
			if st.Code() != tc.code {
				t.Fatalf("code %v (%v), want %v", st.Code(), err, tc.code)
			}
			if tc.err != nil && (resp != nil || !errors.Is(err, tc.err)) {
				t.Fatalf("response %v, error %v; want no response and the journal's error", resp, err)
			}
		})
	}
}

// The status reports the identity, the journal's counters, the network and
// the uptime from the injected clock.
func TestGetStatusReportsCounters(t *testing.T) {
	started := time.UnixMilli(1_700_000_000_000)
	clock := core.NewManualClock(started.Add(90 * time.Second))
	d := &statusDaemon{
		stats: journal.Stats{Facts: 5, Namespaces: 2, LastSeq: 9, Orphans: 3, OrphanBytes: 900, OrphansEvicted: 7},
		net:   Network{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/1"}, Sent: 4, Received: 6, Dropped: map[string]uint64{"bad_frame": 1}, ConnectedPeers: 2},
	}
	id := Identity{Device: core.DeviceID{1}, PeerID: "peer", Version: "v", DataDir: "/d", Socket: "/s", StartedAt: started}
	s := New(id, d, clock)
	resp, err := s.GetStatus(context.Background(), &nodev1.GetStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	j, tr := resp.GetJournal(), resp.GetTransport()
	if j.GetFactCount() != 5 || j.GetNamespaceCount() != 2 || j.GetLastSeq() != 9 ||
		j.GetOrphans() != 3 || j.GetOrphanBytes() != 900 || j.GetOrphansEvicted() != 7 {
		t.Fatalf("journal %v", j)
	}
	if tr.GetSent() != 4 || tr.GetReceived() != 6 || tr.GetDropped()["bad_frame"] != 1 || tr.GetConnectedPeers() != 2 || len(resp.GetListenAddrs()) != 1 {
		t.Fatalf("transport %v, listen %v", tr, resp.GetListenAddrs())
	}
	if resp.GetDeviceId() != id.Device.String() || resp.GetPeerId() != "peer" || resp.GetDataDir() != "/d" || resp.GetSocket() != "/s" {
		t.Fatalf("identity %v", resp)
	}
	if up := resp.GetUptime().AsDuration(); up != 90*time.Second {
		t.Fatalf("uptime %s, want 1m30s", up)
	}
	if _, err := s.Shutdown(context.Background(), &nodev1.ShutdownRequest{}); err != nil || d.shutdowns != 1 {
		t.Fatalf("shutdown: %v, %d requests", err, d.shutdowns)
	}
}

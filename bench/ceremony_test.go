package bench

// The contact ceremony end to end (issue 12, "Figures"): two real nodes on
// loopback TCP, each with a durable journal in its own temp dir, driven over
// their unix control sockets as auractl would.
//
//	go test -run '^$' -bench ContactCeremony -benchtime 50x ./bench/

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	ceremonyv1 "github.com/aura-p2p/aura/api/proto/aura/ceremony/v1"
	"github.com/aura-p2p/aura/internal/node"
)

// startTCPNode starts a node listening on loopback TCP only (no QUIC), so
// the ceremony runs over the transport the figure names.
func startTCPNode(b *testing.B) *benchNode {
	b.Helper()
	sockDir, err := os.MkdirTemp("", "ac")
	if err != nil {
		b.Fatal(err)
	}
	dataDir := sockDir
	if base := os.Getenv(benchDirEnv); base != "" {
		if dataDir, err = os.MkdirTemp(base, "ac"); err != nil {
			b.Fatal(err)
		}
	}
	cfg := node.DefaultConfig()
	cfg.DataDir = filepath.Join(dataDir, "data")
	cfg.Socket = filepath.Join(sockDir, "s.sock")
	cfg.P2P.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.Log.Level = "warn"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := node.Start(ctx, cfg, node.Deps{Notify: func(string) {}})
	if err != nil {
		os.RemoveAll(sockDir)
		os.RemoveAll(dataDir)
		b.Fatalf("node.Start: %v", err)
	}
	bn := &benchNode{n: n, sock: cfg.Socket, stop: func() {
		n.Stop()
		os.RemoveAll(sockDir)
		os.RemoveAll(dataDir)
	}}
	b.Cleanup(bn.stop)
	return bn
}

// BenchmarkContactCeremony: one op is one contact made: CreateInvitation on
// A, then AcceptInvitation of its code on B, which returns once the ceremony
// has committed on both sides (B holds the commit A made durable before
// sending it). The first ceremony, which also dials A, runs before the
// timer starts.
func BenchmarkContactCeremony(b *testing.B) {
	a, bb := startTCPNode(b), startTCPNode(b)
	ca := ceremonyv1.NewCeremonyServiceClient(dialN(b, a.sock, 1)[0])
	cb := ceremonyv1.NewCeremonyServiceClient(dialN(b, bb.sock, 1)[0])
	ctx := context.Background()

	ceremony := func() (invite, accept time.Duration, err error) {
		t0 := time.Now()
		inv, err := ca.CreateInvitation(ctx, &ceremonyv1.CreateInvitationRequest{Expires: durationpb.New(time.Hour)})
		if err != nil {
			return 0, 0, fmt.Errorf("CreateInvitation: %w", err)
		}
		t1 := time.Now()
		acc, err := cb.AcceptInvitation(ctx, &ceremonyv1.AcceptInvitationRequest{Code: inv.Code})
		if err != nil {
			return 0, 0, fmt.Errorf("AcceptInvitation: %w", err)
		}
		t2 := time.Now()
		if st := acc.GetCeremony().GetState(); st != ceremonyv1.CeremonyState_CEREMONY_STATE_COMMITTED {
			return 0, 0, fmt.Errorf("ceremony ended %s: %s", st, acc.GetCeremony().GetDetail())
		}
		return t1.Sub(t0), t2.Sub(t1), nil
	}
	if _, _, err := ceremony(); err != nil {
		b.Fatalf("warm-up ceremony: %v", err)
	}
	factsA0, err := a.n.Stats(ctx)
	if err != nil {
		b.Fatal(err)
	}
	factsB0, err := bb.n.Stats(ctx)
	if err != nil {
		b.Fatal(err)
	}

	var inviteSum, acceptSum time.Duration
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		inv, acc, err := ceremony()
		if err != nil {
			b.Fatal(err)
		}
		inviteSum += inv
		acceptSum += acc
		lat = append(lat, inv+acc)
	}
	b.StopTimer()

	reportLatency(b, lat)
	b.ReportMetric(float64(inviteSum.Microseconds())/float64(b.N), "invite-µs/op")
	b.ReportMetric(float64(acceptSum.Microseconds())/float64(b.N), "accept-µs/op")
	if sa, err := a.n.Stats(ctx); err == nil {
		b.ReportMetric(float64(sa.LastSeq-factsA0.LastSeq)/float64(b.N), "factsA/op")
	}
	if sb, err := bb.n.Stats(ctx); err == nil {
		b.ReportMetric(float64(sb.LastSeq-factsB0.LastSeq)/float64(b.N), "factsB/op")
	}
}

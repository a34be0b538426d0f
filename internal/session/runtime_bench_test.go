package session_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/aura-p2p/aura/internal/choreo"
	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
	"github.com/aura-p2p/aura/internal/session"
	"github.com/aura-p2p/aura/internal/transport"
)

const protoBench protocol.ID = "/aura/bench/1"

// streamer decides Item n times, then Stop.
type streamer struct {
	session.Relay
	n int
}

func (s *streamer) Choose(_ context.Context, info session.Info, _ []choreo.Action) (string, error) {
	if info.Decisions < s.n {
		return "Item", nil
	}
	return "Stop", nil
}

func (s *streamer) Send(context.Context, session.Info, choreo.Action) ([]byte, []journal.Draft, error) {
	return make([]byte, 32), nil, nil
}

// The runtime's cost per message against a bare guarded Transport.Send, in the
// same run, on the same two nodes: n one-way messages of 32 bytes and cost 1,
// timed until the receiver has taken the last one (a session message also
// passes the machine on both sides, a handler and the session queue). The
// session's start and end records are included.
func BenchmarkRuntimeOverhead(b *testing.B) {
	for _, sync := range []bool{false, true} {
		name := "nosync"
		if sync {
			name = "fsync"
		}
		b.Run(name, func(b *testing.B) { benchOverhead(b, sync) })
	}
}

func benchOverhead(b *testing.B, sync bool) {
	cfg := defaultConfig(b)
	cfg.sync = sync
	src, dst := newRNode(b, cfg), newRNode(b, cfg)
	mesh(b, src, dst)
	var got atomic.Int64
	all := make(chan struct{}, 1)
	var want int64
	for _, n := range []*rnode{src, dst} {
		n.authz.Allow("bench", core.ClassLink)
	}
	src.tr.Handle(protoBench, func(context.Context, transport.Incoming) {})
	dst.tr.Handle(protoBench, func(context.Context, transport.Incoming) {
		if got.Add(1) == want {
			all <- struct{}{}
		}
	})
	ctx := context.Background()
	n := b.N
	payload := make([]byte, 32)
	b.ResetTimer()

	want = int64(n)
	t0 := time.Now()
	for range n {
		if err := src.tr.Send(ctx, transport.Message{Protocol: protoBench, Context: core.LinkContext(src.dev, dst.dev), To: dst.dev, Type: "bench", Cost: 1, Payload: payload}); err != nil {
			b.Fatal(err)
		}
	}
	<-all
	bare := time.Since(t0)

	if err := src.rt.Register("Stream", "Src", &streamer{n: n}); err != nil {
		b.Fatal(err)
	}
	t0 = time.Now()
	s, err := src.rt.Run(ctx, "Stream", map[string]core.DeviceID{"Src": src.dev, "Dst": dst.dev}, session.StartOptions{})
	if err != nil {
		b.Fatal(err)
	}
	if got := waitSession(b, dst, s.ID); got.State != session.StateCompleted || got.Steps != n+1 {
		b.Fatalf("receiver: %+v", got)
	}
	sess := time.Since(t0)
	b.StopTimer()

	bareNs := float64(bare.Nanoseconds()) / float64(n)
	sessNs := float64(sess.Nanoseconds()) / float64(n+1)
	b.ReportMetric(bareNs, "bare-ns/msg")
	b.ReportMetric(sessNs, "session-ns/msg")
	b.ReportMetric(sessNs/bareNs, "ratio")
}

// A three-role, ten-message session (Relay10) end to end on loopback: from
// Start on A until the last participant has recorded the session completed.
func BenchmarkThreeRoleTenMessages(b *testing.B) {
	for _, sync := range []bool{false, true} {
		name := "nosync"
		if sync {
			name = "fsync"
		}
		b.Run(name, func(b *testing.B) {
			cfg := defaultConfig(b)
			cfg.sync = sync
			a, bb, c := trio(b, cfg, cfg, cfg)
			roles := abc(a, bb, c)
			ctx := context.Background()
			b.ResetTimer()
			for range b.N {
				s, err := a.rt.Run(ctx, "Relay10", roles, session.StartOptions{})
				if err != nil {
					b.Fatal(err)
				}
				waitSession(b, c, s.ID)
				waitSession(b, bb, s.ID)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/session")
		})
	}
}

package transport_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"crypto/rand"
	"github.com/libp2p/go-libp2p"
	p2pcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/transport"
)

// Guard-chain cost per send, persistence included (fsynced group commits on
// both ends), with 1 and 16 concurrent senders to one peer.
func BenchmarkGuardChainSend(b *testing.B) {
	for _, senders := range []int{1, 16} {
		b.Run("senders="+strconv.Itoa(senders), func(b *testing.B) {
			a, r := newTNode(b, linkPolicy(math.MaxUint32)), newTNode(b, linkPolicy(math.MaxUint32))
			connect(b, a, r)
			ctx := context.Background()
			var next atomic.Int64
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for range senders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						if err := a.send(ctx, r.dev, "msg", []byte("x")); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "sends/s")
		})
	}
}

// BenchmarkGuardChainPipelined keeps up to 1,024 sends of one chain in
// flight (Message.Queued), so their charges share group commits on both
// ends, and times until the receiver has taken every message. It reports
// the CPU of both ends together per message (they share this process).
//
//	go test -run '^$' -bench GuardChainPipelined -benchtime 100000x ./internal/transport/
func BenchmarkGuardChainPipelined(b *testing.B) {
	a, r := newTNode(b, linkPolicy(math.MaxUint32)), newTNode(b, linkPolicy(math.MaxUint32))
	connect(b, a, r)
	ctx := context.Background()
	received := make(chan struct{})
	go func() {
		for range b.N {
			<-r.seen
			r.mu.Lock()
			r.got = r.got[:0] // keep the receiver's memory flat
			r.mu.Unlock()
		}
		close(received)
	}()
	window := make(chan struct{}, 1024)
	cpu0 := cpuTime()
	b.ResetTimer()
	start := time.Now()
	msg := transport.Message{Protocol: protoTest, Context: core.LinkContext(a.dev, r.dev), To: r.dev, Type: "msg", Cost: 1, Payload: []byte("x")}
	for range b.N {
		window <- struct{}{}
		ordered := make(chan struct{})
		m := msg
		m.Queued = func() { close(ordered) }
		sent := make(chan struct{})
		go func() {
			defer close(sent)
			defer func() { <-window }()
			if err := a.tr.Send(ctx, m); err != nil {
				b.Error(err)
			}
		}()
		// The next send starts once this one has its place in the chain.
		select {
		case <-ordered:
		case <-sent:
		}
	}
	<-received
	elapsed := time.Since(start)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/1e3, "CPU-µs/msg")
}

// cpuTime is this process's user and system CPU so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

const protoEcho protocol.ID = "/aura/bench/echo/1"

// Ping through the full guard chain (charge, receipt, accept, pong back the
// same way) against a bare libp2p stream echo between the same two hosts.
func BenchmarkPingRTT(b *testing.B) {
	a, r := newTNode(b, linkPolicy(math.MaxUint32)), newTNode(b, linkPolicy(math.MaxUint32))
	pa := transport.NewPinger(a.tr, a.authz)
	transport.NewPinger(r.tr, r.authz)
	connect(b, a, r)
	ctx := context.Background()
	b.Run("guarded", func(b *testing.B) {
		rtts := make([]time.Duration, 0, b.N)
		for range b.N {
			res, err := pa.Ping(ctx, r.dev, nil)
			if err != nil {
				b.Fatal(err)
			}
			rtts = append(rtts, res.RTT)
		}
		reportRTT(b, rtts)
	})
	b.Run("bare-stream", func(b *testing.B) {
		transport.HostOf(r.tr).SetStreamHandler(protoEcho, func(s network.Stream) {
			defer s.Close()
			buf := make([]byte, 8)
			for {
				if _, err := s.Read(buf); err != nil {
					return
				}
				if _, err := s.Write(buf); err != nil {
					return
				}
			}
		})
		rid, _ := transport.PeerID(r.dev)
		s, err := transport.HostOf(a.tr).NewStream(ctx, rid, protoEcho)
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		buf := make([]byte, 8)
		rtts := make([]time.Duration, 0, b.N)
		for range b.N {
			start := time.Now()
			if _, err := s.Write(buf); err != nil {
				b.Fatal(err)
			}
			if _, err := s.Read(buf); err != nil {
				b.Fatal(err)
			}
			rtts = append(rtts, time.Since(start))
		}
		reportRTT(b, rtts)
	})
}

func reportRTT(b *testing.B, rtts []time.Duration) {
	slices.Sort(rtts)
	b.ReportMetric(float64(rtts[len(rtts)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(rtts[len(rtts)*99/100].Microseconds()), "p99-µs")
}

// Messages per second an honest peer still gets served while another peer
// floods the same receiver with garbage and unpaid frames as fast as it can.
func BenchmarkHonestUnderFlood(b *testing.B) {
	for _, flood := range []bool{false, true} {
		name := "quiet"
		if flood {
			name = "flooded"
		}
		b.Run(name, func(b *testing.B) {
			victim := newTNode(b, linkPolicy(math.MaxUint32))
			honest := newTNode(b, linkPolicy(math.MaxUint32))
			connect(b, honest, victim)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var flooded atomic.Int64
			if flood {
				go floodPeer(ctx, b, victim, &flooded)
			}
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				if err := honest.send(ctx, victim.dev, "msg", []byte{byte(i)}); err != nil {
					b.Fatal(err)
				}
			}
			for victim.received() < b.N {
				<-victim.seen
			}
			el := time.Since(start)
			b.ReportMetric(float64(b.N)/el.Seconds(), "honest-msgs/s")
			b.ReportMetric(float64(flooded.Load())/el.Seconds(), "flood-frames/s")
		})
	}
}

// floodPeer reconnects with a fresh identity each time it is cut off, as a
// determined attacker would, and writes junk until ctx ends.
func floodPeer(ctx context.Context, b *testing.B, victim *tnode, count *atomic.Int64) {
	vid, _ := transport.PeerID(victim.dev)
	addrs := transport.HostOf(victim.tr).Addrs()
	frame := []byte("garbage garbage garbage garbage")
	var hdr [10]byte
	n := binary.PutUvarint(hdr[:], uint64(len(frame)))
	rec := append(hdr[:n:n], frame...)
	for ctx.Err() == nil {
		priv, _, _ := p2pcrypto.GenerateEd25519Key(rand.Reader)
		h, err := libp2p.New(libp2p.Identity(priv), libp2p.NoListenAddrs)
		if err != nil {
			return
		}
		if err := h.Connect(ctx, peer.AddrInfo{ID: vid, Addrs: addrs}); err == nil {
			if s, err := h.NewStream(ctx, vid, transport.ProtocolEnvelope); err == nil {
				w := bufio.NewWriter(s)
				for ctx.Err() == nil {
					if _, err := w.Write(rec); err != nil || w.Flush() != nil {
						break
					}
					count.Add(1)
				}
				s.Reset()
			}
		}
		h.Close()
	}
}

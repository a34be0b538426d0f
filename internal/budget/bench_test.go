package budget

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
)

// Benchmarks of the flow-budget and journal-coupling steps, persistence
// included: a real journal in a temp dir, fsync on, group commit.
//
//	go test -run '^$' -bench . -benchtime 3s ./internal/budget/
//
// AURA_BENCH_DIR is not consulted; TMPDIR decides the file system.

func unlimited() Config {
	cfg := DefaultConfig()
	m := uint64(math.MaxUint64)
	cfg.Policy.Flow = ClassLimits{m, m, m}
	cfg.Policy.Leakage = ClassLeakage{core.Leakage{m, m, m}, core.Leakage{m, m, m}, core.Leakage{m, m, m}}
	return cfg
}

func benchLedger(b *testing.B, seed byte, noSync bool) (*Ledger, *journal.KeySigner) {
	b.Helper()
	ctx := context.Background()
	j, err := journal.Open(ctx, journal.Options{Path: filepath.Join(b.TempDir(), "journal.db"), Validators: Validators(), NoSync: noSync})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { j.Close() })
	s := seededSigner(seed)
	l, err := Open(ctx, j, unlimited(), s, core.SystemClock{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	return l, s
}

// BenchmarkCharge: b.N charges in total, by 1 to 256 goroutines, each a
// sequential sender that waits for its charge to be durable; with 16, either
// all on one (context, peer) or each on its own. A sender waits for an fsync
// per charge, so the aggregate is bounded by senders / commit latency: more
// senders fill the group commits.
func BenchmarkCharge(b *testing.B) {
	for _, tc := range []struct {
		workers  int
		sameKey  bool
		nameTail string
	}{{1, true, ""}, {16, true, "/same-key"}, {16, false, "/own-keys"}, {64, false, "/own-keys"}, {256, false, "/own-keys"}} {
		b.Run(fmt.Sprintf("senders=%d%s", tc.workers, tc.nameTail), func(b *testing.B) {
			l, _ := benchLedger(b, 1, false)
			ctx := context.Background()
			leak := core.Leakage{1, 0, 0}
			var wg sync.WaitGroup
			per := b.N / tc.workers
			b.ResetTimer()
			for w := range tc.workers {
				n := per
				if w == 0 {
					n += b.N % tc.workers
				}
				k := Key{Context: core.ContextID{1}, Peer: core.DeviceID{2}}
				if !tc.sameKey {
					k.Peer[1] = byte(w)
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range n {
						if _, err := l.Charge(ctx, k, core.ClassGroup, 1, leak, nil); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "charges/s")
		})
	}
}

// BenchmarkAccept: b.N receipts accepted durably, by 1 goroutine on one chain
// or 16 goroutines on 16 chains. The receipts are made beforehand.
func BenchmarkAccept(b *testing.B) {
	for _, workers := range []int{1, 16} {
		b.Run(fmt.Sprintf("chains=%d", workers), func(b *testing.B) {
			sender, _ := benchLedger(b, 1, true)
			recv, rs := benchLedger(b, 2, false)
			ctx := context.Background()
			chains := make([][]*Receipt, workers)
			for i := range b.N {
				w := i % workers
				k := Key{Context: core.ContextID{byte(w)}, Peer: rs.DeviceID()}
				r, err := sender.Charge(ctx, k, core.ClassGroup, 1, core.Leakage{}, nil)
				if err != nil {
					b.Fatal(err)
				}
				chains[w] = append(chains[w], r)
			}
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for _, chain := range chains {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for _, r := range chain {
						if err := recv.Accept(ctx, r, core.ClassGroup); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "accepts/s")
		})
	}
}

// BenchmarkSignVerify is the cryptographic floor of both steps.
func BenchmarkSignVerify(b *testing.B) {
	s := seededSigner(1)
	r := &Receipt{Context: core.ContextID{1}, Src: s.DeviceID(), Dst: core.DeviceID{2}, Epoch: 1, Period: 1, Cost: 1, Nonce: 1}
	b.Run("sign", func(b *testing.B) {
		for range b.N {
			if err := r.sign(s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("verify", func(b *testing.B) {
		for range b.N {
			if err := r.Verify(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

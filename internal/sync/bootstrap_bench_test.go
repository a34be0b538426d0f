package sync

import (
	"context"
	"testing"
	"time"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
)

// BenchmarkBootstrap measures a fresh device taking in a namespace of
// 100,000 facts (200-byte payloads) from one peer: every fact verified and
// durable (the receiving journal fsyncs), over the in-memory network (the
// transport's own costs are measured in its package). Reports facts/s.
//
//	go test -run '^$' -bench Bootstrap -benchtime 1x ./internal/sync/
func BenchmarkBootstrap(b *testing.B) {
	const n = 100_000
	for range b.N {
		b.StopTimer()
		p := newPairSync(b, Options{}, true)
		var facts []*journal.SignedFact
		for i := range n {
			facts = append(facts, p.fact200(b, i))
		}
		ctx := context.Background()
		if err := appendAll(ctx, p.a.j, facts); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		res, err := p.b.s.SyncNow(ctx, p.a.signer.DeviceID(), core.Namespace{}, nil)
		took := time.Since(start)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if res[0].FactsIn != n {
			b.Fatalf("took in %d facts, want %d", res[0].FactsIn, n)
		}
		b.ReportMetric(float64(n)/took.Seconds(), "facts/s")
		b.ReportMetric(float64(res[0].BytesIn)/float64(n), "B/fact")
	}
}

// appendAll stores facts from many goroutines, so group commits carry them.
func appendAll(ctx context.Context, j *journal.Journal, facts []*journal.SignedFact) error {
	errs := make(chan error, 32)
	for w := range 32 {
		go func() {
			for i := w; i < len(facts); i += 32 {
				if _, err := j.Append(ctx, facts[i]); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	var first error
	for range 32 {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

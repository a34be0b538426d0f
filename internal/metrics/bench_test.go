package metrics

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"google.golang.org/grpc/codes"
)

// BenchmarkScrape measures one scrape as Prometheus makes it: gather every
// collector and encode the text format, for a node with 100 peers and
// 1,000,000 facts whose RPCs, commits and charges have all been seen, and a
// libp2p host registered. The goal is at most 5 ms a scrape.
func BenchmarkScrape(b *testing.B) {
	m := newMetrics(b, fakeSources(100, 1_000_000))
	withLibp2p(b, m)
	for i := range 60 {
		method := fmt.Sprintf("/aura.svc%d.v1.Service/Method%d", i%8, i)
		for _, c := range []codes.Code{codes.OK, codes.NotFound, codes.InvalidArgument} {
			m.ObserveRPC(method, c, time.Duration(i)*time.Millisecond)
		}
	}
	for i := range 1000 {
		m.ObserveCommit(1+i%7, i%300, time.Duration(i)*time.Microsecond, nil)
		m.ObserveCharge(uint64(i), nil)
	}
	format := expfmt.NewFormat(expfmt.TypeTextPlain)
	var out countingWriter
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		fams, err := m.Registry().Gather()
		if err != nil {
			b.Fatal(err)
		}
		out = countingWriter{}
		enc := expfmt.NewEncoder(&out, format)
		for _, f := range fams {
			if err := enc.Encode(f); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(out.n), "bytes/scrape")
	b.ReportMetric(float64(out.lines), "lines/scrape")
}

type countingWriter struct{ n, lines int }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += len(p)
	w.lines += bytes.Count(p, []byte{'\n'})
	return len(p), nil
}

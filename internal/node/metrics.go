package node

import (
	"context"
	"os"
	"path/filepath"

	"github.com/aura-p2p/aura/internal/budget"
	"github.com/aura-p2p/aura/internal/journal"
	"github.com/aura-p2p/aura/internal/metrics"
	"github.com/aura-p2p/aura/internal/transport"
)

// metricSources are what the Prometheus collectors read at scrape time:
// nothing on the hot paths, and a source not started yet reports nothing.
func (n *Node) metricSources() metrics.Sources {
	return metrics.Sources{
		Journal: func(ctx context.Context) (journal.Stats, error) { return n.journal.Stats(ctx) },
		DBSize: func() (int64, error) {
			fi, err := os.Stat(filepath.Join(n.cfg.DataDir, JournalFileName))
			if err != nil {
				return 0, err
			}
			return fi.Size(), nil
		},
		Transport: func() metrics.TransportStats { return metrics.TransportStats(n.transport.Stats()) },
		Budgets: func(ctx context.Context) ([]metrics.BudgetKey, error) {
			es, err := n.ledger.List(ctx)
			if err != nil {
				return nil, err
			}
			return budgetKeys(es), nil
		},
		BudgetGaps: func() uint64 { return n.ledger.Gaps() },
		Sync: func() []metrics.SyncPeer {
			ss := n.syncer.Status()
			out := make([]metrics.SyncPeer, 0, len(ss))
			for _, s := range ss {
				out = append(out, metrics.SyncPeer{FactsIn: s.FactsIn, FactsOut: s.FactsOut, BytesIn: s.BytesIn, BytesOut: s.BytesOut, Refused: s.Refused})
			}
			return out
		},
		Sessions: func() []metrics.Outcome {
			ss := n.sessions.List()
			out := make([]metrics.Outcome, 0, len(ss))
			for _, s := range ss {
				o := metrics.Outcome{State: s.State.String()}
				if s.Reason != nil {
					o.Reason = s.Reason.Code.String()
				}
				out = append(out, o)
			}
			return out
		},
		Ceremonies: func(ctx context.Context) ([]metrics.Outcome, error) {
			rs, err := n.ceremonies.Records(ctx)
			if err != nil {
				return nil, err
			}
			out := make([]metrics.Outcome, 0, len(rs))
			for _, r := range rs {
				out = append(out, metrics.Outcome{State: r.State.String(), Reason: r.Reason})
			}
			return out, nil
		},
		Health: func() error { return n.journal.Failure() },
	}
}

func budgetKeys(es []budget.Entry) []metrics.BudgetKey {
	out := make([]metrics.BudgetKey, 0, len(es))
	for _, e := range es {
		out = append(out, metrics.BudgetKey{Class: e.Class.String(), Limit: e.State.Limit, Spent: e.State.Spent, Received: e.Received, ReceivedLimit: e.ReceivedLimit})
	}
	return out
}

// observedCharger counts every charge and refusal: the transport is the
// ledger's only caller, so wrapping its charger sees them all.
type observedCharger struct {
	transport.Charger
	m *metrics.Metrics
}

func (c observedCharger) Charge(ctx context.Context, ch transport.Charge) (transport.Receipt, error) {
	r, err := c.Charger.Charge(ctx, ch)
	c.m.ObserveCharge(ch.Cost, err)
	return r, err
}

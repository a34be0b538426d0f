// Package metrics exports aurad's Prometheus metrics on an opt-in HTTP
// listener. It is its own package because it reads every subsystem while
// depending on none above the journal: node hands it plain functions that
// read live values (Sources), and the subsystems' hot paths report to it
// through hook methods (ObserveCommit, ObserveRPC, ObserveCharge,
// ObserveSyncSession) that their own packages declare as tiny interfaces or
// func fields.
//
// Values the subsystems already count (transport counters, journal counts,
// budgets, sessions, ceremonies, sync totals) are read at scrape time, never
// copied, so nothing is counted twice and a daemon nobody scrapes pays
// nothing for them. Only what nobody else counts (commit latency and batch
// size, RPC codes and latency, budget charges and refusals, sync sessions by
// mode) is counted here.
//
// Every Metrics has its own registry: nothing is registered on
// prometheus.DefaultRegisterer, so two nodes in one test process do not
// share series. (libp2p's resource-manager collectors are package globals
// of go-libp2p; two nodes registering them see the same numbers.)
package metrics

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
)

// Namespace prefixes every series of aurad's own.
const Namespace = "aura"

// DefaultScrapeTimeout bounds the reads of one scrape.
const DefaultScrapeTimeout = 5 * time.Second

// TransportStats are the transport's counters. Its fields are those of
// transport.Stats, so node converts with metrics.TransportStats(t.Stats()).
type TransportStats struct {
	Sent, Received           uint64
	SentBytes, ReceivedBytes uint64
	Dropped                  map[string]uint64
	ConnectedPeers           int
}

// BudgetKey is one (context, peer) flow budget as of the current epoch.
type BudgetKey struct {
	// Class is the context class ("link", "contact", "group").
	Class string
	// Limit and Spent are the sending side: what this device may spend on
	// the peer this budget period, and has spent.
	Limit, Spent uint64
	// Received is what the peer has paid this device this period, against
	// ReceivedLimit.
	Received, ReceivedLimit uint64
}

// Outcome is where one session or ceremony stands: its state ("running",
// "completed", "aborted", …) and, when it ended early, the reason code.
type Outcome struct {
	State, Reason string
}

// SyncPeer is the sync engine's running totals for one (peer, namespace)
// since start: the fields of sync.PeerStatus of the same names. This
// package sits below sync, so node converts.
type SyncPeer struct {
	FactsIn, FactsOut uint64
	BytesIn, BytesOut uint64
	// Refused counts facts from the peer that failed verification.
	Refused uint64
}

// Sources read live values at scrape time. A nil source exports none of its
// series. Each may be called concurrently with the others, and only while a
// scrape runs: node may bind them to components that start after New.
type Sources struct {
	// Journal reads the journal's counts (journal.(*Journal).Stats).
	Journal func(ctx context.Context) (journal.Stats, error)
	// DBSize is the journal file's size in bytes.
	DBSize func() (int64, error)
	// Transport reads the transport's counters.
	Transport func() TransportStats
	// Budgets lists the flow budgets the ledger knows.
	Budgets func(ctx context.Context) ([]BudgetKey, error)
	// BudgetGaps counts accepted receipts that skipped unseen ones.
	BudgetGaps func() uint64
	// Sessions lists the sessions the runtime holds.
	Sessions func() []Outcome
	// Ceremonies lists the ceremonies this device took part in.
	Ceremonies func(ctx context.Context) ([]Outcome, error)
	// Sync lists the sync engine's totals per peer and namespace.
	Sync func() []SyncPeer
	// Health is what /healthz reports: nil error means serving.
	Health func() error
}

// Options configure New.
type Options struct {
	Logger *zap.Logger
	// Version is exported as aura_build_info{version}.
	Version string
	Sources Sources
	// ScrapeTimeout bounds the reads of one scrape (DefaultScrapeTimeout
	// if 0).
	ScrapeTimeout time.Duration
}

// Metrics is aurad's registry and the counters it keeps itself. A nil
// *Metrics is valid: its hooks do nothing, so callers need no "metrics on?"
// branch.
type Metrics struct {
	reg     *prometheus.Registry
	log     *zap.Logger
	src     Sources
	timeout time.Duration

	// Journal commits (ObserveCommit).
	appends        prometheus.Counter
	commitFailures prometheus.Counter
	commitSeconds  prometheus.Histogram
	batchFacts     prometheus.Histogram
	batchTxns      prometheus.Histogram

	// gRPC (ObserveRPC).
	rpcRequests *prometheus.CounterVec
	rpcSeconds  *prometheus.HistogramVec

	// Budget charges (ObserveCharge).
	charges      prometheus.Counter
	chargedUnits prometheus.Counter
	refusals     *prometheus.CounterVec

	// Sync sessions (ObserveSyncSession).
	syncSessions *prometheus.CounterVec

	sourceErrors *prometheus.CounterVec

	// servers are the HTTP servers Serve started; Wait waits for them.
	servers sync.WaitGroup
}

// New builds the registry: Go runtime and process collectors, aurad's own
// counters, and collectors that read opts.Sources at scrape time.
func New(opts Options) (*Metrics, error) {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.ScrapeTimeout <= 0 {
		opts.ScrapeTimeout = DefaultScrapeTimeout
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(), log: opts.Logger, src: opts.Sources, timeout: opts.ScrapeTimeout,
		appends: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "journal", Name: "appends_total",
			Help: "Facts newly stored by the journal's group commits (duplicates excluded).",
		}),
		commitFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "journal", Name: "commit_failures_total",
			Help: "Group commits that failed (their appends returned an error).",
		}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "journal", Name: "commit_duration_seconds",
			Help: "Time of one group commit: transaction, fsync and retries.",
			// 250µs to 8s: an fsync is about 0.3ms on these disks, a stall seconds.
			Buckets: prometheus.ExponentialBuckets(0.00025, 2, 16),
		}),
		batchFacts: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "journal", Name: "commit_batch_facts",
			Help:    "Facts stored by one group commit (0 for commits of extension writes only).",
			Buckets: []float64{0, 1, 2, 4, 8, 16, 64, 256, 1024, 4096, 16384, 65536},
		}),
		batchTxns: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "journal", Name: "commit_batch_txns",
			Help:    "Queued transactions (appends, charges) sharing one group commit and its fsync.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11),
		}),
		rpcRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "grpc", Name: "requests_total",
			Help: "gRPC calls handled, by full method and the code the client got.",
		}, []string{"method", "code"}),
		rpcSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "grpc", Name: "request_duration_seconds",
			Help:    "Duration of gRPC calls by full method (streams: their whole life).",
			Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}, []string{"method"}),
		charges: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "budget", Name: "charges_total",
			Help: "Flow-budget charges that succeeded (one per guarded send).",
		}),
		chargedUnits: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "budget", Name: "charged_units_total",
			Help: "Flow units charged by successful charges.",
		}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "budget", Name: "refusals_total",
			Help: "Charges refused, by reason: exhausted (budget spent or limit 0), invalid, canceled, unavailable, other.",
		}, []string{"reason"}),
		syncSessions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "sync", Name: "sessions_total",
			Help: "Anti-entropy sessions ended, either role, by mode (equal, sketch, range, full; none if it failed before one was chosen) and result (done, failed).",
		}, []string{"mode", "result"}),
		sourceErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "metrics", Name: "source_errors_total",
			Help: "Scrapes that could not read a source; its series were left out of that scrape.",
		}, []string{"source"}),
	}
	cs := []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "build_info", Help: "Always 1; the version label names the running aurad.",
			ConstLabels: prometheus.Labels{"version": opts.Version},
		}, func() float64 { return 1 }),
		m.appends, m.commitFailures, m.commitSeconds, m.batchFacts, m.batchTxns,
		m.rpcRequests, m.rpcSeconds,
		m.charges, m.chargedUnits, m.refusals,
		m.syncSessions,
		m.sourceErrors,
	}
	cs = append(cs, m.sourceCollectors()...)
	for _, c := range cs {
		if err := m.reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: %w: %w", err, core.ErrInternal)
		}
	}
	return m, nil
}

// Registry is the registry every collector of this node registers on (also
// libp2p's, through Libp2pOptions).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveCommit records one group commit of the journal: txns queued
// transactions, facts newly stored, the time it took, and its error. It is
// the journal's commit hook and runs on the journal's writer, so it only
// touches atomics.
func (m *Metrics) ObserveCommit(txns, facts int, took time.Duration, err error) {
	if m == nil {
		return
	}
	m.commitSeconds.Observe(took.Seconds())
	m.batchTxns.Observe(float64(txns))
	if err != nil {
		m.commitFailures.Inc()
		return
	}
	m.batchFacts.Observe(float64(facts))
	m.appends.Add(float64(facts))
}

// ObserveRPC records one finished gRPC call; it is rpc.Options.Observe.
func (m *Metrics) ObserveRPC(method string, code codes.Code, took time.Duration) {
	if m == nil {
		return
	}
	m.rpcRequests.WithLabelValues(method, code.String()).Inc()
	m.rpcSeconds.WithLabelValues(method).Observe(took.Seconds())
}

// ObserveCharge records one flow-budget charge of cost units and its
// outcome (nil: charged).
func (m *Metrics) ObserveCharge(cost uint64, err error) {
	if m == nil {
		return
	}
	if err == nil {
		m.charges.Inc()
		m.chargedUnits.Add(float64(cost))
		return
	}
	m.refusals.WithLabelValues(RefusalReason(err)).Inc()
}

// ObserveSyncSession records one ended sync session: the mode it
// reconciled in ("" if it failed before choosing one) and whether it
// failed. The engine reports it because its status keeps only each pair's
// last mode, not a count per mode.
func (m *Metrics) ObserveSyncSession(mode string, failed bool) {
	if m == nil {
		return
	}
	if mode == "" {
		mode = "none"
	}
	result := "done"
	if failed {
		result = "failed"
	}
	m.syncSessions.WithLabelValues(mode, result).Inc()
}

// RefusalReason names a refused charge by the core sentinel it wraps, so
// the label set stays small and fixed.
func RefusalReason(err error) string {
	switch {
	case errors.Is(err, core.ErrResourceExhausted):
		return "exhausted"
	case errors.Is(err, core.ErrInvalidArgument):
		return "invalid"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	case errors.Is(err, core.ErrUnavailable), errors.Is(err, core.ErrAborted):
		return "unavailable"
	}
	return "other"
}

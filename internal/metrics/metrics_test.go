package metrics

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc/codes"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
)

// fakeSources stands for a node with peers peers (each with a link and a
// contact budget, two sessions, a ceremony and two synced namespaces) and
// facts facts.
func fakeSources(peers, facts int) Sources {
	budgets := make([]BudgetKey, 0, 2*peers)
	sessions := make([]Outcome, 0, 2*peers)
	ceremonies := make([]Outcome, 0, peers)
	synced := make([]SyncPeer, 0, 2*peers)
	for i := range peers {
		n := uint64(i)
		synced = append(synced,
			SyncPeer{FactsIn: 10 * n, FactsOut: n, BytesIn: 1000 * n, BytesOut: 100 * n, Refused: n},
			SyncPeer{FactsIn: 5, FactsOut: 2, BytesIn: 700, BytesOut: 300})
		budgets = append(budgets,
			BudgetKey{Class: "link", Limit: 1000, Spent: uint64(i), Received: uint64(2 * i), ReceivedLimit: 1000},
			BudgetKey{Class: "contact", Limit: 5000, Spent: uint64(10 * i), Received: uint64(i), ReceivedLimit: 5000})
		sessions = append(sessions, Outcome{State: "completed"}, Outcome{State: "aborted", Reason: "timeout"})
		ceremonies = append(ceremonies, Outcome{State: "committed"})
	}
	drops := map[string]uint64{"receipt": 3, "bad_frame": 1, "unauthorized": uint64(peers)}
	return Sources{
		Journal: func(context.Context) (journal.Stats, error) {
			return journal.Stats{Facts: uint64(facts), Namespaces: uint64(peers + 1), LastSeq: uint64(facts), Orphans: 7, OrphanBytes: 7000, OrphansEvicted: 2}, nil
		},
		DBSize: func() (int64, error) { return int64(facts) * 600, nil },
		Transport: func() TransportStats {
			return TransportStats{Sent: 10, Received: 20, SentBytes: 1500, ReceivedBytes: 2600, Dropped: drops, ConnectedPeers: peers}
		},
		Budgets: func(context.Context) ([]BudgetKey, error) {
			return budgets, nil
		},
		BudgetGaps: func() uint64 { return 4 },
		Sessions:   func() []Outcome { return sessions },
		Ceremonies: func(context.Context) ([]Outcome, error) { return ceremonies, nil },
		Sync:       func() []SyncPeer { return synced },
		Health:     func() error { return nil },
	}
}

// samples gathers m's registry into "name{l="v",…}" → value; histograms
// give their _count and _sum.
func samples(t testing.TB, m *Metrics) map[string]float64 {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		for _, s := range f.Metric {
			key := f.GetName() + labelString(s.Label)
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[key] = s.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key] = s.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[f.GetName()+"_count"+labelString(s.Label)] = float64(s.GetHistogram().GetSampleCount())
				out[f.GetName()+"_sum"+labelString(s.Label)] = s.GetHistogram().GetSampleSum()
			}
		}
	}
	return out
}

func labelString(ls []*dto.LabelPair) string {
	if len(ls) == 0 {
		return ""
	}
	parts := make([]string, 0, len(ls))
	for _, l := range ls {
		parts = append(parts, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
	}
	sort.Strings(parts)
	return "{" + strings.Join(parts, ",") + "}"
}

func newMetrics(t testing.TB, src Sources) *Metrics {
	t.Helper()
	m, err := New(Options{Logger: zaptest.NewLogger(t), Version: "v0.0.0-test", Sources: src})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// The collectors report exactly what the sources say, summed per label
// where the source lists items.
func TestSourcesAreReported(t *testing.T) {
	m := newMetrics(t, fakeSources(3, 1_000_000))
	got := samples(t, m)
	want := []struct {
		series string
		value  float64
	}{
		{`aura_build_info{version="v0.0.0-test"}`, 1},
		{"aura_journal_facts", 1_000_000},
		{"aura_journal_namespaces", 4},
		{"aura_journal_orphans", 7},
		{"aura_journal_orphan_bytes", 7000},
		{"aura_journal_orphans_evicted_total", 2},
		{"aura_journal_db_size_bytes", 600_000_000},
		{"aura_transport_messages_sent_total", 10},
		{"aura_transport_sent_bytes_total", 1500},
		{"aura_transport_received_bytes_total", 2600},
		{"aura_transport_messages_received_total", 20},
		{`aura_transport_dropped_total{reason="receipt"}`, 3},
		{`aura_transport_dropped_total{reason="bad_frame"}`, 1},
		{`aura_transport_dropped_total{reason="unauthorized"}`, 3},
		{"aura_transport_connected_peers", 3},
		{`aura_budget_keys{class="link"}`, 3},
		{`aura_budget_limit_units{class="link"}`, 3000},
		{`aura_budget_spent_units{class="link"}`, 0 + 1 + 2},
		{`aura_budget_headroom_units{class="link"}`, 3000 - 3},
		{`aura_budget_min_headroom_units{class="link"}`, 998},
		{`aura_budget_received_units{class="link"}`, 0 + 2 + 4},
		{`aura_budget_keys{class="contact"}`, 3},
		{`aura_budget_spent_units{class="contact"}`, 0 + 10 + 20},
		{`aura_budget_min_headroom_units{class="contact"}`, 4980},
		{"aura_budget_receipt_gaps_total", 4},
		{`aura_sessions{reason="",state="completed"}`, 3},
		{`aura_sessions{reason="timeout",state="aborted"}`, 3},
		{`aura_ceremonies{reason="",state="committed"}`, 3},
		{`aura_sync_facts_total{direction="in"}`, 0 + 10 + 20 + 3*5},
		{`aura_sync_facts_total{direction="out"}`, 0 + 1 + 2 + 3*2},
		{`aura_sync_bytes_total{direction="in"}`, 0 + 1000 + 2000 + 3*700},
		{`aura_sync_bytes_total{direction="out"}`, 0 + 100 + 200 + 3*300},
		{"aura_sync_refused_facts_total", 0 + 1 + 2},
		{`aura_metrics_source_errors_total{source="sync"}`, 0},
		{`aura_metrics_source_errors_total{source="journal"}`, 0},
	}
	for _, w := range want {
		v, ok := got[w.series]
		if !ok {
			t.Errorf("%s missing", w.series)
			continue
		}
		if v != w.value {
			t.Errorf("%s = %v, want %v", w.series, v, w.value)
		}
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := got[name]; !ok {
			t.Errorf("%s missing: the runtime and process collectors are not registered", name)
		}
	}
}

// A budget whose limit was lowered below its spend has no headroom, not a
// negative one, and is the tightest of its class.
func TestBudgetOverspentHasNoHeadroom(t *testing.T) {
	src := Sources{Budgets: func(context.Context) ([]BudgetKey, error) {
		return []BudgetKey{{Class: "group", Limit: 10, Spent: 50}, {Class: "group", Limit: 100, Spent: 40}}, nil
	}}
	got := samples(t, newMetrics(t, src))
	for series, want := range map[string]float64{
		`aura_budget_headroom_units{class="group"}`:     60,
		`aura_budget_min_headroom_units{class="group"}`: 0,
		`aura_budget_spent_units{class="group"}`:        90,
	} {
		if got[series] != want {
			t.Errorf("%s = %v, want %v", series, got[series], want)
		}
	}
}

// A source that cannot be read leaves its series out of the scrape and is
// counted; the others are still reported.
func TestUnreadableSourceIsCounted(t *testing.T) {
	src := fakeSources(1, 10)
	src.Journal = func(context.Context) (journal.Stats, error) { return journal.Stats{}, errors.New("database not open") }
	src.Ceremonies = func(context.Context) ([]Outcome, error) { return nil, fmt.Errorf("scan: %w", core.ErrDataLoss) }
	m := newMetrics(t, src)
	for scrape := 1; scrape <= 2; scrape++ {
		got := samples(t, m)
		for _, gone := range []string{"aura_journal_facts", `aura_ceremonies{reason="",state="committed"}`} {
			if _, ok := got[gone]; ok {
				t.Errorf("scrape %d: %s reported from a failed source", scrape, gone)
			}
		}
		// Collectors run concurrently, so a scrape may show its own error
		// or only the previous ones; the counter itself holds them all.
		for _, src := range []string{"journal", "ceremonies"} {
			var d dto.Metric
			if err := m.sourceErrors.WithLabelValues(src).Write(&d); err != nil {
				t.Fatal(err)
			}
			if v := d.GetCounter().GetValue(); v != float64(scrape) {
				t.Errorf("scrape %d: %s errors = %v", scrape, src, v)
			}
			if v := got[`aura_metrics_source_errors_total{source="`+src+`"}`]; v != float64(scrape) && v != float64(scrape-1) {
				t.Errorf("scrape %d: %s errors exported as %v", scrape, src, v)
			}
		}
		if got["aura_journal_db_size_bytes"] != 6000 {
			t.Errorf("scrape %d: the journal file's size went missing with the journal's counts", scrape)
		}
	}
}

// Sources left nil export nothing of theirs.
func TestNilSourcesExportNothing(t *testing.T) {
	got := samples(t, newMetrics(t, Sources{}))
	for series := range got {
		if strings.HasPrefix(series, "aura_journal_") && !strings.HasPrefix(series, "aura_journal_commit") && series != "aura_journal_appends_total" ||
			strings.HasPrefix(series, "aura_transport_") || strings.HasPrefix(series, "aura_sessions") ||
			strings.HasPrefix(series, "aura_ceremonies") || strings.HasPrefix(series, "aura_metrics_source_errors_total{") ||
			strings.HasPrefix(series, "aura_sync_") ||
			strings.HasPrefix(series, "aura_budget_") && !strings.Contains(series, "charge") && !strings.Contains(series, "refusals") {
			t.Errorf("%s exported without a source", series)
		}
	}
}

// The hooks count what the subsystems report.
func TestHooks(t *testing.T) {
	exhausted := fmt.Errorf("charge: %w", core.ErrResourceExhausted)
	cases := []struct {
		name string
		do   func(m *Metrics)
		want map[string]float64
	}{
		{"commits", func(m *Metrics) {
			m.ObserveCommit(3, 100, 2*time.Millisecond, nil)
			m.ObserveCommit(1, 0, time.Millisecond, nil)
			m.ObserveCommit(2, 0, 4*time.Millisecond, errors.New("disk full"))
		}, map[string]float64{
			"aura_journal_appends_total":                 1_00,
			"aura_journal_commit_failures_total":         1,
			"aura_journal_commit_duration_seconds_count": 3,
			"aura_journal_commit_duration_seconds_sum":   0.007,
			"aura_journal_commit_batch_facts_count":      2,
			"aura_journal_commit_batch_facts_sum":        100,
			"aura_journal_commit_batch_txns_count":       3,
			"aura_journal_commit_batch_txns_sum":         6,
		}},
		{"rpc", func(m *Metrics) {
			m.ObserveRPC("/aura.node.v1.NodeService/Status", codes.OK, 3*time.Millisecond)
			m.ObserveRPC("/aura.node.v1.NodeService/Status", codes.OK, time.Millisecond)
			m.ObserveRPC("/aura.journal.v1.JournalService/GetFact", codes.NotFound, time.Millisecond)
		}, map[string]float64{
			`aura_grpc_requests_total{code="OK",method="/aura.node.v1.NodeService/Status"}`:              2,
			`aura_grpc_requests_total{code="NotFound",method="/aura.journal.v1.JournalService/GetFact"}`: 1,
			`aura_grpc_request_duration_seconds_count{method="/aura.node.v1.NodeService/Status"}`:        2,
			`aura_grpc_request_duration_seconds_sum{method="/aura.node.v1.NodeService/Status"}`:          0.004,
			`aura_grpc_request_duration_seconds_count{method="/aura.journal.v1.JournalService/GetFact"}`: 1,
		}},
		{"charges", func(m *Metrics) {
			m.ObserveCharge(5, nil)
			m.ObserveCharge(7, nil)
			m.ObserveCharge(100, exhausted)
			m.ObserveCharge(1, fmt.Errorf("class 0: %w", core.ErrInvalidArgument))
			m.ObserveCharge(1, context.Canceled)
			m.ObserveCharge(1, fmt.Errorf("commit: %w", core.ErrUnavailable))
			m.ObserveCharge(1, errors.New("surprise"))
		}, map[string]float64{
			"aura_budget_charges_total":                        2,
			"aura_budget_charged_units_total":                  12,
			`aura_budget_refusals_total{reason="exhausted"}`:   1,
			`aura_budget_refusals_total{reason="invalid"}`:     1,
			`aura_budget_refusals_total{reason="canceled"}`:    1,
			`aura_budget_refusals_total{reason="unavailable"}`: 1,
			`aura_budget_refusals_total{reason="other"}`:       1,
		}},
		{"sync sessions", func(m *Metrics) {
			m.ObserveSyncSession("sketch", false)
			m.ObserveSyncSession("sketch", false)
			m.ObserveSyncSession("range", true)
			m.ObserveSyncSession("", true)
		}, map[string]float64{
			`aura_sync_sessions_total{mode="sketch",result="done"}`:  2,
			`aura_sync_sessions_total{mode="range",result="failed"}`: 1,
			`aura_sync_sessions_total{mode="none",result="failed"}`:  1,
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := newMetrics(t, Sources{})
			tc.do(m)
			got := samples(t, m)
			for series, want := range tc.want {
				if v, ok := got[series]; !ok || !near(v, want) {
					t.Errorf("%s = %v (present %v), want %v", series, v, ok, want)
				}
			}
		})
	}
}

func near(a, b float64) bool { d := a - b; return d < 1e-9 && d > -1e-9 }

// Components hold a nil *Metrics when metrics are off; their hooks must
// then do nothing.
func TestNilMetricsHooksDoNothing(t *testing.T) {
	var m *Metrics
	m.ObserveCommit(1, 1, time.Millisecond, nil)
	m.ObserveRPC("/x/Y", codes.OK, time.Millisecond)
	m.ObserveCharge(1, nil)
	m.ObserveSyncSession("equal", false)
	if opts := m.Libp2pOptions(); len(opts) != 1 {
		t.Fatalf("metrics off: want libp2p's metrics disabled, got %d options", len(opts))
	}
	if opts := m.ResourceManagerOptions(); len(opts) != 1 {
		t.Fatalf("metrics off: want the resource manager's metrics disabled, got %d options", len(opts))
	}
}

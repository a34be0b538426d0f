package metrics

import (
	"encoding/json"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p"
	"github.com/prometheus/client_golang/prometheus"
)

const dashboardPath = "../../deploy/grafana/aurad-dashboard.json"

// fqNameRE reads a metric name out of Desc.String(), the only place a Desc
// shows it.
var fqNameRE = regexp.MustCompile(`fqName: "([^"]+)"`)

// describedNames is every metric name registered on reg, series or not yet.
func describedNames(t *testing.T, reg *prometheus.Registry) map[string]bool {
	t.Helper()
	ch := make(chan *prometheus.Desc)
	go func() {
		reg.Describe(ch)
		close(ch)
	}()
	names := map[string]bool{}
	for d := range ch {
		if m := fqNameRE.FindStringSubmatch(d.String()); m != nil {
			names[m[1]] = true
		}
	}
	if len(names) == 0 {
		t.Fatal("the registry describes no metric")
	}
	return names
}

// withLibp2p registers a libp2p host's metrics on m's registry the way the
// transport does, through Libp2pOptions.
func withLibp2p(t testing.TB, m *Metrics) {
	t.Helper()
	opts := append([]libp2p.Option{libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay()}, m.Libp2pOptions()...)
	h, err := libp2p.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
}

// A host built with Libp2pOptions registers libp2p's resource-manager and
// swarm metrics on this node's registry.
func TestLibp2pRegistersOnOurRegistry(t *testing.T) {
	m := newMetrics(t, Sources{})
	before := describedNames(t, m.Registry())
	withLibp2p(t, m)
	after := describedNames(t, m.Registry())
	for _, name := range []string{"libp2p_rcmgr_connections", "libp2p_rcmgr_streams", "libp2p_swarm_connections_opened_total"} {
		if before[name] || !after[name] {
			t.Errorf("%s: registered before the host %v, after %v", name, before[name], after[name])
		}
	}
}

// dashboardQueries returns every PromQL expression of the dashboard:
// panel targets and templating queries, however deeply nested.
func dashboardQueries(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && (k == "expr" || k == "query" || k == "definition") {
					out = append(out, s)
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
	return out
}

var (
	// A selector with braces names a metric in any PromQL expression.
	selectorRE = regexp.MustCompile(`([a-zA-Z_:][a-zA-Z0-9_:]*)\{`)
	// Metric families aurad exports, even where used without braces.
	familyRE = regexp.MustCompile(`\b((?:aura|go|process|libp2p)_[a-zA-Z0-9_:]+)`)
)

// metricNames finds the metric names an expression queries.
func metricNames(expr string) []string {
	seen := map[string]bool{}
	var out []string
	for _, re := range []*regexp.Regexp{selectorRE, familyRE} {
		for _, m := range re.FindAllStringSubmatch(expr, -1) {
			if !seen[m[1]] {
				seen[m[1]] = true
				out = append(out, m[1])
			}
		}
	}
	return out
}

// Every metric the dashboard queries is one the registry exposes, so the
// dashboard cannot drift from the code.
func TestDashboardQueriesExposedMetrics(t *testing.T) {
	m := newMetrics(t, fakeSources(1, 1))
	withLibp2p(t, m)
	exposed := describedNames(t, m.Registry())
	has := func(name string) bool {
		if exposed[name] {
			return true
		}
		// Histograms are queried by their series, described by their family.
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && exposed[base] {
				return true
			}
		}
		return false
	}
	queries := dashboardQueries(t)
	if len(queries) < 20 {
		t.Fatalf("found only %d queries in %s", len(queries), dashboardPath)
	}
	used := map[string]bool{}
	for _, q := range queries {
		for _, name := range metricNames(q) {
			used[name] = true
			if !has(name) {
				t.Errorf("the dashboard queries %s, which the registry does not expose (in %q)", name, q)
			}
		}
	}
	// Each subsystem has a panel.
	for _, prefix := range []string{"aura_journal_", "aura_grpc_", "aura_transport_", "aura_budget_", "aura_sessions", "aura_ceremonies", "aura_sync_", "libp2p_rcmgr_", "process_", "go_"} {
		found := false
		for name := range used {
			found = found || strings.HasPrefix(name, prefix)
		}
		if !found {
			t.Errorf("no panel queries %s*", prefix)
		}
	}
	if t.Failed() {
		names := make([]string, 0, len(exposed))
		for n := range exposed {
			names = append(names, n)
		}
		sort.Strings(names)
		t.Logf("exposed: %s", strings.Join(names, " "))
	}
}

// The selector regexp finds names in the shapes the dashboard uses, and
// the test above would catch a renamed series.
func TestMetricNames(t *testing.T) {
	cases := []struct {
		expr string
		want []string
	}{
		{`sum by (code) (rate(aura_grpc_requests_total{instance=~"$instance"}[$__rate_interval]))`, []string{"aura_grpc_requests_total"}},
		{`histogram_quantile(0.99, sum by (le) (rate(aura_journal_commit_duration_seconds_bucket{a="b"}[5m])))`, []string{"aura_journal_commit_duration_seconds_bucket"}},
		{`label_values(aura_build_info, instance)`, []string{"aura_build_info"}},
		{`up{job="x"} / node_load1{}`, []string{"up", "node_load1"}},
	}
	for _, tc := range cases {
		got := map[string]bool{}
		for _, n := range metricNames(tc.expr) {
			got[n] = true
		}
		if len(got) != len(tc.want) {
			t.Errorf("%q: got %v, want %v", tc.expr, got, tc.want)
		}
		for _, w := range tc.want {
			if !got[w] {
				t.Errorf("%q: %s not found (got %v)", tc.expr, w, got)
			}
		}
	}
}

package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/aura-p2p/aura/internal/core"
)

func get(t *testing.T, url string) (int, string, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
}

// /metrics serves the registry in the text format a Prometheus server
// parses, with the series of the sources and hooks.
func TestServeMetrics(t *testing.T) {
	m := newMetrics(t, fakeSources(2, 500))
	m.ObserveRPC("/aura.node.v1.NodeService/Status", 0, time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); m.Wait() }()
	addr, err := m.Serve(ctx, "127.0.0.1:0", false)
	if err != nil {
		t.Fatal(err)
	}
	code, ctype, body := get(t, "http://"+addr.String()+"/metrics")
	if code != http.StatusOK || !strings.HasPrefix(ctype, "text/plain") {
		t.Fatalf("/metrics: %d %q", code, ctype)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics is not the text format: %v", err)
	}
	want := map[string]float64{
		"aura_journal_facts":             500,
		"aura_transport_connected_peers": 2,
		"aura_build_info":                1,
	}
	for name, v := range want {
		f, ok := fams[name]
		if !ok || len(f.Metric) != 1 {
			t.Errorf("%s missing from /metrics", name)
			continue
		}
		if got := f.Metric[0].GetGauge().GetValue(); got != v {
			t.Errorf("%s = %v, want %v", name, got, v)
		}
	}
	f, ok := fams["aura_grpc_requests_total"]
	if !ok || len(f.Metric) != 1 || f.Metric[0].GetCounter().GetValue() != 1 {
		t.Errorf("aura_grpc_requests_total: %v", f)
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("%s missing from /metrics", name)
		}
	}
}

// /healthz says ok while the node serves and 503 with the reason once it
// does not.
func TestServeHealthz(t *testing.T) {
	var health error
	src := fakeSources(1, 1)
	src.Health = func() error { return health }
	m := newMetrics(t, src)
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); m.Wait() }()
	addr, err := m.Serve(ctx, "127.0.0.1:0", false)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		health error
		code   int
		body   string
	}{
		{nil, http.StatusOK, "ok\n"},
		{fmt.Errorf("journal failed: %w", core.ErrDataLoss), http.StatusServiceUnavailable, "not serving: journal failed: data loss\n"},
	}
	for _, tc := range cases {
		health = tc.health
		code, _, body := get(t, "http://"+addr.String()+"/healthz")
		if code != tc.code || body != tc.body {
			t.Errorf("health %v: got %d %q, want %d %q", tc.health, code, body, tc.code, tc.body)
		}
	}
}

// A listen address that is no host:port, or cannot be bound, is refused
// with an error saying so, and nothing is served.
func TestServeRefusesBadListen(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cases := []struct {
		listen  string
		invalid bool // core.ErrInvalidArgument, before any bind
		msg     string
	}{
		{"", true, "want host:port"},
		{"127.0.0.1", true, "want host:port"},
		{"localhost:metrics", true, `port "metrics" is no number`},
		{"127.0.0.1:70000", true, `port "70000" is no number`},
		{"[::1:9", true, "want host:port"},
		{busy.Addr().String(), false, "address already in use"},
		{"192.0.2.1:0", false, "metrics listener"},
	}
	for _, tc := range cases {
		t.Run(tc.listen, func(t *testing.T) {
			m := newMetrics(t, Sources{})
			addr, err := m.Serve(context.Background(), tc.listen, false)
			if err == nil {
				t.Fatalf("served on %v", addr)
			}
			if errors.Is(err, core.ErrInvalidArgument) != tc.invalid || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v, want invalid=%v containing %q", err, tc.invalid, tc.msg)
			}
			m.Wait() // nothing was started, so nothing to wait for
		})
	}
}

// When ctx ends the listener closes and Wait returns.
func TestServeStopsWithContext(t *testing.T) {
	m := newMetrics(t, fakeSources(1, 1))
	ctx, cancel := context.WithCancel(context.Background())
	addr, err := m.Serve(ctx, "127.0.0.1:0", false)
	if err != nil {
		t.Fatal(err)
	}
	if code, _, _ := get(t, "http://"+addr.String()+"/metrics"); code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	cancel()
	m.Wait()
	if c, err := net.Dial("tcp", addr.String()); err == nil {
		c.Close()
		t.Fatal("the metrics listener still accepts after ctx ended")
	}
}

// The profiler is served only when asked for.
func TestServePprofOnlyWhenAsked(t *testing.T) {
	for _, pprof := range []bool{false, true} {
		t.Run(fmt.Sprint("pprof=", pprof), func(t *testing.T) {
			m := newMetrics(t, Sources{})
			ctx, cancel := context.WithCancel(context.Background())
			defer func() { cancel(); m.Wait() }()
			addr, err := m.Serve(ctx, "127.0.0.1:0", pprof)
			if err != nil {
				t.Fatal(err)
			}
			code, _, body := get(t, "http://"+addr.String()+"/debug/pprof/goroutine?debug=1")
			if served := code == http.StatusOK && strings.Contains(body, "goroutine profile"); served != pprof {
				t.Fatalf("pprof %v: /debug/pprof/goroutine answered %d", pprof, code)
			}
		})
	}
}

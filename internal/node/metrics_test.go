package node

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	journalv1 "github.com/aura-p2p/aura/api/proto/aura/journal/v1"
)

// scrape reads one series' value (the first sample whose line starts with
// prefix) from a real daemon's /metrics.
func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %d %v", resp.StatusCode, err)
	}
	return string(b)
}

func sample(t *testing.T, body, prefix string) float64 {
	t.Helper()
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, prefix) {
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			return v
		}
	}
	t.Fatalf("no %s in the scrape", prefix)
	return 0
}

// A real daemon with [metrics] listen serves Prometheus text whose series
// move with what the daemon does.
func TestMetricsEndpointOfARealDaemon(t *testing.T) {
	cfg := testConfig(t)
	cfg.Metrics.Listen = "127.0.0.1:0"
	n := startNode(t, cfg)
	r, ok := readReadyFile(t, cfg.DataDir)
	if !ok || r.MetricsAddr == "" {
		t.Fatalf("ready.json has no metrics address: %+v", r)
	}
	before := scrape(t, r.MetricsAddr)
	facts := sample(t, before, "aura_journal_facts ")
	jc := journalv1.NewJournalServiceClient(dial(t, cfg.Socket))
	for range 3 {
		if _, err := jc.AppendFact(context.Background(), &journalv1.AppendFactRequest{TypeId: "app.x/v1", Payload: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	after := scrape(t, r.MetricsAddr)
	if got := sample(t, after, "aura_journal_facts "); got != facts+3 {
		t.Errorf("aura_journal_facts %v after 3 appends, was %v", got, facts)
	}
	if got := sample(t, after, "aura_journal_appends_total "); got < 3 {
		t.Errorf("aura_journal_appends_total %v", got)
	}
	if got := sample(t, after, `aura_grpc_requests_total{code="OK",method="/aura.journal.v1.JournalService/AppendFact"}`); got != 3 {
		t.Errorf("AppendFact OK count %v", got)
	}
	for _, s := range []string{"process_resident_memory_bytes ", "aura_build_info{", "aura_transport_connected_peers ", "libp2p_"} {
		if !strings.Contains(after, s) {
			t.Errorf("no %s series", s)
		}
	}
	n.Stop()
	if _, err := http.Get("http://" + r.MetricsAddr + "/metrics"); err == nil {
		t.Error("the metrics listener outlived the node")
	}
}

func readReadyFile(t *testing.T, dir string) (ReadyInfo, bool) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, ReadyFileName))
	if err != nil {
		return ReadyInfo{}, false
	}
	var r ReadyInfo
	return r, json.Unmarshal(b, &r) == nil
}

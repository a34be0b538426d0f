package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

type ready struct {
	DeviceID    string   `json:"device_id"`
	PeerID      string   `json:"peer_id"`
	ListenAddrs []string `json:"listen_addrs"`
}

func readReady(t *testing.T, dir string) ready {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "ready.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r ready
	if err := json.Unmarshal(b, &r); err != nil || len(r.ListenAddrs) == 0 {
		t.Fatalf("ready.json %q: %v", b, err)
	}
	return r
}

// tcpAddr picks the TCP address of a ready file.
func tcpAddr(t *testing.T, r ready) string {
	for _, a := range r.ListenAddrs {
		if strings.Contains(a, "/tcp/") {
			return a
		}
	}
	t.Fatalf("no TCP address in %v", r.ListenAddrs)
	return ""
}

// budget is what `budget show` reports for one peer. Each call decodes into
// a fresh value: JSON leaves absent fields alone, and a zero count is absent,
// so a reused value would keep the previous call's figures.
type budget struct {
	Spent    string `json:"spent"`
	Received string `json:"received"`
}

func budgetShow(t *testing.T, dir, device string) budget {
	t.Helper()
	var b struct {
		Budget *budget `json:"budget"`
	}
	ctlJSON(t, dir, &b, "budget", "show", device)
	if b.Budget == nil {
		t.Fatalf("budget show %s: no budget", device)
	}
	return *b.Budget
}

// peerList is the sorted device IDs `peer list` reports, decoded afresh.
func peerList(t *testing.T, dir string) []string {
	t.Helper()
	var l struct {
		Peers []struct {
			DeviceID string `json:"device_id"`
		} `json:"peers"`
	}
	ctlJSON(t, dir, &l, "peer", "list")
	var ids []string
	for _, p := range l.Peers {
		ids = append(ids, p.DeviceID)
	}
	slices.Sort(ids)
	return ids
}

// Three daemons, each pinging the others through the full guard chain; the
// budgets charged on both sides show up in `budget show`.
func TestThreeDaemonsPingEachOther(t *testing.T) {
	dirs := []string{newDataDir(t), newDataDir(t), newDataDir(t)}
	var ds []*daemon
	var rs []ready
	for _, dir := range dirs {
		ds = append(ds, start(t, dir))
		rs = append(rs, readReady(t, dir))
	}
	var status struct {
		ListenAddrs []string `json:"listen_addrs"`
	}
	ctlJSON(t, dirs[0], &status, "status")
	if len(status.ListenAddrs) == 0 {
		t.Fatal("status reports no listen addresses")
	}
	for i := range dirs {
		for j := range dirs {
			if i == j {
				continue
			}
			if out, code := ctl(t, dirs[i], "peer", "add", tcpAddr(t, rs[j])); code != 0 {
				t.Fatalf("peer add: %s", out)
			}
			out, code := ctl(t, dirs[i], "peer", "ping", rs[j].DeviceID, "--count", "3", "--interval", "10ms")
			if code != 0 || !strings.Contains(out, "3 pings") || !strings.Contains(out, "budget charged 3") {
				t.Fatalf("ping %d->%d: exit %d\n%s", i, j, code, out)
			}
		}
	}
	// 0 pinged 1 three times (3 spent, 3 pongs received) and 1 pinged 0
	// three times (3 pongs spent, 3 pings received).
	if b := budgetShow(t, dirs[0], rs[1].DeviceID); b.Spent != "6" || b.Received != "6" {
		t.Fatalf("budget 0->1: %+v", b)
	}
	// The operator lowers the limit to what is already spent: the next ping
	// is refused before anything is sent, with ResourceExhausted.
	if out, code := ctl(t, dirs[0], "budget", "set", rs[1].DeviceID, "6"); code != 0 {
		t.Fatalf("budget set: %s", out)
	}
	if out, code := ctl(t, dirs[0], "peer", "ping", rs[1].DeviceID); code != 8 || !strings.Contains(out, "resource exhausted") {
		t.Fatalf("ping past the limit: exit %d: %s", code, out)
	}
	if b := budgetShow(t, dirs[0], rs[1].DeviceID); b.Spent != "6" || b.Received != "6" {
		t.Fatalf("a refused ping was charged: %+v", b)
	}
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"budget", "show", "nobody"}, 4},
		{[]string{"budget", "show", rs[0].DeviceID}, 4},
		{[]string{"budget", "set", rs[1].DeviceID, "lots"}, 2},
		{[]string{"leakage", "show", "context/zz"}, 4},
	} {
		if out, code := ctl(t, dirs[0], tc.args...); code != tc.code {
			t.Errorf("%v: exit %d, want %d: %s", tc.args, code, tc.code, out)
		}
	}
	want := []string{rs[1].DeviceID, rs[2].DeviceID}
	slices.Sort(want)
	if got := peerList(t, dirs[0]); !slices.Equal(got, want) {
		t.Fatalf("peers %v, want %v", got, want)
	}
	// Known peers survive a restart.
	ds[0].signal(syscall.SIGTERM)
	if code := ds[0].exitCode(5 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
	start(t, dirs[0])
	if got := peerList(t, dirs[0]); !slices.Equal(got, want) {
		t.Fatalf("known peers after restart %v, want %v", got, want)
	}
	if out, code := ctl(t, dirs[0], "peer", "ping", rs[2].DeviceID); code != 0 {
		t.Fatalf("ping after restart: %s", out)
	}
	// Bad input: a clear code, one line.
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"peer", "add", "/ip4/1.2.3.4/tcp/1"}, 4},
		{[]string{"peer", "add", "not a multiaddr"}, 4},
		{[]string{"peer", "ping", "nobody"}, 4},
		{[]string{"peer", "rm", strings.Repeat("ab", 32)}, 5},
	} {
		if out, code := ctl(t, dirs[0], tc.args...); code != tc.code {
			t.Errorf("%v: exit %d, want %d: %s", tc.args, code, tc.code, out)
		}
	}
}

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
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
	var b struct {
		Budget struct {
			Spent    string `json:"spent"`
			Received string `json:"received"`
		} `json:"budget"`
	}
	ctlJSON(t, dirs[0], &b, "budget", "show", rs[1].DeviceID)
	// 0 pinged 1 three times (3 spent, 3 pongs received) and 1 pinged 0
	// three times (3 pongs spent, 3 pings received).
	if b.Budget.Spent != "6" || b.Budget.Received != "6" {
		t.Fatalf("budget 0->1: %+v", b.Budget)
	}
	// The operator lowers the limit to what is already spent: the next ping
	// is refused before anything is sent, with ResourceExhausted.
	if out, code := ctl(t, dirs[0], "budget", "set", rs[1].DeviceID, "6"); code != 0 {
		t.Fatalf("budget set: %s", out)
	}
	if out, code := ctl(t, dirs[0], "peer", "ping", rs[1].DeviceID); code != 8 || !strings.Contains(out, "resource exhausted") {
		t.Fatalf("ping past the limit: exit %d: %s", code, out)
	}
	ctlJSON(t, dirs[0], &b, "budget", "show", rs[1].DeviceID)
	if b.Budget.Spent != "6" {
		t.Fatalf("a refused ping was charged: %+v", b.Budget)
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
	var peers struct {
		Peers []struct {
			DeviceID  string `json:"device_id"`
			Connected bool   `json:"connected"`
		} `json:"peers"`
	}
	ctlJSON(t, dirs[0], &peers, "peer", "list")
	if len(peers.Peers) != 2 {
		t.Fatalf("peers %+v", peers)
	}
	// Known peers survive a restart.
	ds[0].signal(syscall.SIGTERM)
	if code := ds[0].exitCode(5 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
	start(t, dirs[0])
	ctlJSON(t, dirs[0], &peers, "peer", "list")
	if len(peers.Peers) != 2 {
		t.Fatalf("known peers after restart %+v", peers)
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

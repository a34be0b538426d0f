package e2e

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	budgetpkg "github.com/aura-p2p/aura/internal/budget"
	"github.com/aura-p2p/aura/test/cluster"
)

// budget is what `budget show` reports for one peer. Each call decodes into
// a fresh value: JSON leaves absent fields alone, and a zero count is absent,
// so a reused value would keep the previous call's figures.
type budget struct {
	Spent    string `json:"spent"`
	Received string `json:"received"`
}

func budgetShow(t *testing.T, n *cluster.Node, device string) budget {
	t.Helper()
	var b struct {
		Budget *budget `json:"budget"`
	}
	n.CtlJSON(&b, "budget", "show", device)
	if b.Budget == nil {
		t.Fatalf("budget show %s: no budget", device)
	}
	return *b.Budget
}

// peerList is the sorted device IDs `peer list` reports, decoded afresh.
func peerList(t *testing.T, n *cluster.Node) []string {
	t.Helper()
	var l struct {
		Peers []struct {
			DeviceID string `json:"device_id"`
		} `json:"peers"`
	}
	n.CtlJSON(&l, "peer", "list")
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
	cluster.Run(t, 3, pingEachOther)
}

func pingEachOther(t *testing.T, c *cluster.Cluster) {
	ns := c.Nodes()
	var status struct {
		ListenAddrs []string `json:"listen_addrs"`
	}
	ns[0].CtlJSON(&status, "status")
	if len(status.ListenAddrs) == 0 {
		t.Fatal("status reports no listen addresses")
	}
	for i, a := range ns {
		for j, b := range ns {
			if i == j {
				continue
			}
			c.Connect(i, j)
			out, code := a.Ctl("peer", "ping", b.DeviceID(), "--count", "3", "--interval", "10ms")
			if code != 0 || !strings.Contains(out, "3 pings") || !strings.Contains(out, "budget charged 3") {
				t.Fatalf("ping %d->%d: exit %d\n%s", i, j, code, out)
			}
		}
	}
	// 0 pinged 1 three times (3 spent, 3 pongs received) and 1 pinged 0
	// three times (3 pongs spent, 3 pings received).
	if b := budgetShow(t, ns[0], ns[1].DeviceID()); b.Spent != "6" || b.Received != "6" {
		t.Fatalf("budget 0->1: %+v", b)
	}
	// The receipts came compact; the checkpoint 0 signed of its chain to 1
	// is kept by 1, and anyone can verify it from its encoding.
	var receipts struct {
		Checkpoints []struct {
			Src        string `json:"src"`
			Nonce      string `json:"nonce"`
			Cumulative string `json:"cumulative"`
			Encoded    []byte `json:"encoded"`
		} `json:"checkpoints"`
	}
	ns[1].CtlJSON(&receipts, "budget", "receipts", ns[0].DeviceID())
	if len(receipts.Checkpoints) == 0 || receipts.Checkpoints[0].Src != ns[0].DeviceID() {
		t.Fatalf("checkpoints kept by 1 of 0's chain: %+v", receipts.Checkpoints)
	}
	cp, err := budgetpkg.DecodeCheckpoint(receipts.Checkpoints[0].Encoded)
	if err != nil || cp.Verify() != nil || cp.Src.String() != ns[0].DeviceID() || cp.Dst.String() != ns[1].DeviceID() {
		t.Fatalf("checkpoint %+v does not verify: %v", cp, err)
	}
	// The operator lowers the limit to what is already spent: the next ping
	// is refused before anything is sent, with ResourceExhausted.
	ns[0].MustCtl("budget", "set", ns[1].DeviceID(), "6")
	if out, code := ns[0].Ctl("peer", "ping", ns[1].DeviceID()); code != 8 || !strings.Contains(out, "resource exhausted") {
		t.Fatalf("ping past the limit: exit %d: %s", code, out)
	}
	if b := budgetShow(t, ns[0], ns[1].DeviceID()); b.Spent != "6" || b.Received != "6" {
		t.Fatalf("a refused ping was charged: %+v", b)
	}
	// ...and the peer saw nothing of it.
	if b := budgetShow(t, ns[1], ns[0].DeviceID()); b.Spent != "6" || b.Received != "6" {
		t.Fatalf("the peer of a refused ping: %+v", b)
	}
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"budget", "show", "nobody"}, 4},
		{[]string{"budget", "show", ns[0].DeviceID()}, 4},
		{[]string{"budget", "set", ns[1].DeviceID(), "lots"}, 2},
		{[]string{"leakage", "show", "context/zz"}, 4},
		{[]string{"leakage", "show", "context/00000000"}, 5},
	} {
		if out, code := ns[0].Ctl(tc.args...); code != tc.code {
			t.Errorf("%v: exit %d, want %d: %s", tc.args, code, tc.code, out)
		}
	}
	// The context ids `budget list` prints are enough for leakage show.
	var bl struct {
		Budgets []struct {
			Context string `json:"context"`
		} `json:"budgets"`
	}
	ns[0].CtlJSON(&bl, "budget", "list")
	if len(bl.Budgets) == 0 {
		t.Fatal("no budgets listed")
	}
	ns[0].MustCtl("leakage", "show", bl.Budgets[0].Context[:len("context/")+16])
	want := []string{ns[1].DeviceID(), ns[2].DeviceID()}
	slices.Sort(want)
	if got := peerList(t, ns[0]); !slices.Equal(got, want) {
		t.Fatalf("peers %v, want %v", got, want)
	}
	// Known peers and spent budgets survive a restart.
	ns[0].Restart()
	if got := peerList(t, ns[0]); !slices.Equal(got, want) {
		t.Fatalf("known peers after restart %v, want %v", got, want)
	}
	if b := budgetShow(t, ns[0], ns[1].DeviceID()); b.Spent != "6" || b.Received != "6" {
		t.Fatalf("budget 0->1 after restart: %+v", b)
	}
	if out, code := ns[0].Ctl("peer", "ping", ns[2].DeviceID()); code != 0 {
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
		if out, code := ns[0].Ctl(tc.args...); code != tc.code {
			t.Errorf("%v: exit %d, want %d: %s", tc.args, code, tc.code, out)
		}
	}
}

// A partition stops pings across it without charging them, and healing lets
// them through again; link latency shows in the round trip.
func TestPingAcrossPartitionAndLatency(t *testing.T) {
	cluster.Run(t, 3, func(t *testing.T, c *cluster.Cluster) {
		ns := c.Nodes()
		c.ConnectAll()
		ns[0].MustCtl("peer", "ping", ns[1].DeviceID())
		before := budgetShow(t, ns[1], ns[0].DeviceID())

		c.Partition([]int{0}, []int{1, 2})
		out, code := ns[0].Ctl("--timeout", "3s", "peer", "ping", ns[1].DeviceID())
		if code == 0 {
			t.Fatalf("ping across a partition succeeded: %s", out)
		}
		// The side that stays together still talks.
		ns[1].MustCtl("peer", "ping", ns[2].DeviceID())
		c.Heal()
		ns[0].MustCtl("peer", "ping", ns[1].DeviceID())
		// The peer took in one ping since before and answered it; the ping
		// sent into the partition never reached it. (The sender keeps that
		// one's charge: a frame is paid for before it leaves.)
		after := budgetShow(t, ns[1], ns[0].DeviceID())
		if after.Received != inc(t, before.Received) || after.Spent != inc(t, before.Spent) {
			t.Fatalf("peer's budget before %+v, after the partition and one ping %+v", before, after)
		}

		const delay = 40 * time.Millisecond
		c.SetLatency(delay)
		out = ns[0].MustCtl("-o", "json", "peer", "ping", ns[2].DeviceID())
		var pong struct {
			RTT string `json:"rtt"`
		}
		if err := json.Unmarshal([]byte(out), &pong); err != nil {
			t.Fatalf("ping reply %q: %v", out, err)
		}
		rtt, err := time.ParseDuration(pong.RTT)
		// A round trip crosses the link twice: it cannot be faster.
		if err != nil || rtt < 2*delay {
			t.Fatalf("rtt %q (%v) with a one-way latency of %s", pong.RTT, err, delay)
		}
	}, cluster.NetworkControl)
}

// inc adds one to a count that proto3 JSON writes as a string ("" for 0).
func inc(t *testing.T, s string) string {
	t.Helper()
	var n int
	if s != "" {
		if _, err := fmt.Sscan(s, &n); err != nil {
			t.Fatalf("count %q: %v", s, err)
		}
	}
	return fmt.Sprint(n + 1)
}

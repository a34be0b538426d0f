package e2e

import (
	"strings"
	"testing"

	"github.com/aura-p2p/aura/test/cluster"
)

type sessionJSON struct {
	ID       string `json:"id"`
	Protocol string `json:"protocol"`
	Role     string `json:"role"`
	State    string `json:"state"`
	Steps    int    `json:"steps"`
	Reason   *struct {
		Code string `json:"code"`
	} `json:"reason"`
	Log []struct {
		Direction string `json:"direction"`
		Label     string `json:"label"`
	} `json:"log"`
}

// Three daemons run a three-role protocol started from auractl: each plays
// one role, every message passes the guard chain, and all three record the
// session as completed.
func TestThreeDaemonsRunASession(t *testing.T) {
	cluster.Run(t, 3, runASession)
}

func runASession(t *testing.T, c *cluster.Cluster) {
	ns := c.Nodes()
	c.ConnectAll()
	roles := []string{"--role", "A=self", "--role", "B=" + ns[1].DeviceID(), "--role", "C=" + ns[2].DeviceID()}
	var started struct {
		Session sessionJSON `json:"session"`
	}
	ns[0].CtlJSON(&started, append([]string{"session", "start", "Relay10", "--wait"}, roles...)...)
	s := started.Session
	if s.State != "SESSION_STATE_COMPLETED" || s.Role != "A" || s.Steps != 7 || len(s.ID) != 32 {
		t.Fatalf("started session: %+v", s)
	}
	// A sends M1 M4 M7 M10 and receives M3 M6 M9; B takes part in six
	// messages, C in seven.
	wantSteps := []int{7, 6, 7}
	for i, n := range ns {
		var shown struct {
			Session sessionJSON `json:"session"`
		}
		// A participant may still be recording its last step.
		for range 100 {
			n.CtlJSON(&shown, "session", "show", s.ID[:16])
			if shown.Session.State != "SESSION_STATE_RUNNING" {
				break
			}
		}
		if shown.Session.State != "SESSION_STATE_COMPLETED" || shown.Session.Protocol != "Relay10" || shown.Session.Steps != wantSteps[i] || len(shown.Session.Log) != wantSteps[i] {
			t.Fatalf("daemon %d: %+v", i, shown.Session)
		}
	}
	// The loop variant with the starter's choices, and the table output.
	out, code := ns[0].Ctl(append([]string{"session", "start", "RelayLoop", "--wait", "--choice", "More", "--choice", "Stop"}, roles...)...)
	if code != 0 || !strings.Contains(out, "completed") || !strings.Contains(out, "Stop") {
		t.Fatalf("loop: exit %d\n%s", code, out)
	}
	var list struct {
		Sessions []sessionJSON `json:"sessions"`
	}
	ns[1].CtlJSON(&list, "session", "list")
	if len(list.Sessions) != 2 || list.Sessions[1].ID != s.ID || list.Sessions[0].Role != "B" {
		t.Fatalf("B's list: %+v", list)
	}
	// Bad input: a clear code, one line.
	for _, tc := range []struct {
		args []string
		code int
	}{
		{append([]string{"session", "start", "NoSuchProtocol"}, roles...), 5},
		{[]string{"session", "start", "Relay", "--role", "A=self"}, 4},
		{[]string{"session", "start", "Relay", "--role", "A"}, 2},
		{[]string{"session", "show", "nope"}, 4},
		{[]string{"session", "show", strings.Repeat("ab", 16)}, 5},
		{append([]string{"session", "start", "RelayLoop", "--wait", "--choice", "Sideways"}, roles...), 11},
	} {
		if out, code := ns[0].Ctl(tc.args...); code != tc.code {
			t.Errorf("%v: exit %d, want %d: %s", tc.args, code, tc.code, out)
		}
	}
}

// The README's walk-through, as written: one `peer add` per pair of devices
// (A adds B, A adds C, B adds C), after which every device reaches every
// other, the dialed ones through the addresses they learned, and the
// three-role demo runs.
func TestReadmeWalkthroughOnePeerAddPerPair(t *testing.T) {
	cluster.Run(t, 2, func(t *testing.T, c *cluster.Cluster) {
		a, b := c.Node(0), c.Node(1)
		c.Connect(0, 1)
		if out := a.MustCtl("peer", "ping", b.DeviceID(), "--count", "3", "--interval", "10ms"); !strings.Contains(out, "3 pings") {
			t.Fatalf("ping: %s", out)
		}
		// B never added A.
		b.MustCtl("peer", "ping", a.DeviceID())
		cc := c.Add()
		c.Connect(0, 2)
		c.Connect(1, 2)
		cc.MustCtl("peer", "ping", a.DeviceID())
		cc.MustCtl("peer", "ping", b.DeviceID())
		var started struct {
			Session sessionJSON `json:"session"`
		}
		a.CtlJSON(&started, "session", "start", "Relay10", "--wait", "--role", "A=self", "--role", "B="+b.DeviceID(), "--role", "C="+cc.DeviceID())
		if started.Session.State != "SESSION_STATE_COMPLETED" {
			t.Fatalf("Relay10: %+v", started.Session)
		}
		// What was learned survives a restart.
		b.Restart()
		b.MustCtl("peer", "ping", a.DeviceID())
	})
}

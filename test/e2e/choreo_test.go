package e2e

import (
	"strings"
	"testing"
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
	dirs := []string{newDataDir(t), newDataDir(t), newDataDir(t)}
	var rs []ready
	for _, dir := range dirs {
		start(t, dir)
		rs = append(rs, readReady(t, dir))
	}
	for i := range dirs {
		for j := range dirs {
			if i != j {
				if out, code := ctl(t, dirs[i], "peer", "add", tcpAddr(t, rs[j])); code != 0 {
					t.Fatalf("peer add: %s", out)
				}
			}
		}
	}
	roles := []string{"--role", "A=self", "--role", "B=" + rs[1].DeviceID, "--role", "C=" + rs[2].DeviceID}
	var started struct {
		Session sessionJSON `json:"session"`
	}
	ctlJSON(t, dirs[0], &started, append([]string{"session", "start", "Relay10", "--wait"}, roles...)...)
	s := started.Session
	if s.State != "SESSION_STATE_COMPLETED" || s.Role != "A" || s.Steps != 7 || len(s.ID) != 32 {
		t.Fatalf("started session: %+v", s)
	}
	// A sends M1 M4 M7 M10 and receives M3 M6 M9; B takes part in six
	// messages, C in seven.
	wantSteps := []int{7, 6, 7}
	for i, dir := range dirs {
		var shown struct {
			Session sessionJSON `json:"session"`
		}
		// A participant may still be recording its last step.
		for range 100 {
			ctlJSON(t, dir, &shown, "session", "show", s.ID)
			if shown.Session.State != "SESSION_STATE_RUNNING" {
				break
			}
		}
		if shown.Session.State != "SESSION_STATE_COMPLETED" || shown.Session.Protocol != "Relay10" || shown.Session.Steps != wantSteps[i] || len(shown.Session.Log) != wantSteps[i] {
			t.Fatalf("daemon %d: %+v", i, shown.Session)
		}
	}
	// The loop variant with the starter's choices, and the table output.
	out, code := ctl(t, dirs[0], append([]string{"session", "start", "RelayLoop", "--wait", "--choice", "More", "--choice", "Stop"}, roles...)...)
	if code != 0 || !strings.Contains(out, "completed") || !strings.Contains(out, "Stop") {
		t.Fatalf("loop: exit %d\n%s", code, out)
	}
	var list struct {
		Sessions []sessionJSON `json:"sessions"`
	}
	ctlJSON(t, dirs[1], &list, "session", "list")
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
		if out, code := ctl(t, dirs[0], tc.args...); code != tc.code {
			t.Errorf("%v: exit %d, want %d: %s", tc.args, code, tc.code, out)
		}
	}
}

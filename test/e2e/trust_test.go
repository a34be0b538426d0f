package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/aura-p2p/aura/test/cluster"
)

// makeContacts has inviter invite invitee and returns the new context id.
func makeContacts(t *testing.T, inviter, invitee *cluster.Node, nickname string) string {
	t.Helper()
	code, _ := invite(t, inviter)
	var acc struct {
		Ceremony ceremonyJSON `json:"ceremony"`
	}
	invitee.CtlJSON(&acc, "accept", code, "--nickname", nickname)
	if acc.Ceremony.State != "CEREMONY_STATE_COMMITTED" {
		t.Fatalf("accept: %+v", acc.Ceremony)
	}
	return acc.Ceremony.ContextID
}

// Trust stated through auractl drives authorization decisions with their
// evidence, and capability tokens issued to a contact verify on its device,
// narrow when delegated, and are refused once revoked.
func TestTrustAndCapabilities(t *testing.T) {
	cluster.Run(t, 3, func(t *testing.T, c *cluster.Cluster) {
		a, b, d := c.Node(0), c.Node(1), c.Node(2)
		makeContacts(t, b, a, "bob")   // a calls b "bob"
		makeContacts(t, d, a, "bob")   // ...and d "bob" too
		makeContacts(t, a, b, "alice") // a second context between a and b
		makeContacts(t, b, d, "b")     // d knows b's account too

		if out, code := a.Ctl("trust", "set", "bob", "high"); code != 4 || !strings.Contains(out, "names 2 contacts") {
			t.Fatalf("trust set on an ambiguous name: exit %d: %s", code, out)
		}
		a.MustCtl("trust", "set", b.DeviceID(), "high", "--share-all")
		var show struct {
			Level string   `json:"level"`
			Path  []string `json:"path"`
		}
		a.CtlJSON(&show, "trust", "show", "self", b.DeviceID())
		if show.Level != "TRUST_LEVEL_HIGH" || len(show.Path) != 2 || show.Path[0] != a.DeviceID() || show.Path[1] != b.DeviceID() {
			t.Fatalf("trust show: %+v", show)
		}
		a.MustCtl("trust", "show", "self", b.DeviceID()[:12], "--min", "medium")
		if out, code := a.Ctl("trust", "show", "self", b.DeviceID(), "--min", "full"); code != 9 || !strings.Contains(out, "high") {
			t.Fatalf("a decision below the minimum: exit %d: %s", code, out)
		}
		// Lowering it is a newer edge, not a second one.
		a.MustCtl("trust", "set", b.DeviceID(), "low")
		var list struct {
			Edges []struct {
				Level string `json:"level"`
				Seq   string `json:"seq"`
			} `json:"edges"`
		}
		a.CtlJSON(&list, "trust", "list")
		if len(list.Edges) != 1 || list.Edges[0].Level != "TRUST_LEVEL_LOW" || list.Edges[0].Seq != "2" {
			t.Fatalf("trust list: %+v", list)
		}
		for _, tc := range []struct {
			args []string
			code int
		}{
			{[]string{"trust", "set", b.DeviceID(), "sky-high"}, 2},
			{[]string{"trust", "set", a.DeviceID(), "high"}, 4},
			{[]string{"trust", "set", "nobody", "high"}, 5},
			{[]string{"trust", "show", "self", b.DeviceID(), "--max-hops", "9"}, 2},
		} {
			if out, code := a.Ctl(tc.args...); code != tc.code {
				t.Errorf("%v: exit %d, want %d: %s", tc.args, code, tc.code, out)
			}
		}

		// b issues a token to a; a verifies it (b is a contact, so its
		// account's key is known), delegates a narrower one back to b.
		var tok struct {
			Text string `json:"text"`
		}
		b.CtlJSON(&tok, "cap", "issue", "--holder", a.DeviceID(), "--cap", "chat:send,group:invite")
		var ver struct {
			Capabilities []string `json:"capabilities"`
			Depth        int      `json:"depth"`
		}
		a.CtlJSON(&ver, "cap", "verify", tok.Text)
		if len(ver.Capabilities) != 2 || ver.Depth != 1 {
			t.Fatalf("verify: %+v", ver)
		}
		var narrow struct {
			Text string `json:"text"`
		}
		a.CtlJSON(&narrow, "cap", "attenuate", tok.Text, "--holder", b.DeviceID(), "--cap", "chat:send", "--expires", "1h")
		b.CtlJSON(&ver, "cap", "verify", narrow.Text)
		if len(ver.Capabilities) != 1 || ver.Capabilities[0] != "chat:send" || ver.Depth != 2 {
			t.Fatalf("verify attenuated: %+v", ver)
		}
		if out, code := b.Ctl("cap", "attenuate", narrow.Text, "--holder", a.DeviceID(), "--cap", "chat:send,group:invite"); code != 9 {
			t.Errorf("widening attenuation: exit %d: %s", code, out)
		}
		if out, code := a.Ctl("cap", "verify", narrow.Text); code != 0 {
			t.Errorf("the delegator verifying what it delegated: exit %d: %s", code, out)
		}
		if out, code := d.Ctl("cap", "attenuate", tok.Text, "--holder", d.DeviceID(), "--cap", "chat:send"); code != 9 {
			t.Errorf("attenuating a token held by another device: exit %d: %s", code, out)
		}
		// Revoking the root revokes the delegated token too.
		if out, code := a.Ctl("cap", "revoke", tok.Text); code != 7 {
			t.Errorf("revoking another account's token: exit %d: %s", code, out)
		}
		b.MustCtl("cap", "revoke", tok.Text)
		for _, tk := range []string{tok.Text, narrow.Text} {
			if out, code := b.Ctl("cap", "verify", tk); code != 9 || !strings.Contains(out, "revoked") {
				t.Errorf("verify after revocation: exit %d: %s", code, out)
			}
		}
		for _, bad := range []string{"!!!", strings.ToUpper(tok.Text[:40])} {
			if out, code := b.Ctl("cap", "inspect", bad); code != 2 && code != 4 {
				t.Errorf("inspect %q: exit %d: %s", bad, code, out)
			}
		}
	})
}

// A capability token travels in the envelope and is checked at both ends of
// the guard chain: a ping claiming a capability its token grants goes
// through; one whose token was revoked is refused by the receiver (which
// counts the drop); a token held by another device is refused before
// anything is sent.
func TestTokenOnTheWire(t *testing.T) {
	cluster.Run(t, 2, func(t *testing.T, c *cluster.Cluster) {
		a, b := c.Node(0), c.Node(1)
		makeContacts(t, b, a, "b")
		var tok struct {
			Text string `json:"text"`
		}
		b.CtlJSON(&tok, "cap", "issue", "--holder", a.DeviceID(), "--cap", "demo:ping")
		a.MustCtl("peer", "ping", b.DeviceID(), "--capability", "demo:ping", "--token", tok.Text)
		// Without the token, the capability is not one membership grants.
		if out, code := a.Ctl("peer", "ping", b.DeviceID(), "--capability", "demo:ping"); code != 9 {
			t.Errorf("claim without its token: exit %d: %s", code, out)
		}
		// A capability the token does not grant.
		if out, code := a.Ctl("peer", "ping", b.DeviceID(), "--capability", "admin:all", "--token", tok.Text); code != 9 {
			t.Errorf("claim beyond the token: exit %d: %s", code, out)
		}
		// b holds no such token: refused before sending.
		if out, code := b.Ctl("peer", "ping", a.DeviceID(), "--capability", "demo:ping", "--token", tok.Text); code != 9 || !strings.Contains(out, "held by") {
			t.Errorf("someone else's token: exit %d: %s", code, out)
		}
		// b revokes it; a still thinks it valid (revocations reach a with
		// sync), sends, and b drops the ping at its guard chain.
		b.MustCtl("cap", "revoke", tok.Text)
		if out, code := a.Ctl("--timeout", "3s", "peer", "ping", b.DeviceID(), "--capability", "demo:ping", "--token", tok.Text); code == 0 {
			t.Errorf("a revoked token was honoured: %s", out)
		}
		var st struct {
			Transport struct {
				Dropped map[string]string `json:"dropped"`
			} `json:"transport"`
		}
		b.CtlJSON(&st, "status")
		if st.Transport.Dropped["capability_denied"] != "1" {
			t.Errorf("b's drops: %+v", st.Transport.Dropped)
		}
	})
}

// Transitive trust over edges a contact shared: b shares its edge to c with
// a (an endorsement in their context, announced at once); a then trusts c
// through b, lowered one level for the second hop, with the path as
// evidence. c's other edges, shared with nobody, stay invisible to a.
func TestTransitiveTrustOverSharedEdges(t *testing.T) {
	cluster.Run(t, 3, func(t *testing.T, c *cluster.Cluster) {
		a, b, cc := c.Node(0), c.Node(1), c.Node(2)
		makeContacts(t, b, a, "b")
		makeContacts(t, cc, b, "c")
		a.MustCtl("trust", "set", b.DeviceID(), "high")
		b.MustCtl("trust", "set", cc.DeviceID(), "high", "--share-with", a.DeviceID()[:16])
		cc.MustCtl("trust", "set", a.DeviceID(), "full") // shared with nobody
		var show struct {
			Level string   `json:"level"`
			Path  []string `json:"path"`
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			show.Level, show.Path = "", nil
			a.CtlJSON(&show, "trust", "show", "self", cc.DeviceID())
			if show.Level != "TRUST_LEVEL_NONE" || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if show.Level != "TRUST_LEVEL_MEDIUM" || len(show.Path) != 3 || show.Path[1] != b.DeviceID() {
			t.Fatalf("a's trust in c: %+v", show)
		}
		// a cannot see c's edge to a: c shared it with nobody.
		var back struct {
			Level string   `json:"level"`
			Path  []string `json:"path"`
		}
		a.CtlJSON(&back, "trust", "show", cc.DeviceID(), "self")
		if back.Level != "TRUST_LEVEL_NONE" || len(back.Path) != 0 {
			t.Fatalf("a sees c's unshared edge: %+v", back)
		}
		a.MustCtl("trust", "show", "self", cc.DeviceID(), "--min", "medium")
		if out, code := a.Ctl("trust", "show", "self", cc.DeviceID(), "--min", "high", "--max-hops", "1"); code != 9 {
			t.Fatalf("one hop cannot reach c: exit %d: %s", code, out)
		}
	})
}

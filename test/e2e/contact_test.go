package e2e

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aura-p2p/aura/test/cluster"
)

type ceremonyJSON struct {
	ID        string `json:"id"`
	Role      string `json:"role"`
	State     string `json:"state"`
	Reason    string `json:"reason"`
	ContextID string `json:"context_id"`
	Confirmed bool   `json:"confirmed"`
}

type contactJSON struct {
	Name      string `json:"name"`
	DeviceID  string `json:"device_id"`
	ContextID string `json:"context_id"`
	Blocked   bool   `json:"blocked"`
}

func invite(t *testing.T, n *cluster.Node, args ...string) (code, id string) {
	t.Helper()
	var r struct {
		Code       string `json:"code"`
		Invitation struct {
			ID string `json:"id"`
		} `json:"invitation"`
	}
	n.CtlJSON(&r, append([]string{"invite"}, args...)...)
	if !strings.HasPrefix(r.Code, "aura-invite1-") || len(r.Invitation.ID) != 32 {
		t.Fatalf("invite: %+v", r)
	}
	return r.Code, r.Invitation.ID
}

func contacts(t *testing.T, n *cluster.Node) []contactJSON {
	t.Helper()
	var l struct {
		Contacts []contactJSON `json:"contacts"`
	}
	n.CtlJSON(&l, "contact", "list")
	return l.Contacts
}

func invitationState(t *testing.T, n *cluster.Node, id string) string {
	t.Helper()
	var l struct {
		Invitations []struct {
			ID    string `json:"id"`
			State string `json:"state"`
		} `json:"invitations"`
	}
	n.CtlJSON(&l, "invite", "list")
	for _, iv := range l.Invitations {
		if iv.ID == id {
			return iv.State
		}
	}
	t.Fatalf("invitation %s not listed: %+v", id, l)
	return ""
}

// Two people become contacts through an invitation code; the code is then
// spent, and every way of misusing one is refused with a clear code and
// leaves nothing behind.
func TestContactInvitation(t *testing.T) {
	cluster.Run(t, 3, func(t *testing.T, c *cluster.Cluster) {
		a, b, third := c.Node(0), c.Node(1), c.Node(2)
		code, id := invite(t, a, "--message", "hi from a")

		var acc struct {
			Ceremony ceremonyJSON `json:"ceremony"`
		}
		// No peer add: the code carries the inviter's addresses.
		b.CtlJSON(&acc, "accept", code, "--nickname", "alice")
		if acc.Ceremony.State != "CEREMONY_STATE_COMMITTED" || acc.Ceremony.Role != "Invitee" || len(acc.Ceremony.ContextID) != 64 {
			t.Fatalf("accept: %+v", acc.Ceremony)
		}
		ctxID := acc.Ceremony.ContextID

		// Both sides hold the same context and a contact for each other.
		bc := contacts(t, b)
		if len(bc) != 1 || bc[0].Name != "alice" || bc[0].DeviceID != a.DeviceID() || bc[0].ContextID != ctxID {
			t.Fatalf("b's contacts: %+v", bc)
		}
		ac := contacts(t, a)
		if len(ac) != 1 || ac[0].DeviceID != b.DeviceID() || ac[0].ContextID != ctxID {
			t.Fatalf("a's contacts: %+v", ac)
		}
		for _, n := range []*cluster.Node{a, b} {
			var shown struct {
				Context struct {
					ID      string   `json:"id"`
					Class   string   `json:"class"`
					Members []string `json:"members"`
				} `json:"context"`
			}
			n.CtlJSON(&shown, "context", "show", "context/"+ctxID[:12])
			if shown.Context.ID != ctxID || shown.Context.Class != "contact" || len(shown.Context.Members) != 2 {
				t.Fatalf("node %d: context %+v", n.Index(), shown.Context)
			}
		}
		if st := invitationState(t, a, id); st != "INVITATION_STATE_ACCEPTED" {
			t.Fatalf("invitation after accept: %s", st)
		}
		var shown struct {
			Ceremony ceremonyJSON `json:"ceremony"`
		}
		a.CtlJSON(&shown, "ceremony", "show", acc.Ceremony.ID[:10])
		if shown.Ceremony.State != "CEREMONY_STATE_COMMITTED" || shown.Ceremony.Role != "Inviter" || shown.Ceremony.ContextID != ctxID {
			t.Fatalf("inviter's ceremony: %+v", shown.Ceremony)
		}

		// A spent code: accepted again here is already done; a third
		// device with the code is refused by the inviter.
		if out, code := b.Ctl("accept", code); code != 6 {
			t.Errorf("second accept: exit %d: %s", code, out)
		}
		if out, code := third.Ctl("accept", code); code != 7 || !strings.Contains(out, "accepted") {
			t.Errorf("third device accepting a spent code: exit %d: %s", code, out)
		}
		if got := contacts(t, third); len(got) != 0 {
			t.Errorf("third device has contacts after a refused accept: %+v", got)
		}

		// Cancelled and declined invitations cannot be accepted.
		cancelled, cid := invite(t, a)
		a.MustCtl("invite", "cancel", cid[:8])
		if out, code := third.Ctl("accept", cancelled); code != 7 || !strings.Contains(out, "cancelled") {
			t.Errorf("accepting a cancelled code: exit %d: %s", code, out)
		}
		if out, code := a.Ctl("invite", "cancel", cid); code != 7 {
			t.Errorf("cancelling twice: exit %d: %s", code, out)
		}
		declined, did := invite(t, a)
		third.MustCtl("decline", declined)
		if st := invitationState(t, a, did); st != "INVITATION_STATE_DECLINED" {
			t.Errorf("invitation after decline: %s", st)
		}
		if out, code := third.Ctl("accept", declined); code != 7 {
			t.Errorf("accepting a declined code: exit %d: %s", code, out)
		}

		// Bad codes: one line, exit 4, nothing made.
		good, _ := invite(t, a)
		mid := len(good) / 2
		flip := "A"
		if good[mid] == 'A' {
			flip = "B"
		}
		for _, bad := range []string{"hello", good[:len(good)-20], good[:mid] + flip + good[mid+1:], "aura-invite1-!!!"} {
			if out, code := third.Ctl("accept", bad); code != 4 {
				t.Errorf("accept %q: exit %d, want 4: %s", bad, code, out)
			}
		}
		if out, code := a.Ctl("accept", good); code != 4 || !strings.Contains(out, "own invitation") {
			t.Errorf("accepting one's own code: exit %d: %s", code, out)
		}
		if out, code := a.Ctl("invite", "--expires", "1s"); code != 4 {
			t.Errorf("invite --expires 1s: exit %d: %s", code, out)
		}
		if got := contacts(t, third); len(got) != 0 {
			t.Errorf("third device has contacts: %+v", got)
		}
		if got := contacts(t, a); len(got) != 1 {
			t.Errorf("inviter has %d contacts, want 1", len(got))
		}

		// Contacts: rename, block (Category A, at once), unblock.
		a.MustCtl("contact", "rename", b.DeviceID()[:10], "bob")
		if got := contacts(t, a); got[0].Name != "bob" {
			t.Errorf("after rename: %+v", got)
		}
		a.MustCtl("peer", "ping", b.DeviceID())
		a.MustCtl("contact", "block", "bob")
		if out, code := a.Ctl("peer", "ping", b.DeviceID()); code != 9 || !strings.Contains(out, "blocked") {
			t.Errorf("ping to a blocked contact: exit %d: %s", code, out)
		}
		if out, code := b.Ctl("--timeout", "2s", "peer", "ping", a.DeviceID()); code == 0 {
			t.Errorf("a blocked contact's ping was answered: %s", out)
		}
		a.MustCtl("contact", "unblock", "bob")
		a.MustCtl("peer", "ping", b.DeviceID())
		b.MustCtl("peer", "ping", a.DeviceID())
		for _, tc := range []struct {
			args []string
			code int
		}{
			{[]string{"contact", "show", "nobody"}, 5},
			{[]string{"contact", "rename", "bob", ""}, 4},
			{[]string{"context", "show", "zz"}, 4},
			{[]string{"ceremony", "show", "00000000"}, 5},
			{[]string{"invite", "cancel", "0000"}, 4},
		} {
			if out, code := a.Ctl(tc.args...); code != tc.code {
				t.Errorf("%v: exit %d, want %d: %s", tc.args, code, tc.code, out)
			}
		}
		// Contacts and contexts survive a restart.
		b.Restart()
		if got := contacts(t, b); len(got) != 1 || got[0].ContextID != ctxID || got[0].Name != "alice" {
			t.Fatalf("b's contacts after restart: %+v", got)
		}
	})
}

// An accept racing a cancel: whichever the inviter's journal commits first
// wins, the other is refused, and both sides agree on the outcome.
func TestCancelRacingAccept(t *testing.T) {
	cluster.Run(t, 2, func(t *testing.T, c *cluster.Cluster) {
		a, b := c.Node(0), c.Node(1)
		accepted := 0
		for round := range 4 {
			code, id := invite(t, a)
			type result struct {
				out  string
				code int
			}
			acc := make(chan result, 1)
			go func() {
				out, code := b.Ctl("accept", code)
				acc <- result{out, code}
			}()
			cout, ccode := a.Ctl("invite", "cancel", id)
			r := <-acc
			state := invitationState(t, a, id)
			switch {
			case r.code == 0 && ccode == 7:
				accepted++
				if state != "INVITATION_STATE_ACCEPTED" {
					t.Fatalf("round %d: accept won but the invitation is %s", round, state)
				}
			case r.code == 7 && ccode == 0:
				if state != "INVITATION_STATE_CANCELLED" {
					t.Fatalf("round %d: cancel won but the invitation is %s", round, state)
				}
			default:
				t.Fatalf("round %d: accept exit %d (%s), cancel exit %d (%s): not exactly one winner", round, r.code, r.out, ccode, cout)
			}
		}
		// Contacts exist exactly for the accepted rounds, on both sides.
		if got := len(contacts(t, a)); got != accepted {
			t.Errorf("inviter has %d contacts, %d accepts won", got, accepted)
		}
		if got := len(contacts(t, b)); got != accepted {
			t.Errorf("invitee has %d contacts, %d accepts won", got, accepted)
		}
	})
}

// The inviter is frozen after the invitee sent its acceptance, then killed
// and restarted. The acceptance in flight either reaches the restarted
// inviter (the ceremony commits late) or the invitee's session times out
// (it aborts and the code can be accepted again); either way both sides end
// with exactly one contact and no half-made context anywhere.
func TestInviterKilledMidCeremony(t *testing.T) {
	cluster.Run(t, 2, func(t *testing.T, c *cluster.Cluster) {
		a, b := c.Node(0), c.Node(1)
		code, id := invite(t, a)
		a.Process().Signal(syscall.SIGSTOP)
		// The acceptance leaves; no answer can come. The caller gives up;
		// the ceremony goes on in aurad.
		if out, code := b.Ctl("--timeout", "2s", "accept", code); code != 10 {
			t.Fatalf("accept answered by a frozen inviter: exit %d: %s", code, out)
		}
		a.Kill()
		a.Start()
		var first ceremonyJSON
		deadline := time.Now().Add(time.Minute)
		for {
			var list struct {
				Ceremonies []ceremonyJSON `json:"ceremonies"`
			}
			b.CtlJSON(&list, "ceremony", "list")
			if len(list.Ceremonies) != 1 {
				t.Fatalf("invitee's ceremonies: %+v", list.Ceremonies)
			}
			if first = list.Ceremonies[0]; first.State != "CEREMONY_STATE_RUNNING" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the invitee's ceremony never ended: %+v", first)
			}
			time.Sleep(200 * time.Millisecond)
		}
		switch first.State {
		case "CEREMONY_STATE_COMMITTED":
			// The acceptance reached the restarted inviter.
		case "CEREMONY_STATE_ABORTED":
			if st := invitationState(t, a, id); st != "INVITATION_STATE_PENDING" {
				t.Fatalf("invitation after an aborted ceremony: %s", st)
			}
			if got := contacts(t, b); len(got) != 0 {
				t.Fatalf("invitee holds a contact from an aborted ceremony: %+v", got)
			}
			var acc struct {
				Ceremony ceremonyJSON `json:"ceremony"`
			}
			b.CtlJSON(&acc, "accept", code)
			if acc.Ceremony.State != "CEREMONY_STATE_COMMITTED" {
				t.Fatalf("accept after the inviter's restart: %+v", acc.Ceremony)
			}
		default:
			t.Fatalf("first ceremony ended %+v", first)
		}
		if st := invitationState(t, a, id); st != "INVITATION_STATE_ACCEPTED" {
			t.Fatalf("invitation at the end: %s", st)
		}
		ac, bc := contacts(t, a), contacts(t, b)
		if len(ac) != 1 || len(bc) != 1 || ac[0].ContextID != bc[0].ContextID {
			t.Fatalf("contacts at the end: %+v / %+v", ac, bc)
		}
	}, cluster.Crash)
}

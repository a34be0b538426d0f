package e2e

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aura-p2p/aura/test/cluster"
)

func authorityOf(t *testing.T, n *cluster.Node) string {
	t.Helper()
	var st struct {
		Authority string `json:"authority_id"`
	}
	n.CtlJSON(&st, "status")
	return st.Authority
}

type treeDeviceJSON struct {
	Leaf   int    `json:"leaf"`
	Device string `json:"device_id"`
	Role   string `json:"role"`
	Self   bool   `json:"self"`
}

type treeViewJSON struct {
	Authority string           `json:"authority_id"`
	Epoch     string           `json:"epoch"`
	Root      string           `json:"root_commitment"`
	Policy    string           `json:"policy"`
	Devices   []treeDeviceJSON `json:"devices"`
	Ops       []struct {
		Kind   string `json:"kind"`
		Status string `json:"status"`
	} `json:"ops"`
}

func treeShow(t *testing.T, n *cluster.Node) treeViewJSON {
	t.Helper()
	var v struct {
		View treeViewJSON `json:"view"`
	}
	n.CtlJSON(&v, "tree", "show")
	return v.View
}

// waitDevices waits until n's account lists want devices.
func waitDevices(t *testing.T, n *cluster.Node, want int) treeViewJSON {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		v := treeShow(t, n)
		if len(v.Devices) == want {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d: %d devices in its account, want %d: %+v\n%s", n.Index(), len(v.Devices), want, v, n.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A second device joins an account with a code from the first: both then
// list both devices, and what either writes in the account's namespace
// reaches the other. A third joins with a code from the second, which
// attests the op as a device of the account; the first learns of it by
// sync.
func TestDeviceEnrollment(t *testing.T) {
	cluster.Run(t, 3, func(t *testing.T, c *cluster.Cluster) {
		a, b := c.Node(0), c.Node(1)
		account := authorityOf(t, a)
		var inv struct {
			Code string `json:"code"`
		}
		a.CtlJSON(&inv, "device", "invite")
		if !strings.HasPrefix(inv.Code, "aura-device1-") {
			t.Fatalf("device invite: %+v", inv)
		}
		// A contact code is not a device code, and a device cannot join
		// with its own code.
		contactCode, _ := invite(t, a)
		if out, code := b.Ctl("device", "join", contactCode); code == 0 || strings.Count(strings.TrimSpace(out), "\n") > 0 {
			t.Fatalf("join with a contact code: exit %d: %q", code, out)
		}
		if out, code := a.Ctl("device", "join", inv.Code); code == 0 || !strings.Contains(out, "own invitation") {
			t.Fatalf("join with own code: exit %d: %q", code, out)
		}

		b.MustCtl("device", "join", inv.Code)
		if got := authorityOf(t, b); got != account {
			t.Fatalf("b acts for %s after joining %s", got, account)
		}
		va := waitDevices(t, a, 2)
		vb := waitDevices(t, b, 2)
		if va.Authority != vb.Authority || va.Epoch != vb.Epoch {
			t.Fatalf("the devices disagree on the account: %+v vs %+v", va, vb)
		}
		for _, v := range []treeViewJSON{va, vb} {
			if len(v.Ops) != 1 || v.Ops[0].Kind != "AddLeaf" || v.Ops[0].Status != "applied" {
				t.Fatalf("ops: %+v", v.Ops)
			}
		}

		// The code is spent.
		if out, code := b.Ctl("device", "join", inv.Code); code == 0 {
			t.Fatalf("second join with a used code: %q", out)
		}

		// The account's namespace is shared: writes on either device reach
		// the other.
		ns := "authority/" + account
		a.MustCtl("crdt", "counter", "incr", "devices-agree", "--namespace", ns)
		b.MustCtl("crdt", "counter", "incr", "devices-agree", "--namespace", ns, "--by", "2")
		waitCounter(t, a, ns, "devices-agree", 3)
		waitCounter(t, b, ns, "devices-agree", 3)

		// b stays the account's device across a restart, with the same
		// tree state and key.
		before, key := treeShow(t, b), treeKey(t, b)
		b.Restart()
		if got := authorityOf(t, b); got != account {
			t.Fatalf("b acts for %s after a restart", got)
		}
		if after := treeShow(t, b); after.Root != before.Root || after.Epoch != before.Epoch || before.Root == "" {
			t.Fatalf("b's tree after a restart: %s/%s, before %s/%s", after.Epoch, after.Root, before.Epoch, before.Root)
		}
		if got := treeKey(t, b); got != key {
			t.Fatalf("b's key after a restart: %+v, before %+v", got, key)
		}
		waitCounter(t, b, ns, "devices-agree", 3)

		third := c.Node(2)
		var inv2 struct {
			Code string `json:"code"`
		}
		b.CtlJSON(&inv2, "device", "invite")
		third.MustCtl("device", "join", inv2.Code)
		views := []treeViewJSON{waitDevices(t, a, 3), waitDevices(t, b, 3), waitDevices(t, third, 3)}
		for _, v := range views[1:] {
			if v.Epoch != views[0].Epoch || v.Authority != account || len(v.Ops) != 2 {
				t.Fatalf("the devices disagree on the account: %+v vs %+v", v, views[0])
			}
		}
		// The third device was introduced to the second only; the
		// addresses each device publishes in the account's namespace
		// (here, the first's, which the third has from the second) let its
		// write reach the first as well.
		third.MustCtl("crdt", "counter", "incr", "devices-agree", "--namespace", ns)
		waitCounter(t, b, ns, "devices-agree", 4)
		waitCounter(t, a, ns, "devices-agree", 4)
	})
}

// An enrollment that cannot reach the account's device changes nothing:
// the new device stays its own account, the account keeps its devices, and
// the code, durable on the inviting device, still works once it is back.
func TestDeviceEnrollmentInviterDown(t *testing.T) {
	cluster.Run(t, 2, func(t *testing.T, c *cluster.Cluster) {
		a, b := c.Node(0), c.Node(1)
		account, own := authorityOf(t, a), authorityOf(t, b)
		var inv struct {
			Code string `json:"code"`
		}
		a.CtlJSON(&inv, "device", "invite")
		a.Kill()
		if out, code := b.Ctl("device", "join", inv.Code, "--timeout", "20s"); code == 0 {
			t.Fatalf("join with the inviting device down: %q", out)
		}
		if got := authorityOf(t, b); got != own {
			t.Fatalf("b acts for %s after a failed join, want its own %s", got, own)
		}
		if v := treeShow(t, b); len(v.Devices) != 1 || len(v.Ops) != 0 {
			t.Fatalf("b's account after a failed join: %+v", v)
		}
		a.Start()
		if v := treeShow(t, a); len(v.Devices) != 1 || len(v.Ops) != 0 {
			t.Fatalf("a's account after a failed join: %+v", v)
		}
		b.MustCtl("device", "join", inv.Code)
		if got := authorityOf(t, b); got != account {
			t.Fatalf("b acts for %s, want %s", got, account)
		}
		waitDevices(t, a, 2)
	}, cluster.Crash)
}

// A network cut between the devices makes the join fail and leaves both
// accounts as they were; after the heal the same code works.
func TestDeviceEnrollmentPartitioned(t *testing.T) {
	cluster.Run(t, 2, func(t *testing.T, c *cluster.Cluster) {
		a, b := c.Node(0), c.Node(1)
		account, own := authorityOf(t, a), authorityOf(t, b)
		var inv struct {
			Code string `json:"code"`
		}
		a.CtlJSON(&inv, "device", "invite")
		c.Partition([]int{0}, []int{1})
		if out, code := b.Ctl("device", "join", inv.Code, "--timeout", "20s"); code == 0 {
			t.Fatalf("join across a partition: %q", out)
		}
		if got := authorityOf(t, b); got != own {
			t.Fatalf("b acts for %s after a failed join", got)
		}
		if v := treeShow(t, a); len(v.Devices) != 1 {
			t.Fatalf("a's account after a failed join: %+v", v)
		}
		c.Heal()
		b.MustCtl("device", "join", inv.Code)
		if got := authorityOf(t, b); got != account {
			t.Fatalf("b acts for %s, want %s", got, account)
		}
		waitDevices(t, a, 2)
	}, cluster.NetworkControl)
}

type treeKeyJSON struct {
	Epoch       string `json:"epoch"`
	Root        string `json:"root"`
	Fingerprint string `json:"fingerprint"`
}

// waitKey waits until n names want as the account's current key.
func waitKey(t *testing.T, n *cluster.Node, want treeKeyJSON) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var got treeKeyJSON
		out, code := n.Ctl("tree", "key", "-o", "json")
		if code == 0 {
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("node %d: tree key: %v\n%s", n.Index(), err, out)
			}
			if got == want {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d: key %+v (exit %d: %s), want %+v\n%s", n.Index(), got, code, out, want, n.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func treeKey(t *testing.T, n *cluster.Node) treeKeyJSON {
	t.Helper()
	var k treeKeyJSON
	n.CtlJSON(&k, "tree", "key")
	if k.Epoch == "" || len(k.Fingerprint) != 32 {
		t.Fatalf("node %d: tree key %+v", n.Index(), k)
	}
	return k
}

// An account's devices hold the same group key in every epoch; an update
// path moves every device to a new one; a removed device is cut off from
// the account's namespace while the others agree on the key after its
// removal. (That it could not derive that key even holding every fact is
// internal/account's TestKeySchedule.)
func TestDeviceRemovalRotatesKeys(t *testing.T) {
	cluster.Run(t, 3, func(t *testing.T, c *cluster.Cluster) {
		a, b, d := c.Node(0), c.Node(1), c.Node(2)
		for _, n := range []*cluster.Node{b, d} {
			var inv struct {
				Code string `json:"code"`
			}
			a.CtlJSON(&inv, "device", "invite")
			n.MustCtl("device", "join", inv.Code)
		}
		for _, n := range c.Nodes() {
			waitDevices(t, n, 3)
		}
		k := treeKey(t, a)
		waitKey(t, b, k)
		waitKey(t, d, k)

		// b and d were each introduced to a only. Once b has d's published
		// addresses (by reconciling with a), b's update reaches a and d
		// directly.
		b.MustCtl("sync", "now", a.DeviceID())
		deadline := time.Now().Add(30 * time.Second)
		for !slices.Contains(peerList(t, b), d.DeviceID()) {
			if time.Now().After(deadline) {
				t.Fatalf("b never learned d's address: peers %v\n%s", peerList(t, b), b.Log())
			}
			time.Sleep(50 * time.Millisecond)
		}
		b.MustCtl("tree", "update")
		k2 := treeKey(t, b)
		if k2.Epoch == k.Epoch || k2.Fingerprint == k.Fingerprint {
			t.Fatalf("an update path left the key as it was: %+v", k2)
		}
		waitKey(t, a, k2)
		waitKey(t, d, k2)

		// A bad device id, a stranger, and itself are refused, one line each.
		for _, arg := range []string{"zz", strings.Repeat("ab", 32), a.DeviceID()} {
			if out, code := a.Ctl("device", "remove", arg); code == 0 || strings.Count(strings.TrimSpace(out), "\n") > 0 {
				t.Fatalf("device remove %s: exit %d: %q", arg, code, out)
			}
		}
		a.MustCtl("device", "remove", d.DeviceID())
		k3 := treeKey(t, a)
		waitKey(t, b, k3)
		if vb := waitDevices(t, b, 2); vb.Epoch != k3.Epoch {
			t.Fatalf("b at epoch %s, key of epoch %s", vb.Epoch, k3.Epoch)
		}
		// d is out: the account's devices do not send it what is written
		// after its removal (the removal included), nor reconcile with it.
		ns := "authority/" + authorityOf(t, a)
		a.MustCtl("crdt", "counter", "incr", "after-removal", "--namespace", ns)
		waitCounter(t, b, ns, "after-removal", 1)
		if got := counter(t, d, ns, "after-removal"); got > 0 {
			t.Fatalf("the removed device holds the account's write after its removal: %d", got)
		}
		if kd := treeKey(t, d); kd == k3 {
			t.Fatalf("the removed device names the key after its removal: %+v", kd)
		}
	})
}

// An account whose history of tree ops no longer fits one message (here,
// 200 key updates of a one-device account, about 66 KB) still enrolls a
// device: the ceremony sends the history
// ahead in parts.
func TestDeviceEnrollmentLongHistory(t *testing.T) {
	cluster.Run(t, 2, func(t *testing.T, c *cluster.Cluster) {
		a, b := c.Node(0), c.Node(1)
		for range 200 {
			a.MustCtl("tree", "update")
		}
		var inv struct {
			Code string `json:"code"`
		}
		a.CtlJSON(&inv, "device", "invite")
		b.MustCtl("device", "join", inv.Code)
		vb := waitDevices(t, b, 2)
		if va := treeShow(t, a); vb.Epoch != va.Epoch || len(vb.Ops) != len(va.Ops) {
			t.Fatalf("the new device holds epoch %s and %d ops; the account %s and %d", vb.Epoch, len(vb.Ops), va.Epoch, len(va.Ops))
		}
		waitKey(t, b, treeKey(t, a))
		// The inviting device's side of the ceremony: the join, the
		// history parts, the commit and the confirmation.
		var list struct {
			Sessions []struct {
				Protocol string `json:"protocol"`
				Steps    int    `json:"steps"`
				Choices  []string
			} `json:"sessions"`
		}
		a.CtlJSON(&list, "session", "list")
		for _, s := range list.Sessions {
			if s.Protocol == "DeviceEnrollment" && s.Steps <= 3 {
				t.Fatalf("the enrollment took %d steps: the history did not go in parts", s.Steps)
			}
		}
	})
}

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strconv"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	journalv1 "github.com/aura-p2p/aura/api/proto/aura/journal/v1"
	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
	"github.com/aura-p2p/aura/internal/sync"
	"github.com/aura-p2p/aura/internal/transport"
	"github.com/aura-p2p/aura/test/cluster"
)

type syncProgressJSON struct {
	Peer     string `json:"peer_device_id"`
	Phase    string `json:"phase"`
	Mode     string `json:"mode"`
	Rounds   int    `json:"rounds"`
	FactsIn  string `json:"facts_in"`
	FactsOut string `json:"facts_out"`
	Error    string `json:"error"`
}

// becomeContacts runs the invitation ceremony between a and b and returns
// their context's namespace.
func becomeContacts(t *testing.T, a, b *cluster.Node) string {
	t.Helper()
	code, _ := invite(t, a)
	var acc struct {
		Ceremony ceremonyJSON `json:"ceremony"`
	}
	b.CtlJSON(&acc, "accept", code)
	if acc.Ceremony.State != "CEREMONY_STATE_COMMITTED" {
		t.Fatalf("accept: %+v", acc.Ceremony)
	}
	return "context/" + acc.Ceremony.ContextID
}

func counter(t *testing.T, n *cluster.Node, ns, name string) int {
	t.Helper()
	out, code := n.Ctl("crdt", "counter", "get", name, "--namespace", ns)
	if code != 0 {
		return -1
	}
	v, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("counter %q: %v", out, err)
	}
	return v
}

func waitCounter(t *testing.T, n *cluster.Node, ns, name string, want int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := counter(t, n, ns, name)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d: counter %s = %d, want %d\n%s", n.Index(), name, got, want, n.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// syncNow runs `auractl sync now PEER -o json` and returns its final events.
func syncNow(t *testing.T, n *cluster.Node, peer string) []syncProgressJSON {
	t.Helper()
	out, code := n.Ctl("sync", "now", peer[:16], "-o", "json")
	if code != 0 {
		t.Fatalf("sync now: exit %d: %s\n%s", code, out, n.Log())
	}
	final := map[string]syncProgressJSON{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var p syncProgressJSON
		if err := json.Unmarshal([]byte(line), &p); err != nil {
			t.Fatalf("sync now line %q: %v", line, err)
		}
		if p.Phase == "SYNC_PHASE_DONE" || p.Phase == "SYNC_PHASE_FAILED" {
			final[p.Peer] = p
		}
	}
	var res []syncProgressJSON
	for _, p := range final {
		res = append(res, p)
	}
	return res
}

// Facts written in a contact's context reach the contact: at once while it
// is online (announced), and after it was offline by reconciliation, on
// demand and on reconnection.
func TestContextFactsConverge(t *testing.T) {
	cluster.Run(t, 2, func(t *testing.T, c *cluster.Cluster) {
		a, b := c.Node(0), c.Node(1)
		ns := becomeContacts(t, a, b)

		a.MustCtl("crdt", "counter", "incr", "visits", "--namespace", ns)
		waitCounter(t, b, ns, "visits", 1)

		// b misses five increments while it is down, and catches up when
		// asked to.
		b.Stop()
		for range 5 {
			a.MustCtl("crdt", "counter", "incr", "visits", "--namespace", ns)
		}
		b.Start()
		// The connection sync now opens may start a session from a too
		// (the lower device id starts one on every connection), which can
		// carry the facts first: either way they arrive exactly once.
		t.Cleanup(func() {
			if t.Failed() {
				t.Log(a.Log())
			}
		})
		res := syncNow(t, b, a.DeviceID())
		if len(res) != 1 || res[0].Phase != "SYNC_PHASE_DONE" {
			t.Fatalf("sync now: %+v", res)
		}
		waitCounter(t, b, ns, "visits", 6)

		// Writes on both sides while apart; b's next write reaches a and
		// the connection it opens reconciles the rest both ways.
		b.Stop()
		for range 3 {
			a.MustCtl("crdt", "counter", "incr", "visits", "--namespace", ns)
		}
		b.Start()
		b.MustCtl("crdt", "counter", "incr", "visits", "--namespace", ns, "--by", "10")
		waitCounter(t, a, ns, "visits", 19)
		waitCounter(t, b, ns, "visits", 19)

		var st struct {
			Peers []struct {
				Peer     string `json:"peer_device_id"`
				LastMode string `json:"last_mode"`
				Sessions string `json:"sessions"`
			} `json:"statuses"`
		}
		b.CtlJSON(&st, "sync", "status")
		if len(st.Peers) != 1 || st.Peers[0].Peer != a.DeviceID() || st.Peers[0].LastMode == "" {
			t.Fatalf("sync status: %+v", st)
		}
	})
}

// A partition stops nothing but delivery: writes on both sides meet after the
// heal.
func TestSyncAcrossPartition(t *testing.T) {
	cluster.Run(t, 2, func(t *testing.T, c *cluster.Cluster) {
		a, b := c.Node(0), c.Node(1)
		ns := becomeContacts(t, a, b)
		c.Partition([]int{0}, []int{1})
		for range 4 {
			a.MustCtl("crdt", "counter", "incr", "hits", "--namespace", ns)
			b.MustCtl("crdt", "counter", "incr", "hits", "--namespace", ns, "--by", "2")
		}
		if got := counter(t, a, ns, "hits"); got != 4 {
			t.Fatalf("a sees %d across the partition", got)
		}
		c.Heal()
		// The reconnection reconciles on its own, so by the time this
		// session runs the sets may already be equal; either way it must
		// finish cleanly, and if it found a difference it is exactly the
		// partition's writes.
		res := syncNow(t, a, b.DeviceID())
		if len(res) != 1 || res[0].Phase != "SYNC_PHASE_DONE" || res[0].Error != "" {
			t.Fatalf("sync now: %+v", res)
		}
		if res[0].Mode != "SYNC_MODE_EQUAL" && (res[0].FactsIn != "4" || res[0].FactsOut != "4") {
			t.Fatalf("sync now moved other than the partition's writes: %+v", res)
		}
		waitCounter(t, a, ns, "hits", 12)
		waitCounter(t, b, ns, "hits", 12)
	}, cluster.NetworkControl)
}

func factCount(t *testing.T, n *cluster.Node, ns string) int {
	t.Helper()
	var shown struct {
		Context struct {
			FactCount string `json:"fact_count"`
		} `json:"context"`
	}
	n.CtlJSON(&shown, "context", "show", ns)
	v, err := strconv.Atoi(shown.Context.FactCount)
	if err != nil {
		t.Fatalf("fact count %q: %v", shown.Context.FactCount, err)
	}
	return v
}

// appendMany writes count facts into ns through gRPC, 16 at a time.
func appendMany(t *testing.T, n *cluster.Node, ns string, count int) {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+n.Socket(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	jc := journalv1.NewJournalServiceClient(conn)
	var wg stdsync.WaitGroup
	errs := make(chan error, 16)
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < count; i += 16 {
				_, err := jc.AppendFact(context.Background(), &journalv1.AppendFactRequest{Namespace: ns, TypeId: "app.note/v1", Payload: fmt.Appendf(nil, "note %d %s", i, strings.Repeat("x", 150))})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// A device killed while it takes in a large difference loses nothing it
// acknowledged and catches up on the next session; its journal checks clean.
func TestSyncSurvivesKillMidTransfer(t *testing.T) {
	cluster.Run(t, 2, func(t *testing.T, c *cluster.Cluster) {
		a, b := c.Node(0), c.Node(1)
		ns := becomeContacts(t, a, b)
		b.Stop()
		appendMany(t, a, ns, 3000)
		want := factCount(t, a, ns)
		b.Start()
		done := make(chan struct{})
		go func() {
			defer close(done)
			b.Ctl("sync", "now", a.DeviceID()[:16], "-o", "json") // killed under it
		}()
		// Kill b once some of the difference has arrived.
		deadline := time.Now().Add(20 * time.Second)
		for factCount(t, b, ns) < 200 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		b.Kill()
		<-done
		t.Cleanup(func() {
			if t.Failed() {
				t.Log(a.Log())
			}
		})
		b.Start()
		res := syncNow(t, b, a.DeviceID())
		if len(res) != 1 || res[0].Phase != "SYNC_PHASE_DONE" {
			t.Fatalf("sync now after the kill: %+v", res)
		}
		if got := factCount(t, b, ns); got != want {
			t.Fatalf("b holds %d facts of the context, a %d", got, want)
		}
		b.Stop()
		if out, err := exec.Command(cluster.Aurad(t), "check", "--datadir", b.Dir()).CombinedOutput(); err != nil {
			t.Fatalf("aurad check after a kill mid-sync: %v\n%s", err, out)
		}
		b.Start()
	}, cluster.Crash)
}

// A device that joins late gets the whole context from one session.
func TestLateJoinerCatchesUp(t *testing.T) {
	cluster.Run(t, 2, func(t *testing.T, c *cluster.Cluster) {
		a, b := c.Node(0), c.Node(1)
		ns := becomeContacts(t, a, b)
		b.Stop()
		appendMany(t, a, ns, 1500)
		b.Start()
		res := syncNow(t, b, a.DeviceID())
		if len(res) != 1 || res[0].Phase != "SYNC_PHASE_DONE" {
			t.Fatalf("sync now: %+v", res)
		}
		if got, want := factCount(t, b, ns), factCount(t, a, ns); got != want {
			t.Fatalf("b holds %d facts of the context, a %d", got, want)
		}
	})
}

// Convergence under random faults: writes at random nodes in random shared
// contexts, random partitions and restarts; after a heal and one round of
// sync now, every context's facts and reduced state agree on its members.
func TestConvergenceUnderFaults(t *testing.T) {
	for _, seed := range []uint64{1, 2} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			cluster.Run(t, 3, func(t *testing.T, c *cluster.Cluster) {
				rng := rand.New(rand.NewPCG(seed, 7))
				type shared struct {
					ns   string
					a, b int
				}
				var ctxs []shared
				for _, p := range [][2]int{{0, 1}, {1, 2}, {0, 2}} {
					ctxs = append(ctxs, shared{becomeContacts(t, c.Node(p[0]), c.Node(p[1])), p[0], p[1]})
				}
				want := map[string]int{}
				for range 24 {
					switch op := rng.IntN(10); {
					case op < 7:
						s := ctxs[rng.IntN(len(ctxs))]
						by := 1 + rng.IntN(5)
						n := c.Node([]int{s.a, s.b}[rng.IntN(2)])
						n.MustCtl("crdt", "counter", "incr", "n", "--namespace", s.ns, "--by", strconv.Itoa(by))
						want[s.ns] += by
					case op < 9:
						c.Partition([]int{rng.IntN(3)})
					default:
						c.Heal()
						c.Node(rng.IntN(3)).Restart()
					}
				}
				c.Heal()
				for _, n := range c.Nodes() {
					if out, code := n.Ctl("sync", "now", "-o", "json"); code != 0 {
						t.Fatalf("node %d: sync now: exit %d\n%s", n.Index(), code, out)
					}
				}
				for _, s := range ctxs {
					for _, i := range []int{s.a, s.b} {
						if want[s.ns] > 0 {
							waitCounter(t, c.Node(i), s.ns, "n", want[s.ns])
						}
					}
					if fa, fb := factCount(t, c.Node(s.a), s.ns), factCount(t, c.Node(s.b), s.ns); fa != fb {
						t.Fatalf("%s: %d facts on node %d, %d on node %d", s.ns, fa, s.a, fb, s.b)
					}
				}
			}, cluster.NetworkControl)
		})
	}
}

// A contact that sends garbage, as a real member whose messages are charged
// and signed: malformed sync messages, an announcement that does not parse,
// and a forged fact. The victim stores nothing of it, counts every one
// against the sender, and keeps serving and syncing with an honest contact.
func TestGarbageFromAContact(t *testing.T) {
	cluster.Run(t, 3, func(t *testing.T, c *cluster.Cluster) {
		victim, rogue, honest := c.Node(0), c.Node(1), c.Node(2)
		nsRogue := becomeContacts(t, victim, rogue)
		nsHonest := becomeContacts(t, victim, honest)
		victim.MustCtl("crdt", "counter", "incr", "n", "--namespace", nsRogue)
		waitCounter(t, rogue, nsRogue, "n", 1)
		before := factCount(t, victim, nsRogue)

		ns, err := core.ParseNamespace(nsRogue)
		if err != nil {
			t.Fatal(err)
		}
		to, err := core.ParseDeviceID(victim.DeviceID())
		if err != nil {
			t.Fatal(err)
		}
		// A fact in the victim's name that the victim never signed.
		f := journal.Fact{Namespace: ns, TypeID: "crdt.counter/v1", Payload: []byte("forged"), Author: to, Lamport: 99, CreatedAtMs: 1}
		body, err := journal.EncodeBody(&f)
		if err != nil {
			t.Fatal(err)
		}
		forged := &journal.SignedFact{Fact: f, ID: journal.FactIDOf(body), Body: body, Signature: make([]byte, 64)}

		rng := rand.New(rand.NewPCG(5, 5))
		// junk is a sync message of this release's wire (version 1, then an
		// 8-byte session id) whose body is n random bytes: past the version
		// check, so it is garbage rather than another release's message.
		junk := func(n int) []byte {
			b := make([]byte, 1+8+n)
			b[0] = 1
			for i := range b[1:] {
				b[1+i] = byte(rng.Uint32())
			}
			return b
		}
		ctx := context.Background()
		tr := rogue.Transport()
		// On the processes runner the rogue has just restarted in the test
		// process, and its new connection starts a session each way: the
		// junk open below may arrive while one runs, and must be counted
		// all the same.
		sends := []transport.Message{
			{Protocol: sync.ProtocolAnnounce, Type: sync.TypeFacts, Payload: sync.EncodeFacts([]*journal.SignedFact{forged})},
			{Protocol: sync.ProtocolAnnounce, Type: sync.TypeFacts, Payload: junk(300)},
			{Protocol: sync.ProtocolSync, Type: sync.TypeOpen, Payload: junk(80)},
			{Protocol: sync.ProtocolSync, Type: sync.TypeBatch, Payload: junk(4000)},
			{Protocol: sync.ProtocolSync, Type: sync.TypeSketch, Payload: []byte{1, 2, 3}},
		}
		for _, m := range sends {
			m.Context, m.To, m.Cost = core.ContextID(ns.ID), to, 1
			if err := tr.Send(ctx, m); err != nil {
				t.Fatalf("rogue send %s: %v", m.Type, err)
			}
		}

		// Every message is counted against the rogue, under its reason.
		want := map[string]int{"sync_forged_fact": 1, "announce_malformed": 1, "sync_malformed": 3}
		deadline := time.Now().Add(30 * time.Second)
		for {
			var st struct {
				Transport struct {
					Dropped map[string]string `json:"dropped"`
				} `json:"transport"`
			}
			victim.CtlJSON(&st, "status")
			short := false
			for reason, n := range want {
				got, _ := strconv.Atoi(st.Transport.Dropped[reason])
				short = short || got < n
			}
			if !short {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("victim counted %v against the rogue, want at least %v", st.Transport.Dropped, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if got := factCount(t, victim, nsRogue); got != before {
			t.Fatalf("victim holds %d facts of the rogue's context, %d before the garbage", got, before)
		}
		if got := counter(t, victim, nsRogue, "n"); got != 1 {
			t.Fatalf("counter after the forged fact: %d", got)
		}
		// The honest contact is served as before.
		honest.MustCtl("crdt", "counter", "incr", "m", "--namespace", nsHonest, "--by", "3")
		waitCounter(t, victim, nsHonest, "m", 3)
		if res := syncNow(t, victim, honest.DeviceID()); len(res) != 1 || res[0].Phase != "SYNC_PHASE_DONE" {
			t.Fatalf("sync with the honest contact: %+v", res)
		}
	}, cluster.Hostile)
}

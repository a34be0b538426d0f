package account

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aura-p2p/aura/internal/ceremony"
	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
	"github.com/aura-p2p/aura/internal/tree"
)

// restartAs replaces d's service with a new one acting for auth, on the same
// journal, as the daemon does after a join or a restart.
func restartAs(t *testing.T, d *device, auth core.AuthorityID, clock core.Clock) {
	t.Helper()
	s, err := New(Options{
		Journal: d.j, Sessions: &registrar{}, Network: addrs{}, Signer: journal.NewKeySigner(d.key),
		DeviceKey: d.key, HPKEPub: d.hpke[:], HPKEPriv: d.hpkeSK[:], Authority: auth,
		Adopt: func(a core.AuthorityID) journal.TxOp {
			return func(*journal.ExtTx) error { d.adopted = a; return nil }
		},
		Joined: func(a core.AuthorityID) { d.joined = append(d.joined, a) },
		Clock:  clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	d.s = s
}

// enroll adds d to a's account by decide and take, and restarts d as the
// account's device.
func enroll(t *testing.T, a, d *device, clock core.Clock) {
	t.Helper()
	welcomed, err := tryEnroll(t, a, d, clock)
	if err != nil {
		t.Fatal(err)
	}
	if !welcomed {
		t.Fatal("enrollment without a welcome from a device that holds the epoch's keys")
	}
}

// tryEnroll is enroll, returning a's refusal to decide and whether the
// enrollment carried a welcome.
func tryEnroll(t *testing.T, a, d *device, clock core.Clock) (bool, error) {
	t.Helper()
	ctx := context.Background()
	inv, err := a.s.Invite(ctx, 0)
	if err != nil {
		return false, err
	}
	req := joinOf(t, inv.Code, d)
	e, parts, err := a.s.decide(ctx, &decision{device: deviceOf(d.key), req: req})
	if err != nil {
		return false, err
	}
	iv, err := ceremony.ParseCodeAs(ceremony.DeviceCode(), inv.Code)
	if err != nil {
		t.Fatal(err)
	}
	// The history goes ahead in parts, as the session would carry them.
	j := &joinState{iv: iv, req: *req}
	for _, p := range parts {
		got, err := decodeHistoryPart(p.encode())
		if err != nil {
			t.Fatal(err)
		}
		j.history = append(j.history, got.Facts...)
	}
	msg := e.encode()
	if len(msg) > maxEnrollmentBytes {
		t.Fatalf("a commit of %d bytes, more than a message carries", len(msg))
	}
	if err := d.s.takeEnrollment(ctx, j, msg); err != nil {
		t.Fatal(err)
	}
	restartAs(t, d, a.s.o.Authority, clock)
	return e.Welcome != nil, nil
}

// syncAccount copies every fact of the account's namespace from one device
// to others, as reconciliation would.
func syncAccount(t *testing.T, auth core.AuthorityID, from *device, to ...*device) {
	t.Helper()
	ctx := context.Background()
	ns := core.AuthorityNamespace(auth)
	page, _, err := from.j.List(ctx, journal.ListQuery{Namespace: &ns, PageSize: journal.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range to {
		for _, f := range page {
			if _, err := d.j.Append(ctx, f.SignedFact); err != nil && !errors.Is(err, core.ErrAlreadyExists) {
				t.Fatalf("sync fact %s: %v", f.ID, err)
			}
		}
	}
}

func mustKey(t *testing.T, d *device) *KeyInfo {
	t.Helper()
	k, err := d.s.Key(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// The account's devices derive the same key in every epoch: after a join
// (from the welcome), after another device's update path, after a removal;
// the removed device, holding every fact, cannot derive the key that
// follows its removal; keys survive a restart.
func TestKeySchedule(t *testing.T) {
	ctx := context.Background()
	clock := core.NewManualClock(time.Unix(1_800_000_000, 0))
	a, b, c := openDevice(t, 1, clock), openDevice(t, 2, clock), openDevice(t, 3, clock)
	auth := a.s.o.Authority
	k0 := mustKey(t, a)
	if k0.Epoch != 0 {
		t.Fatalf("genesis key of epoch %d", k0.Epoch)
	}

	enroll(t, a, b, clock)
	ka, kb := mustKey(t, a), mustKey(t, b)
	if *ka != *kb || ka.Epoch != 1 || ka.Fingerprint == k0.Fingerprint {
		t.Fatalf("after the join: %+v on the inviter, %+v on the new device, %+v before", ka, kb, k0)
	}

	// b's update path: a opens it.
	if _, err := b.s.UpdatePath(ctx); err != nil {
		t.Fatal(err)
	}
	syncAccount(t, auth, b, a)
	ka, kb = mustKey(t, a), mustKey(t, b)
	if *ka != *kb || ka.Epoch != 2 {
		t.Fatalf("after b's update: %+v on a, %+v on b", ka, kb)
	}

	enroll(t, a, c, clock)
	syncAccount(t, auth, a, b)
	if ka, kb, kc := mustKey(t, a), mustKey(t, b), mustKey(t, c); *ka != *kb || *ka != *kc || ka.Epoch != 3 {
		t.Fatalf("after c's join: %+v, %+v, %+v", ka, kb, kc)
	}

	// Removal: refusals first, then c out.
	if _, err := a.s.RemoveDevice(ctx, deviceOf(a.key)); !errors.Is(err, ErrRemoveSelf) {
		t.Fatalf("remove self: %v", err)
	}
	if _, err := a.s.RemoveDevice(ctx, deviceOf(seededKey(9))); !errors.Is(err, ErrNotInAccount) || !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("remove a stranger: %v", err)
	}
	v, err := a.s.RemoveDevice(ctx, deviceOf(c.key))
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Devices) != 2 || v.Epoch != 5 {
		t.Fatalf("after the removal: %d devices at epoch %d", len(v.Devices), v.Epoch)
	}
	syncAccount(t, auth, a, b, c)
	ka, kb = mustKey(t, a), mustKey(t, b)
	if *ka != *kb || ka.Epoch != 5 {
		t.Fatalf("after the removal: %+v on a, %+v on b", ka, kb)
	}
	if _, err := c.s.Key(ctx); !errors.Is(err, ErrNoEpochKey) {
		t.Fatalf("the removed device derives the key after its removal: %v", err)
	}
	// c still follows the tree: it sees the removal, but not the key.
	if vc, err := c.s.Show(ctx); err != nil || vc.Epoch != 5 || vc.Root != v.Root {
		t.Fatalf("the removed device's view: %+v, %v", vc, err)
	}

	// Keys are persisted: a restarted device names the same key, and of
	// its update paths only the latest's keys are left (its anchor for a
	// deep reroute).
	restartAs(t, a, auth, clock)
	if k := mustKey(t, a); *k != *ka {
		t.Fatalf("after a restart: %+v, before %+v", k, ka)
	}
	err = a.j.ViewExt(ctx, extAccount, func(s *journal.ExtStore) error {
		if p := s.SubIfExists(subPending); p != nil && p.KeyN() > 1 {
			t.Errorf("%d pending update paths left", p.KeyN())
		}
		if k := s.SubIfExists(subKeys); k == nil || k.KeyN() > keepEpochs {
			t.Errorf("stored epochs: %v", k)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// An update after the restart still reaches b.
	if _, err := a.s.UpdatePath(ctx); err != nil {
		t.Fatal(err)
	}
	syncAccount(t, auth, a, b)
	if ka, kb := mustKey(t, a), mustKey(t, b); *ka != *kb || ka.Epoch != 6 {
		t.Fatalf("after a's update: %+v, %+v", ka, kb)
	}
}

func TestEpochKeysEncoding(t *testing.T) {
	path, err := tree.LeafKeys(3, bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []*epochKeys{{known: true, secret: [32]byte{1}}, {known: true, secret: [32]byte{2}, path: path}, {path: path}, {}} {
		got, err := decodeEpochKeys(k.encode())
		if err != nil || got.known != k.known || got.secret != k.secret || (got.path == nil) != (k.path == nil) {
			t.Fatalf("round trip of %+v: %+v, %v", k, got, err)
		}
	}
	good := (&epochKeys{known: true, secret: [32]byte{2}, path: path}).encode()
	for _, b := range [][]byte{
		nil,
		append([]byte{9}, good[1:]...),     // version
		append([]byte{1, 4}, good[2:]...),  // unknown flag
		good[:20],                          // secret cut short
		good[:34],                          // path keys flagged, none
		append(bytes.Clone(good[:2:2]), 0), // secret flagged, none
		append([]byte{1, 1}, make([]byte, 33)...), // a byte after the secret
	} {
		if _, err := decodeEpochKeys(b); !errors.Is(err, core.ErrDataLoss) {
			t.Errorf("%x: %v", b, err)
		}
	}
}

// A device joined by an inviting device that did not hold the epoch's
// secret gets no welcome (a version 1 enrollment). Joined after the
// account's keys moved on, it cannot derive the key, until the next update
// path, which reaches its leaf.
func TestKeyRecoveredByUpdatePath(t *testing.T) {
	ctx := context.Background()
	clock := core.NewManualClock(time.Unix(1_800_000_000, 0))
	a, b := openDevice(t, 1, clock), openDevice(t, 2, clock)
	auth := a.s.o.Authority
	if _, err := a.s.UpdatePath(ctx); err != nil {
		t.Fatal(err)
	}
	inv, err := a.s.Invite(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	req := joinOf(t, inv.Code, b)
	e, _, err := a.s.decide(ctx, &decision{device: deviceOf(b.key), req: req})
	if err != nil {
		t.Fatal(err)
	}
	e.Welcome = nil
	msg := e.encode()
	if msg[0] != enrollmentV1 {
		t.Fatalf("an enrollment without a welcome is version %d", msg[0])
	}
	iv, err := ceremony.ParseCodeAs(ceremony.DeviceCode(), inv.Code)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.s.takeEnrollment(ctx, &joinState{iv: iv, req: *req}, msg); err != nil {
		t.Fatal(err)
	}
	restartAs(t, b, auth, clock)
	if _, err := b.s.Key(ctx); !errors.Is(err, ErrNoEpochKey) {
		t.Fatalf("key without a welcome, after an update path: %v", err)
	}
	if _, err := a.s.UpdatePath(ctx); err != nil {
		t.Fatal(err)
	}
	syncAccount(t, auth, a, b)
	if ka, kb := mustKey(t, a), mustKey(t, b); *ka != *kb {
		t.Fatalf("after the next update: %+v on a, %+v on b", ka, kb)
	}
}

// showOps is d's view's ops by id.
func showOps(t *testing.T, d *device) map[tree.OpID]OpInfo {
	t.Helper()
	v, err := d.s.Show(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[tree.OpID]OpInfo{}
	for _, op := range v.Ops {
		out[op.ID] = op
	}
	return out
}

// Two devices act on the same state at once: a removes c while b updates
// its path. Whichever op loses, its author makes it again on the winning
// state and tree show says so; in the end c is out, a and b agree on the
// key, and c cannot derive it.
func TestSupersededOpsAreMadeAgain(t *testing.T) {
	ctx := context.Background()
	clock := core.NewManualClock(time.Unix(1_800_000_000, 0))
	a, b, c := openDevice(t, 1, clock), openDevice(t, 2, clock), openDevice(t, 3, clock)
	auth := a.s.o.Authority
	enroll(t, a, b, clock)
	enroll(t, a, c, clock)
	syncAccount(t, auth, a, b, c)
	before := mustKey(t, a)

	if _, err := a.s.RemoveDevice(ctx, deviceOf(c.key)); err != nil {
		t.Fatal(err)
	}
	vb, err := b.s.UpdatePath(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if vb.Epoch != before.Epoch+1 {
		t.Fatalf("b's update at epoch %d, from %d", vb.Epoch, before.Epoch)
	}
	// Both learn of the other's op; the loser's author makes its op again
	// when it maintains its tree (the daemon does once tree ops arrive),
	// and that reaches the other.
	syncAccount(t, auth, a, b)
	syncAccount(t, auth, b, a)
	for range 2 {
		for _, d := range []*device{a, b} {
			if err := d.s.Maintain(ctx); err != nil {
				t.Fatal(err)
			}
		}
		syncAccount(t, auth, a, b, c)
		syncAccount(t, auth, b, a, c)
	}
	ka, kb := mustKey(t, a), mustKey(t, b)
	if *ka != *kb {
		t.Fatalf("a and b disagree: %+v, %+v", ka, kb)
	}
	if _, err := c.s.Key(ctx); !errors.Is(err, ErrNoEpochKey) {
		t.Fatalf("the removed device derives the key: %v", err)
	}
	va, err := a.s.Show(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(va.Devices) != 2 {
		t.Fatalf("%d devices after the removal", len(va.Devices))
	}
	// Exactly one of the two devices lost an op, and its view names the
	// op made in its place, which applied.
	var remade int
	for _, d := range []*device{a, b} {
		ops := showOps(t, d)
		for _, op := range ops {
			if op.Status != tree.StatusSuperseded || op.Reproposed == nil {
				continue
			}
			remade++
			if again, ok := ops[*op.Reproposed]; !ok || again.Status != tree.StatusApplied {
				t.Fatalf("op %s made again as %s: %+v", op.ID, op.Reproposed, again)
			}
		}
	}
	if remade != 1 {
		t.Fatalf("%d ops made again, want 1", remade)
	}
}

// publishOps attests ops made by build on d's current state and stores them.
func publishOps(t *testing.T, d *device, build func(st *tree.State, me tree.LeafIndex) []*tree.Op) {
	t.Helper()
	ctx := context.Background()
	d.s.mu.Lock()
	defer d.s.mu.Unlock()
	r, err := d.s.maintained(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st := r.reducer.State()
	me, _ := st.FindDevice(d.s.self)
	ops := build(st, me)
	for _, op := range ops {
		next, err := d.s.attest(st, op)
		if err != nil {
			t.Fatal(err)
		}
		st = next
	}
	if err := d.s.publish(ctx, ops, nil); err != nil {
		t.Fatal(err)
	}
}

// Many epochs without a path after a device's own update do not wear its
// path keys away: forgetting the oldest state's keys leaves the others'.
func TestKeysSurviveManyEpochs(t *testing.T) {
	ctx := context.Background()
	clock := core.NewManualClock(time.Unix(1_800_000_000, 0))
	a, b := openDevice(t, 1, clock), openDevice(t, 2, clock)
	auth := a.s.o.Authority
	enroll(t, a, b, clock)
	if _, err := a.s.UpdatePath(ctx); err != nil {
		t.Fatal(err)
	}
	for range 2 * keepEpochs {
		publishOps(t, a, func(st *tree.State, me tree.LeafIndex) []*tree.Op {
			return []*tree.Op{{Parent: st.Name(), Author: me, Body: tree.RotateEpochBody{}}}
		})
	}
	syncAccount(t, auth, a, b)
	if _, err := b.s.UpdatePath(ctx); err != nil {
		t.Fatal(err)
	}
	syncAccount(t, auth, b, a)
	restartAs(t, a, auth, clock)
	if ka, kb := mustKey(t, a), mustKey(t, b); *ka != *kb {
		t.Fatalf("after %d rotations and b's update: %+v on a, %+v on b", 2*keepEpochs, ka, kb)
	}
}

// The epoch a removal starts has no key until the update path that follows
// it: its secret would chain from one the removed device holds.
func TestRemovalEpochHasNoKey(t *testing.T) {
	ctx := context.Background()
	clock := core.NewManualClock(time.Unix(1_800_000_000, 0))
	a, b := openDevice(t, 1, clock), openDevice(t, 2, clock)
	enroll(t, a, b, clock)
	publishOps(t, a, func(st *tree.State, me tree.LeafIndex) []*tree.Op {
		leaf, _ := st.FindDevice(deviceOf(b.key))
		return []*tree.Op{{Parent: st.Name(), Author: me, Body: tree.RemoveLeafBody{Leaf: leaf}}}
	})
	if _, err := a.s.Key(ctx); !errors.Is(err, ErrNoEpochKey) {
		t.Fatalf("key of a removal's epoch: %v", err)
	}
	publishOps(t, a, func(st *tree.State, me tree.LeafIndex) []*tree.Op {
		return []*tree.Op{{Parent: st.Name(), Author: me, Body: tree.RotateEpochBody{}}}
	})
	if _, err := a.s.Key(ctx); !errors.Is(err, ErrNoEpochKey) {
		t.Fatalf("key of an epoch after a removal, before an update: %v", err)
	}
	if _, err := a.s.UpdatePath(ctx); err != nil {
		t.Fatal(err)
	}
	mustKey(t, a)
}

// A higher op that reroutes the chain leaves this device's later ops off
// it (pending); they are made again, a removal included.
func TestReroutedOpsAreMadeAgain(t *testing.T) {
	ctx := context.Background()
	clock := core.NewManualClock(time.Unix(1_800_000_000, 0))
	a, b, c := openDevice(t, 1, clock), openDevice(t, 2, clock), openDevice(t, 3, clock)
	auth := a.s.o.Authority
	enroll(t, a, b, clock)
	enroll(t, a, c, clock)
	syncAccount(t, auth, a, b, c)

	// a rotates and then removes c; b, not having seen either, makes an
	// update on the state before the rotation whose id is higher.
	var rotate tree.OpID
	publishOps(t, a, func(st *tree.State, me tree.LeafIndex) []*tree.Op {
		op := &tree.Op{Parent: st.Name(), Author: me, Body: tree.RotateEpochBody{}}
		return []*tree.Op{op}
	})
	for id, op := range showOps(t, a) {
		if op.Kind == tree.KindRotateEpoch {
			rotate = id
		}
	}
	if _, err := a.s.RemoveDevice(ctx, deviceOf(c.key)); err != nil {
		t.Fatal(err)
	}
	b.s.mu.Lock()
	r, err := b.s.maintained(ctx)
	if err != nil {
		t.Fatal(err)
	}
	publishUpdateBeating(t, ctx, b.s, r, r.reducer.State(), rotate)
	b.s.mu.Unlock()

	for range 3 {
		syncAccount(t, auth, a, b, c)
		syncAccount(t, auth, b, a, c)
		for _, d := range []*device{a, b} {
			if err := d.s.Maintain(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	va, err := a.s.Show(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(va.Devices) != 2 {
		t.Fatalf("the removal was lost in the reroute: %d devices", len(va.Devices))
	}
	if ka, kb := mustKey(t, a), mustKey(t, b); *ka != *kb {
		t.Fatalf("a and b disagree: %+v, %+v", ka, kb)
	}
	if _, err := c.s.Key(ctx); !errors.Is(err, ErrNoEpochKey) {
		t.Fatalf("the removed device derives the key: %v", err)
	}
}

// An account whose history no longer fits one message still enrolls: the
// history goes ahead in parts.
func TestEnrollmentOfALongHistory(t *testing.T) {
	ctx := context.Background()
	clock := core.NewManualClock(time.Unix(1_800_000_000, 0))
	a, b, c := openDevice(t, 1, clock), openDevice(t, 2, clock), openDevice(t, 3, clock)
	auth := a.s.o.Authority
	enroll(t, a, b, clock)
	for range 150 {
		if _, err := a.s.UpdatePath(ctx); err != nil {
			t.Fatal(err)
		}
	}
	a.s.mu.Lock()
	r, err := a.s.maintained(ctx)
	a.s.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	size := 0
	for _, id := range r.reducer.Result().Applied {
		size += len(r.facts[id].Encode())
	}
	if size <= maxEnrollmentBytes {
		t.Fatalf("a history of %d bytes fits one message; the test needs more", size)
	}
	enroll(t, a, c, clock)
	syncAccount(t, auth, a, b)
	if ka, kc := mustKey(t, a), mustKey(t, c); *ka != *kc {
		t.Fatalf("after joining a long history: %+v on a, %+v on c", ka, kc)
	}
}

// Reduction takes the journal's verdict on an op fact's signature but still
// checks that the op's author leaf is the fact's author: an op a device
// signed in another device's name is rejected, and listed as such.
func TestOpInAnotherDevicesNameIsRejected(t *testing.T) {
	ctx := context.Background()
	clock := core.NewManualClock(time.Unix(1_800_000_000, 0))
	a, b := openDevice(t, 1, clock), openDevice(t, 2, clock)
	enroll(t, a, b, clock)
	v, err := a.s.Show(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var bLeaf tree.LeafIndex
	for _, d := range v.Devices {
		if d.Device == deviceOf(b.key) {
			bLeaf = d.Leaf
		}
	}
	op := &tree.Op{Parent: tree.StateName{Epoch: v.Epoch, Commitment: v.Root}, Author: bLeaf, Body: tree.RotateEpochBody{}}
	if op.Attestation, err = tree.SignSingle(a.key, op); err != nil {
		t.Fatal(err)
	}
	payload, err := tree.AppendOp(nil, op)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.j.AppendLocal(ctx, journal.NewKeySigner(a.key), journal.Draft{Namespace: core.AuthorityNamespace(v.Authority), TypeID: TypeTreeOp, Payload: payload}); err != nil {
		t.Fatal(err)
	}
	id, _ := op.ID()
	for _, o := range showOps(t, a) {
		if o.ID == id {
			if o.Status != tree.StatusRejected || !strings.Contains(o.Reason, "not attested") {
				t.Fatalf("an op in another device's name: %+v", o)
			}
			return
		}
	}
	t.Fatal("the op is not listed")
}

// publishUpdateBeating makes update paths of s's own leaf on parent until
// one's id is above beat, so that it wins against the op with that id, and
// publishes it; the others' keys are zeroed. s.mu is held.
func publishUpdateBeating(t *testing.T, ctx context.Context, s *Service, r *reduced, parent *tree.State, beat tree.OpID) {
	t.Helper()
	for {
		op, pend, err := s.updateOp(r, parent)
		if err != nil {
			t.Fatal(err)
		}
		if id, _ := op.ID(); bytes.Compare(id[:], beat[:]) > 0 {
			if err := s.publish(ctx, []*tree.Op{op}, pend); err != nil {
				t.Fatal(err)
			}
			return
		}
		pend.zero()
	}
}

package budget

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
)

// t0 is a time well inside epoch 1000.
var t0 = time.Unix(0, 0).Add(1000*EpochLength + 30*time.Second)

// device is one device's journal and ledger.
type device struct {
	t      testing.TB
	signer *journal.KeySigner
	clock  *core.ManualClock
	path   string
	audit  core.Namespace
	cfg    Config
	j      *journal.Journal
	l      *Ledger
}

func newDevice(t testing.TB, seed byte, clock *core.ManualClock, cfg Config) *device {
	t.Helper()
	d := &device{t: t, signer: seededSigner(seed), clock: clock, path: filepath.Join(t.TempDir(), "journal.db"), cfg: cfg}
	d.openJournal()
	g := journal.Genesis{Kind: core.NamespaceAuthority, Threshold: 1, Members: []journal.Member{{Device: d.signer.DeviceID()}}}
	payload, err := g.Encode()
	if err != nil {
		t.Fatal(err)
	}
	d.audit = journal.NamespaceOf(core.NamespaceAuthority, payload)
	if _, _, err := d.j.AppendLocal(context.Background(), d.signer, journal.Draft{Namespace: d.audit, TypeID: journal.TypeGenesis, Payload: payload}); err != nil {
		t.Fatal(err)
	}
	if d.cfg.AuditNamespace == auditOn { // marker: audit on
		d.cfg.AuditNamespace = d.audit
	}
	d.openLedger()
	t.Cleanup(func() { d.j.Close() })
	return d
}

// auditOn is the marker newDevice replaces by the device's namespace.
var auditOn = core.Namespace{Kind: 99}

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.EpochDuration = EpochLength
	cfg.AuditNamespace = auditOn
	return cfg
}

func (d *device) openJournal() {
	d.t.Helper()
	j, err := journal.Open(context.Background(), journal.Options{Path: d.path, Clock: d.clock, Validators: Validators()})
	if err != nil {
		d.t.Fatal(err)
	}
	d.j = j
}

func (d *device) openLedger() {
	d.t.Helper()
	l, err := Open(context.Background(), d.j, d.cfg, d.signer, d.clock, nil)
	if err != nil {
		d.t.Fatal(err)
	}
	d.l = l
}

func (d *device) reopen() {
	d.t.Helper()
	if err := d.j.Close(); err != nil {
		d.t.Fatal(err)
	}
	d.openJournal()
	d.openLedger()
}

func (d *device) id() core.DeviceID { return d.signer.DeviceID() }

func (d *device) charge(k Key, cost uint64) *Receipt {
	d.t.Helper()
	r, err := d.l.Charge(context.Background(), k, core.ClassContact, cost, core.Leakage{1, 0, 0}, nil)
	if err != nil {
		d.t.Fatalf("charge %d: %v", cost, err)
	}
	return sealed(d.t, d.signer, r)
}

// sealed signs a receipt Charge made whole, as it travels to a peer on an
// envelope protocol before 4, so that a test can hand it to Accept.
func sealed(t testing.TB, s journal.Signer, r *Receipt) *Receipt {
	t.Helper()
	if err := r.sign(s); err != nil {
		t.Error(err)
	}
	return r
}

func (d *device) get(k Key) Entry {
	d.t.Helper()
	en, err := d.l.Get(context.Background(), k)
	if err != nil {
		d.t.Fatal(err)
	}
	return en
}

// dump returns every key and value under ext/budget.
func (d *device) dump() map[string]string {
	d.t.Helper()
	// Accepted receipts are committed in the background: read behind them.
	if err := d.l.barrier(context.Background(), func(*buckets) error { return nil }); err != nil {
		d.t.Fatal(err)
	}
	out := map[string]string{}
	var walk func(prefix string, b *journal.ExtStore) error
	walk = func(prefix string, b *journal.ExtStore) error {
		return b.ForEach(func(k, v []byte) error {
			if v == nil {
				return walk(prefix+string(k)+"/", b.SubIfExists(k))
			}
			out[prefix+string(k)] = string(v)
			return nil
		})
	}
	err := d.j.ViewExt(context.Background(), extOwner, func(b *journal.ExtStore) error {
		if b == nil {
			return nil
		}
		return walk("", b)
	})
	if err != nil {
		d.t.Fatal(err)
	}
	return out
}

func (d *device) facts(typ string) []*journal.SignedFact {
	d.t.Helper()
	ns := d.audit
	fs, _, err := d.j.List(context.Background(), journal.ListQuery{Namespace: &ns, TypeID: typ, PageSize: journal.MaxPageSize})
	if err != nil {
		d.t.Fatal(err)
	}
	out := make([]*journal.SignedFact, len(fs))
	for i, f := range fs {
		out[i] = f.SignedFact
	}
	return out
}

func pair(t testing.TB) (a, b *device, clock *core.ManualClock) {
	clock = core.NewManualClock(t0)
	return newDevice(t, 1, clock, testConfig()), newDevice(t, 2, clock, testConfig()), clock
}

var ctxA = core.ContextID{0xaa}

func TestChargeAcceptChain(t *testing.T) {
	a, b, _ := pair(t)
	k := Key{Context: ctxA, Peer: b.id()}
	var prev core.Hash
	for i := uint64(1); i <= 5; i++ {
		r := a.charge(k, 10)
		if r.Nonce != i || r.Prev != prev || r.Epoch != 1000 || r.Src != a.id() || r.Dst != b.id() || r.Cost != 10 {
			t.Fatalf("receipt %d: %+v", i, r)
		}
		if err := r.Verify(); err != nil {
			t.Fatal(err)
		}
		back, err := DecodeReceipt(r.Encode())
		if err != nil {
			t.Fatal(err)
		}
		if err := b.l.Accept(context.Background(), back, core.ClassContact); err != nil {
			t.Fatalf("accept %d: %v", i, err)
		}
		prev = r.Hash()
	}
	en := a.get(k)
	if en.State.Spent != 50 || en.LastNonce != 5 || en.State.Limit != DefaultContactLimit || en.Class != core.ClassContact || en.Epoch != 1000 {
		t.Fatalf("sender entry %+v", en)
	}
	got := b.get(Key{Context: ctxA, Peer: a.id()})
	if got.Received != 50 || got.ReceivedLimit != DefaultContactLimit {
		t.Fatalf("receiver entry %+v", got)
	}
	lk, err := a.l.Leakage(context.Background(), ctxA)
	if err != nil || lk.Consumed != (core.Leakage{5, 0, 0}) || lk.Limits[core.ObserverExternal] != DefaultContactLeakage {
		t.Fatalf("leakage %+v %v", lk, err)
	}
	rs, err := a.l.Receipts(context.Background(), k, 3)
	if err != nil || len(rs) != 3 || rs[0].Nonce != 5 || rs[2].Nonce != 3 {
		t.Fatalf("receipts %v %v", rs, err)
	}
	// The receiver's ring holds what it accepted.
	rs, err = b.l.Receipts(context.Background(), Key{Context: ctxA, Peer: a.id()}, 0)
	if err != nil || len(rs) != 5 || rs[0].Src != a.id() {
		t.Fatalf("received receipts %d %v", len(rs), err)
	}
	list, err := a.l.List(context.Background())
	if err != nil || len(list) != 1 || list[0].Key != k {
		t.Fatalf("list %+v %v", list, err)
	}
	if _, err := a.l.Get(context.Background(), Key{Context: ctxA, Peer: core.DeviceID{9}}); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("unknown key: %v", err)
	}
	if _, err := a.l.Leakage(context.Background(), core.ContextID{9}); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("unknown leakage: %v", err)
	}
}

func TestAcceptRefusals(t *testing.T) {
	a, b, clock := pair(t)
	c := newDevice(t, 3, clock, testConfig())
	k := Key{Context: ctxA, Peer: b.id()}
	r1, r2, r3 := a.charge(k, 1), a.charge(k, 1), a.charge(k, 1)
	accept := func(r *Receipt) error { return b.l.Accept(context.Background(), r, core.ClassContact) }
	if err := accept(r1); err != nil {
		t.Fatal(err)
	}
	forged := *r2
	forged.Sig = c.signer.Sign(signingBytes(r2.Hash()))
	tamperedCost := *r2
	tamperedCost.Cost = 0
	wrongPrev := &Receipt{Context: ctxA, Src: a.id(), Dst: b.id(), Epoch: 1000, Period: 1, Cost: 1, Nonce: 2, Prev: core.Hash{7}}
	if err := wrongPrev.sign(a.signer); err != nil {
		t.Fatal(err)
	}
	toC := a.charge(Key{Context: ctxA, Peer: c.id()}, 1)
	old := &Receipt{Context: ctxA, Src: a.id(), Dst: b.id(), Epoch: 998, Period: 1, Cost: 1, Nonce: 1}
	future := &Receipt{Context: ctxA, Src: a.id(), Dst: b.id(), Epoch: 1002, Period: 1, Cost: 1, Nonce: 1}
	huge := &Receipt{Context: core.ContextID{0xbb}, Src: a.id(), Dst: b.id(), Epoch: 1000, Period: 1, Cost: DefaultContactLimit + 1, Nonce: 1}
	for _, r := range []*Receipt{old, future, huge} {
		if err := r.sign(a.signer); err != nil {
			t.Fatal(err)
		}
	}
	before := b.dump()
	for _, tc := range []struct {
		name string
		r    *Receipt
		want error
	}{
		{"replay", r1, ErrReplay},
		{"wrong prev", wrongPrev, ErrChain},
		{"wrong dst", toC, ErrWrongDst},
		{"old epoch", old, ErrEpoch},
		{"future epoch", future, ErrEpoch},
		{"over limit", huge, ErrOverLimit},
		{"bad signature", &forged, ErrBadSignature},
		{"tampered", &tamperedCost, ErrBadSignature},
		{"nil", nil, ErrMalformed},
	} {
		err := accept(tc.r)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		if got := Reason(err); got != Reason(tc.want) {
			t.Errorf("%s: reason %q", tc.name, got)
		}
	}
	if after := b.dump(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatal("a refused receipt changed the store")
	}
	// The chain resumes where it was; a gap (r3 before r2, as after frames
	// lost with a connection) is accepted, and the skipped receipt is then
	// a replay.
	if err := accept(r3); err != nil {
		t.Fatalf("gap: %v", err)
	}
	if err := accept(r2); !errors.Is(err, ErrReplay) {
		t.Fatalf("receipt skipped by a gap: %v", err)
	}
	if b.l.Gaps() != 1 {
		t.Fatalf("gaps %d", b.l.Gaps())
	}
	// An operator limit on the sender bounds what is accepted from it (r1
	// and r3 were counted, r2 never arrived).
	if err := b.l.SetLimit(context.Background(), Key{Context: ctxA, Peer: a.id()}, 2); err != nil {
		t.Fatal(err)
	}
	if err := accept(a.charge(k, 1)); !errors.Is(err, ErrOverLimit) {
		t.Fatalf("past the operator limit: %v", err)
	}
	// The window moves: a receipt of the previous epoch is still fine,
	// then no longer.
	clock.Advance(EpochLength)
	k2 := Key{Context: core.ContextID{0xcc}, Peer: b.id()}
	late := &Receipt{Context: k2.Context, Src: a.id(), Dst: b.id(), Epoch: 1000, Period: 1, Cost: 1, Nonce: 1}
	if err := late.sign(a.signer); err != nil {
		t.Fatal(err)
	}
	if err := accept(late); err != nil {
		t.Fatalf("previous epoch within the window: %v", err)
	}
	clock.Advance(EpochLength)
	if err := accept(r1); !errors.Is(err, ErrEpoch) {
		t.Fatalf("two epochs old: %v", err)
	}
}

func TestAcceptObservesEpochCapped(t *testing.T) {
	a, b, _ := pair(t)
	r := &Receipt{Context: ctxA, Src: a.id(), Dst: b.id(), Epoch: 1001, Period: 1, Cost: 1, Nonce: 1}
	if err := r.sign(a.signer); err != nil {
		t.Fatal(err)
	}
	if err := b.l.Accept(context.Background(), r, core.ClassContact); err != nil {
		t.Fatal(err)
	}
	if got := b.l.Epochs().Current(); got != 1001 {
		t.Fatalf("epoch %d after a peer's 1001", got)
	}
	// 1002 is within the new window but beyond wall+1: accepted, not adopted.
	r2 := &Receipt{Context: core.ContextID{2}, Src: a.id(), Dst: b.id(), Epoch: 1002, Period: 1, Cost: 1, Nonce: 1}
	if err := r2.sign(a.signer); err != nil {
		t.Fatal(err)
	}
	if err := b.l.Accept(context.Background(), r2, core.ClassContact); err != nil {
		t.Fatal(err)
	}
	if got := b.l.Epochs().Current(); got != 1001 {
		t.Fatalf("epoch dragged to %d", got)
	}
}

func TestDeniedChargeHasNoSideEffect(t *testing.T) {
	a, b, _ := pair(t)
	k := Key{Context: ctxA, Peer: b.id()}
	if err := a.l.SetLimit(context.Background(), k, 25); err != nil {
		t.Fatal(err)
	}
	a.charge(k, 10)
	last := a.charge(k, 10)
	entry, disk := a.get(k), a.dump()
	stats, _ := a.j.Stats(context.Background())
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		cost uint64
		leak core.Leakage
		want error
	}{
		{"flow", 6, core.Leakage{}, ErrExhausted},
		{"leakage", 1, core.Leakage{0, DefaultContactLeakage + 1, 0}, ErrLeakageExhausted},
	} {
		_, err := a.l.Charge(ctx, k, core.ClassContact, tc.cost, tc.leak, nil)
		if !errors.Is(err, tc.want) || !errors.Is(err, core.ErrResourceExhausted) {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := a.get(k); got != entry {
			t.Fatalf("%s: entry %+v -> %+v", tc.name, entry, got)
		}
		if fmt.Sprint(a.dump()) != fmt.Sprint(disk) {
			t.Fatalf("%s: the store changed", tc.name)
		}
		if s, _ := a.j.Stats(ctx); s != stats {
			t.Fatalf("%s: journal %+v -> %+v", tc.name, stats, s)
		}
	}
	// No nonce was consumed: the next receipt follows the last one.
	r := a.charge(k, 5)
	if r.Nonce != last.Nonce+1 || r.Prev != last.Hash() {
		t.Fatalf("nonce %d after %d", r.Nonce, last.Nonce)
	}
	if a.get(k).State.Headroom() != 0 {
		t.Fatal("exact charge left headroom")
	}
	// Limit 0 denies even a free send; an unknown class too.
	if err := a.l.SetLimit(ctx, k, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := a.l.Charge(ctx, k, core.ClassContact, 0, core.Leakage{}, nil); !errors.Is(err, ErrExhausted) {
		t.Fatalf("limit 0: %v", err)
	}
	// A refused first charge of a new key leaves no entry behind.
	fresh := Key{Context: ctxA, Peer: core.DeviceID{6}}
	if _, err := a.l.Charge(ctx, fresh, core.ClassContact, DefaultContactLimit+1, core.Leakage{}, nil); !errors.Is(err, ErrExhausted) {
		t.Fatalf("over the default: %v", err)
	}
	if _, err := a.l.Get(ctx, fresh); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("refused charge left an entry: %v", err)
	}
	if list, _ := a.l.List(ctx); len(list) != 1 {
		t.Fatalf("refused charge listed: %+v", list)
	}
	if _, err := a.l.Charge(ctx, Key{Context: ctxA, Peer: core.DeviceID{5}}, 0, 1, core.Leakage{}, nil); !errors.Is(err, core.ErrInvalidArgument) {
		t.Fatalf("class 0: %v", err)
	}
	if _, err := a.l.Charge(ctx, Key{Context: ctxA, Peer: a.id()}, core.ClassLink, 1, core.Leakage{}, nil); !errors.Is(err, core.ErrInvalidArgument) {
		t.Fatalf("to self: %v", err)
	}
}

func TestSetLimitNeverWidens(t *testing.T) {
	cfg := testConfig()
	cfg.Policy.Overrides = []Override{{Context: ctxA, Limit: 100}}
	clock := core.NewManualClock(t0)
	a := newDevice(t, 1, clock, cfg)
	k := Key{Context: ctxA, Peer: core.DeviceID{2}}
	ctx := context.Background()
	limit := func() uint64 {
		if _, err := a.l.Charge(ctx, k, core.ClassGroup, 0, core.Leakage{}, nil); err != nil {
			t.Fatal(err)
		}
		return a.get(k).State.Limit
	}
	if got := limit(); got != 100 {
		t.Fatalf("policy override ignored: %d", got)
	}
	for _, tc := range []struct{ set, want uint64 }{{50, 50}, {1 << 40, 100}, {70, 70}, {^uint64(0), 100}} {
		if err := a.l.SetLimit(ctx, k, tc.set); err != nil {
			t.Fatal(err)
		}
		if got := limit(); got != tc.want {
			t.Fatalf("set %d: limit %d, want %d", tc.set, got, tc.want)
		}
	}
	if err := a.l.SetLimit(ctx, k, 60); err != nil {
		t.Fatal(err)
	}
	a.reopen()
	if got := a.get(k); got.State.Limit != 60 || !got.HasOverride || got.Override != 60 {
		t.Fatalf("override lost on reopen: %+v", got)
	}
}

func TestPersistenceAcrossReopen(t *testing.T) {
	a, b, _ := pair(t)
	k := Key{Context: ctxA, Peer: b.id()}
	var last *Receipt
	for range 3 {
		last = a.charge(k, 7)
		if err := b.l.Accept(context.Background(), last, core.ClassContact); err != nil {
			t.Fatal(err)
		}
	}
	a.reopen()
	b.reopen()
	if en := a.get(k); en.State.Spent != 21 || en.LastNonce != 3 {
		t.Fatalf("after reopen: %+v", en)
	}
	r := a.charge(k, 7)
	if r.Nonce != 4 || r.Prev != last.Hash() {
		t.Fatalf("chain did not continue: %+v", r)
	}
	// The receiver remembers too: a replay is refused, the next is accepted.
	if err := b.l.Accept(context.Background(), last, core.ClassContact); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay after restart: %v", err)
	}
	if err := b.l.Accept(context.Background(), r, core.ClassContact); err != nil {
		t.Fatal(err)
	}
	if en := b.get(Key{Context: ctxA, Peer: a.id()}); en.Received != 28 {
		t.Fatalf("received %d", en.Received)
	}
}

func TestEpochRotationAndAudit(t *testing.T) {
	a, b, clock := pair(t)
	k := Key{Context: ctxA, Peer: b.id()}
	quiet := Key{Context: core.ContextID{0xdd}, Peer: b.id()}
	a.charge(k, 10)
	last := a.charge(k, 20)
	a.charge(quiet, 5)
	clock.Advance(EpochLength)
	if en := a.get(k); en.State.Spent != 0 || en.LastNonce != 0 || en.Epoch != 1001 {
		t.Fatalf("new epoch shows %+v", en)
	}
	r := a.charge(k, 1)
	if r.Nonce != 1 || !r.Prev.IsZero() || r.Epoch != 1001 {
		t.Fatalf("first receipt of the new epoch: %+v", r)
	}
	if en := a.get(k); en.State.Spent != 1 {
		t.Fatalf("spent %d: the old epoch leaked in", en.State.Spent)
	}
	sums := a.facts(TypeEpochSummary)
	if len(sums) != 1 {
		t.Fatalf("%d epoch summaries", len(sums))
	}
	s, err := DecodeEpochSummary(sums[0].Payload)
	if err != nil {
		t.Fatal(err)
	}
	want := EpochSummary{Context: ctxA, Src: a.id(), Dst: b.id(), Epoch: 1000, Count: 2, Total: 30, LastNonce: 2, LastHash: last.Hash()}
	if *s != want {
		t.Fatalf("summary %+v, want %+v", *s, want)
	}
	leaks := a.facts(TypeLeakageSummary)
	if len(leaks) != 1 {
		t.Fatalf("%d leakage summaries", len(leaks))
	}
	if ls, err := DecodeLeakageSummary(leaks[0].Payload); err != nil || *ls != (LeakageSummary{Context: ctxA, Epoch: 1000, Consumed: core.Leakage{2, 0, 0}}) {
		t.Fatalf("leakage summary %+v %v", ls, err)
	}
	// The quiet key is summarised by Sweep, once.
	for range 2 {
		if err := a.l.Sweep(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(a.facts(TypeEpochSummary)); n != 2 {
		t.Fatalf("%d epoch summaries after sweep", n)
	}
	if n := len(a.facts(TypeLeakageSummary)); n != 2 {
		t.Fatalf("%d leakage summaries after sweep", n)
	}
	// Rotation survives a restart, and the chain of the new epoch continues.
	a.reopen()
	if r2 := a.charge(k, 1); r2.Nonce != 2 || r2.Prev != r.Hash() {
		t.Fatalf("after reopen: %+v", r2)
	}
	if n := len(a.facts(TypeEpochSummary)); n != 2 {
		t.Fatalf("%d epoch summaries after reopen", n)
	}
}

func TestEpochNeverRegressesAcrossRestart(t *testing.T) {
	a, b, clock := pair(t)
	k := Key{Context: ctxA, Peer: b.id()}
	clock.Advance(EpochLength)
	a.charge(k, 1)
	clock.Advance(-10 * EpochLength) // the clock steps back over a restart
	a.reopen()
	if e := a.l.Epochs().Current(); e != 1001 {
		t.Fatalf("epoch %d after restart", e)
	}
	if r := a.charge(k, 1); r.Epoch != 1001 || r.Nonce != 2 {
		t.Fatalf("%+v", r)
	}
}

func TestCommitFailureReloads(t *testing.T) {
	a, b, _ := pair(t)
	k := Key{Context: ctxA, Peer: b.id()}
	ctx := context.Background()
	good := a.charge(k, 1)
	// A fact in a namespace the journal does not know fails the Txn.
	bad, err := a.j.SignLocal(a.signer, journal.Draft{Namespace: core.ContextNamespace(core.ContextID{0x66}), TypeID: "test.x/v1", Payload: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.l.Charge(ctx, k, core.ClassContact, 1, core.Leakage{}, []*journal.SignedFact{bad}); err == nil {
		t.Fatal("charge with a bad fact committed")
	}
	if en := a.get(k); en.LastNonce != 1 || en.State.Spent != 1 {
		t.Fatalf("failed charge left %+v", en)
	}
	r := a.charge(k, 1)
	if r.Nonce != 2 || r.Prev != good.Hash() {
		t.Fatalf("chain after a failed commit: %+v", r)
	}
	for _, x := range []*Receipt{good, r} {
		if err := b.l.Accept(ctx, x, core.ClassContact); err != nil {
			t.Fatal(err)
		}
	}
}

// Failures interleaved with successes, from many goroutines on one key: the
// receipts returned form a gapless chain, every one of them durable.
func TestCommitFailuresUnderConcurrency(t *testing.T) {
	a, b, _ := pair(t)
	k := Key{Context: ctxA, Peer: b.id()}
	bad, err := a.j.SignLocal(a.signer, journal.Draft{Namespace: core.ContextNamespace(core.ContextID{0x66}), TypeID: "test.x/v1", Payload: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []*Receipt
	failed := map[bool]int{} // by "failed only because an earlier commit did"
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				var facts []*journal.SignedFact
				if (g+i)%5 == 0 {
					facts = []*journal.SignedFact{bad}
				}
				r, err := a.l.Charge(context.Background(), k, core.ClassContact, 1, core.Leakage{}, facts)
				if err != nil {
					mu.Lock()
					failed[errors.Is(err, ErrStale)]++
					mu.Unlock()
					continue
				}
				mu.Lock()
				got = append(got, sealed(t, a.signer, r))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Logf("%d committed, %d refused, %d failed behind them", len(got), failed[false], failed[true])
	checkReceiptChain(t, got)
	if en := a.get(k); en.State.Spent != uint64(len(got)) || en.LastNonce != uint64(len(got)) {
		t.Fatalf("spent %d nonce %d for %d receipts", en.State.Spent, en.LastNonce, len(got))
	}
	a.reopen()
	if en := a.get(k); en.State.Spent != uint64(len(got)) {
		t.Fatalf("durable spent %d for %d receipts", en.State.Spent, len(got))
	}
	for _, r := range got {
		if err := b.l.Accept(context.Background(), r, core.ClassContact); err != nil {
			t.Fatalf("accept %d: %v", r.Nonce, err)
		}
	}
}

// checkReceiptChain: receipts of one key sorted by nonce are 1..n, each naming the
// hash of the one before.
func checkReceiptChain(t *testing.T, rs []*Receipt) {
	t.Helper()
	sort.Slice(rs, func(i, j int) bool { return rs[i].Nonce < rs[j].Nonce })
	var prev core.Hash
	for i, r := range rs {
		if r.Nonce != uint64(i+1) || r.Prev != prev {
			t.Fatalf("receipt %d: nonce %d prev %s, want %d %s", i, r.Nonce, r.Prev, i+1, prev)
		}
		if err := r.Verify(); err != nil {
			t.Fatal(err)
		}
		prev = r.Hash()
	}
}

func TestConcurrentCharges(t *testing.T) {
	a, b, _ := pair(t)
	peers := []core.DeviceID{b.id(), {3}, {4}}
	keys := []Key{}
	for _, c := range []core.ContextID{ctxA, {0xbb}} {
		for _, p := range peers {
			keys = append(keys, Key{Context: c, Peer: p})
		}
	}
	// Limits that run out part way, so denials race with charges.
	const limit = 300
	for _, k := range keys {
		if err := a.l.SetLimit(context.Background(), k, limit); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	got := map[Key][]*Receipt{}
	charged := map[Key]uint64{}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 60 {
				k := keys[(g+i)%len(keys)]
				cost := uint64(1 + (g*7+i)%5)
				r, err := a.l.Charge(context.Background(), k, core.ClassGroup, cost, core.Leakage{1, 1, 1}, nil)
				if errors.Is(err, ErrExhausted) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				got[k] = append(got[k], sealed(t, a.signer, r))
				charged[k] += cost
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	var total uint64
	for _, k := range keys {
		checkReceiptChain(t, got[k])
		en := a.get(k)
		if en.State.Spent != charged[k] || en.State.Spent > limit || en.LastNonce != uint64(len(got[k])) {
			t.Fatalf("%v: spent %d, charged %d, nonce %d of %d", k, en.State.Spent, charged[k], en.LastNonce, len(got[k]))
		}
		total += uint64(len(got[k]))
	}
	for _, c := range []core.ContextID{ctxA, {0xbb}} {
		var n uint64
		for _, k := range keys {
			if k.Context == c {
				n += uint64(len(got[k]))
			}
		}
		lk, err := a.l.Leakage(context.Background(), c)
		if err != nil || lk.Consumed != (core.Leakage{n, n, n}) {
			t.Fatalf("leakage of %s: %+v, want %d each: %v", c, lk, n, err)
		}
	}
	// What memory said is what the store says.
	a.reopen()
	for _, k := range keys {
		if en := a.get(k); en.State.Spent != charged[k] || en.LastNonce != uint64(len(got[k])) {
			t.Fatalf("%v after reopen: %+v", k, en)
		}
	}
	// And the receiver accepts every chain in order.
	for _, k := range keys {
		if k.Peer != b.id() {
			continue
		}
		for _, r := range got[k] {
			if err := b.l.Accept(context.Background(), r, core.ClassGroup); err != nil {
				t.Fatalf("accept %v %d: %v", k, r.Nonce, err)
			}
		}
	}
	t.Logf("%d receipts", total)
}

// Concurrent accepts from several senders and replays racing them: no receipt
// is accepted twice, and each chain ends at its last receipt.
func TestConcurrentAccepts(t *testing.T) {
	a, b, clock := pair(t)
	c := newDevice(t, 3, clock, testConfig())
	var rs []*Receipt
	for i := range 50 {
		from := a
		if i%2 == 1 {
			from = c
		}
		rs = append(rs, from.charge(Key{Context: ctxA, Peer: b.id()}, 1))
	}
	var mu sync.Mutex
	accepted := map[core.Hash]int{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each goroutine walks the receipts in order, retrying until the
			// chain reaches each one.
			for _, r := range rs {
				for {
					err := b.l.Accept(context.Background(), r, core.ClassContact)
					if err == nil {
						mu.Lock()
						accepted[r.Hash()]++
						mu.Unlock()
						break
					}
					if errors.Is(err, ErrReplay) {
						break
					}
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	// Racing goroutines may skip receipts (a gap), but the last of each
	// sender's chain is always accepted.
	if accepted[rs[len(rs)-1].Hash()] != 1 || accepted[rs[len(rs)-2].Hash()] != 1 {
		t.Fatal("the last receipt of a chain was not accepted")
	}
	for h, n := range accepted {
		if n != 1 {
			t.Fatalf("%s accepted %d times", h, n)
		}
	}
}

// A journal closed under a charging load (its queue drained, the waits never
// made) and reopened never shows more headroom than the receipts handed out
// imply, and its chains continue.
func TestCloseUnderLoad(t *testing.T) {
	a, b, _ := pair(t)
	k := Key{Context: ctxA, Peer: b.id()}
	var mu sync.Mutex
	var got []*Receipt
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for {
				r, err := a.l.Charge(context.Background(), k, core.ClassContact, 3, core.Leakage{}, nil)
				if err != nil {
					return // the journal closed
				}
				mu.Lock()
				got = append(got, sealed(t, a.signer, r))
				mu.Unlock()
			}
		}()
	}
	close(start)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= 100 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if err := a.j.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	a.openJournal()
	a.openLedger()
	en := a.get(k)
	if en.State.Spent < 3*uint64(len(got)) || en.LastNonce < uint64(len(got)) {
		t.Fatalf("durable spent %d nonce %d, but %d receipts were handed out", en.State.Spent, en.LastNonce, len(got))
	}
	checkReceiptChain(t, got)
	r := a.charge(k, 3)
	if r.Nonce != en.LastNonce+1 {
		t.Fatalf("chain continues at %d after %d", r.Nonce, en.LastNonce)
	}
}

func TestOpenChecksAudit(t *testing.T) {
	clock := core.NewManualClock(t0)
	d := newDevice(t, 1, clock, testConfig())
	ctx := context.Background()
	cfg := d.cfg
	cfg.AuditNamespace = core.AuthorityNamespace(core.AuthorityID{9})
	if _, err := Open(ctx, d.j, cfg, d.signer, clock, nil); err == nil {
		t.Fatal("opened with an unknown audit namespace")
	}
	// A journal without the validators would refuse the summaries.
	d.j.Close()
	j, err := journal.Open(ctx, journal.Options{Path: d.path, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	d.j = j
	if _, err := Open(ctx, j, d.cfg, d.signer, clock, nil); err == nil {
		t.Fatal("opened on a journal without budget validators")
	}
	if _, err := Open(ctx, j, DefaultConfig(), d.signer, clock, nil); err != nil {
		t.Fatalf("without audit: %v", err)
	}
}

func TestValidators(t *testing.T) {
	v := Validators()
	s := seededSigner(1)
	sum := EpochSummary{Context: ctxA, Src: s.DeviceID(), Dst: core.DeviceID{2}, Epoch: 3, Count: 2, Total: 9, LastNonce: 2, LastHash: core.Hash{1}}
	mk := func(typ string, p []byte, author core.DeviceID) *journal.SignedFact {
		return &journal.SignedFact{Fact: journal.Fact{TypeID: typ, Payload: p, Author: author}}
	}
	if err := v[TypeEpochSummary](mk(TypeEpochSummary, sum.Encode(), s.DeviceID())); err != nil {
		t.Fatal(err)
	}
	if err := v[TypeEpochSummary](mk(TypeEpochSummary, sum.Encode(), core.DeviceID{2})); !errors.Is(err, core.ErrPermissionDenied) {
		t.Fatalf("summary by another device: %v", err)
	}
	gap := sum
	gap.Count = 1
	if err := v[TypeEpochSummary](mk(TypeEpochSummary, gap.Encode(), s.DeviceID())); !errors.Is(err, core.ErrInvalidArgument) {
		t.Fatalf("inconsistent summary: %v", err)
	}
	ls := LeakageSummary{Context: ctxA, Epoch: 3, Consumed: core.Leakage{1, 2, 3}}
	if err := v[TypeLeakageSummary](mk(TypeLeakageSummary, ls.Encode(), s.DeviceID())); err != nil {
		t.Fatal(err)
	}
	if err := v[TypeLeakageSummary](mk(TypeLeakageSummary, ls.Encode()[1:], s.DeviceID())); !errors.Is(err, core.ErrInvalidArgument) {
		t.Fatalf("short leakage summary: %v", err)
	}
}

// Charges of one key started each once the one before is queued (not yet
// durable) take nonces in that order and all commit; a denial is never
// queued.
func TestChargeQueuedKeepsOrderInFlight(t *testing.T) {
	a, b, _ := pair(t)
	ctx := context.Background()
	k := Key{Context: ctxA, Peer: b.id()}
	if err := a.l.SetLimit(ctx, k, 20); err != nil {
		t.Fatal(err)
	}
	const n = 8
	receipts := make([]*Receipt, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		queued := make(chan struct{})
		wg.Go(func() {
			receipts[i], errs[i] = a.l.ChargeQueued(ctx, k, core.ClassContact, 2, core.Leakage{}, nil, func() { close(queued) })
			if errs[i] == nil {
				sealed(t, a.signer, receipts[i])
			}
		})
		<-queued
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("charge %d: %v", i, err)
		}
		if receipts[i].Nonce != uint64(i+1) {
			t.Fatalf("charge %d has nonce %d", i, receipts[i].Nonce)
		}
	}
	checkReceiptChain(t, receipts)
	called := false
	if _, err := a.l.ChargeQueued(ctx, k, core.ClassContact, 5, core.Leakage{}, nil, func() { called = true }); !errors.Is(err, ErrExhausted) || called {
		t.Fatalf("over the limit: %v, queued called %v", err, called)
	}
	if e := a.get(k); e.LastNonce != n || e.State.Spent != 2*n {
		t.Fatalf("stored nonce %d, spent %d", e.LastNonce, e.State.Spent)
	}
}

package budget

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
)

// hour100 is two minutes into UTC hour 100 since 1970: protocol epoch 1200,
// the first of the hour.
var hour100 = time.Unix(0, 0).Add(100*time.Hour + 2*time.Minute)

func withPeriod(d time.Duration) Config {
	cfg := testConfig()
	cfg.EpochDuration = d
	return cfg
}

func wallEpoch(c core.Clock) core.Epoch { return core.Epoch(c.Now().Unix() / 300) }

// Issue #9, finding 4: a device's budget setting changes 1h -> 5m -> 1h
// across restarts while it and its peer keep exchanging paid messages (pings
// and pongs). Epoch numbers never move off the wall clock, every receipt is
// accepted at the other end, chains continue across each restart without a
// gap, and spends carry into the new period.
func TestPeriodChangesAcrossRestartsKeepReceiptsFlowing(t *testing.T) {
	clock := core.NewManualClock(hour100)
	a := newDevice(t, 1, clock, withPeriod(time.Hour))
	b := newDevice(t, 2, clock, withPeriod(time.Hour))
	ab, ba := Key{Context: ctxA, Peer: b.id()}, Key{Context: ctxA, Peer: a.id()}
	ctx := context.Background()
	// exchange is three pings from a (cost 2) answered by b (cost 1).
	exchange := func(phase string, aPeriod uint32) {
		t.Helper()
		wall := wallEpoch(clock)
		for range 3 {
			r := a.charge(ab, 2)
			if r.Epoch != wall || r.Period != aPeriod {
				t.Fatalf("%s: a's receipt in epoch %d period %d; wall %d, period %d", phase, r.Epoch, r.Period, wall, aPeriod)
			}
			if err := b.l.Accept(ctx, r, core.ClassContact); err != nil {
				t.Fatalf("%s: b refuses a: %v", phase, err)
			}
			r = b.charge(ba, 1)
			if r.Epoch != wall || r.Period != 12 {
				t.Fatalf("%s: b's receipt in epoch %d period %d", phase, r.Epoch, r.Period)
			}
			if err := a.l.Accept(ctx, r, core.ClassContact); err != nil {
				t.Fatalf("%s: a refuses b: %v", phase, err)
			}
		}
		for name, d := range map[string]*device{"a": a, "b": b} {
			if e := d.l.Epochs().Current(); e != wall {
				t.Fatalf("%s: %s is in epoch %d, the wall clock in %d", phase, name, e, wall)
			}
		}
	}
	check := func(phase string, aSpent, bReceived uint64, aPeriod uint32) {
		t.Helper()
		if en := a.get(ab); en.State.Spent != aSpent || en.Period != aPeriod || en.State.Epoch != periodStart(en.Epoch, aPeriod) {
			t.Fatalf("%s: a's budget %+v, want spent %d per %d epochs", phase, en, aSpent, aPeriod)
		}
		if en := b.get(ba); en.Received != bReceived {
			t.Fatalf("%s: b received %d this hour, want %d", phase, en.Received, bReceived)
		}
	}

	exchange("1h", 12)
	clock.Advance(EpochLength)
	exchange("1h, next epoch", 12)
	check("1h", 12, 12, 12)

	a.cfg.EpochDuration = EpochLength
	a.reopen()
	// The hour's spend is carried into the 5-minute period holding its
	// epoch: no headroom appears from a configuration change.
	check("5m after restart", 12, 12, 1)
	exchange("5m", 1)
	check("5m", 18, 18, 1)
	clock.Advance(EpochLength)
	exchange("5m, next epoch", 1)
	check("5m, next period", 6, 24, 1)

	a.cfg.EpochDuration = time.Hour
	a.reopen()
	check("1h after restart", 6, 24, 12)
	exchange("1h again", 12)
	check("1h again", 12, 30, 12)
	clock.Advance(time.Hour)
	exchange("1h, next hour", 12)
	check("1h, next hour", 6, 6, 12)

	if g := b.l.Gaps(); g != 0 {
		t.Fatalf("%d gaps: a chain did not continue across a restart", g)
	}
	// Each epoch's chain was summarised whole, its total only its own: the
	// spend of a period and the cost of a chain are kept apart.
	sums := a.facts(TypeEpochSummary)
	if len(sums) < 3 {
		t.Fatalf("%d epoch summaries", len(sums))
	}
	for _, f := range sums {
		s, err := DecodeEpochSummary(f.Payload)
		if err != nil {
			t.Fatal(err)
		}
		if s.Dst == b.id() && s.Total != 2*s.Count {
			t.Fatalf("summary of epoch %d: %d receipts of cost 2 total %d", s.Epoch, s.Count, s.Total)
		}
	}
}

// A sender whose budget period is shorter than the receiver's may, by its own
// books, spend more than the receiver grants per period: the receiver
// refuses and says why, with its own counted reason. The other way round the
// sender is the stricter, and a sender over the limit is just that.
func TestShorterSenderPeriodIsReportedAsScheduleMismatch(t *testing.T) {
	clock := core.NewManualClock(hour100)
	short := newDevice(t, 1, clock, withPeriod(EpochLength))
	long := newDevice(t, 2, clock, withPeriod(time.Hour))
	toLong, toShort := Key{Context: ctxA, Peer: long.id()}, Key{Context: ctxA, Peer: short.id()}
	ctx := context.Background()
	for _, set := range []struct {
		d     *device
		k     Key
		limit uint64
	}{{short, toLong, 10}, {long, toShort, 10}} {
		if err := set.d.l.SetLimit(ctx, set.k, set.limit); err != nil {
			t.Fatal(err)
		}
	}
	if err := long.l.Accept(ctx, short.charge(toLong, 10), core.ClassContact); err != nil {
		t.Fatal(err)
	}
	clock.Advance(EpochLength)
	r := short.charge(toLong, 10) // a new period for short, not for long
	before := long.dump()
	err := long.l.Accept(ctx, r, core.ClassContact)
	if !errors.Is(err, ErrEpochSchedule) || Reason(err) != "epoch_schedule_mismatch" {
		t.Fatalf("shorter period over the limit: %v (%s)", err, Reason(err))
	}
	if fmt.Sprint(long.dump()) != fmt.Sprint(before) {
		t.Fatal("a refused receipt changed the store")
	}

	if err := long.l.SetLimit(ctx, toShort, 20); err != nil {
		t.Fatal(err)
	}
	err = short.l.Accept(ctx, long.charge(toShort, 15), core.ClassContact)
	if !errors.Is(err, ErrOverLimit) || Reason(err) != "over_limit" {
		t.Fatalf("longer period over the limit: %v (%s)", err, Reason(err))
	}
	// Within the limit, differing periods are no obstacle.
	if err := short.l.Accept(ctx, long.charge(toShort, 5), core.ClassContact); err != nil {
		t.Fatal(err)
	}
}

// A version 1 receipt, from an aurad whose epochs follow its local setting,
// is refused as a schedule mismatch even when its number happens to fall in
// the window, and leaves no trace.
func TestLegacyReceiptIsAScheduleMismatch(t *testing.T) {
	a, b, _ := pair(t)
	before := b.dump()
	r := legacyReceipt(t, a.signer, b.id(), 1000, 1, core.Hash{})
	err := b.l.Accept(context.Background(), r, core.ClassContact)
	if !errors.Is(err, ErrEpochSchedule) || !errors.Is(err, core.ErrFailedPrecondition) || Reason(err) != "epoch_schedule_mismatch" {
		t.Fatalf("legacy receipt: %v", err)
	}
	if fmt.Sprint(b.dump()) != fmt.Sprint(before) {
		t.Fatal("a refused receipt changed the store")
	}
}

func TestOpenRefusesBadPeriodsAndNewerLayouts(t *testing.T) {
	clock := core.NewManualClock(hour100)
	d := newDevice(t, 1, clock, withPeriod(time.Hour))
	ctx := context.Background()
	for _, p := range []time.Duration{time.Minute, 7 * time.Minute, 25 * time.Hour, -time.Hour} {
		if _, err := Open(ctx, d.j, withPeriod(p), d.signer, clock, nil); !errors.Is(err, core.ErrInvalidArgument) {
			t.Errorf("period %s: %v", p, err)
		}
	}
	d.writeLayout(layoutVersion+1, func(*buckets) error { return nil })
	if _, err := Open(ctx, d.j, d.cfg, d.signer, clock, nil); !errors.Is(err, core.ErrFailedPrecondition) {
		t.Fatalf("layout %d: %v", layoutVersion+1, err)
	}
}

// A store of layout 1 (epochs in units of the configured length, here an
// hour) is renumbered in protocol epochs on open: the current chain goes on
// where it was on both devices, spends and leakage stay counted, the audit
// ring keeps its version 1 receipts, and a record numbered under another
// setting (layout 1's bug) is placed in the current epoch instead of pinning
// the device's epoch in the far future.
func TestMigrateLayout1(t *testing.T) {
	clock := core.NewManualClock(hour100)
	a := newDevice(t, 1, clock, withPeriod(time.Hour))
	b := newDevice(t, 2, clock, withPeriod(time.Hour))
	ab, ba := Key{Context: ctxA, Peer: b.id()}, Key{Context: ctxA, Peer: a.id()}
	ctxB := core.ContextID{0xbb}
	other := Key{Context: ctxA, Peer: core.DeviceID{0xc}}

	// Three receipts of hour 100 that a paid b, as the old version signed them.
	var chain []*Receipt
	var prev core.Hash
	for n := uint64(1); n <= 3; n++ {
		r := &Receipt{Context: ctxA, Src: a.id(), Dst: b.id(), Epoch: 100, Cost: 3, Nonce: n, Prev: prev}
		r.Sig = a.signer.Sign(signingBytes(r.Hash()))
		chain, prev = append(chain, r), r.Hash()
	}
	h3 := chain[2].Hash()
	a.writeLayout(1, func(bs *buckets) error {
		kvs := []kv{
			{bs.send, keyBytes(ab), encodeSendRecordV1(sendRecordV1{class: core.ClassContact, epoch: 100, spent: 9, nonce: 3, head: h3})},
			// Written after a switch from 1h to 5m: numbered in 5-minute
			// units although the setting is an hour again.
			{bs.send, keyBytes(Key{Context: ctxB, Peer: b.id()}), encodeSendRecordV1(sendRecordV1{class: core.ClassContact, epoch: 1200, spent: 4, nonce: 2, head: core.Hash{4}})},
			{bs.leak, ctxA[:], leakRecord{class: core.ClassContact, epoch: 100, consumed: core.Leakage{3, 0, 0}}.encode()},
			{bs.limits, keyBytes(other), encodeLimit(77)},
		}
		for _, r := range chain {
			kvs = append(kvs, kv{bs.receipts, receiptKey(ab, dirSent, 100, r.Nonce), r.Encode()})
		}
		return putAll(kvs)
	})
	b.writeLayout(1, func(bs *buckets) error {
		kvs := []kv{
			{bs.recv, recvKey(ba, 99), recvRecord{class: core.ClassContact, received: 5, nonce: 1, head: core.Hash{9}}.encode()},
			{bs.recv, recvKey(ba, 100), recvRecord{class: core.ClassContact, received: 9, nonce: 3, head: h3}.encode()},
		}
		for _, r := range chain {
			kvs = append(kvs, kv{bs.receipts, receiptKey(ba, dirReceived, 100, r.Nonce), r.Encode()})
		}
		return putAll(kvs)
	})
	a.reopen()
	b.reopen()

	for name, d := range map[string]*device{"a": a, "b": b} {
		if e := d.l.Epochs().Current(); e != 1200 {
			t.Fatalf("%s: epoch %d after the migration, want 1200", name, e)
		}
		if v := d.dump()[string(bucketMeta)+"/"+string(keyLayout)]; v != string([]byte{layoutVersion}) {
			t.Fatalf("%s: layout %q", name, v)
		}
	}
	if en := a.get(ab); en.Epoch != 1200 || en.Period != 12 || en.State.Spent != 9 || en.LastNonce != 3 {
		t.Fatalf("a's budget after the migration: %+v", en)
	}
	if en := a.get(Key{Context: ctxB, Peer: b.id()}); en.State.Spent != 4 || en.LastNonce != 2 {
		t.Fatalf("record of another setting: %+v", en)
	}
	if en := a.get(other); !en.HasOverride || en.Override != 77 {
		t.Fatalf("limit override lost: %+v", en)
	}
	if lk, err := a.l.Leakage(context.Background(), ctxA); err != nil || lk.Consumed != (core.Leakage{3, 0, 0}) {
		t.Fatalf("leakage %+v %v", lk, err)
	}
	for name, d := range map[string]*device{"a": a, "b": b} {
		rs, err := d.l.Receipts(context.Background(), Key{Context: ctxA, Peer: map[string]core.DeviceID{"a": b.id(), "b": a.id()}[name]}, 0)
		if err != nil || len(rs) != 3 || rs[0].Nonce != 3 || rs[0].Period != 0 || rs[0].Verify() != nil {
			t.Fatalf("%s: audit ring %+v %v", name, rs, err)
		}
	}
	if en := b.get(ba); en.Received != 9 {
		t.Fatalf("b's receive side after the migration: %+v", en)
	}

	// The chain goes on, with no gap, as a version 2 receipt; the old
	// receipts can never be accepted again.
	r4 := a.charge(ab, 3)
	if r4.Epoch != 1200 || r4.Period != 12 || r4.Nonce != 4 || r4.Prev != h3 {
		t.Fatalf("first receipt after the migration: %+v", r4)
	}
	if err := b.l.Accept(context.Background(), r4, core.ClassContact); err != nil {
		t.Fatal(err)
	}
	if b.l.Gaps() != 0 || b.get(ba).Received != 12 {
		t.Fatalf("gaps %d, received %d", b.l.Gaps(), b.get(ba).Received)
	}
	if err := b.l.Accept(context.Background(), chain[2], core.ClassContact); !errors.Is(err, ErrEpochSchedule) {
		t.Fatalf("old receipt after the migration: %v", err)
	}

	// Once migrated, a restart changes nothing.
	a.reopen()
	if en := a.get(ab); en.State.Spent != 12 || en.LastNonce != 4 {
		t.Fatalf("after a second restart: %+v", en)
	}
	// The chain's summary covers the receipts of both versions.
	clock.Advance(time.Hour)
	a.charge(ab, 1)
	var found bool
	for _, f := range a.facts(TypeEpochSummary) {
		s, err := DecodeEpochSummary(f.Payload)
		if err != nil {
			t.Fatal(err)
		}
		if s.Dst == b.id() && s.Context == ctxA {
			found = true
			if s.Epoch != 1200 || s.Count != 4 || s.Total != 12 || s.LastHash != r4.Hash() {
				t.Fatalf("summary %+v", s)
			}
		}
	}
	if !found {
		t.Fatal("no summary of the migrated chain")
	}
}

func TestEpochV1(t *testing.T) {
	const wall = 1200
	for _, tc := range []struct {
		e    core.Epoch
		d    time.Duration
		want core.Epoch
	}{
		{1200, EpochLength, 1200},       // the default: the same numbers
		{1201, EpochLength, 1201},       // one ahead, as a peer may have moved it
		{1300, EpochLength, wall},       // far ahead: never lived through
		{100, time.Hour, 1200},          // an hour's first epoch
		{99, time.Hour, 1188},           // the hour before
		{1200, time.Hour, wall},         // 5-minute numbers read as hours: the future
		{6000, time.Minute, 1200},       // shorter epochs fold into one
		{1 << 62, 24 * time.Hour, wall}, // overflow
		{1200, 0, 1200},                 // layout 1's default length
	} {
		if got := epochV1(tc.e, tc.d, wall); got != tc.want {
			t.Errorf("epochV1(%d, %s) = %d, want %d", tc.e, tc.d, got, tc.want)
		}
	}
}

// writeLayout replaces the layout version of d's budget store and lets fill
// write records as that layout had them.
func (d *device) writeLayout(version byte, fill func(bs *buckets) error) {
	d.t.Helper()
	_, err := d.j.Commit(context.Background(), journal.Txn{Ops: []journal.TxOp{func(tx *journal.ExtTx) error {
		bs, err := openBuckets(tx)
		if err != nil {
			return err
		}
		if err := bs.meta.Put(keyLayout, []byte{version}); err != nil {
			return err
		}
		return fill(bs)
	}}})
	if err != nil {
		d.t.Fatal(err)
	}
}

type kv struct {
	b    *journal.ExtStore
	k, v []byte
}

func putAll(kvs []kv) error {
	for _, x := range kvs {
		if err := x.b.Put(x.k, x.v); err != nil {
			return err
		}
	}
	return nil
}

// encodeSendRecordV1 is the layout-1 send record encoding.
func encodeSendRecordV1(s sendRecordV1) []byte {
	b := []byte{1, byte(s.class)}
	b = binary.BigEndian.AppendUint64(b, uint64(s.epoch))
	b = binary.BigEndian.AppendUint64(b, s.spent)
	b = binary.BigEndian.AppendUint64(b, s.nonce)
	return append(b, s.head[:]...)
}

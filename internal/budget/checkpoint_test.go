package budget

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/transport"
)

// wireCharge charges one message from a to b through the transport's
// interface and returns the envelope as a peer on envelope protocol 4 (or
// an older one, compact false) receives it.
func wireCharge(t *testing.T, a, b *device, cost uint64, compact bool) *transport.Envelope {
	t.Helper()
	r, err := a.l.Charger().Charge(context.Background(), transport.Charge{Context: ctxA, Peer: b.id(), Class: core.ClassContact, Cost: cost})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := r.Seal(compact)
	if err != nil {
		t.Fatal(err)
	}
	return &transport.Envelope{Context: ctxA, Src: a.id(), Dst: b.id(), Epoch: r.Epoch, Seq: r.Nonce, Cost: cost, Receipt: raw}
}

func hasCheckpoint(e *transport.Envelope) bool { return len(e.Receipt) == compactCheckpointLen }

// A compact chain: receipts travel unsigned at a fraction of the size, a
// checkpoint every CheckpointEvery and after a pause, and the receiver keeps
// the latest checkpoint, which a third party can verify and which commits to
// the whole chain.
func TestCompactReceiptsWithCheckpoints(t *testing.T) {
	a, b, clock := pair(t)
	ctx := context.Background()
	n := 2*transport.CheckpointEvery + 3
	var checkpointed []uint64
	for i := 1; i <= n; i++ {
		e := wireCharge(t, a, b, 2, true)
		if hasCheckpoint(e) {
			checkpointed = append(checkpointed, e.Seq)
		} else if len(e.Receipt) != compactLen {
			t.Fatalf("receipt %d: %d bytes", i, len(e.Receipt))
		}
		if err := b.l.Charger().Accept(ctx, e, core.ClassContact); err != nil {
			t.Fatalf("receipt %d: %v", i, err)
		}
	}
	// The first (no checkpoint yet this run), then every CheckpointEvery.
	want := []uint64{1, transport.CheckpointEvery, 2 * transport.CheckpointEvery}
	if !slices.Equal(checkpointed, want) {
		t.Fatalf("checkpoints at %v, want %v", checkpointed, want)
	}
	// After a pause, the next receipt carries one.
	clock.Advance(checkpointPause)
	if e := wireCharge(t, a, b, 2, true); !hasCheckpoint(e) {
		t.Fatal("no checkpoint after a pause")
	} else if err := b.l.Charger().Accept(ctx, e, core.ClassContact); err != nil {
		t.Fatal(err)
	}
	cps, err := b.l.Checkpoints(ctx, Key{Context: ctxA, Peer: a.id()})
	if err != nil || len(cps) != 1 || cps[0].Epoch != 1000 {
		t.Fatalf("checkpoints %+v: %v", cps, err)
	}
	cp := cps[0]
	en := b.get(Key{Context: ctxA, Peer: a.id()})
	if cp.Nonce != uint64(n+1) || cp.Cumulative != 2*uint64(n+1) || cp.Src != a.id() || cp.Dst != b.id() {
		t.Fatalf("kept checkpoint %+v, receiver's entry %+v", cp, en)
	}
	if err := cp.Verify(); err != nil {
		t.Fatalf("a third party cannot verify it: %v", err)
	}
	// The checkpoint's head is the receiver's chain head: it commits to
	// every receipt before it.
	if rs, err := b.l.Receipts(ctx, Key{Context: ctxA, Peer: a.id()}, 1); err != nil || len(rs) != 1 || rs[0].Hash() != cp.Head {
		t.Fatalf("latest receipt %v (%v), checkpoint head %s", rs, err, cp.Head)
	}
}

// A peer on an older envelope protocol still gets each receipt signed whole,
// and a chain can move between the two forms.
func TestSignedAndCompactReceiptsMix(t *testing.T) {
	a, b, _ := pair(t)
	ctx := context.Background()
	for i, compact := range []bool{false, true, true, false, true} {
		e := wireCharge(t, a, b, 1, compact)
		if !compact && len(e.Receipt) != ReceiptSize {
			t.Fatalf("receipt %d: %d bytes signed whole", i, len(e.Receipt))
		}
		if err := b.l.Charger().Accept(ctx, e, core.ClassContact); err != nil {
			t.Fatalf("receipt %d: %v", i, err)
		}
	}
}

// What a sender may not do with compact receipts, each refused with its
// reason and without changing the receiver's store.
func TestCompactReceiptRefusals(t *testing.T) {
	ctx := context.Background()
	t.Run("withheld checkpoint", func(t *testing.T) {
		a, b, _ := pair(t)
		for i := 1; i < transport.CheckpointEvery; i++ {
			e := wireCharge(t, a, b, 1, true)
			e.Receipt = stripCheckpoint(e.Receipt)
			if err := b.l.Charger().Accept(ctx, e, core.ClassContact); err != nil {
				t.Fatalf("receipt %d: %v", i, err)
			}
		}
		e := wireCharge(t, a, b, 1, true)
		e.Receipt = stripCheckpoint(e.Receipt)
		before := b.dump()
		if err := b.l.Charger().Accept(ctx, e, core.ClassContact); !errors.Is(err, ErrCheckpointMissing) || Reason(err) != "checkpoint_missing" {
			t.Fatalf("receipt %d without a checkpoint in a row: %v", transport.CheckpointEvery, err)
		}
		if !maps.Equal(before, b.dump()) {
			t.Fatal("the refusal changed the store")
		}
	})
	t.Run("forged checkpoint", func(t *testing.T) {
		a, b, _ := pair(t)
		e := wireCharge(t, a, b, 1, true)
		e.Receipt = bytes.Clone(e.Receipt)
		e.Receipt[len(e.Receipt)-1] ^= 1
		if err := b.l.Charger().Accept(ctx, e, core.ClassContact); !errors.Is(err, ErrCheckpoint) {
			t.Fatalf("forged checkpoint: %v", err)
		}
	})
	t.Run("checkpoint understating the chain", func(t *testing.T) {
		a, b, _ := pair(t)
		for range 3 {
			if err := b.l.Charger().Accept(ctx, wireCharge(t, a, b, 5, true), core.ClassContact); err != nil {
				t.Fatal(err)
			}
		}
		// The sender signs, at nonce 4, that the chain paid 5 in all.
		r, err := a.l.Charge(ctx, Key{Context: ctxA, Peer: b.id()}, core.ClassContact, 5, core.Leakage{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		cp := checkpointOf(r, 5)
		if err := signCheckpoint(a.signer, cp); err != nil {
			t.Fatal(err)
		}
		e := &transport.Envelope{Context: ctxA, Src: a.id(), Dst: b.id(), Epoch: r.Epoch, Seq: r.Nonce, Cost: 5, Receipt: encodeCompact(r, cp)}
		if err := b.l.Charger().Accept(ctx, e, core.ClassContact); !errors.Is(err, ErrCheckpoint) {
			t.Fatalf("understated checkpoint: %v", err)
		}
	})
	t.Run("rewritten receipt", func(t *testing.T) {
		a, b, _ := pair(t)
		if err := b.l.Charger().Accept(ctx, wireCharge(t, a, b, 1, true), core.ClassContact); err != nil {
			t.Fatal(err)
		}
		// Receipt 2 names a prev other than receipt 1, under a valid
		// checkpoint of that other chain.
		r, err := a.l.Charge(ctx, Key{Context: ctxA, Peer: b.id()}, core.ClassContact, 1, core.Leakage{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		r.Prev = core.Hash{1}
		cp := checkpointOf(r, 2)
		if err := signCheckpoint(a.signer, cp); err != nil {
			t.Fatal(err)
		}
		e := &transport.Envelope{Context: ctxA, Src: a.id(), Dst: b.id(), Epoch: r.Epoch, Seq: r.Nonce, Cost: 1, Receipt: encodeCompact(r, cp)}
		if err := b.l.Charger().Accept(ctx, e, core.ClassContact); !errors.Is(err, ErrChain) {
			t.Fatalf("rewritten chain: %v", err)
		}
	})
	t.Run("replayed frame", func(t *testing.T) {
		a, b, _ := pair(t)
		e := wireCharge(t, a, b, 1, true)
		if err := b.l.Charger().Accept(ctx, e, core.ClassContact); err != nil {
			t.Fatal(err)
		}
		if err := b.l.Charger().Accept(ctx, e, core.ClassContact); !errors.Is(err, ErrReplay) {
			t.Fatalf("replayed checkpoint: %v", err)
		}
	})
}

// The count of unsigned receipts survives a restart: withholding
// checkpoints across the receiver's restart does not reset it.
func TestUncheckedCountSurvivesRestart(t *testing.T) {
	a, b, _ := pair(t)
	ctx := context.Background()
	half := transport.CheckpointEvery / 2
	send := func(k int) error {
		for i := 0; i < k; i++ {
			e := wireCharge(t, a, b, 1, true)
			e.Receipt = stripCheckpoint(e.Receipt)
			if err := b.l.Charger().Accept(ctx, e, core.ClassContact); err != nil {
				return err
			}
		}
		return nil
	}
	if err := send(half); err != nil {
		t.Fatal(err)
	}
	// Let the queued records commit, then restart the receiver.
	if _, err := b.l.Get(ctx, Key{Context: ctxA, Peer: a.id()}); err != nil {
		t.Fatal(err)
	}
	waitQuiet(t, b)
	b.reopen()
	if err := send(transport.CheckpointEvery - half - 1); err != nil {
		t.Fatal(err)
	}
	if err := send(1); !errors.Is(err, ErrCheckpointMissing) {
		t.Fatalf("after the restart: %v", err)
	}
}

// Layout 2 stores (receipts signed whole) open as layout 3: receive records
// gain an unchecked count of 0, and the chains go on.
func TestMigrateLayout2To3(t *testing.T) {
	a, b, _ := pair(t)
	ctx := context.Background()
	for range 3 {
		if err := b.l.Charger().Accept(ctx, wireCharge(t, a, b, 1, false), core.ClassContact); err != nil {
			t.Fatal(err)
		}
	}
	waitQuiet(t, b)
	// Put the store back to layout 2: version 1 receive records, no
	// checkpoints bucket contents.
	b.writeLayout(2, func(bs *buckets) error {
		return bs.recv.ForEach(func(k, v []byte) error {
			rec, err := decodeRecvRecord(v)
			if err != nil {
				return err
			}
			return bs.recv.Put(bytes.Clone(k), encodeRecvRecordV1(rec))
		})
	})
	b.reopen()
	dump := b.dump()
	if v := dump[string(bucketMeta)+"/"+string(keyLayout)]; v != string([]byte{layoutVersion}) {
		t.Fatalf("layout %q after open", v)
	}
	recs := 0
	for key, v := range dump {
		if len(key) > len(bucketRecv) && key[:len(bucketRecv)+1] == string(bucketRecv)+"/" {
			recs++
			if len(v) != recvRecordLen || v[0] != recvRecordV2 {
				t.Fatalf("receive record %x not migrated: %x", key, v)
			}
		}
	}
	if recs == 0 {
		t.Fatal("no receive record to migrate")
	}
	if err := b.l.Charger().Accept(ctx, wireCharge(t, a, b, 1, true), core.ClassContact); err != nil {
		t.Fatalf("the chain does not go on: %v", err)
	}
}

// encodeRecvRecordV1 is the layout-2 receive record encoding, which had no
// unchecked count.
func encodeRecvRecordV1(r recvRecord) []byte {
	b := r.encode()[:recvRecordLenV1]
	b[0] = recvRecordV1
	return b
}

// stripCheckpoint turns a compact receipt with a checkpoint into one
// without, as a sender withholding checkpoints would send it.
func stripCheckpoint(raw []byte) []byte {
	out := bytes.Clone(raw[:compactLen])
	out[compactLen-1] = 0
	return out
}

// waitQuiet waits until every accepted receipt's record is durable: Accept
// queues its commit and returns, and a read queued after it waits for it.
func waitQuiet(t *testing.T, d *device) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.l.barrier(ctx, func(*buckets) error { return nil }); err != nil {
		t.Fatal(err)
	}
}

func FuzzDecodeCompact(f *testing.F) {
	a := seededSigner(1)
	r := &Receipt{Context: ctxA, Src: a.DeviceID(), Dst: core.DeviceID{2}, Epoch: 7, Period: 1, Cost: 3, Nonce: 2, Prev: core.Hash{1}}
	cp := checkpointOf(r, 9)
	if err := signCheckpoint(a, cp); err != nil {
		f.Fatal(err)
	}
	f.Add(encodeCompact(r, nil), uint64(2))
	f.Add(encodeCompact(r, cp), uint64(2))
	f.Fuzz(func(t *testing.T, raw []byte, seq uint64) {
		e := &transport.Envelope{Context: ctxA, Src: r.Src, Dst: r.Dst, Epoch: 7, Seq: seq, Cost: 3, Receipt: raw}
		got, gotCP, err := decodeCompact(e)
		if err != nil {
			return
		}
		// What decodes re-encodes to the same bytes.
		if again := encodeCompact(got, gotCP); !bytes.Equal(again, raw) {
			t.Fatalf("re-encoded %x, got %x", again, raw)
		}
	})
}

func FuzzDecodeCheckpoint(f *testing.F) {
	a := seededSigner(1)
	r := &Receipt{Context: ctxA, Src: a.DeviceID(), Dst: core.DeviceID{2}, Epoch: 7, Period: 1, Cost: 3, Nonce: 2, Prev: core.Hash{1}}
	cp := checkpointOf(r, 9)
	if err := signCheckpoint(a, cp); err != nil {
		f.Fatal(err)
	}
	f.Add(cp.Encode())
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, err := DecodeCheckpoint(raw)
		if err != nil {
			return
		}
		if again := got.Encode(); !bytes.Equal(again, raw) {
			t.Fatalf("re-encoded %x, got %x", again, raw)
		}
	})
}

package budget

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"go.uber.org/zap"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
)

// Layout migrations of ext/budget. Each is numbered by the layout it
// produces, runs in the transaction that records that layout, and is frozen
// once released: it reads the old records with its own decoders.

// prepare brings the store to this layout and to this ledger's budget
// period before anything is loaded, in one transaction, and writes only when
// something changes: a store of layout 1 is migrated (migrate1to2), and send
// records of another period are carried into this one (convertPeriods).
// oldEpoch is the epoch length a layout-1 store is numbered in.
func (l *Ledger) prepare(ctx context.Context, oldEpoch time.Duration) error {
	var version byte
	convert := false
	err := l.j.ViewExt(ctx, extOwner, func(root *journal.ExtStore) error {
		bs := viewBuckets(root)
		var err error
		if version, err = bs.layout(); err != nil || version != layoutVersion || bs.send == nil {
			return err
		}
		return bs.send.ForEach(func(_, v []byte) error {
			rec, err := decodeSendRecord(v)
			if err != nil {
				return err
			}
			convert = convert || rec.period != l.period
			return nil
		})
	})
	if err != nil {
		return err
	}
	if version > layoutVersion {
		return fmt.Errorf("ext/%s layout version %d is newer than %d: %w", extOwner, version, layoutVersion, core.ErrFailedPrecondition)
	}
	if version == layoutVersion && !convert {
		return nil
	}
	wall := l.epochs.Current() // nothing is restored yet: the clock's epoch
	var migrated, converted int
	_, err = l.j.Commit(ctx, journal.Txn{Ops: []journal.TxOp{func(tx *journal.ExtTx) error {
		migrated, converted = 0, 0 // the op may run again if the batch is retried
		bs, err := openBuckets(tx)
		if err != nil {
			return err
		}
		v, err := bs.layout()
		if err != nil {
			return err
		}
		switch v {
		case 0: // a new store
		case 1, 2:
			if v == 1 {
				if migrated, err = migrate1to2(bs, oldEpoch, wall, l.period); err != nil {
					return fmt.Errorf("migrate layout 1 to 2: %w", err)
				}
			}
			n, err := migrate2to3(bs)
			if err != nil {
				return fmt.Errorf("migrate layout 2 to 3: %w", err)
			}
			migrated += n
		case layoutVersion:
		default:
			return fmt.Errorf("ext/%s layout version %d: %w", extOwner, v, core.ErrFailedPrecondition)
		}
		if converted, err = convertPeriods(bs, l.period); err != nil {
			return err
		}
		return bs.meta.Put(keyLayout, []byte{layoutVersion})
	}}})
	if err != nil {
		return fmt.Errorf("prepare store: %w", err)
	}
	if migrated > 0 {
		l.log.Info("budget store migrated", zap.Int("layout", layoutVersion), zap.Int("records", migrated), zap.Duration("epoch", EpochLength))
	}
	if converted > 0 {
		l.log.Info("budget period changed: spends carried into the new periods", zap.Int("budgets", converted), zap.Duration("period", time.Duration(l.period)*EpochLength))
	}
	return nil
}

// migrate2to3 rewrites the receive records in version 2, which counts the
// unsigned receipts since a chain's last checkpoint: every receipt of
// layout 2 came signed whole, so the count is 0. (openBuckets has created
// the checkpoints bucket.) It returns how many records it rewrote.
func migrate2to3(bs *buckets) (int, error) {
	type rewrite struct{ key, value []byte }
	var out []rewrite
	err := bs.recv.ForEach(func(k, v []byte) error {
		if len(v) > 0 && v[0] == recvRecordV2 {
			return nil // the op ran before in this batch
		}
		rec, err := decodeRecvRecord(v)
		if err != nil {
			return err
		}
		out = append(out, rewrite{bytes.Clone(k), rec.encode()})
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, w := range out {
		if err := bs.recv.Put(w.key, w.value); err != nil {
			return 0, err
		}
	}
	return len(out), nil
}

// layout is the store's layout version, 0 for a new store.
func (bs *buckets) layout() (byte, error) {
	if bs.meta == nil {
		return 0, nil
	}
	v := bs.meta.Get(keyLayout)
	switch len(v) {
	case 0:
		return 0, nil
	case 1:
		return v[0], nil
	}
	return 0, fmt.Errorf("layout version of %d bytes: %w", len(v), ErrCorrupt)
}

// convertPeriods carries the spend of every send record whose budget period
// is not k epochs into the period of k epochs that holds the record's epoch.
// The periods overlap in that epoch, so the spend stays counted where it may
// have happened; what was spent in an earlier stretch of a longer new period
// is not known and not counted. It returns how many records it changed.
func convertPeriods(bs *buckets, k uint32) (int, error) {
	type change struct {
		key []byte
		rec sendRecord
	}
	var changes []change
	err := bs.send.ForEach(func(key, v []byte) error {
		rec, err := decodeSendRecord(v)
		if err != nil {
			return err
		}
		if rec.period != k {
			rec.period = k
			changes = append(changes, change{bytes.Clone(key), rec})
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, c := range changes {
		if err := bs.send.Put(c.key, c.rec.encode()); err != nil {
			return 0, err
		}
	}
	return len(changes), nil
}

// migrate1to2 renumbers a layout-1 store in protocol epochs. Layout 1
// numbered epochs in units of the epoch length the daemon was configured
// with, which it did not record: oldEpoch is the best knowledge of it (the
// configured budget period, unchanged unless the operator changed it with
// the upgrade). Each epoch becomes the protocol epoch its start falls in
// (epochV1), so a receipt chain that is still current continues on both of
// its devices. Send records take budget period k with their spend; receive
// chains and audit-ring receipts that land on one protocol epoch keep the
// latest. Receive, leakage and limit records keep their encoding; the ring
// keeps its version 1 receipts, which are never accepted from a peer again.
// It returns how many records it renumbered.
func migrate1to2(bs *buckets, oldEpoch time.Duration, wall core.Epoch, k uint32) (int, error) {
	conv := func(e core.Epoch) core.Epoch { return epochV1(e, oldEpoch, wall) }
	n := 0
	// send: ctx ‖ peer -> the version 2 record.
	var sends [][2][]byte
	err := bs.send.ForEach(func(key, v []byte) error {
		old, err := decodeSendRecordV1(v)
		if err != nil {
			return err
		}
		rec := sendRecord{class: old.class, epoch: conv(old.epoch), period: k, spent: old.spent, nonce: old.nonce, cost: old.spent, head: old.head}
		sends = append(sends, [2][]byte{bytes.Clone(key), rec.encode()})
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, kv := range sends {
		if err := bs.send.Put(kv[0], kv[1]); err != nil {
			return 0, err
		}
	}
	n += len(sends)
	// recv: ctx ‖ src ‖ epoch, renumbered; keys sort by old epoch, so the
	// latest chain of a protocol epoch is put last and stays.
	m, err := rekey(bs.recv, keyLen, func(key, v []byte) error {
		if _, _, err := parseRecvKey(key); err != nil {
			return err
		}
		_, err := decodeRecvRecord(v)
		return err
	}, conv)
	if err != nil {
		return 0, err
	}
	n += m
	// receipts: ctx ‖ peer ‖ dir ‖ epoch ‖ nonce, renumbered likewise.
	m, err = rekey(bs.receipts, keyLen+1, func(key, v []byte) error {
		if len(key) != keyLen+1+16 {
			return fmt.Errorf("receipt key of %d bytes: %w", len(key), ErrCorrupt)
		}
		if _, err := DecodeReceipt(v); err != nil {
			return fmt.Errorf("stored receipt: %w: %w", err, ErrCorrupt)
		}
		return nil
	}, conv)
	if err != nil {
		return 0, err
	}
	n += m
	// leak: ctx -> the same record in its renumbered epoch.
	var leaks [][2][]byte
	err = bs.leak.ForEach(func(key, v []byte) error {
		rec, err := decodeLeakRecord(v)
		if err != nil {
			return err
		}
		rec.epoch = conv(rec.epoch)
		leaks = append(leaks, [2][]byte{bytes.Clone(key), rec.encode()})
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, kv := range leaks {
		if err := bs.leak.Put(kv[0], kv[1]); err != nil {
			return 0, err
		}
	}
	return n + len(leaks), nil
}

// rekey renumbers the 8-byte epoch at offset off of every key of b with
// conv, after check accepts the entry; values are kept.
func rekey(b *journal.ExtStore, off int, check func(key, v []byte) error, conv func(core.Epoch) core.Epoch) (int, error) {
	var keys, vals [][]byte
	err := b.ForEach(func(key, v []byte) error {
		if err := check(key, v); err != nil {
			return err
		}
		keys, vals = append(keys, bytes.Clone(key)), append(vals, bytes.Clone(v))
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, key := range keys {
		if err := b.Delete(key); err != nil {
			return 0, err
		}
	}
	for i, key := range keys {
		e := conv(core.Epoch(binary.BigEndian.Uint64(key[off:])))
		binary.BigEndian.PutUint64(key[off:], uint64(e))
		if err := b.Put(key, vals[i]); err != nil {
			return 0, err
		}
	}
	return len(keys), nil
}

// epochV1 is the protocol epoch that the start of layout-1 epoch e, of
// length d, falls in. A start beyond wall+1 (wall is the current epoch; one
// ahead is as far as a peer could move this device) cannot be one this
// device lived through: it was numbered under a shorter setting than d, what
// layout 1 did after a change (the bug layout 2 ends), and its time is lost.
// It is placed in wall, where its chain, if it goes on, continues, and which
// a receiver's window accepts.
func epochV1(e core.Epoch, d time.Duration, wall core.Epoch) core.Epoch {
	if d <= 0 {
		d = DefaultPeriod // layout 1's default epoch
	}
	if uint64(e) > math.MaxInt64/uint64(d) {
		return wall
	}
	if p := core.Epoch(uint64(e) * uint64(d) / uint64(EpochLength)); p <= wall+1 {
		return p
	}
	return wall
}

// sendRecordV1 is the layout-1 send record: version(1)=1 class(1) epoch(8)
// spent(8) nonce(8) head(32); the chain and the spend were one epoch's.
type sendRecordV1 struct {
	class        core.Class
	epoch        core.Epoch
	spent, nonce uint64
	head         core.Hash
}

const sendRecordV1Len = 1 + 1 + 8 + 8 + 8 + 32

func decodeSendRecordV1(b []byte) (sendRecordV1, error) {
	var s sendRecordV1
	if len(b) != sendRecordV1Len || b[0] != 1 {
		return s, fmt.Errorf("layout-1 send record of %d bytes: %w", len(b), ErrCorrupt)
	}
	s.class = core.Class(b[1])
	s.epoch = core.Epoch(binary.BigEndian.Uint64(b[2:]))
	s.spent = binary.BigEndian.Uint64(b[10:])
	s.nonce = binary.BigEndian.Uint64(b[18:])
	copy(s.head[:], b[26:])
	if err := checkChain(s.class, s.nonce, s.spent, s.head); err != nil {
		return sendRecordV1{}, fmt.Errorf("layout-1 send record: %w", err)
	}
	return s, nil
}

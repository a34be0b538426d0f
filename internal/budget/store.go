package budget

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
)

// Storage: the journal's extension bucket ext/budget, written only through
// TxOps so that every write commits atomically with the facts it accompanies.
// The layout is drawn in doc.go; every name is declared here.
const (
	extOwner = "budget"
	// layoutVersion 3: receive records count the unsigned receipts since
	// the chain's last checkpoint, and a checkpoints bucket keeps each
	// chain's latest signed checkpoint (migrate2to3). Version 2: epochs are
	// protocol epochs (EpochLength) everywhere, and send records name their
	// budget period. Version 1 numbered epochs in units of the configured
	// epoch length; migrate1to2 converts it.
	layoutVersion = 3
	// ReceiptRing is how many recent receipts per (context, peer, direction,
	// epoch) are kept for audit; older ones are summarised by the epoch
	// summary fact, whose last hash commits to the whole chain.
	ReceiptRing = 64
)

var (
	bucketMeta     = []byte("meta")
	bucketSend     = []byte("send")
	bucketRecv     = []byte("recv")
	bucketLeak     = []byte("leak")
	bucketLimits   = []byte("limits")
	bucketReceipts = []byte("receipts")
	// bucketCheckpoints: recvKey → the latest checkpoint the peer signed of
	// that chain: the evidence of what it paid, kept as long as the chain.
	bucketCheckpoints = []byte("checkpoints")
	keyLayout         = []byte("layout_version")
)

// Directions of a stored receipt.
const (
	dirSent     byte = 1
	dirReceived byte = 2
)

// recordVersion of the leakage and limit records; sendVersion of
// the send record (1 was the layout-1 send record, migrate.go).
const (
	recordVersion = 1
	sendVersion   = 2
)

// sendRecord is the sender side of one (context, peer): the receipt chain of
// its latest epoch and the spend of that epoch's budget period. nonce 0
// means no receipt this epoch.
type sendRecord struct {
	class core.Class
	// epoch of the chain; the spend is that of its period.
	epoch core.Epoch
	// period is the budget period in epochs that spent covers: the one of
	// period epochs holding epoch.
	period uint32
	spent  uint64
	nonce  uint64
	// cost is the chain's total: what its receipts paid this epoch.
	cost uint64
	head core.Hash
}

const sendRecordLen = 1 + 1 + 8 + 4 + 8 + 8 + 8 + 32

// encode: version(1)=2 class(1) epoch(8) period(4) spent(8) nonce(8) cost(8)
// head(32).
func (s sendRecord) encode() []byte {
	b := make([]byte, 0, sendRecordLen)
	b = append(b, sendVersion, byte(s.class))
	b = binary.BigEndian.AppendUint64(b, uint64(s.epoch))
	b = binary.BigEndian.AppendUint32(b, s.period)
	b = binary.BigEndian.AppendUint64(b, s.spent)
	b = binary.BigEndian.AppendUint64(b, s.nonce)
	b = binary.BigEndian.AppendUint64(b, s.cost)
	return append(b, s.head[:]...)
}

func decodeSendRecord(b []byte) (sendRecord, error) {
	var s sendRecord
	if len(b) != sendRecordLen || b[0] != sendVersion {
		return s, fmt.Errorf("send record of %d bytes: %w", len(b), ErrCorrupt)
	}
	s.class = core.Class(b[1])
	s.epoch = core.Epoch(binary.BigEndian.Uint64(b[2:]))
	s.period = binary.BigEndian.Uint32(b[10:])
	s.spent = binary.BigEndian.Uint64(b[14:])
	s.nonce = binary.BigEndian.Uint64(b[22:])
	s.cost = binary.BigEndian.Uint64(b[30:])
	copy(s.head[:], b[38:])
	if err := s.check(); err != nil {
		return sendRecord{}, fmt.Errorf("send record: %w", err)
	}
	return s, nil
}

// check: a chain as checkChain says, within a period of valid length whose
// spend includes it.
func (s sendRecord) check() error {
	if err := checkChain(s.class, s.nonce, s.cost, s.head); err != nil {
		return err
	}
	switch {
	case s.period == 0 || s.period > maxPeriodEpochs:
		return fmt.Errorf("budget period of %d epochs: %w", s.period, ErrCorrupt)
	case s.cost > s.spent:
		return fmt.Errorf("chain cost %d above the period's spend %d: %w", s.cost, s.spent, ErrCorrupt)
	}
	return nil
}

// at returns the record as it stands in epoch e (not before its own): a
// later epoch starts a new, empty chain, and a later period of k epochs
// also nothing spent. A record that never was (period 0) takes period k.
func (s sendRecord) at(e core.Epoch, k uint32) sendRecord {
	if s.period == 0 {
		s.period = k
	}
	if e <= s.epoch {
		return s
	}
	n := sendRecord{class: s.class, epoch: e, period: s.period}
	if periodStart(e, s.period) == periodStart(s.epoch, s.period) {
		n.spent = s.spent
	}
	return n
}

// checkChain: a chain with no receipt has no head and no cost; one with
// receipts has a head.
func checkChain(c core.Class, nonce, cost uint64, head core.Hash) error {
	switch {
	case !c.Valid():
		return fmt.Errorf("class %d: %w", c, ErrCorrupt)
	case nonce == 0 && (cost != 0 || !head.IsZero()):
		return fmt.Errorf("spend without receipts: %w", ErrCorrupt)
	case nonce != 0 && head.IsZero():
		return fmt.Errorf("receipts without a head: %w", ErrCorrupt)
	}
	return nil
}

// recvRecord is the receiver side of one (context, src, epoch) chain.
type recvRecord struct {
	class    core.Class
	received uint64
	nonce    uint64
	head     core.Hash
	// unchecked counts the receipts accepted since the chain's last
	// signature (a checkpoint, or a receipt signed whole).
	unchecked uint32
}

// Receive record versions: 1 had no unchecked count (every receipt was
// signed whole, so it is 0); migrate2to3 rewrites them as version 2.
const (
	recvRecordV1    = 1
	recvRecordV2    = 2
	recvRecordLenV1 = 1 + 1 + 8 + 8 + 32
	recvRecordLen   = recvRecordLenV1 + 4
)

// encode: version(1)=2 class(1) received(8) nonce(8) head(32) unchecked(4).
func (r recvRecord) encode() []byte {
	b := make([]byte, 0, recvRecordLen)
	b = append(b, recvRecordV2, byte(r.class))
	b = binary.BigEndian.AppendUint64(b, r.received)
	b = binary.BigEndian.AppendUint64(b, r.nonce)
	b = append(b, r.head[:]...)
	return binary.BigEndian.AppendUint32(b, r.unchecked)
}

func decodeRecvRecord(b []byte) (recvRecord, error) {
	var r recvRecord
	switch {
	case len(b) == recvRecordLen && b[0] == recvRecordV2:
		r.unchecked = binary.BigEndian.Uint32(b[recvRecordLenV1:])
	case len(b) == recvRecordLenV1 && b[0] == recvRecordV1:
	default:
		return r, fmt.Errorf("receive record of %d bytes: %w", len(b), ErrCorrupt)
	}
	r.class = core.Class(b[1])
	r.received = binary.BigEndian.Uint64(b[2:])
	r.nonce = binary.BigEndian.Uint64(b[10:])
	copy(r.head[:], b[18:50])
	if err := checkChain(r.class, r.nonce, r.received, r.head); err != nil {
		return recvRecord{}, fmt.Errorf("receive record: %w", err)
	}
	if uint64(r.unchecked) > r.nonce {
		return recvRecord{}, fmt.Errorf("receive record: %d unchecked of %d receipts: %w", r.unchecked, r.nonce, ErrCorrupt)
	}
	return r, nil
}

// leakRecord is the leakage consumed in one context in its latest epoch.
type leakRecord struct {
	class    core.Class
	epoch    core.Epoch
	consumed core.Leakage
}

const leakRecordLen = 1 + 1 + 8 + 3*8

// encode: version(1) class(1) epoch(8) external(8) neighbor(8) in_group(8).
func (r leakRecord) encode() []byte {
	b := make([]byte, 0, leakRecordLen)
	b = append(b, recordVersion, byte(r.class))
	b = binary.BigEndian.AppendUint64(b, uint64(r.epoch))
	for _, v := range r.consumed {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	return b
}

func decodeLeakRecord(b []byte) (leakRecord, error) {
	var r leakRecord
	if len(b) != leakRecordLen || b[0] != recordVersion {
		return r, fmt.Errorf("leakage record of %d bytes: %w", len(b), ErrCorrupt)
	}
	r.class = core.Class(b[1])
	if !r.class.Valid() {
		return leakRecord{}, fmt.Errorf("leakage record class %d: %w", b[1], ErrCorrupt)
	}
	r.epoch = core.Epoch(binary.BigEndian.Uint64(b[2:]))
	for i := range r.consumed {
		r.consumed[i] = binary.BigEndian.Uint64(b[10+8*i:])
	}
	return r, nil
}

// encodeLimit: version(1) limit(8).
func encodeLimit(limit uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{recordVersion}, limit)
}

func decodeLimit(b []byte) (uint64, error) {
	if len(b) != 9 || b[0] != recordVersion {
		return 0, fmt.Errorf("limit record of %d bytes: %w", len(b), ErrCorrupt)
	}
	return binary.BigEndian.Uint64(b[1:]), nil
}

// Keys. Fixed-width, so prefixes are unambiguous and cursors walk in order.

const keyLen = 64

func keyBytes(k Key) []byte {
	b := make([]byte, 0, keyLen+17)
	b = append(b, k.Context[:]...)
	return append(b, k.Peer[:]...)
}

func parseKey(b []byte) (Key, error) {
	var k Key
	if len(b) != keyLen {
		return k, fmt.Errorf("key of %d bytes: %w", len(b), ErrCorrupt)
	}
	copy(k.Context[:], b)
	copy(k.Peer[:], b[32:])
	return k, nil
}

// recvKey: context(32) src(32) epoch(8).
func recvKey(k Key, e core.Epoch) []byte {
	return binary.BigEndian.AppendUint64(keyBytes(k), uint64(e))
}

func parseRecvKey(b []byte) (Key, core.Epoch, error) {
	if len(b) != keyLen+8 {
		return Key{}, 0, fmt.Errorf("receive key of %d bytes: %w", len(b), ErrCorrupt)
	}
	k, _ := parseKey(b[:keyLen])
	return k, core.Epoch(binary.BigEndian.Uint64(b[keyLen:])), nil
}

// receiptKey: context(32) peer(32) dir(1) epoch(8) nonce(8).
func receiptKey(k Key, dir byte, e core.Epoch, nonce uint64) []byte {
	b := append(keyBytes(k), dir)
	b = binary.BigEndian.AppendUint64(b, uint64(e))
	return binary.BigEndian.AppendUint64(b, nonce)
}

// buckets are the sub-buckets of ext/budget, created on first use.
type buckets struct {
	meta, send, recv, leak, limits, receipts, checkpoints *journal.ExtStore
}

func openBuckets(tx *journal.ExtTx) (*buckets, error) {
	root, err := tx.Bucket(extOwner)
	if err != nil {
		return nil, err
	}
	var bs buckets
	for _, x := range []struct {
		name []byte
		dst  **journal.ExtStore
	}{{bucketMeta, &bs.meta}, {bucketSend, &bs.send}, {bucketRecv, &bs.recv}, {bucketLeak, &bs.leak}, {bucketLimits, &bs.limits}, {bucketReceipts, &bs.receipts}, {bucketCheckpoints, &bs.checkpoints}} {
		if *x.dst, err = root.Sub(x.name); err != nil {
			return nil, err
		}
	}
	return &bs, nil
}

// viewBuckets returns the sub-buckets of an existing ext/budget for reading;
// absent ones are nil.
func viewBuckets(root *journal.ExtStore) *buckets {
	if root == nil {
		return &buckets{}
	}
	return &buckets{
		meta: root.SubIfExists(bucketMeta), send: root.SubIfExists(bucketSend), recv: root.SubIfExists(bucketRecv),
		leak: root.SubIfExists(bucketLeak), limits: root.SubIfExists(bucketLimits), receipts: root.SubIfExists(bucketReceipts),
		checkpoints: root.SubIfExists(bucketCheckpoints),
	}
}

func (bs *buckets) getSend(k Key) (sendRecord, bool, error) {
	if bs.send == nil {
		return sendRecord{}, false, nil
	}
	v := bs.send.Get(keyBytes(k))
	if v == nil {
		return sendRecord{}, false, nil
	}
	r, err := decodeSendRecord(v)
	return r, true, err
}

func (bs *buckets) getRecv(k Key, e core.Epoch) (recvRecord, bool, error) {
	if bs.recv == nil {
		return recvRecord{}, false, nil
	}
	v := bs.recv.Get(recvKey(k, e))
	if v == nil {
		return recvRecord{}, false, nil
	}
	r, err := decodeRecvRecord(v)
	return r, true, err
}

func (bs *buckets) getLeak(c core.ContextID) (leakRecord, bool, error) {
	if bs.leak == nil {
		return leakRecord{}, false, nil
	}
	v := bs.leak.Get(c[:])
	if v == nil {
		return leakRecord{}, false, nil
	}
	r, err := decodeLeakRecord(v)
	return r, true, err
}

// putReceipt stores r in k's ring of direction dir and drops the receipt
// ReceiptRing places before it. The first receipt of an epoch also drops
// every older epoch but the most recent one, so a key keeps at most two
// epochs' tails per direction.
func (bs *buckets) putReceipt(k Key, dir byte, r *Receipt) error {
	if err := bs.receipts.Put(receiptKey(k, dir, r.Epoch, r.Nonce), r.Encode()); err != nil {
		return err
	}
	if r.Nonce > ReceiptRing {
		if err := bs.receipts.Delete(receiptKey(k, dir, r.Epoch, r.Nonce-ReceiptRing)); err != nil {
			return err
		}
	}
	if r.Nonce != 1 {
		return nil
	}
	prefix := append(keyBytes(k), dir)
	var older [][]byte
	var newest core.Epoch
	c := bs.receipts.Cursor()
	for key, _ := c.Seek(prefix); key != nil && bytes.HasPrefix(key, prefix); key, _ = c.Next() {
		e := core.Epoch(binary.BigEndian.Uint64(key[keyLen+1:]))
		if e >= r.Epoch {
			break
		}
		newest = e // keys sort by epoch: the last one seen is the newest
		older = append(older, bytes.Clone(key))
	}
	for _, key := range older {
		if core.Epoch(binary.BigEndian.Uint64(key[keyLen+1:])) == newest {
			continue
		}
		if err := bs.receipts.Delete(key); err != nil {
			return err
		}
	}
	return nil
}

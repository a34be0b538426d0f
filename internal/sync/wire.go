package sync

import (
	"encoding/binary"
	"fmt"

	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
	"github.com/aura-p2p/aura/internal/sync/riblt"
)

// ProtocolSync carries reconciliation sessions. Every message is one frame of
// the guard chain in the context whose namespace it reconciles, so it is
// charged to that context's budget and reaches only its members; the
// namespace itself is never named on the wire.
const ProtocolSync protocol.ID = "/aura/sync/1"

// Message types of a session.
const (
	TypeOpen   = "sync.open"   // initiator: its summary and the first symbols
	TypeSketch = "sync.sketch" // initiator: more symbols
	TypeReply  = "sync.reply"  // responder: what the symbols showed
	TypeRange  = "sync.range"  // either side: range-based reconciliation
	TypeWant   = "sync.want"   // either side: send me these facts
	TypeBatch  = "sync.batch"  // either side: facts
	TypeEnd    = "sync.end"    // either side: the session is over
)

// wireVersion is the first byte of every sync message. A peer that reads
// another version answers with an end message naming it, never silence.
const wireVersion = 1

// Wire limits. Messages fit the transport's payload bound with room for the
// envelope; each limit makes a decoder refuse before it allocates.
const (
	// maxMessage bounds a sync payload.
	maxMessage = 60 << 10
	// maxIDs bounds the ids of one id list (32 B each).
	maxIDs = (maxMessage - 64) / 32
	// maxWants bounds the id prefixes of one want (8 B each).
	maxWants = (maxMessage - 64) / prefixLen
	// prefixLen is how much of an id a want names: ids are SHA-256, so 8
	// bytes single out a fact among any namespace's (a collision only
	// sends a fact too many), at a quarter of the bytes.
	prefixLen = 8
	// maxRanges bounds the ranges of one range message.
	maxRanges = 1024
	// maxReason bounds an end message's reason.
	maxReason = 64
	// fpLen is the bytes of a range fingerprint on the wire: a truncated
	// SHA-256, enough against accidents; a lying member only hurts its own
	// sessions, which the final check and the periodic range pass repair.
	fpLen = 16
)

// sessionID names a session between two devices; the initiator draws it.
type sessionID [8]byte

// Reply statuses.
const (
	replyEqual     = 1 // same set: done
	replyMore      = 2 // not decoded yet: send more symbols
	replyDecoded   = 3 // decoded: Want lists what the responder lacks; Push facts follow
	replyExhausted = 4 // the sketch is not worth it or ran out: switch to ranges
	replyFull      = 5 // one side is empty: Push facts follow, or Want is "everything"
)

// openMsg starts a session.
type openMsg struct {
	Count   uint64
	FP      [fpLen]byte
	Symbols riblt.Batch // the first symbols (Start 0); may be empty
	// RangeOnly asks for range-based reconciliation at once.
	RangeOnly bool
}

// sketchMsg carries more symbols. RoundEnd is the index one past the last
// symbol of the round this message belongs to, so the responder can compute
// its own symbols of the whole round at once when they lie past its cache.
type sketchMsg struct {
	RoundEnd uint64
	Symbols  riblt.Batch
}

// replyMsg answers symbols.
type replyMsg struct {
	Status uint8
	Count  uint64 // the responder's set size
	// Estimate is the responder's estimate of the difference (0: none yet).
	Estimate uint64
	// Push is how many facts the responder is about to send.
	Push uint64
	// WantAll: the responder has nothing; send everything.
	WantAll bool
	Want    []idPrefix
}

// idPrefix names a wanted fact by its id's first bytes.
type idPrefix [prefixLen]byte

func prefixOf(id core.FactID) idPrefix {
	var p idPrefix
	copy(p[:], id[:prefixLen])
	return p
}

// Range modes.
const (
	modeSkip        = 0
	modeFingerprint = 1
	modeIDList      = 2
)

// bound is a range's exclusive upper end; Inf means none.
type bound struct {
	Inf     bool
	Lamport uint64
	Prefix  []byte // the id is Prefix followed by zeros
}

func (b bound) key() journal.FactKey {
	if b.Inf {
		return journal.FactKey{}
	}
	k := journal.FactKey{Lamport: b.Lamport}
	copy(k.ID[:], b.Prefix)
	return k
}

// wireRange is one range of a range message: [previous bound, Upper).
type wireRange struct {
	Upper bound
	Mode  uint8
	Count uint64      // modeFingerprint
	FP    [fpLen]byte // modeFingerprint
	IDs   []core.FactID
}

// rangeMsg covers the whole key space with contiguous ranges, from the least
// key to infinity.
type rangeMsg struct {
	Ranges []wireRange
}

// batchMsg carries facts. Missing counts ids asked for that the sender does
// not hold (so the asker stops waiting for them).
type batchMsg struct {
	Missing uint64
	Facts   []*journal.SignedFact
}

// errMalformed marks any sync message that does not parse.
var errMalformed = fmt.Errorf("malformed sync message: %w", core.ErrInvalidArgument)

func malformed(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), errMalformed)
}

// header prefixes every message: version and session id.
func header(sid sessionID) []byte {
	b := make([]byte, 0, 64)
	b = append(b, wireVersion)
	return append(b, sid[:]...)
}

// parseHeader splits a message into its session and body.
func parseHeader(p []byte) (sessionID, []byte, error) {
	var sid sessionID
	if len(p) < 1+len(sid) {
		return sid, nil, malformed("%d bytes", len(p))
	}
	if p[0] != wireVersion {
		return sid, nil, fmt.Errorf("sync wire version %d, this device speaks %d: %w", p[0], wireVersion, core.ErrFailedPrecondition)
	}
	copy(sid[:], p[1:9])
	return sid, p[9:], nil
}

// reader reads a body strictly: canonical varints, no trailing bytes.
type reader struct {
	p   []byte
	err error
}

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *reader) uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.p)
	if n <= 0 {
		r.fail(malformed("%s: bad varint", what))
		return 0
	}
	// Canonical: the shortest encoding only, so one message has one form.
	if n != len(binary.AppendUvarint(nil, v)) {
		r.fail(malformed("%s: non-minimal varint", what))
		return 0
	}
	r.p = r.p[n:]
	return v
}

func (r *reader) bytes(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.p) < n {
		r.fail(malformed("%s truncated", what))
		return nil
	}
	b := r.p[:n]
	r.p = r.p[n:]
	return b
}

func (r *reader) byte1(what string) byte {
	b := r.bytes(1, what)
	if b == nil {
		return 0
	}
	return b[0]
}

func (r *reader) ids(what string) []core.FactID {
	n := r.uvarint(what)
	if r.err != nil {
		return nil
	}
	if n > maxIDs || n*32 > uint64(len(r.p)) {
		r.fail(malformed("%s: %d ids", what, n))
		return nil
	}
	out := make([]core.FactID, n)
	for i := range out {
		copy(out[i][:], r.bytes(32, what))
	}
	return out
}

func (r *reader) end() error {
	if r.err == nil && len(r.p) > 0 {
		r.fail(malformed("%d trailing bytes", len(r.p)))
	}
	return r.err
}

func appendPrefixes(b []byte, ps []idPrefix) []byte {
	b = binary.AppendUvarint(b, uint64(len(ps)))
	for i := range ps {
		b = append(b, ps[i][:]...)
	}
	return b
}

func (r *reader) prefixes(what string) []idPrefix {
	n := r.uvarint(what)
	if r.err != nil {
		return nil
	}
	if n > maxWants || n*prefixLen > uint64(len(r.p)) {
		r.fail(malformed("%s: %d id prefixes", what, n))
		return nil
	}
	out := make([]idPrefix, n)
	for i := range out {
		copy(out[i][:], r.bytes(prefixLen, what))
	}
	return out
}

func appendIDs(b []byte, ids []core.FactID) []byte {
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for i := range ids {
		b = append(b, ids[i][:]...)
	}
	return b
}

func (m *openMsg) encode(sid sessionID) ([]byte, error) {
	b := header(sid)
	b = binary.AppendUvarint(b, m.Count)
	b = append(b, m.FP[:]...)
	var flags byte
	if m.RangeOnly {
		flags = 1
	}
	b = append(b, flags)
	return riblt.AppendBatch(b, m.Symbols)
}

func decodeOpen(body []byte) (openMsg, error) {
	var m openMsg
	r := reader{p: body}
	m.Count = r.uvarint("count")
	copy(m.FP[:], r.bytes(fpLen, "fingerprint"))
	flags := r.byte1("flags")
	if r.err != nil {
		return m, r.err
	}
	if flags > 1 {
		return m, malformed("flags %#x", flags)
	}
	m.RangeOnly = flags == 1
	b, err := riblt.ParseBatch(r.p)
	if err != nil {
		return m, fmt.Errorf("%w: %w", errMalformed, err)
	}
	if b.Start != 0 {
		return m, malformed("first symbols start at %d", b.Start)
	}
	m.Symbols = b
	return m, nil
}

func (m *sketchMsg) encode(sid sessionID) ([]byte, error) {
	b := header(sid)
	b = binary.AppendUvarint(b, m.RoundEnd)
	return riblt.AppendBatch(b, m.Symbols)
}

func decodeSketch(body []byte) (sketchMsg, error) {
	var m sketchMsg
	r := reader{p: body}
	m.RoundEnd = r.uvarint("round end")
	if r.err != nil {
		return m, r.err
	}
	b, err := riblt.ParseBatch(r.p)
	if err != nil {
		return m, fmt.Errorf("%w: %w", errMalformed, err)
	}
	if len(b.Symbols) == 0 || b.Start+uint64(len(b.Symbols)) > m.RoundEnd {
		return m, malformed("symbols [%d, +%d) outside their round ending at %d", b.Start, len(b.Symbols), m.RoundEnd)
	}
	m.Symbols = b
	return m, nil
}

func (m *replyMsg) encode(sid sessionID) []byte {
	b := header(sid)
	b = append(b, m.Status)
	b = binary.AppendUvarint(b, m.Count)
	b = binary.AppendUvarint(b, m.Estimate)
	b = binary.AppendUvarint(b, m.Push)
	var flags byte
	if m.WantAll {
		flags = 1
	}
	b = append(b, flags)
	return appendPrefixes(b, m.Want)
}

func decodeReply(body []byte) (replyMsg, error) {
	var m replyMsg
	r := reader{p: body}
	m.Status = r.byte1("status")
	m.Count = r.uvarint("count")
	m.Estimate = r.uvarint("estimate")
	m.Push = r.uvarint("push")
	flags := r.byte1("flags")
	m.Want = r.prefixes("want")
	if err := r.end(); err != nil {
		return m, err
	}
	if m.Status < replyEqual || m.Status > replyFull {
		return m, malformed("reply status %d", m.Status)
	}
	if flags > 1 {
		return m, malformed("flags %#x", flags)
	}
	m.WantAll = flags == 1
	if m.WantAll && len(m.Want) > 0 {
		return m, malformed("want all and a want list")
	}
	return m, nil
}

func appendBound(b []byte, x bound) []byte {
	if x.Inf {
		return append(b, 0xff)
	}
	b = append(b, byte(len(x.Prefix)))
	b = binary.AppendUvarint(b, x.Lamport)
	return append(b, x.Prefix...)
}

func (r *reader) bound() bound {
	n := r.byte1("bound")
	if r.err != nil {
		return bound{}
	}
	if n == 0xff {
		return bound{Inf: true}
	}
	if n > 32 {
		r.fail(malformed("bound prefix of %d bytes", n))
		return bound{}
	}
	x := bound{Lamport: r.uvarint("bound lamport")}
	x.Prefix = r.bytes(int(n), "bound prefix")
	if n > 0 && r.err == nil && x.Prefix[n-1] == 0 {
		// A trailing zero adds nothing: one bound, one encoding.
		r.fail(malformed("bound prefix ends in zero"))
	}
	return x
}

func (m *rangeMsg) encode(sid sessionID) []byte {
	b := header(sid)
	b = binary.AppendUvarint(b, uint64(len(m.Ranges)))
	for i := range m.Ranges {
		x := &m.Ranges[i]
		b = appendBound(b, x.Upper)
		b = append(b, x.Mode)
		switch x.Mode {
		case modeFingerprint:
			b = binary.AppendUvarint(b, x.Count)
			b = append(b, x.FP[:]...)
		case modeIDList:
			b = appendIDs(b, x.IDs)
		}
	}
	return b
}

func decodeRange(body []byte) (rangeMsg, error) {
	var m rangeMsg
	r := reader{p: body}
	n := r.uvarint("ranges")
	if r.err != nil {
		return m, r.err
	}
	if n == 0 || n > maxRanges {
		return m, malformed("%d ranges", n)
	}
	m.Ranges = make([]wireRange, 0, n)
	var prev journal.FactKey
	ids := 0
	for i := range n {
		x := wireRange{Upper: r.bound(), Mode: r.byte1("mode")}
		if r.err != nil {
			return m, r.err
		}
		last := i == n-1
		if x.Upper.Inf != last {
			return m, malformed("range %d: only the last range is unbounded", i)
		}
		if !x.Upper.Inf {
			k := x.Upper.key()
			if !prev.Less(k) {
				return m, malformed("range %d: bounds not increasing", i)
			}
			prev = k
		}
		switch x.Mode {
		case modeSkip:
		case modeFingerprint:
			x.Count = r.uvarint("count")
			copy(x.FP[:], r.bytes(fpLen, "fingerprint"))
		case modeIDList:
			x.IDs = r.ids("id list")
			ids += len(x.IDs)
		default:
			return m, malformed("range %d: mode %d", i, x.Mode)
		}
		if ids > maxIDs {
			return m, malformed("%d ids in one message", ids)
		}
		m.Ranges = append(m.Ranges, x)
	}
	return m, r.end()
}

func encodeWant(sid sessionID, ids []idPrefix) []byte {
	return appendPrefixes(header(sid), ids)
}

func decodeWant(body []byte) ([]idPrefix, error) {
	r := reader{p: body}
	ids := r.prefixes("want")
	if err := r.end(); err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, malformed("empty want")
	}
	return ids, nil
}

// batchAppender builds batch messages up to maxMessage.
func encodeBatch(sid sessionID, missing uint64, facts [][]byte) []byte {
	b := header(sid)
	b = binary.AppendUvarint(b, missing)
	b = binary.AppendUvarint(b, uint64(len(facts)))
	for _, f := range facts {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}

// batchOverhead is what encodeBatch adds to the facts beyond their length
// prefixes.
const batchOverhead = 9 + 10 + 10

func decodeBatch(body []byte) (batchMsg, error) {
	var m batchMsg
	r := reader{p: body}
	m.Missing = r.uvarint("missing")
	n := r.uvarint("facts")
	if r.err != nil {
		return m, r.err
	}
	if n > uint64(len(r.p)) {
		return m, malformed("%d facts", n)
	}
	m.Facts = make([]*journal.SignedFact, 0, n)
	for i := range n {
		l := r.uvarint("fact length")
		if r.err == nil && (l == 0 || l > journal.MaxSignedFactSize) {
			return m, malformed("fact %d of %d bytes", i, l)
		}
		raw := r.bytes(int(l), "fact")
		if r.err != nil {
			return m, r.err
		}
		f, err := journal.DecodeSignedFact(raw)
		if err != nil {
			return m, malformed("fact %d: %v", i, err)
		}
		m.Facts = append(m.Facts, f)
	}
	if err := r.end(); err != nil {
		return m, err
	}
	if len(m.Facts) == 0 && m.Missing == 0 {
		return m, malformed("empty batch")
	}
	return m, nil
}

func encodeEnd(sid sessionID, reason string) []byte {
	if len(reason) > maxReason {
		reason = reason[:maxReason]
	}
	return append(header(sid), reason...)
}

func decodeEnd(body []byte) (string, error) {
	if len(body) > maxReason {
		return "", malformed("end reason of %d bytes", len(body))
	}
	for _, c := range body {
		if c < 0x20 || c > 0x7e {
			return "", malformed("end reason is not printable ASCII")
		}
	}
	return string(body), nil
}

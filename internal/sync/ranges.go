package sync

import (
	"bytes"
	"context"
	"encoding/binary"
	"slices"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
)

// Range-based reconciliation (Meyer; Negentropy's protocol) over the
// namespace's (lamport, id) order. A message covers the whole key space with
// contiguous ranges; each range is skipped (agreed), summarised by count and
// fingerprint, or listed id by id. The receiver compares each range with its
// own: equal summaries are skipped, small ranges are answered with their ids,
// larger ones are split into rangeFanout parts with their summaries. An id
// list settles its range at once: the receiver sends what the lister lacks and
// asks for what it lacks itself. The side whose answer would be all skips
// sends it and is done; the side that receives it is done too. Bytes are
// O(d·log n), round trips O(log n).
//
// A range message also says how many facts its sender is about to push, so
// the receiver knows what to wait for.

// rangeMsg on the wire carries, before its ranges, the facts its sender
// pushes as a consequence of the message it answers.
type rangeReply struct {
	push   uint64
	ranges []wireRange
}

func encodeRangeReply(sid sessionID, r rangeReply) []byte {
	m := rangeMsg{Ranges: r.ranges}
	b := m.encode(sid)
	// The push count rides after the header: re-encode with it in place.
	out := make([]byte, 0, len(b)+10)
	out = append(out, b[:9]...)
	out = binary.AppendUvarint(out, r.push)
	return append(out, b[9:]...)
}

func decodeRangeReply(body []byte) (rangeReply, error) {
	r := reader{p: body}
	push := r.uvarint("push")
	if r.err != nil {
		return rangeReply{}, r.err
	}
	m, err := decodeRange(r.p)
	if err != nil {
		return rangeReply{}, err
	}
	return rangeReply{push: push, ranges: m.Ranges}, nil
}

// startRanges is the initiator's first range message: its whole set split
// rangeFanout ways (or listed, if small).
func (ss *session) startRanges(ctx context.Context) error {
	ss.p.Rounds++
	out, err := ss.describe(ctx, journal.FactKey{}, bound{Inf: true}, nil)
	if err != nil {
		return err
	}
	if out, err = ss.fit(ctx, out); err != nil {
		return err
	}
	return ss.send(ctx, TypeRange, encodeRangeReply(ss.id, rangeReply{ranges: out}))
}

// describe summarises [lo, hi) for the peer: its ids if few, else its split
// into parts with fingerprints. out is appended to.
func (ss *session) describe(ctx context.Context, lo journal.FactKey, hi bound, out []wireRange) ([]wireRange, error) {
	ns := ss.ns()
	hiKey := hi.key()
	count, _, err := ss.s.st.RangeSummary(ctx, ns, lo, hiKey)
	if err != nil {
		return nil, localErr(err)
	}
	if count <= idListMax {
		keys, _, err := ss.s.st.RangeKeys(ctx, ns, lo, hiKey, idListMax)
		if err != nil {
			return nil, localErr(err)
		}
		ids := make([]core.FactID, len(keys))
		for i, k := range keys {
			ids[i] = k.ID
		}
		return append(out, wireRange{Upper: hi, Mode: modeIDList, IDs: ids}), nil
	}
	parts, err := ss.s.st.RangeSplit(ctx, ns, lo, hiKey, rangeFanout)
	if err != nil {
		return nil, localErr(err)
	}
	// Bounds are shortened to the fewest id bytes that keep them increasing;
	// any bounds both sides use are correct, so the summaries are taken
	// again over the shortened ones.
	prevKey := lo
	for i := range parts {
		var b bound
		if i == len(parts)-1 {
			b = hi
		} else {
			b = shortBound(parts[i+1].Lo, prevKey)
		}
		k := b.key()
		c, f, err := ss.s.st.RangeSummary(ctx, ns, prevKey, k)
		if err != nil {
			return nil, localErr(err)
		}
		r := wireRange{Upper: b, Mode: modeFingerprint, Count: c}
		copy(r.FP[:], f[:fpLen])
		if c == 0 {
			r = wireRange{Upper: b, Mode: modeIDList}
		}
		out = append(out, r)
		prevKey = k
	}
	return out, nil
}

func localErr(err error) error { return &errEnd{reason: reasonLocal, err: err} }

// shortBound is the shortest bound ≤ k that is still above prev.
func shortBound(k, prev journal.FactKey) bound {
	for n := 0; n <= len(k.ID); n++ {
		p := bytes.TrimRight(k.ID[:n], "\x00")
		b := bound{Lamport: k.Lamport, Prefix: slices.Clone(p)}
		if prev.Less(b.key()) {
			return b
		}
	}
	return bound{Lamport: k.Lamport, Prefix: slices.Clone(bytes.TrimRight(k.ID[:], "\x00"))}
}

// onRange answers a range message.
func (ss *session) onRange(ctx context.Context, body []byte) error {
	m, err := decodeRangeReply(body)
	if err != nil {
		ss.s.net.Misbehaved(ss.peer, "sync_malformed", err)
		return &errEnd{reason: reasonMalformed, err: err}
	}
	if ss.role == RoleResponder && ss.p.Mode != ModeRange {
		// The initiator may switch to ranges on its own (its set changed
		// under the sketch); the decoder is dropped.
		ss.p.Mode = ModeRange
		ss.dec = nil
	}
	ss.p.Rounds++
	ss.expecting += m.push
	ss.p.FactsExpected += m.push
	ns := ss.ns()
	var out []wireRange
	var wants []idPrefix
	var pushIDs []core.FactID
	var pushRanges []pushJob
	lo := journal.FactKey{}
	allSkip := true
	for _, x := range m.ranges {
		hi := x.Upper.key()
		switch x.Mode {
		case modeSkip:
			out = appendSkip(out, x.Upper)
		case modeFingerprint:
			allSkip = false
			c, f, err := ss.s.st.RangeSummary(ctx, ns, lo, hi)
			if err != nil {
				return localErr(err)
			}
			if c == x.Count && bytes.Equal(f[:fpLen], x.FP[:]) {
				out = appendSkip(out, x.Upper)
				break
			}
			if out, err = ss.describe(ctx, lo, x.Upper, out); err != nil {
				return err
			}
		case modeIDList:
			allSkip = false
			theirs := make(map[core.FactID]struct{}, len(x.IDs))
			for _, id := range x.IDs {
				theirs[id] = struct{}{}
			}
			keys, more, err := ss.s.st.RangeKeys(ctx, ns, lo, hi, journal.MaxRangeKeys)
			if err != nil {
				return localErr(err)
			}
			if more {
				// Many here, few there: send the range minus theirs by a
				// walk, and ask for theirs that are not here one by one.
				pushRanges = append(pushRanges, pushJob{lo: lo, hi: hi, bounded: true, exclude: theirs})
				for _, id := range x.IDs {
					has, err := ss.s.st.Has(ctx, ns, id)
					if err != nil {
						return localErr(err)
					}
					if !has {
						wants = append(wants, prefixOf(id))
					}
				}
			} else {
				mine := make(map[core.FactID]struct{}, len(keys))
				for _, k := range keys {
					mine[k.ID] = struct{}{}
					if _, ok := theirs[k.ID]; !ok {
						pushIDs = append(pushIDs, k.ID)
					}
				}
				for _, id := range x.IDs {
					if _, ok := mine[id]; !ok {
						wants = append(wants, prefixOf(id))
					}
				}
			}
			out = appendSkip(out, x.Upper)
		}
		lo = hi
	}
	// How many facts this answer sends: exact for id lists; a walk of a
	// large range counts what it will send before it starts.
	push := uint64(len(pushIDs))
	for i := range pushRanges {
		c, _, err := ss.s.st.RangeSummary(ctx, ns, pushRanges[i].lo, pushRanges[i].hi)
		if err != nil {
			return localErr(err)
		}
		var shared uint64
		for id := range pushRanges[i].exclude {
			has, err := ss.s.st.Has(ctx, ns, id)
			if err != nil {
				return localErr(err)
			}
			if has {
				shared++
			}
		}
		pushRanges[i].count = c - min(c, shared)
		push += pushRanges[i].count
	}
	if out, err = ss.fit(ctx, out); err != nil {
		return err
	}
	// Wants go before the answer: the peer may end its session as soon as
	// the answer says ranges are done, so it must have the wants by then.
	if err := ss.sendWants(ctx, wants); err != nil {
		return err
	}
	if allSkip {
		// The peer agreed on everything: range reconciliation is over.
		ss.reconDone = true
	} else {
		done := len(out) == 1 && out[0].Mode == modeSkip
		if err := ss.send(ctx, TypeRange, encodeRangeReply(ss.id, rangeReply{push: push, ranges: out})); err != nil {
			return err
		}
		if done {
			ss.reconDone = true
		}
	}
	ss.expecting += uint64(len(wants))
	ss.p.FactsExpected += uint64(len(wants))
	if len(pushIDs) > 0 {
		ss.startPush(ctx, pushJob{ids: pushIDs})
	}
	for _, j := range pushRanges {
		ss.startPush(ctx, j)
	}
	return nil
}

// appendSkip adds a skipped range, merged with a skipped predecessor.
func appendSkip(out []wireRange, upper bound) []wireRange {
	if n := len(out); n > 0 && out[n-1].Mode == modeSkip {
		out[n-1].Upper = upper
		return out
	}
	return append(out, wireRange{Upper: upper, Mode: modeSkip})
}

// fit keeps an answer within one message (ranges, ids and bytes): when it
// would not fit, the ranges past the cut are replaced by one fingerprint of
// everything from the cut on, which the peer splits again in a later round.
// Each round still settles a prefix, so the conversation ends.
func (ss *session) fit(ctx context.Context, out []wireRange) ([]wireRange, error) {
	const budget = maxMessage - 64
	size, ids := binary.MaxVarintLen16, 0
	tail := 1 + 1 + binary.MaxVarintLen64 + fpLen
	var lo journal.FactKey
	for i := range out {
		x := &out[i]
		if i == len(out)-1 {
			return out, nil
		}
		sz := rangeWireSize(x)
		if i+2 > maxRanges || size+sz+tail > budget || ids+len(x.IDs) > maxIDs {
			c, f, err := ss.s.st.RangeSummary(ctx, ss.ns(), lo, journal.FactKey{})
			if err != nil {
				return nil, localErr(err)
			}
			r := wireRange{Upper: bound{Inf: true}, Mode: modeFingerprint, Count: c}
			copy(r.FP[:], f[:fpLen])
			return append(out[:i], r), nil
		}
		size += sz
		ids += len(x.IDs)
		lo = x.Upper.key()
	}
	return out, nil
}

func rangeWireSize(x *wireRange) int {
	n := 2 // bound length byte, mode
	if !x.Upper.Inf {
		n += uvarintLen(x.Upper.Lamport) + len(x.Upper.Prefix)
	}
	switch x.Mode {
	case modeFingerprint:
		n += uvarintLen(x.Count) + fpLen
	case modeIDList:
		n += uvarintLen(uint64(len(x.IDs))) + 32*len(x.IDs)
	}
	return n
}

func uvarintLen(v uint64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], v)
}

package riblt

import (
	"fmt"
	"slices"
)

// Decoder recovers the symmetric difference of the local set and a remote
// set from the two streams' prefixes. The caller adds batches of the remote's
// symbols in stream order, each with the local encoder's symbols of the same
// indices; the Decoder subtracts them and peels as they arrive.
//
// Work is bounded whatever the input: every symbol is checked as it arrives
// (counts within the set sizes that symbol 0 announces, a zero count only on
// an empty symbol), an id is peeled only from a symbol whose hash matches the
// id's keyed hash and which lies on the id's index sequence, at most one id is
// peeled per symbol received, and no id twice. Each peel costs about 2·ln m
// symbol updates for m symbols received, so a session costs O(m·log m). A
// failed check stops the decoder for good with ErrInconsistent.
type Decoder struct {
	key        Key
	maxSymbols uint64
	syms       []Symbol // local minus remote, minus the ids peeled so far
	nonzero    int      // how many of syms are non-zero
	nLocal     int64    // set sizes, from symbol 0
	nRemote    int64
	spread     float64 // spreadTerm summed over symbols 1.., before peeling (EstimateDifference)

	seen       map[[32]byte]struct{}
	localOnly  [][32]byte
	remoteOnly [][32]byte
	pending    pendingHeap // peeled ids, by the next index they map to
	queue      []uint64    // symbols that may have become pure
	scratch    []uint64
	err        error

	// work counts symbol updates and purity checks, for the bounded-work
	// tests.
	work uint64
}

// NewDecoder returns a decoder under key that gives up with
// ErrTooManySymbols when more than maxSymbols symbols would be needed.
func NewDecoder(key Key, maxSymbols int) (*Decoder, error) {
	if maxSymbols < 1 || uint64(maxSymbols) > indexLimit {
		return nil, fmt.Errorf("symbol bound %d not in [1, %d]: %w", maxSymbols, uint64(indexLimit), ErrRange)
	}
	return &Decoder{key: key, maxSymbols: uint64(maxSymbols), seen: make(map[[32]byte]struct{})}, nil
}

// Received is the number of symbols added so far: the index the next batch
// must start at.
func (d *Decoder) Received() uint64 { return uint64(len(d.syms)) }

// Done reports whether the difference is fully decoded: every subtracted
// symbol received is zero once the peeled ids are removed. More symbols may
// still be added (they must then decode to zero too, or Done turns false).
func (d *Decoder) Done() bool { return d.err == nil && len(d.syms) > 0 && d.nonzero == 0 }

// Err is the error that stopped the decoder, if any.
func (d *Decoder) Err() error { return d.err }

// LocalOnly returns the ids decoded so far that the local set has and the
// remote lacks.
func (d *Decoder) LocalOnly() [][32]byte { return slices.Clone(d.localOnly) }

// RemoteOnly returns the ids decoded so far that the remote set has and the
// local lacks.
func (d *Decoder) RemoteOnly() [][32]byte { return slices.Clone(d.remoteOnly) }

// Add takes the remote's next batch and the local symbols of the same
// indices, then peels what it can. The first error is sticky.
func (d *Decoder) Add(remote Batch, local []Symbol) error {
	if d.err != nil {
		return d.err
	}
	n := uint64(len(remote.Symbols))
	if remote.Start != uint64(len(d.syms)) {
		return d.fail(fmt.Errorf("batch starts at %d, expected %d: %w", remote.Start, len(d.syms), ErrRange))
	}
	if len(local) != len(remote.Symbols) {
		return d.fail(fmt.Errorf("%d local symbols for %d remote ones: %w", len(local), n, ErrRange))
	}
	if uint64(len(d.syms))+n > d.maxSymbols {
		return d.fail(fmt.Errorf("%d symbols received, bound %d: %w", uint64(len(d.syms))+n, d.maxSymbols, ErrTooManySymbols))
	}
	for i := range remote.Symbols {
		j := uint64(len(d.syms))
		r, l := &remote.Symbols[i], &local[i]
		if j == 0 {
			d.nRemote, d.nLocal = r.Count, l.Count
		}
		if err := checkCoded(r, d.nRemote); err != nil {
			return d.fail(fmt.Errorf("remote symbol %d: %w", j, err))
		}
		if err := checkCoded(l, d.nLocal); err != nil {
			return d.fail(fmt.Errorf("local symbol %d: %w", j, err))
		}
		s := *l
		xor32(&s.Sum, &r.Sum)
		s.Hash ^= r.Hash
		s.Count -= r.Count
		if j > 0 {
			d.spread += spreadTerm(j, s.Count, d.nLocal-d.nRemote)
		}
		// Remove the ids already peeled that map here.
		for len(d.pending) > 0 && d.pending[0].m.idx == j {
			p := &d.pending[0]
			s.apply(&p.id, p.hash, -p.sign)
			d.work++
			if p.m.next() == noIndex {
				d.pending.pop()
			} else {
				d.pending.fixTop()
			}
		}
		if s.Count < -d.nRemote || s.Count > d.nLocal {
			return d.fail(fmt.Errorf("symbol %d: count %d outside [%d, %d]: %w", j, s.Count, -d.nRemote, d.nLocal, ErrInconsistent))
		}
		d.syms = append(d.syms, s)
		if !s.IsZero() {
			d.nonzero++
		}
		if s.Count == 1 || s.Count == -1 {
			d.queue = append(d.queue, j)
		}
	}
	return d.peel()
}

// checkCoded refuses a symbol no encoder of a set of n ids produces.
func checkCoded(s *Symbol, n int64) error {
	if s.Count < 0 || s.Count > n || s.Count > MaxCount {
		return fmt.Errorf("count %d not in [0, %d]: %w", s.Count, min(n, MaxCount), ErrInconsistent)
	}
	if s.Count == 0 && !s.IsZero() {
		return fmt.Errorf("count 0 with a non-zero sum or hash: %w", ErrInconsistent)
	}
	return nil
}

func (d *Decoder) fail(err error) error {
	d.err = err
	return err
}

// peel decodes pure symbols until none is left.
func (d *Decoder) peel() error {
	m := uint64(len(d.syms))
	for len(d.queue) > 0 {
		k := d.queue[len(d.queue)-1]
		d.queue = d.queue[:len(d.queue)-1]
		s := &d.syms[k]
		if s.Count != 1 && s.Count != -1 {
			continue
		}
		d.work++
		if hashID(&d.key, &s.Sum) != s.Hash {
			continue // several ids, or a lie; later peels may purify it
		}
		id, h, sign := s.Sum, s.Hash, s.Count
		// A pure symbol lies on its id's index sequence; checking costs the
		// walk we need anyway and rejects forged "pure" symbols.
		d.scratch = d.scratch[:0]
		mp := newMapping(h)
		hit := false
		idx := uint64(0)
		for ; idx < m; idx = mp.next() {
			d.scratch = append(d.scratch, idx)
			hit = hit || idx == k
		}
		if !hit {
			continue
		}
		if _, dup := d.seen[id]; dup {
			return d.fail(fmt.Errorf("id %x… decoded twice: %w", [8]byte(id[:8]), ErrInconsistent))
		}
		// Honest peeling empties the symbol it decodes and never refills it,
		// so it cannot decode more ids than symbols received.
		if uint64(len(d.seen)) >= m {
			return d.fail(fmt.Errorf("more ids decoded than %d symbols: %w", m, ErrInconsistent))
		}
		if sign > 0 {
			if int64(len(d.localOnly)) >= d.nLocal {
				return d.fail(fmt.Errorf("more local-only ids than the %d local ones: %w", d.nLocal, ErrInconsistent))
			}
			d.localOnly = append(d.localOnly, id)
		} else {
			if int64(len(d.remoteOnly)) >= d.nRemote {
				return d.fail(fmt.Errorf("more remote-only ids than the %d remote ones: %w", d.nRemote, ErrInconsistent))
			}
			d.remoteOnly = append(d.remoteOnly, id)
		}
		d.seen[id] = struct{}{}
		for _, i := range d.scratch {
			t := &d.syms[i]
			wasZero := t.IsZero()
			t.apply(&id, h, -sign)
			d.work++
			if t.Count < -d.nRemote || t.Count > d.nLocal {
				return d.fail(fmt.Errorf("symbol %d: count %d outside [%d, %d]: %w", i, t.Count, -d.nRemote, d.nLocal, ErrInconsistent))
			}
			switch isZero := t.IsZero(); {
			case wasZero && !isZero:
				d.nonzero++
			case !wasZero && isZero:
				d.nonzero--
			}
			if t.Count == 1 || t.Count == -1 {
				d.queue = append(d.queue, i)
			}
		}
		if idx != noIndex {
			d.pending.push(pending{m: mp, id: id, hash: h, sign: sign})
		}
	}
	return nil
}

// pending is a peeled id still to be removed from symbols not yet received.
type pending struct {
	m    mapping // m.idx is the next index the id maps to
	id   [32]byte
	hash uint64
	sign int64 // +1 local-only, -1 remote-only
}

// pendingHeap is a min-heap on m.idx, typed to avoid container/heap's boxing.
type pendingHeap []pending

func (h *pendingHeap) push(p pending) {
	*h = append(*h, p)
	s := *h
	i := len(s) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if s[parent].m.idx <= s[i].m.idx {
			break
		}
		s[parent], s[i] = s[i], s[parent]
		i = parent
	}
}

func (h *pendingHeap) pop() {
	s := *h
	last := len(s) - 1
	s[0] = s[last]
	*h = s[:last]
	h.fixTop()
}

// fixTop restores the heap after the root's key grew.
func (h *pendingHeap) fixTop() {
	s := *h
	i := 0
	for {
		l := 2*i + 1
		if l >= len(s) {
			return
		}
		c := l
		if r := l + 1; r < len(s) && s[r].m.idx < s[l].m.idx {
			c = r
		}
		if s[i].m.idx <= s[c].m.idx {
			return
		}
		s[i], s[c] = s[c], s[i]
		i = c
	}
}

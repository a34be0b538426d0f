package lattice

import "maps"

// CapSet is a set of capabilities combined by meet (intersection), so that
// combining grants from several sources never widens them. The zero value is
// the empty set, which grants nothing: a missing grant must fail closed. The
// set of all capabilities cannot be listed, so it is an explicit Top element.
type CapSet[C Key[C]] struct {
	top  bool
	caps map[C]struct{} // nil when top
}

// NewCapSet returns the set granting exactly caps.
func NewCapSet[C Key[C]](caps ...C) CapSet[C] {
	if len(caps) == 0 {
		return CapSet[C]{}
	}
	m := make(map[C]struct{}, len(caps))
	for _, c := range caps {
		m[c] = struct{}{}
	}
	return CapSet[C]{caps: m}
}

// AllCapabilities returns Top, the set granting everything.
func AllCapabilities[C Key[C]]() CapSet[C] { return CapSet[C]{top: true} }

// Top returns the set granting everything, the identity of Meet.
func (CapSet[C]) Top() CapSet[C] { return CapSet[C]{top: true} }

// IsTop reports whether s grants everything.
func (s CapSet[C]) IsTop() bool { return s.top }

// Meet returns the intersection.
func (s CapSet[C]) Meet(o CapSet[C]) CapSet[C] {
	switch {
	case o.top:
		return s
	case s.top:
		return o
	}
	small, big := s.caps, o.caps
	if len(big) < len(small) {
		small, big = big, small
	}
	var out map[C]struct{}
	for c := range small {
		if _, ok := big[c]; ok {
			if out == nil {
				out = make(map[C]struct{})
			}
			out[c] = struct{}{}
		}
	}
	return CapSet[C]{caps: out}
}

// Equal reports whether both grant the same capabilities.
func (s CapSet[C]) Equal(o CapSet[C]) bool { return s.top == o.top && maps.Equal(s.caps, o.caps) }

// Contains reports whether s grants c.
func (s CapSet[C]) Contains(c C) bool {
	if s.top {
		return true
	}
	_, ok := s.caps[c]
	return ok
}

// Covers reports whether s grants everything o grants (o ⊑ s).
func (s CapSet[C]) Covers(o CapSet[C]) bool {
	if s.top {
		return true
	}
	if o.top {
		return false
	}
	for c := range o.caps {
		if _, ok := s.caps[c]; !ok {
			return false
		}
	}
	return true
}

// Len returns the number of capabilities, or -1 for Top.
func (s CapSet[C]) Len() int {
	if s.top {
		return -1
	}
	return len(s.caps)
}

// Elements returns the capabilities, sorted; nil for Top, which has no list
// (check IsTop first).
func (s CapSet[C]) Elements() []C {
	if s.top {
		return nil
	}
	return sortedKeys(s.caps)
}

// AppendBinary appends the canonical encoding.
func (s CapSet[C]) AppendBinary(dst []byte) ([]byte, error) {
	dst = appendHeader(dst, tagCapSet)
	dst = appendBool(dst, s.top)
	if s.top {
		return dst, nil
	}
	dst = appendUvarint(dst, uint64(len(s.caps)))
	for _, c := range s.Elements() {
		dst = c.AppendKey(dst)
	}
	return dst, nil
}

// MarshalBinary returns the canonical encoding.
func (s CapSet[C]) MarshalBinary() ([]byte, error) { return s.AppendBinary(nil) }

// DecodeBinary decodes a capability set; the receiver is ignored.
func (CapSet[C]) DecodeBinary(data []byte) (CapSet[C], error) {
	r := reader{b: data}
	r.header(tagCapSet, "cap-set")
	if r.bool() {
		if err := r.end("cap-set"); err != nil {
			return CapSet[C]{}, err
		}
		return CapSet[C]{top: true}, nil
	}
	keys := readSortedKeys[C](&r, "cap-set")
	if err := r.end("cap-set"); err != nil {
		return CapSet[C]{}, err
	}
	return NewCapSet(keys...), nil
}

// UnmarshalBinary decodes into s, replacing its contents.
func (s *CapSet[C]) UnmarshalBinary(data []byte) error {
	v, err := s.DecodeBinary(data)
	if err != nil {
		return err
	}
	*s = v
	return nil
}

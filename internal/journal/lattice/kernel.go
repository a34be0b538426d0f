package lattice

import (
	"maps"
	"slices"
)

// kernel is the dot store shared by OR-Set and OR-Map: per key, the dots that
// are still live (each with a value), plus the causal context of everything
// ever seen. A key is present while it has a live dot. Maps and slices are
// never written after construction.
type kernel[K Key[K], R Key[R], V any] struct {
	entries map[K][]dotted[R, V] // no empty slices
	ctx     causalContext[R]
}

func (k kernel[K, R, V]) isBottom() bool { return len(k.entries) == 0 && k.ctx.isEmpty() }

func (k kernel[K, R, V]) join(o kernel[K, R, V], both func(V, V) V) kernel[K, R, V] {
	if o.isBottom() {
		return k
	}
	if k.isBottom() {
		return o
	}
	out := make(map[K][]dotted[R, V], max(len(k.entries), len(o.entries)))
	for key, a := range k.entries {
		if j := joinDotted(a, k.ctx, o.entries[key], o.ctx, both); len(j) > 0 {
			out[key] = j
		}
	}
	for key, b := range o.entries {
		if _, done := k.entries[key]; done {
			continue
		}
		if j := joinDotted(nil, k.ctx, b, o.ctx, both); len(j) > 0 {
			out[key] = j
		}
	}
	if len(out) == 0 {
		out = nil
	}
	return kernel[K, R, V]{entries: out, ctx: k.ctx.union(o.ctx)}
}

func (k kernel[K, R, V]) equal(o kernel[K, R, V], eq func(V, V) bool) bool {
	return k.ctx.equal(o.ctx) && maps.EqualFunc(k.entries, o.entries, func(a, b []dotted[R, V]) bool {
		return slices.EqualFunc(a, b, func(x, y dotted[R, V]) bool { return x.dot == y.dot && eq(x.val, y.val) })
	})
}

// write returns the delta that makes v the sole live entry of key under a new
// dot of replica r. The delta's context covers the key's current dots, so
// joining it supersedes them; dots added concurrently elsewhere are not in it
// and survive (add wins).
func (k kernel[K, R, V]) write(r R, key K, v V) (kernel[K, R, V], error) {
	d, err := k.ctx.next(r)
	if err != nil {
		return kernel[K, R, V]{}, err
	}
	seen := append(dotsOf(k.entries[key]), d)
	return kernel[K, R, V]{
		entries: map[K][]dotted[R, V]{key: {{dot: d, val: v}}},
		ctx:     contextOf(seen),
	}, nil
}

// remove returns the delta that kills the key's currently live dots and
// nothing else: an add this replica has not seen is untouched.
func (k kernel[K, R, V]) remove(key K) kernel[K, R, V] {
	es := k.entries[key]
	if len(es) == 0 {
		return kernel[K, R, V]{}
	}
	return kernel[K, R, V]{ctx: contextOf(dotsOf(es))}
}

func (k kernel[K, R, V]) keys() []K { return sortedKeys(k.entries) }

func (k kernel[K, R, V]) appendTo(dst []byte, appendVal func([]byte, V) ([]byte, error)) ([]byte, error) {
	dst = k.ctx.appendTo(dst)
	dst = appendUvarint(dst, uint64(len(k.entries)))
	for _, key := range k.keys() {
		dst = key.AppendKey(dst)
		var err error
		if dst, err = appendDotted(dst, k.entries[key], appendVal); err != nil {
			return nil, err
		}
	}
	return dst, nil
}

func readKernel[K Key[K], R Key[R], V any](r *reader, readVal func(*reader) V) kernel[K, R, V] {
	ctx := readContext[R](r)
	n := r.length(3)
	var entries map[K][]dotted[R, V]
	if n > 0 {
		entries = make(map[K][]dotted[R, V], n)
	}
	var prev K
	for i := 0; i < n && r.err == nil; i++ {
		key := readKey[K](r)
		if r.err == nil && i > 0 && prev.Compare(key) >= 0 {
			r.fail("keys not strictly increasing")
		}
		es := readDotted(r, ctx, readVal)
		entries[key] = es
		prev = key
	}
	return kernel[K, R, V]{entries: entries, ctx: ctx}
}

package journal

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/aura-p2p/aura/internal/core"
)

// Reducer folds facts into derived state, maintained on every commit so reads
// never replay the journal. State is partitioned by namespace and by a key the
// reducer derives from each fact (an object name, a peer, ...).
//
// Apply must be pure and deterministic: the same facts folded in (lamport, id)
// order give the same bytes on every device. If Commutative is true, Apply is a
// join (order-insensitive), so a fact arriving late is simply folded in;
// otherwise the journal refolds that key's facts in order when one arrives
// below the key's high-water mark.
type Reducer interface {
	Name() string
	Handles(typeID string) bool
	Key(f *SignedFact) ([]byte, error)
	Apply(state []byte, f *SignedFact) ([]byte, error)
	Commutative() bool
}

const maxReducerKeyLen = 1024

func (st *txState) stateBucket(r Reducer, ns core.Namespace, create bool) (*bolt.Bucket, error) {
	root := st.tx.Bucket(bucketState)
	if !create {
		rb := root.Bucket([]byte(r.Name()))
		if rb == nil {
			return nil, nil
		}
		return rb.Bucket(nsKey(ns)), nil
	}
	rb, err := root.CreateBucketIfNotExists([]byte(r.Name()))
	if err != nil {
		return nil, err
	}
	return rb.CreateBucketIfNotExists(nsKey(ns))
}

func (st *txState) indexBucket(r Reducer, ns core.Namespace) (*bolt.Bucket, error) {
	rb, err := st.tx.Bucket(bucketRIndex).CreateBucketIfNotExists([]byte(r.Name()))
	if err != nil {
		return nil, err
	}
	return rb.CreateBucketIfNotExists(nsKey(ns))
}

// reduce computes the new state for sf's key, reading only, and returns the
// write that stores it.
func (st *txState) reduce(r Reducer, sf *SignedFact) (func() error, error) {
	key, err := r.Key(sf)
	if err != nil {
		return nil, err
	}
	if len(key) == 0 || len(key) > maxReducerKeyLen {
		return nil, fmt.Errorf("state key of %d bytes: %w", len(key), core.ErrInvalidArgument)
	}
	var cur []byte
	hw := FactKey{}
	if b, err := st.stateBucket(r, sf.Namespace, false); err != nil {
		return nil, err
	} else if b != nil {
		if v := b.Get(key); v != nil {
			if hw, cur, err = splitState(v); err != nil {
				return nil, err
			}
		}
	}
	fk := sf.Key()
	var next []byte
	if r.Commutative() || cur == nil || hw.Less(fk) {
		if next, err = r.Apply(cur, sf); err != nil {
			return nil, err
		}
	} else if next, err = st.refold(r, sf, key); err != nil {
		return nil, err
	}
	if hw.Less(fk) {
		hw = fk
	}
	return func() error {
		b, err := st.stateBucket(r, sf.Namespace, true)
		if err != nil {
			return err
		}
		if err := b.Put(key, joinState(hw, next)); err != nil {
			return err
		}
		if r.Commutative() {
			return nil
		}
		ib, err := st.indexBucket(r, sf.Namespace)
		if err != nil {
			return err
		}
		return ib.Put(indexKey(key, fk), nil)
	}, nil
}

// refold recomputes a key's state from all its facts plus sf, in order.
func (st *txState) refold(r Reducer, sf *SignedFact, key []byte) ([]byte, error) {
	keys := []FactKey{sf.Key()}
	if ib := st.tx.Bucket(bucketRIndex).Bucket([]byte(r.Name())); ib != nil {
		if b := ib.Bucket(nsKey(sf.Namespace)); b != nil {
			prefix := indexPrefix(key)
			c := b.Cursor()
			for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
				fk, err := parseFactKey(k[len(prefix):])
				if err != nil {
					return nil, err
				}
				keys = append(keys, fk)
			}
		}
	}
	slices.SortFunc(keys, func(a, b FactKey) int {
		if a.Less(b) {
			return -1
		}
		if b.Less(a) {
			return 1
		}
		return 0
	})
	facts := st.facts.Bucket(nsKey(sf.Namespace))
	var state []byte
	for _, k := range keys {
		f := sf
		if k != sf.Key() {
			raw := facts.Get(factKey(k))
			if raw == nil {
				return nil, fmt.Errorf("indexed fact %s missing: %w", k.ID, ErrCorrupt)
			}
			var err error
			if f, err = decodeStoredBody(k, raw); err != nil {
				return nil, err
			}
		}
		var err error
		if state, err = r.Apply(state, f); err != nil {
			return nil, err
		}
	}
	return state, nil
}

func indexPrefix(key []byte) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(key))), key...)
}

func indexKey(key []byte, fk FactKey) []byte {
	return append(indexPrefix(key), factKey(fk)...)
}

func joinState(hw FactKey, state []byte) []byte {
	return append(factKey(hw), state...)
}

func splitState(v []byte) (FactKey, []byte, error) {
	if len(v) < 40 {
		return FactKey{}, nil, fmt.Errorf("state entry of %d bytes: %w", len(v), ErrCorrupt)
	}
	hw, err := parseFactKey(v[:40])
	// A stored state is never nil, even when empty, so "no state" stays distinct.
	return hw, append([]byte{}, v[40:]...), err
}

// State returns a reducer's state for one key, or found=false.
func (j *Journal) State(ctx context.Context, reducer string, ns core.Namespace, key []byte) (state []byte, found bool, err error) {
	err = j.view(func(tx *bolt.Tx) error {
		rb := tx.Bucket(bucketState).Bucket([]byte(reducer))
		if rb == nil {
			return nil
		}
		b := rb.Bucket(nsKey(ns))
		if b == nil {
			return nil
		}
		v := b.Get(key)
		if v == nil {
			return nil
		}
		_, state, err = splitState(v)
		found = err == nil
		return err
	})
	return state, found, err
}

// ScanState calls fn for a reducer's keys in a namespace in key order, starting
// after the given key (nil for the start), until fn returns false or limit keys.
func (j *Journal) ScanState(ctx context.Context, reducer string, ns core.Namespace, after []byte, limit int, fn func(key, state []byte) bool) error {
	return j.view(func(tx *bolt.Tx) error {
		rb := tx.Bucket(bucketState).Bucket([]byte(reducer))
		if rb == nil {
			return nil
		}
		b := rb.Bucket(nsKey(ns))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		k, v := c.First()
		if after != nil {
			k, v = c.Seek(after)
			if k != nil && bytes.Equal(k, after) {
				k, v = c.Next()
			}
		}
		for n := 0; k != nil && (limit <= 0 || n < limit); k, v = c.Next() {
			_, state, err := splitState(v)
			if err != nil {
				return err
			}
			if !fn(slices.Clone(k), state) {
				return nil
			}
			n++
		}
		return nil
	})
}

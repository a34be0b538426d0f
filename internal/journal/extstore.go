package journal

import (
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/aura-p2p/aura/internal/core"
)

// ErrReadOnly: a write to an extension store opened by a read view. It is a
// bug in the caller, never the data's fault.
var ErrReadOnly = fmt.Errorf("extension store opened for reading only: %w", core.ErrInternal)

// ExtStore is a package's own extension store ext/<owner>, or a named
// sub-store of one, inside a journal transaction. It keeps the storage engine
// inside the journal: other packages see ordered keys and values only.
//
// Keys sort bytewise. Slices returned by Get, ForEach and cursors belong to
// the transaction: they are valid only until it ends and must not be
// modified; clone what must outlive it. A store must not be used after its
// transaction ends. A store from a read view (Journal.ViewExt) refuses writes
// with ErrReadOnly.
type ExtStore struct {
	b *bolt.Bucket
}

// newExtStore wraps b; nil stays nil so that an absent store reads as nil.
func newExtStore(b *bolt.Bucket) *ExtStore {
	if b == nil {
		return nil
	}
	return &ExtStore{b: b}
}

func (s *ExtStore) writable() error {
	if !s.b.Writable() {
		return ErrReadOnly
	}
	return nil
}

// Get returns key's value, or nil if key is absent or names a sub-store.
func (s *ExtStore) Get(key []byte) []byte { return s.b.Get(key) }

// Put sets key to value. The storage engine's own errors (empty or oversized
// key or value, key naming a sub-store) come back unwrapped.
func (s *ExtStore) Put(key, value []byte) error {
	if err := s.writable(); err != nil {
		return err
	}
	return s.b.Put(key, value)
}

// Delete removes key; an absent key is not an error.
func (s *ExtStore) Delete(key []byte) error {
	if err := s.writable(); err != nil {
		return err
	}
	return s.b.Delete(key)
}

// Sub returns the sub-store name, creating it if it does not exist. It
// fails if name holds a value.
func (s *ExtStore) Sub(name []byte) (*ExtStore, error) {
	if err := s.writable(); err != nil {
		return nil, err
	}
	b, err := s.b.CreateBucketIfNotExists(name)
	if err != nil {
		return nil, err
	}
	return &ExtStore{b: b}, nil
}

// SubIfExists returns the sub-store name, or nil if there is none.
func (s *ExtStore) SubIfExists(name []byte) *ExtStore { return newExtStore(s.b.Bucket(name)) }

// ForEach calls fn for every key in order; a sub-store's name comes with a
// nil value. fn must not write to s (collect, then write). An error from fn stops the walk and is
// returned.
func (s *ExtStore) ForEach(fn func(k, v []byte) error) error { return s.b.ForEach(fn) }

// KeyN counts the keys of s and of its sub-stores, at any depth. It reads
// every page of the store, so it costs time in proportion to the store.
func (s *ExtStore) KeyN() int { return s.b.Stats().KeyN }

// Cursor returns a cursor over s in key order. Writing to s while a cursor
// walks it leaves the cursor undefined: collect the keys, then change them.
func (s *ExtStore) Cursor() *ExtCursor { return &ExtCursor{c: s.b.Cursor()} }

// ExtCursor walks an ExtStore in key order. Each move returns the key and
// value it lands on, a nil key past either end, and a nil value for a
// sub-store's name.
type ExtCursor struct {
	c *bolt.Cursor
}

// First moves to the first key.
func (c *ExtCursor) First() (k, v []byte) { return c.c.First() }

// Last moves to the last key.
func (c *ExtCursor) Last() (k, v []byte) { return c.c.Last() }

// Seek moves to key, or to the first key after it if key is absent.
func (c *ExtCursor) Seek(key []byte) (k, v []byte) { return c.c.Seek(key) }

// Next moves to the next key.
func (c *ExtCursor) Next() (k, v []byte) { return c.c.Next() }

// Prev moves to the previous key.
func (c *ExtCursor) Prev() (k, v []byte) { return c.c.Prev() }

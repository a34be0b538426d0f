package journal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc64"
	"runtime/debug"
	"sync"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"

	"github.com/aura-p2p/aura/internal/core"
)

// ErrDamaged: the file failed a structural check, or bbolt failed on it while
// reading. Nothing a client sent causes it; `aurad check` says more and
// `aurad salvage` recovers every fact that still verifies.
var ErrDamaged = fmt.Errorf("journal damaged: %w", core.ErrDataLoss)

// ErrStoreFailed: an earlier read or write found the store damaged, so writes
// are refused until an operator repairs it; reads of intact data go on.
var ErrStoreFailed = fmt.Errorf("journal failed and refuses writes (stop aurad, run `aurad check`, then `aurad salvage`): %w", core.ErrDataLoss)

// failure remembers the first damage a running journal met. bbolt does not
// survive its own panics gracefully: once one has fired we cannot trust a
// write to land on sound pages, so the store stays read-only for the rest of
// the process.
type failure struct {
	mu     sync.Mutex
	err    error
	failed chan struct{}
}

func newFailure() *failure { return &failure{failed: make(chan struct{})} }

// set records err as the store's failure; only the first one counts and is
// logged, once, at error level (damage is never a client's doing).
func (f *failure) set(log *zap.Logger, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return
	}
	f.err = err
	close(f.failed)
	log.Error("journal damaged; refusing writes from now on (stop aurad and run `aurad check`)", zap.Error(err))
}

func (f *failure) get() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// Failed is closed once the journal has met damage and refuses writes.
func (j *Journal) Failed() <-chan struct{} { return j.failure.failed }

// Failure is the damage that made the journal refuse writes, or nil.
func (j *Journal) Failure() error { return j.failure.get() }

// guarded runs fn, turning a panic (bbolt's assertions on damaged pages, or a
// fault on a page mapped past the end of a shrunken file) into ErrDamaged.
// Faults only become panics with SetPanicOnFault, which is per goroutine, so
// it is set here around every access to the mapped file.
func guarded(fn func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: bbolt failed reading the file: %v", ErrDamaged, r)
		}
	}()
	return fn()
}

// view is the journal's only way into a read transaction: damage found while
// reading (a panic or an undecodable stored value) fails the store.
func (j *Journal) view(fn func(tx *bolt.Tx) error) error {
	err := guarded(func() error { return j.db.View(fn) })
	j.noteDamage(err)
	return err
}

// update is the writer's way into a write transaction.
func (j *Journal) update(fn func(tx *bolt.Tx) error) error {
	if err := j.failure.get(); err != nil {
		return fmt.Errorf("%w (%v)", ErrStoreFailed, err)
	}
	err := guarded(func() error { return j.db.Update(fn) })
	j.noteDamage(err)
	return err
}

func (j *Journal) noteDamage(err error) {
	if err != nil && errors.Is(err, core.ErrDataLoss) {
		j.failure.set(j.log, err)
	}
}

// decodeStored decodes a fact read from the store under key, copying it out
// of bbolt's mmap. Damaged bytes can still decode; the id and signature say
// whether they are what the author wrote, so no damaged fact is ever served.
// sum is the fact's checksum from sums/ (nil when it has none): bytes that
// match the checksum written with them are the bytes whose signature was
// verified before they were stored, so the signature check, ~100 times the
// cost of the checksum, is left for facts without one or whose bytes (or
// checksum) changed since.
func decodeStored(key FactKey, raw, sum []byte) (*SignedFact, error) {
	sf, err := decodeStoredBody(key, raw)
	if err != nil {
		return nil, err
	}
	if sum != nil && bytes.Equal(sum, storedSum(raw)) {
		return sf, nil
	}
	if err := sf.VerifySignature(); err != nil {
		return nil, fmt.Errorf("stored fact %s: %v: %w", key.ID, err, ErrCorrupt)
	}
	return sf, nil
}

// sumTable is the CRC-64 table of stored fact checksums, computed once
// (crc64.MakeTable caches it).
var sumTable = crc64.MakeTable(crc64.ECMA)

// storedSum is the checksum sums/ keeps of a fact's stored bytes: CRC-64 is
// made to catch the damage a disk does, which is all it has to catch (no one
// without write access to the file can change either).
func storedSum(raw []byte) []byte {
	return binary.BigEndian.AppendUint64(nil, crc64.Checksum(raw, sumTable))
}

// sumsOf is ns's checksum bucket, nil when it has none (a store migrated
// from schema 2 before ns got a fact).
func sumsOf(tx *bolt.Tx, ns []byte) *bolt.Bucket {
	return tx.Bucket(bucketSums).Bucket(ns)
}

// sumIn reads key's checksum from b, which may be nil.
func sumIn(b *bolt.Bucket, key []byte) []byte {
	if b == nil {
		return nil
	}
	return b.Get(key)
}

// decodeStoredBody is decodeStored without the signature check, for facts
// that are only folded into state (the body, which the id covers, is all a
// reducer reads) on the write path, where a signature check per refolded fact
// would cost more than the write.
func decodeStoredBody(key FactKey, raw []byte) (*SignedFact, error) {
	sf, err := DecodeSignedFact(bytes.Clone(raw))
	if err != nil {
		return nil, fmt.Errorf("stored fact %s: %v: %w", key.ID, err, ErrCorrupt)
	}
	if sf.ID != key.ID || sf.Lamport != key.Lamport {
		return nil, fmt.Errorf("stored fact %s decodes as %s: %w", key.ID, sf.ID, ErrCorrupt)
	}
	return sf, nil
}

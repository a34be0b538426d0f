package journal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/aura-p2p/aura/internal/core"
)

// CheckOptions select how deep CheckFile looks.
type CheckOptions struct {
	// Full adds bbolt's page-by-page consistency check and verifies every
	// fact: its bytes decode, its id is the hash of its body, its key matches
	// it, and its author's signature holds.
	Full bool
	// Progress, if set, is called as facts are verified (Full only).
	Progress func(done, total uint64)
}

// CheckReport is what a check found.
type CheckReport struct {
	SchemaVersion uint32
	Facts         uint64 // facts the meta bucket counts
	Namespaces    uint64
	Verified      uint64 // facts whose id and signature were checked (Full)
	Size          int64
	Problems      []string // empty when the file is sound; capped at maxProblems
	MoreProblems  int      // problems beyond the cap
	Elapsed       time.Duration
}

const maxProblems = 100

func (r *CheckReport) problem(format string, args ...any) {
	if len(r.Problems) >= maxProblems {
		r.MoreProblems++
		return
	}
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

// CheckFile checks a journal file that no daemon has open (it takes bbolt's
// shared lock, so it waits for none and fails if aurad holds the file). It
// never writes. A file with problems gives an error wrapping ErrDamaged along
// with the report; a file that cannot be opened at all gives the error alone.
func CheckFile(ctx context.Context, path string, opts CheckOptions) (*CheckReport, error) {
	start := time.Now()
	rep := &CheckReport{}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("journal file: %w", err)
	}
	rep.Size = fi.Size()
	if err := quickCheck(path); err != nil {
		rep.problem("%v", err)
		rep.Elapsed = time.Since(start)
		return rep, err
	}
	var db *bolt.DB
	err = guarded(func() error {
		var err error
		db, err = bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
		return err
	})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("%s: %w", path, ErrLocked)
	}
	if err != nil {
		rep.problem("open: %v", err)
		return rep, fmt.Errorf("%w: %s: %v", ErrDamaged, path, err)
	}
	defer db.Close()

	err = guarded(func() error {
		return db.View(func(tx *bolt.Tx) error { return checkSchema(tx, rep, nil) })
	})
	if err != nil {
		rep.problem("%v", err)
	}
	if opts.Full && err == nil {
		if err := checkTree(path, rep); err != nil {
			rep.problem("page check: %v", err)
		}
		if err := verifyFacts(ctx, db, rep, opts.Progress); err != nil {
			if ctx.Err() != nil {
				return rep, err
			}
			rep.problem("%v", err)
		}
	}
	rep.Elapsed = time.Since(start)
	if len(rep.Problems) > 0 {
		return rep, fmt.Errorf("%w: %s: %d problem(s), first: %s", ErrDamaged, path, len(rep.Problems)+rep.MoreProblems, rep.Problems[0])
	}
	return rep, nil
}

// checkSchema is the part of the open check that needs bbolt: the schema
// version, the buckets it names, and the counters a start reads.
//
// each, if set, gets every namespace record as it is checked, so a start
// reads the records once.
func checkSchema(tx *bolt.Tx, rep *CheckReport, each func(core.Namespace, *nsRecord)) error {
	v, err := schemaVersion(tx)
	if err != nil {
		return err
	}
	rep.SchemaVersion = v
	if v == 0 {
		return fmt.Errorf("%w: no schema version (not an aurad journal, or its meta bucket is lost)", ErrDamaged)
	}
	if v > SchemaVersion {
		return fmt.Errorf("file has schema %d, this aurad knows up to %d: %w", v, SchemaVersion, ErrNewerSchema)
	}
	for _, b := range topLevelBuckets {
		if tx.Bucket(b) == nil {
			return fmt.Errorf("%w: bucket %q is missing", ErrDamaged, b)
		}
	}
	m := tx.Bucket(bucketMeta)
	for _, k := range [][]byte{keyLastSeq, keyFactCount} {
		if v := m.Get(k); v != nil && len(v) != 8 {
			return fmt.Errorf("%w: meta %s has %d bytes", ErrDamaged, k, len(v))
		}
	}
	rep.Facts = getU64(m.Get(keyFactCount))
	return tx.Bucket(bucketNamespaces).ForEach(func(k, v []byte) error {
		ns, err := parseNSKey(k)
		if err != nil {
			return fmt.Errorf("%w: namespace key %x: %v", ErrDamaged, k, err)
		}
		r, err := decodeNSRecord(v)
		if err != nil {
			return fmt.Errorf("%w: namespace record %x: %v", ErrDamaged, k, err)
		}
		if tx.Bucket(bucketMembers).Bucket(k) == nil {
			return fmt.Errorf("%w: namespace %x has no members", ErrDamaged, k)
		}
		rep.Namespaces++
		if each != nil {
			each(ns, r)
		}
		return nil
	})
}

// verifyFacts walks every namespace's facts in key order and checks each one,
// with signature checks spread over the cores (they, not the disk, bound the
// speed), then checks that the id index and the counters agree with the walk.
func verifyFacts(ctx context.Context, db *bolt.DB, rep *CheckReport, progress func(done, total uint64)) error {
	type item struct {
		ns  []byte
		key []byte
		raw []byte
	}
	work := make(chan []item, 4)
	var (
		mu       sync.Mutex
		verified uint64
		wg       sync.WaitGroup
	)
	report := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		rep.problem(format, args...)
	}
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for batch := range work {
				for _, it := range batch {
					if err := verifyStored(it.key, it.raw); err != nil {
						report("namespace %x, key %x: %v", it.ns, it.key, err)
					}
				}
				mu.Lock()
				verified += uint64(len(batch))
				done := verified
				mu.Unlock()
				if progress != nil {
					progress(done, rep.Facts)
				}
			}
		}()
	}
	var walked uint64
	walkErr := guarded(func() error {
		return db.View(func(tx *bolt.Tx) error {
			defer close(work)
			batch := make([]item, 0, 256)
			ids := tx.Bucket(bucketIDs)
			err := tx.Bucket(bucketFacts).ForEachBucket(func(ns []byte) error {
				return tx.Bucket(bucketFacts).Bucket(ns).ForEach(func(k, v []byte) error {
					if err := ctx.Err(); err != nil {
						return err
					}
					walked++
					fk, err := parseFactKey(k)
					if err != nil {
						report("namespace %x: key %x: %v", ns, k, err)
						return nil
					}
					if loc := ids.Get(fk.ID[:]); loc == nil {
						report("fact %s is missing from the id index", fk.ID)
					} else if l, err := decodeIDEntry(fk.ID, loc); err != nil || !bytes.Equal(nsKey(l.ns), ns) || l.key != fk {
						report("fact %s: id index entry disagrees with where the fact is", fk.ID)
					}
					// Copy out of the mmap: verification runs after the walk moves on.
					batch = append(batch, item{ns: ns, key: bytes.Clone(k), raw: bytes.Clone(v)})
					if len(batch) == cap(batch) {
						work <- batch
						batch = make([]item, 0, 256)
					}
					return nil
				})
			})
			if len(batch) > 0 {
				work <- batch
			}
			if n := uint64(tx.Bucket(bucketIDs).Stats().KeyN); err == nil && n != walked {
				report("id index holds %d entries for %d facts", n, walked)
			}
			return err
		})
	})
	wg.Wait()
	rep.Verified = verified
	if walkErr == nil && walked != rep.Facts {
		rep.problem("meta counts %d facts, the fact buckets hold %d", rep.Facts, walked)
	}
	return walkErr
}

// verifyStored checks one stored fact: it decodes, its key is its own
// (lamport, id), and its signature holds.
func verifyStored(key, raw []byte) error {
	fk, err := parseFactKey(key)
	if err != nil {
		return err
	}
	sf, err := DecodeSignedFact(raw)
	if err != nil {
		return fmt.Errorf("does not decode: %v", err)
	}
	if sf.ID != fk.ID || sf.Lamport != fk.Lamport {
		return fmt.Errorf("stored under (%d, %s) but is (%d, %s)", fk.Lamport, fk.ID, sf.Lamport, sf.ID)
	}
	if err := sf.VerifySignature(); err != nil {
		return err
	}
	return nil
}

func checkTree(path string, rep *CheckReport) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	checkPageTree(f, fi.Size(), rep.problem)
	return nil
}

package journal

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/aura-p2p/aura/internal/core"
)

// SalvageReport says what a salvage recovered and what it could not.
type SalvageReport struct {
	// FactsExpected is the damaged file's own count, if its meta was readable.
	FactsExpected uint64
	// FactsRecovered counts distinct facts that verified and were copied.
	FactsRecovered uint64
	// FactsRejected counts facts that verified but the new journal refused
	// (e.g. their namespace's genesis was lost), with the first few reasons.
	FactsRejected   uint64
	RejectedReasons []string
	// LostIDs are facts the damaged file's id index names but no page held
	// intact (capped at maxLostIDs; LostCount has the total when the index was
	// readable, -1 when it was not).
	LostIDs   []core.FactID
	LostCount int64
	// ExtCopied and ExtLost name the extension stores (budgets, peers,
	// sessions, the node's record of its authority) copied whole, and those
	// whose tree was damaged and left behind.
	ExtCopied []string
	ExtLost   []string
	Elapsed   time.Duration
}

const (
	maxLostIDs      = 20
	maxRejectReason = 10
	// salvageWorkers append concurrently so the new journal group-commits.
	salvageWorkers = 64
)

// bucketLeafFlag marks a leaf element that is a nested bucket's header.
const bucketLeafFlag = 0x01

// Salvage copies everything that is still sound from the journal file at
// from into the open journal to, which should be new: every fact found on any
// page of the file whose signature and id verify (facts are signed, so a fact
// that verifies is exactly what its author wrote, wherever it was found), and
// each extension store whose bbolt tree reads back whole. The file is read
// with plain reads, never mapped, so damage cannot fault the process; the
// file is never written. Reducer state is rebuilt by to as facts go in.
func Salvage(ctx context.Context, from string, to *Journal, progress func(done, total uint64)) (*SalvageReport, error) {
	start := time.Now()
	rep := &SalvageReport{LostCount: -1}
	f, err := os.Open(from)
	if err != nil {
		return nil, fmt.Errorf("damaged journal: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	pageSize := int64(4096)
	if m, err := readMetas(f, fi.Size()); err == nil {
		pageSize = int64(m.pageSize)
	}
	pages := uint64(fi.Size() / pageSize)

	// Genesis facts first: the new journal admits a namespace's other facts
	// only once its genesis is in.
	var mu sync.Mutex
	recovered := map[core.FactID]bool{}
	// waiting holds facts refused because their author was not a member yet:
	// pages are read in file order, not in the order membership grew.
	var waiting []*SignedFact
	rejectLocked := func(err error) {
		rep.FactsRejected++
		if len(rep.RejectedReasons) < maxRejectReason {
			rep.RejectedReasons = append(rep.RejectedReasons, err.Error())
		}
	}
	reject := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		rejectLocked(err)
	}
	admit := func(sf *SignedFact, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil && sf.TypeID != TypeGenesis && errors.Is(err, core.ErrPermissionDenied) {
			waiting = append(waiting, sf)
			return
		}
		if err != nil {
			rejectLocked(err)
			return
		}
		recovered[sf.ID] = true
	}
	var genesis []*SignedFact
	seen := map[core.FactID]bool{}
	if err := scanFacts(ctx, f, pageSize, pages, nil, func(sf *SignedFact) {
		if sf.TypeID == TypeGenesis && !seen[sf.ID] {
			seen[sf.ID] = true
			genesis = append(genesis, sf)
		}
	}); err != nil {
		return nil, err
	}
	sort.Slice(genesis, func(a, b int) bool { return bytes.Compare(genesis[a].ID[:], genesis[b].ID[:]) < 0 })
	for _, sf := range genesis {
		_, err := to.Append(ctx, sf)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		admit(sf, err)
	}

	work := make(chan *SignedFact, salvageWorkers*4)
	var wg sync.WaitGroup
	for range salvageWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for sf := range work {
				_, err := to.Append(ctx, sf)
				if ctx.Err() != nil {
					continue
				}
				admit(sf, err)
			}
		}()
	}
	scanErr := scanFacts(ctx, f, pageSize, pages, progress, func(sf *SignedFact) {
		if sf.TypeID == TypeGenesis {
			return
		}
		mu.Lock()
		dup := recovered[sf.ID]
		mu.Unlock()
		if !dup {
			work <- sf
		}
	})
	close(work)
	wg.Wait()
	if scanErr != nil {
		return nil, scanErr
	}
	refused, err := retryWaiting(ctx, to, waiting, admit)
	if err != nil {
		return nil, err
	}
	for _, err := range refused {
		reject(err)
	}
	rep.FactsRecovered = uint64(len(recovered))

	// What the damaged file's own structures still say, read through bbolt
	// with every access guarded: its counters, its id index (to name what was
	// lost), and its extension stores.
	readDamaged(ctx, from, to, rep, recovered)
	rep.Elapsed = time.Since(start)
	return rep, ctx.Err()
}

// retryWaiting appends the facts that waited for their author's membership,
// in (lamport, id) order, in rounds until a round admits nothing more, and
// returns the last reason of each fact still refused.
func retryWaiting(ctx context.Context, to *Journal, waiting []*SignedFact, admit func(*SignedFact, error)) ([]error, error) {
	slices.SortFunc(waiting, func(a, b *SignedFact) int {
		ka, kb := a.Key(), b.Key()
		switch {
		case ka.Less(kb):
			return -1
		case kb.Less(ka):
			return 1
		}
		return 0
	})
	reasons := make([]error, len(waiting))
	for progress := true; progress && len(waiting) > 0; {
		progress = false
		left, lreasons := waiting[:0], reasons[:0]
		for _, sf := range waiting {
			_, err := to.Append(ctx, sf)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if errors.Is(err, core.ErrPermissionDenied) {
				left, lreasons = append(left, sf), append(lreasons, err)
				continue
			}
			progress = true
			admit(sf, err)
		}
		waiting, reasons = left, lreasons
	}
	return reasons, nil
}

// scanLeaf passes fn every verified fact in a leaf page, descending into
// inline buckets (bbolt keeps a small bucket, such as a namespace of a few
// facts, inside its parent's leaf instead of on pages of its own).
func scanLeaf(page []byte, count uint16, fn func(*SignedFact), depth int) {
	forEachLeafElementChecked(page, count, func(_ int, flags uint32, k, v []byte, ok bool) {
		if !ok {
			return
		}
		if flags&bucketLeafFlag != 0 {
			// An inline bucket: a 16-byte header with root 0, then its page.
			if depth < maxTreeDepth && len(v) >= 16+pageHeaderSize && binary.LittleEndian.Uint64(v) == 0 {
				if h := decodePageHeader(v[16:]); h.flags == leafPageFlag {
					scanLeaf(v[16:], h.count, fn, depth+1)
				}
			}
			return
		}
		if len(k) != 40 {
			return
		}
		// The id is checked here; the signature by the new journal's
		// Append, so each fact is verified once.
		fk, err := parseFactKey(k)
		if err != nil {
			return
		}
		if sf, err := decodeStoredBody(fk, v); err == nil {
			fn(sf)
		}
	})
}

// scanFacts reads every page of f and calls fn with each verified fact found
// in a leaf page, including stale copies in freed pages (facts never change,
// so a stale copy is as good as a live one; duplicates are the caller's).
func scanFacts(ctx context.Context, f io.ReaderAt, pageSize int64, pages uint64, progress func(done, total uint64), fn func(*SignedFact)) error {
	head := make([]byte, pageHeaderSize)
	for id := uint64(2); id < pages; id++ {
		if id%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			if progress != nil {
				progress(id, pages)
			}
		}
		if _, err := f.ReadAt(head, int64(id)*pageSize); err != nil {
			return fmt.Errorf("read page %d: %w", id, err)
		}
		h := decodePageHeader(head)
		if h.id != id || h.flags != leafPageFlag || h.count == 0 {
			continue
		}
		span := uint64(h.overflow) + 1
		if id+span > pages {
			span = pages - id
		}
		page := make([]byte, int64(span)*pageSize)
		if _, err := f.ReadAt(page, int64(id)*pageSize); err != nil {
			return fmt.Errorf("read page %d: %w", id, err)
		}
		scanLeaf(page, h.count, fn, 0)
	}
	if progress != nil {
		progress(pages, pages)
	}
	return nil
}

// readDamaged opens the damaged file read-only through bbolt and takes what
// its tree still gives. Every access is guarded: a panic costs that part only.
func readDamaged(ctx context.Context, from string, to *Journal, rep *SalvageReport, recovered map[core.FactID]bool) {
	if err := quickCheck(from); err != nil {
		// bbolt cannot be trusted with this file at all.
		rep.ExtLost = append(rep.ExtLost, "(all: the file's meta or freelist is damaged)")
		return
	}
	var db *bolt.DB
	if err := guarded(func() error {
		var err error
		db, err = bolt.Open(from, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
		return err
	}); err != nil {
		rep.ExtLost = append(rep.ExtLost, "(all: "+err.Error()+")")
		return
	}
	defer db.Close()
	_ = guarded(func() error {
		return db.View(func(tx *bolt.Tx) error {
			if m := tx.Bucket(bucketMeta); m != nil {
				rep.FactsExpected = getU64(m.Get(keyFactCount))
			}
			return nil
		})
	})
	var lost []core.FactID
	if err := guarded(func() error {
		return db.View(func(tx *bolt.Tx) error {
			ids := tx.Bucket(bucketIDs)
			if ids == nil {
				return errors.New("no id index")
			}
			return ids.ForEach(func(k, _ []byte) error {
				var id core.FactID
				if len(k) != len(id) {
					return nil
				}
				copy(id[:], k)
				if !recovered[id] {
					lost = append(lost, id)
				}
				return nil
			})
		})
	}); err == nil {
		rep.LostCount = int64(len(lost))
		rep.LostIDs = lost[:min(len(lost), maxLostIDs)]
	}

	var owners [][]byte
	if err := guarded(func() error {
		return db.View(func(tx *bolt.Tx) error {
			ext := tx.Bucket(bucketExt)
			if ext == nil {
				return errors.New("no extension bucket")
			}
			return ext.ForEachBucket(func(k []byte) error {
				owners = append(owners, bytes.Clone(k))
				return nil
			})
		})
	}); err != nil {
		rep.ExtLost = append(rep.ExtLost, "(list: "+err.Error()+")")
	}
	for _, owner := range owners {
		var tree *extTree
		err := guarded(func() error {
			return db.View(func(tx *bolt.Tx) error {
				var err error
				tree, err = copyExtTree(tx.Bucket(bucketExt).Bucket(owner))
				return err
			})
		})
		if err == nil {
			_, err = to.Commit(ctx, Txn{Ops: []TxOp{func(tx *ExtTx) error {
				b, err := tx.bucket(string(owner))
				if err != nil {
					return err
				}
				return tree.writeTo(b)
			}}})
		}
		if err != nil {
			rep.ExtLost = append(rep.ExtLost, fmt.Sprintf("%s (%v)", owner, err))
			continue
		}
		rep.ExtCopied = append(rep.ExtCopied, string(owner))
	}
}

// extTree is an extension bucket copied out of a file: its values and its
// nested buckets, in key order.
type extTree struct {
	keys, values [][]byte
	subNames     [][]byte
	subs         []*extTree
}

func copyExtTree(b *bolt.Bucket) (*extTree, error) {
	t := &extTree{}
	err := b.ForEach(func(k, v []byte) error {
		if v == nil {
			sub, err := copyExtTree(b.Bucket(k))
			if err != nil {
				return err
			}
			t.subNames = append(t.subNames, bytes.Clone(k))
			t.subs = append(t.subs, sub)
			return nil
		}
		t.keys = append(t.keys, bytes.Clone(k))
		t.values = append(t.values, bytes.Clone(v))
		return nil
	})
	return t, err
}

func (t *extTree) writeTo(b *bolt.Bucket) error {
	for i, k := range t.keys {
		if err := b.Put(k, t.values[i]); err != nil {
			return err
		}
	}
	for i, name := range t.subNames {
		sub, err := b.CreateBucketIfNotExists(name)
		if err != nil {
			return err
		}
		if err := t.subs[i].writeTo(sub); err != nil {
			return err
		}
	}
	return nil
}

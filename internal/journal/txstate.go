package journal

import (
	"bytes"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/aura-p2p/aura/internal/core"
)

// txState is one write transaction's view: the buckets, and counters and
// namespace records that are written once at the end.
type txState struct {
	j                          *Journal
	tx                         *bolt.Tx
	facts, ids, log, nsb, meta *bolt.Bucket
	members, sums              *bolt.Bucket
	lastSeq, factCount         uint64
	records                    map[core.Namespace]*nsRecord
	dirty                      map[core.Namespace]bool
	published                  []StoredFact
	// changed holds the namespaces founded or given new members in this
	// transaction: their orphans are retried after the commit.
	changed map[core.Namespace]bool
}

func newTxState(tx *bolt.Tx, j *Journal) (*txState, error) {
	st := &txState{
		j: j, tx: tx,
		facts: tx.Bucket(bucketFacts), ids: tx.Bucket(bucketIDs), log: tx.Bucket(bucketLog),
		nsb: tx.Bucket(bucketNamespaces), meta: tx.Bucket(bucketMeta),
		members: tx.Bucket(bucketMembers), sums: tx.Bucket(bucketSums),
		records: map[core.Namespace]*nsRecord{},
		dirty:   map[core.Namespace]bool{},
		changed: map[core.Namespace]bool{},
	}
	// The log is appended in seq order and a namespace mostly in lamport
	// order: full pages instead of bbolt's half-full splits halve the pages
	// each commit writes. FillPercent is per transaction.
	st.log.FillPercent = 1.0
	st.lastSeq = getU64(st.meta.Get(keyLastSeq))
	st.factCount = getU64(st.meta.Get(keyFactCount))
	return st, nil
}

func (st *txState) record(ns core.Namespace) (*nsRecord, error) {
	if r, ok := st.records[ns]; ok {
		return r, nil
	}
	v := st.nsb.Get(nsKey(ns))
	if v == nil {
		return nil, nil
	}
	r, err := decodeNSRecord(v)
	if err != nil {
		return nil, err
	}
	st.records[ns] = r
	return r, nil
}

// applyRequest inserts a request's facts and runs its ops. Errors before the
// request's first write are plain rejections; errors after are errPartial.
func (st *txState) applyRequest(r *request) ([]Committed, error) {
	out := make([]Committed, 0, len(r.facts))
	wrote := false
	fail := func(err error) ([]Committed, error) {
		if wrote {
			return nil, errPartial{err}
		}
		return nil, err
	}
	for _, sf := range r.facts {
		c, didWrite, err := st.insert(sf, r.receive)
		if err != nil {
			return fail(err)
		}
		wrote = wrote || didWrite
		out = append(out, c)
	}
	if len(r.ops) > 0 {
		ext := &ExtTx{tx: st.tx}
		for _, op := range r.ops {
			wrote = true // an op may have written before failing
			if err := op(ext); err != nil {
				return fail(err)
			}
		}
	}
	return out, nil
}

// insert validates sf against the stored state and writes it. It performs every
// read and check before its first write. With orphanable, a fact whose
// namespace or author is not known yet fails with errOrphan instead.
func (st *txState) insert(sf *SignedFact, orphanable bool) (Committed, bool, error) {
	c := Committed{ID: sf.ID, Namespace: sf.Namespace, Lamport: sf.Lamport}
	if v := st.ids.Get(sf.ID[:]); v != nil {
		loc, err := decodeIDEntry(sf.ID, v)
		if err != nil {
			return c, false, err
		}
		c.Seq, c.Duplicate = loc.seq, true
		return c, false, nil
	}
	rec, err := st.record(sf.Namespace)
	if err != nil {
		return c, false, err
	}
	var adds []core.DeviceID
	if sf.TypeID == TypeGenesis {
		if rec != nil {
			return c, false, fmt.Errorf("namespace %s already has a genesis: %w", sf.Namespace, core.ErrAlreadyExists)
		}
		if rec, err = genesisRecord(sf); err != nil {
			return c, false, err
		}
		adds = rec.members
	} else {
		if rec == nil {
			err := fmt.Errorf("namespace %s is unknown here: %w", sf.Namespace, core.ErrNotFound)
			if orphanable {
				err = errOrphan{err}
			}
			return c, false, err
		}
		if !st.isMember(sf.Namespace, sf.Author) {
			err := fmt.Errorf("author %s is not a member of %s: %w", sf.Author, sf.Namespace, core.ErrPermissionDenied)
			if orphanable {
				err = errOrphan{err}
			}
			return c, false, err
		}
		if src := st.j.membership[sf.Namespace.Kind]; src != nil && src.Handles(sf.TypeID) {
			if adds, err = src.Adds(sf); err != nil {
				return c, false, fmt.Errorf("membership %s: %w", sf.TypeID, err)
			}
		}
	}
	var writes []func() error
	for _, red := range st.j.reducers {
		if !red.Handles(sf.TypeID) {
			continue
		}
		w, err := st.reduce(red, sf)
		if err != nil {
			return c, false, fmt.Errorf("reducer %s: %w", red.Name(), err)
		}
		writes = append(writes, w)
	}

	// Reads are done; from here every error is partial.
	st.lastSeq++
	c.Seq = st.lastSeq
	loc := location{ns: sf.Namespace, key: sf.Key(), seq: c.Seq}
	nsFacts, err := st.facts.CreateBucketIfNotExists(nsKey(sf.Namespace))
	if err != nil {
		return c, true, err
	}
	nsFacts.FillPercent = 1.0
	raw := sf.Encode()
	if err := nsFacts.Put(factKey(loc.key), raw); err != nil {
		return c, true, err
	}
	nsSums, err := st.sums.CreateBucketIfNotExists(nsKey(sf.Namespace))
	if err != nil {
		return c, true, err
	}
	nsSums.FillPercent = 1.0
	if err := nsSums.Put(factKey(loc.key), storedSum(raw)); err != nil {
		return c, true, err
	}
	if err := st.ids.Put(sf.ID[:], encodeIDEntry(loc)); err != nil {
		return c, true, err
	}
	if err := st.log.Put(u64(c.Seq), encodeLogEntry(loc)); err != nil {
		return c, true, err
	}
	for _, w := range writes {
		if err := w(); err != nil {
			return c, true, err
		}
	}
	if len(adds) > 0 {
		grew, err := st.addMembers(sf.Namespace, adds, sf.Key())
		if err != nil {
			return c, true, err
		}
		if grew {
			st.changed[sf.Namespace] = true
		}
	}
	rec.factCount++
	rec.maxLamport = max(rec.maxLamport, sf.Lamport)
	st.records[sf.Namespace] = rec
	st.dirty[sf.Namespace] = true
	st.factCount++
	st.published = append(st.published, StoredFact{SignedFact: sf, Seq: c.Seq})
	return c, true, nil
}

func genesisRecord(sf *SignedFact) (*nsRecord, error) {
	g, err := DecodeGenesis(sf.Payload)
	if err != nil {
		return nil, err
	}
	if g.Kind != sf.Namespace.Kind || NamespaceOf(g.Kind, sf.Payload) != sf.Namespace {
		return nil, fmt.Errorf("genesis does not found namespace %s: %w", sf.Namespace, core.ErrInvalidArgument)
	}
	if !g.HasMember(sf.Author) {
		return nil, fmt.Errorf("genesis author %s is not among its members: %w", sf.Author, core.ErrPermissionDenied)
	}
	rec := &nsRecord{genesis: sf.ID, threshold: g.Threshold}
	for _, m := range g.Members {
		rec.members = append(rec.members, m.Device)
	}
	slices.SortFunc(rec.members, func(a, b core.DeviceID) int { return bytes.Compare(a[:], b[:]) })
	return rec, nil
}

// flush writes the counters and changed namespace records.
func (st *txState) flush() error {
	if err := st.meta.Put(keyLastSeq, u64(st.lastSeq)); err != nil {
		return err
	}
	if err := st.meta.Put(keyFactCount, u64(st.factCount)); err != nil {
		return err
	}
	dirty := make([]core.Namespace, 0, len(st.dirty))
	for ns := range st.dirty {
		dirty = append(dirty, ns)
	}
	slices.SortFunc(dirty, func(a, b core.Namespace) int { return bytes.Compare(nsKey(a), nsKey(b)) })
	for _, ns := range dirty {
		if err := st.nsb.Put(nsKey(ns), encodeNSRecord(st.records[ns])); err != nil {
			return err
		}
	}
	return nil
}

package journal

import (
	"context"
	"errors"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"

	"github.com/aura-p2p/aura/internal/core"
)

// Committed says where an appended fact landed.
type Committed struct {
	ID        core.FactID
	Namespace core.Namespace
	Lamport   uint64
	Seq       uint64
	// Duplicate: the fact was already stored; nothing was written.
	Duplicate bool
}

// Draft is what a local author supplies; the journal fills in author, lamport
// and time, then signs.
type Draft struct {
	Namespace     core.Namespace
	TypeID        string
	SchemaVersion uint32
	Payload       []byte
	// Lamport, if set, must come from NextLamport: for payloads that embed the
	// fact's own lamport (LWW timestamps). Zero takes the next one.
	Lamport uint64
}

// TxOp writes to a package's own extension bucket in the same transaction as
// the facts it accompanies. It must be deterministic and may run more than
// once if the batch is retried, so it must not have effects outside tx.
type TxOp func(tx *ExtTx) error

// ExtTx gives a TxOp its own extension stores and nothing else.
type ExtTx struct{ tx *bolt.Tx }

// Bucket returns (creating it) the extension store ext/<owner>.
func (e *ExtTx) Bucket(owner string) (*ExtStore, error) {
	b, err := e.bucket(owner)
	if err != nil {
		return nil, err
	}
	return &ExtStore{b: b}, nil
}

// bucket is Bucket for the journal's own copying (salvage), which moves
// nested trees as they are.
func (e *ExtTx) bucket(owner string) (*bolt.Bucket, error) {
	if owner == "" {
		return nil, fmt.Errorf("extension bucket needs an owner: %w", core.ErrInvalidArgument)
	}
	return e.tx.Bucket(bucketExt).CreateBucketIfNotExists([]byte(owner))
}

// Txn is an atomic unit: all its facts and ops commit together or none do.
type Txn struct {
	Facts []*SignedFact
	Ops   []TxOp
}

type request struct {
	facts []*SignedFact
	ops   []TxOp
	done  chan result
	// receive marks a single fact from a peer (Receive): if its namespace or
	// author is not known yet it goes to the orphan pool, attributed to from.
	receive bool
	from    core.DeviceID
	// group, on a carrier that holds nothing else, is a run of receive
	// requests queued as one (ReceiveBatch): the writer takes them all into
	// the same commit, in order, and answers each; the carrier itself gets
	// no answer.
	group []*request
}

type result struct {
	committed []Committed
	err       error
}

// AppendLocal builds a fact authored by signer's device with the next lamport
// of its namespace, signs it and returns once it is durable.
func (j *Journal) AppendLocal(ctx context.Context, signer Signer, d Draft) (*SignedFact, Committed, error) {
	sf, err := j.SignLocal(signer, d)
	if err != nil {
		return nil, Committed{}, err
	}
	cs, err := j.submit(ctx, &request{facts: []*SignedFact{sf}})
	if err != nil {
		return nil, Committed{}, err
	}
	return sf, cs[0], nil
}

// SignLocal prepares a local fact without appending it, for callers that commit
// it inside a Txn with other writes.
func (j *Journal) SignLocal(signer Signer, d Draft) (*SignedFact, error) {
	f := Fact{
		Namespace:     d.Namespace,
		TypeID:        d.TypeID,
		SchemaVersion: d.SchemaVersion,
		Payload:       d.Payload,
		Author:        signer.DeviceID(),
		CreatedAtMs:   j.clock.Now().UnixMilli(),
	}
	if err := f.checkContent(); err != nil {
		return nil, err
	}
	f.Lamport = d.Lamport
	if f.Lamport == 0 {
		f.Lamport = j.lamports.next(d.Namespace)
	}
	if err := j.validate(&SignedFact{Fact: f}); err != nil {
		return nil, err
	}
	return SignFact(signer, f)
}

// NextLamport reserves the next lamport of a namespace for a Draft.
func (j *Journal) NextLamport(ns core.Namespace) uint64 {
	return j.lamports.next(ns)
}

// Append verifies a fact received from elsewhere and durably inserts it.
// A fact already present is reported as Duplicate, not as an error.
func (j *Journal) Append(ctx context.Context, sf *SignedFact) (Committed, error) {
	if err := sf.VerifySignature(); err != nil {
		return Committed{}, err
	}
	if err := j.validate(sf); err != nil {
		return Committed{}, err
	}
	cs, err := j.submit(ctx, &request{facts: []*SignedFact{sf}})
	if err != nil {
		return Committed{}, err
	}
	return cs[0], nil
}

// Commit atomically inserts locally signed facts together with extension
// writes. Facts in a Txn must come from SignLocal (their signatures are not
// re-checked).
func (j *Journal) Commit(ctx context.Context, t Txn) ([]Committed, error) {
	if len(t.Facts) == 0 && len(t.Ops) == 0 {
		return nil, nil
	}
	return j.submit(ctx, &request{facts: t.Facts, ops: t.Ops})
}

// validate runs the checks that need no state: the reserved type namespace and
// the type's own validator.
func (j *Journal) validate(sf *SignedFact) error {
	v, ok := j.validators[sf.TypeID]
	if !ok && strings.HasPrefix(sf.TypeID, "aura.") && sf.TypeID != TypeGenesis && !j.reduced(sf.TypeID) && !j.membershipType(sf.TypeID) {
		return fmt.Errorf("type %q: the aura. prefix is reserved and this type is unknown: %w", sf.TypeID, core.ErrInvalidArgument)
	}
	if err := j.checkMembershipFact(sf); err != nil {
		return err
	}
	if ok {
		if err := v(sf); err != nil {
			return fmt.Errorf("type %s: %w", sf.TypeID, err)
		}
	}
	return nil
}

func (j *Journal) reduced(typeID string) bool {
	for _, r := range j.reducers {
		if r.Handles(typeID) {
			return true
		}
	}
	return false
}

func (j *Journal) submit(ctx context.Context, r *request) ([]Committed, error) {
	p, err := j.enqueue(ctx, r)
	if err != nil {
		return nil, err
	}
	return p.Wait(ctx)
}

// Pending is a queued Txn whose outcome is not known yet.
type Pending struct{ r *request }

// CommitAsync queues t and returns at once. Txns queued one after another
// commit in that order (in one batch or in successive ones), so a caller that
// queues while holding a lock can order its writes without holding the lock
// through the fsync.
func (j *Journal) CommitAsync(ctx context.Context, t Txn) (*Pending, error) {
	return j.enqueue(ctx, &request{facts: t.Facts, ops: t.Ops})
}

// Wait returns the outcome. If ctx ends first the Txn may still commit; the
// caller learns nothing more from this Pending.
func (p *Pending) Wait(ctx context.Context) ([]Committed, error) {
	select {
	case res := <-p.r.done:
		// Keep the result for a later Wait.
		p.r.done <- res
		return res.committed, res.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (j *Journal) enqueue(ctx context.Context, r *request) (*Pending, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if r.group == nil {
		r.done = make(chan result, 1)
	}
	for _, m := range r.group {
		m.done = make(chan result, 1)
	}
	j.closeMu.RLock()
	defer j.closeMu.RUnlock()
	if j.closed {
		return nil, ErrClosed
	}
	// The writer drains the queue until Close takes closeMu, so this send
	// cannot block forever.
	select {
	case j.queue <- r:
		return &Pending{r: r}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// writer is the only goroutine that writes. It takes everything queued, up to
// maxBatch facts, into one transaction.
func (j *Journal) writer() {
	defer close(j.writerD)
	for {
		var first *request
		select {
		case first = <-j.queue:
		case <-j.closing:
			j.drainOnClose()
			return
		}
		batch, n := take(nil, 0, first)
	fill:
		for n < j.maxBatch {
			select {
			case r := <-j.queue:
				batch, n = take(batch, n, r)
			default:
				break fill
			}
		}
		j.commitAndAnswer(batch)
	}
}

// take adds a queued request to batch, a group as its members, and counts
// the facts.
func take(batch []*request, n int, r *request) ([]*request, int) {
	if r.group == nil {
		return append(batch, r), n + len(r.facts)
	}
	for _, m := range r.group {
		n += len(m.facts)
	}
	return append(batch, r.group...), n
}

func (j *Journal) commitAndAnswer(batch []*request) {
	results := j.commitBatch(batch)
	for i, r := range batch {
		r.done <- *results[i]
	}
}

// drainOnClose commits what was queued before Close so that no accepted
// append is silently dropped.
func (j *Journal) drainOnClose() {
	for {
		var batch []*request
		n := 0
	fill:
		for n < j.maxBatch {
			select {
			case r := <-j.queue:
				batch, n = take(batch, n, r)
			default:
				break fill
			}
		}
		if len(batch) == 0 {
			return
		}
		j.commitAndAnswer(batch)
	}
}

// errPartial marks a failure after a request already wrote into the
// transaction: the transaction must be thrown away and the batch retried
// without that request.
type errPartial struct{ err error }

func (e errPartial) Error() string { return e.err.Error() }
func (e errPartial) Unwrap() error { return e.err }

// commitBatch commits what it can of batch and returns every request's
// result. After each request that founds a namespace or adds members, the
// orphans that now fit go into the same transaction (admission.admit), so
// facts land in the order that committing the requests one by one would
// give them.
func (j *Journal) commitBatch(batch []*request) []*result {
	results := make([]*result, len(batch))
	start := j.clock.Now()
	// Orphans whose insert failed after writing: later attempts leave them
	// out, and the pool drops them.
	dropped := map[core.FactID]bool{}
	for {
		var published []StoredFact
		var adm *admission
		failed := -1
		err := j.update(func(tx *bolt.Tx) error {
			st, err := newTxState(tx, j)
			if err != nil {
				return err
			}
			adm = j.newAdmission(st, dropped)
			for i, r := range batch {
				if results[i] == nil {
					cs, err := st.applyRequest(r)
					var partial errPartial
					if errors.As(err, &partial) {
						failed = i
						results[i] = &result{err: partial.err}
						return err
					}
					if err != nil {
						results[i] = &result{err: err}
					} else {
						results[i] = &result{committed: cs}
					}
				}
				adm.note(r, results[i])
				if err := adm.admit(); err != nil {
					return err
				}
			}
			published = st.published
			return st.flush()
		})
		var bad errOrphanPartial
		if failed >= 0 || errors.As(err, &bad) {
			if failed < 0 {
				dropped[bad.id] = true
			}
			// Forget the provisional results of the others and try again.
			for i := range results {
				if i != failed && results[i] != nil && results[i].err == nil {
					results[i] = nil
				}
			}
			continue
		}
		if err != nil {
			j.log.Warn("journal commit failed", zap.Error(err))
			if !errors.Is(err, core.ErrDataLoss) {
				err = fmt.Errorf("%w: %w", err, core.ErrUnavailable)
			}
			for i := range results {
				results[i] = &result{err: fmt.Errorf("commit: %w", err)}
			}
		} else {
			for _, sf := range published {
				j.lamports.observe(sf.Namespace, sf.Lamport)
			}
			// Before the watchers: one who hears of a fact finds it in range
			// summaries.
			j.ranges.apply(published)
			j.hub.publish(published)
			j.settleOrphans(batch, results, adm.settled, dropped)
		}
		if j.observer != nil {
			stored := len(published)
			if err != nil {
				stored = 0
			}
			j.observer.ObserveCommit(len(batch), stored, j.clock.Now().Sub(start), err)
		}
		return results
	}
}

// ViewExt reads the extension store ext/<owner> in a read transaction; fn gets
// nil when the store does not exist yet. The store refuses writes
// (ErrReadOnly), and its values are only valid inside fn.
func (j *Journal) ViewExt(ctx context.Context, owner string, fn func(s *ExtStore) error) error {
	return j.view(func(tx *bolt.Tx) error {
		return fn(newExtStore(tx.Bucket(bucketExt).Bucket([]byte(owner))))
	})
}

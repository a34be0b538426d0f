package journal

import (
	"context"
	"fmt"
	"runtime"
	"sync"

	bolt "go.etcd.io/bbolt"

	"github.com/aura-p2p/aura/internal/core"
)

// errStreamStopped answers the facts added after one that failed: they are
// never queued.
var errStreamStopped = fmt.Errorf("an earlier fact of the stream failed: %w", core.ErrAborted)

// LocalStream appends one writer's run of local facts in the order they are
// added, without waiting for each to be durable before taking the next:
// facts are signed on every core, reach the writer in order and share its
// group commits, so a bulk writer is not held to one fsync per fact.
//
// Facts keep their order: lamports follow it within a namespace, and each
// fact commits in the same batch as the one before it or a later one. The
// first fact that fails stops the stream: no fact added after it is queued.
// That holds for every refusal the writer could make, because the refusals
// that depend on stored state are settled before the next fact is queued:
// the namespace and the author's membership are looked up once a namespace
// (neither ever goes away), and a fact of a type a reducer folds, which the
// reducer may refuse, is waited for before the next one is queued. The one
// exception is a commit that fails on the disk: the facts queued behind its
// own before that was known may still land, in a later batch.
//
// Add is safe for concurrent use; facts added concurrently are ordered as
// their Add calls are.
type LocalStream struct {
	j      *Journal
	signer Signer
	// signing bounds the signatures in progress to one a core.
	signing chan struct{}

	mu sync.Mutex
	// last is the fact added last, nil before the first.
	last *LocalPending

	// Only the queueing step touches these. Each fact's step runs after the
	// previous fact's has finished (LocalPending.queued orders them), so
	// they need no lock.
	members map[core.Namespace]bool
	settle  *Pending // last queued fact that a reducer may still refuse
	failed  bool
}

// NewLocalStream returns a stream of facts authored and signed by signer.
func (j *Journal) NewLocalStream(signer Signer) *LocalStream {
	return &LocalStream{
		j:       j,
		signer:  signer,
		signing: make(chan struct{}, runtime.GOMAXPROCS(0)),
		members: map[core.Namespace]bool{},
	}
}

// LocalPending is an added fact whose outcome is not known yet.
type LocalPending struct {
	// queued is closed once the fact is queued for the writer, or refused
	// with err.
	queued chan struct{}
	err    error
	p      *Pending
}

// Add takes the next lamport of d's namespace (unless d has one from
// NextLamport), then signs d, checks it as AppendLocal does and queues it
// behind the facts added before, all without waiting: LocalPending.Wait
// gives the outcome. It blocks only while every core is already signing
// one of the stream's facts. Once ctx ends, facts not yet queued are
// refused with its error; queued ones may still commit. A genesis cannot be
// added: its namespace is not stored yet.
func (s *LocalStream) Add(ctx context.Context, d Draft) *LocalPending {
	lp := &LocalPending{queued: make(chan struct{})}
	slot := false
	select {
	case s.signing <- struct{}{}:
		slot = true
	case <-ctx.Done():
	}
	s.mu.Lock()
	prev := s.last
	s.last = lp
	if slot && d.Lamport == 0 {
		d.Lamport = s.j.lamports.next(d.Namespace)
	}
	s.mu.Unlock()
	go lp.run(ctx, s, prev, d, slot)
	return lp
}

// run signs the fact if it got a signing slot, then waits for the previous
// fact's step to finish and takes its own. Every wait inside a step ends
// with ctx, so the chain drains promptly once ctx ends.
func (lp *LocalPending) run(ctx context.Context, s *LocalStream, prev *LocalPending, d Draft, slot bool) {
	defer close(lp.queued)
	var sf *SignedFact
	err := ctx.Err()
	if slot {
		sf, err = s.j.SignLocal(s.signer, d)
		<-s.signing
	}
	if prev != nil {
		<-prev.queued
	}
	if s.failed {
		lp.err = errStreamStopped
		return
	}
	if err == nil {
		err = s.queue(ctx, lp, sf)
	}
	if err != nil {
		s.failed = true
		lp.err = err
	}
}

// queue is one fact's step, in stream order: settle what the writer could
// refuse for reasons of state, then hand the fact to the writer.
func (s *LocalStream) queue(ctx context.Context, lp *LocalPending, sf *SignedFact) error {
	if !s.members[sf.Namespace] {
		if err := s.j.checkAuthor(sf.Namespace, sf.Author); err != nil {
			return err
		}
		s.members[sf.Namespace] = true
	}
	if s.settle != nil {
		if _, err := s.settle.Wait(ctx); err != nil {
			if ctx.Err() != nil {
				return err
			}
			// The earlier fact's own error is what its Wait reports.
			return errStreamStopped
		}
		s.settle = nil
	}
	p, err := s.j.enqueue(ctx, &request{facts: []*SignedFact{sf}})
	if err != nil {
		return err
	}
	lp.p = p
	if s.j.reduced(sf.TypeID) {
		s.settle = p
	}
	return nil
}

// checkAuthor refuses a fact whose namespace is not stored or whose author
// is not a member of it, with the errors the writer's insert would give.
func (j *Journal) checkAuthor(ns core.Namespace, author core.DeviceID) error {
	var known, member bool
	err := j.view(func(tx *bolt.Tx) error {
		known = tx.Bucket(bucketNamespaces).Get(nsKey(ns)) != nil
		if b := tx.Bucket(bucketMembers).Bucket(nsKey(ns)); b != nil {
			member = b.Get(author[:]) != nil
		}
		return nil
	})
	switch {
	case err != nil:
		return err
	case !known:
		return fmt.Errorf("namespace %s is unknown here: %w", ns, core.ErrNotFound)
	case !member:
		return fmt.Errorf("author %s is not a member of %s: %w", author, ns, core.ErrPermissionDenied)
	}
	return nil
}

// Wait returns where the fact landed once it is durable, or why it was
// refused. If ctx ends first the fact may still commit.
func (lp *LocalPending) Wait(ctx context.Context) (Committed, error) {
	select {
	case <-lp.queued:
	case <-ctx.Done():
		return Committed{}, ctx.Err()
	}
	if lp.err != nil {
		return Committed{}, lp.err
	}
	cs, err := lp.p.Wait(ctx)
	if err != nil {
		return Committed{}, err
	}
	return cs[0], nil
}

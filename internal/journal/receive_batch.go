package journal

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/crypto/edsig"
)

// ErrBadSignature: a received fact's signature does not verify under its
// author's key. A peer that sends one forged it or relays a forgery, so sync
// counts these against the sender.
var ErrBadSignature = fmt.Errorf("bad signature: %w", core.ErrInvalidArgument)

// ReceiveResult says what became of one fact of a received batch.
type ReceiveResult struct {
	Received
	// Err, if set, is why the fact was refused, wrapping the sentinels
	// Receive returns (ErrBadSignature, a validator's error, the insert
	// checks' core.ErrPermissionDenied and the like, ErrOrphanTooLarge). A
	// refused fact changes nothing and its Received is zero.
	Err error
}

// verifyChunk is how many facts a worker verifies at a time, and the most
// that are queued for the writer as one group. Small enough that the writer
// commits the first chunks while the workers verify the rest; large enough
// that each commit, whose two fsyncs take 1-3 ms here, carries many facts
// (measured: 64 beats 16, 32 and 128 in BenchmarkReceiveBatch and
// BenchmarkReceiverInFlight).
const verifyChunk = 64

// ReceiveBatch verifies facts a peer sent, in parallel across cores, and
// inserts the valid ones durably in group-committed transactions; it returns
// one result per input fact, in input order.
//
// The outcome is that of calling Receive for each fact in order: a duplicate
// is reported as Duplicate, a fact whose namespace or author is not known
// yet is pooled with Orphaned set, a fact whose author an earlier fact of the
// batch admits is inserted, and a refused fact does not affect the others.
// It differs only when the orphan pool overflows within the batch: the pool
// takes the batch's orphans after the commit, so which orphan its bounds
// evict may differ.
//
// The error is only for the call as a whole: ctx ended, the journal closed,
// or the store failed. Facts may still commit after ctx ends.
//
// Each call waits for its last commit, during which the cores that verify
// have nothing to do; a Receiver keeps the next batch verifying meanwhile.
func (j *Journal) ReceiveBatch(ctx context.Context, from core.DeviceID, facts []*SignedFact) ([]ReceiveResult, error) {
	return j.NewReceiver(from).Start(ctx, facts).Wait(ctx)
}

// Receiver receives batches of facts from one peer, several in flight:
// batches started one after another reach the writer in that order, so the
// outcome is that of ReceiveBatch on each in turn, while a batch is verified
// as the batches before it commit. Safe for concurrent use; batches started
// concurrently are ordered as their Start calls are.
type Receiver struct {
	j    *Journal
	from core.DeviceID

	mu sync.Mutex
	// lastQueued is the queued channel of the batch started last, nil
	// before the first.
	lastQueued chan struct{}
}

// NewReceiver returns a Receiver of facts sent by from, to whom their orphans
// are attributed.
func (j *Journal) NewReceiver(from core.DeviceID) *Receiver {
	return &Receiver{j: j, from: from}
}

// PendingBatch is a started batch whose outcome is not known yet.
type PendingBatch struct {
	j     *Journal
	facts []*SignedFact
	out   []ReceiveResult
	reqs  []request
	// verified[k] is closed once chunk k is verified.
	verified []chan struct{}
	// queued is closed once every valid fact is queued for the writer, or
	// queueing ended with err.
	queued chan struct{}
	err    error
}

// Start verifies facts (on every core) and queues the valid ones for the
// writer behind the batches started before; it returns at once. ctx bounds
// that work: once it ends, the facts not yet queued are dropped.
func (r *Receiver) Start(ctx context.Context, facts []*SignedFact) *PendingBatch {
	chunks := (len(facts) + verifyChunk - 1) / verifyChunk
	p := &PendingBatch{
		j:        r.j,
		facts:    facts,
		out:      make([]ReceiveResult, len(facts)),
		reqs:     make([]request, len(facts)),
		verified: make([]chan struct{}, chunks),
		queued:   make(chan struct{}),
	}
	for k := range p.verified {
		p.verified[k] = make(chan struct{})
	}
	r.mu.Lock()
	prev := r.lastQueued
	r.lastQueued = p.queued
	r.mu.Unlock()

	var stop atomic.Bool
	if chunks > 1 {
		var next atomic.Int64
		for range min(runtime.GOMAXPROCS(0), chunks) {
			go func() {
				for !stop.Load() {
					k := int(next.Add(1) - 1)
					if k >= chunks {
						return
					}
					p.verify(k, true)
				}
			}()
		}
	}
	go func() {
		p.err = p.queue(ctx, r.from, prev, chunks == 1)
		stop.Store(true)
		close(p.queued)
	}()
	return p
}

func (p *PendingBatch) chunk(k int) (lo, hi int) {
	return k * verifyChunk, min((k+1)*verifyChunk, len(p.facts))
}

// sigBatch is how many signatures are verified as one batch (package edsig):
// a batch of 16 by one author costs a fifth of 16 single verifications
// (BenchmarkVerify in internal/crypto/edsig), and larger ones gain little
// while they hold a core longer between yields.
const sigBatch = 16

// verify checks chunk k: its signatures in batches of sigBatch, falling
// back to one at a time in a batch that fails to find the forgeries, then
// the checks that need no state. A worker yields after each batch: the
// cores are all busy verifying, and the goroutines that queue chunks and
// commit them (after every fsync) would otherwise wait for the scheduler to
// preempt a worker, up to 10 ms, while the batch's commits are what a caller
// waits for.
func (p *PendingBatch) verify(k int, yield bool) {
	lo, hi := p.chunk(k)
	p.j.checkFacts(p.facts[lo:hi], p.out[lo:hi], yield)
	close(p.verified[k])
}

// checkFacts sets out[i].Err to why facts[i] is refused, if it is.
func (j *Journal) checkFacts(facts []*SignedFact, out []ReceiveResult, yield bool) {
	var batch edsig.Batch
	for start := 0; start < len(facts); start += sigBatch {
		end := min(start+sigBatch, len(facts))
		signed := false
		if end-start > 1 {
			batch.Reset()
			for _, sf := range facts[start:end] {
				if sf != nil {
					batch.Add(sf.Author.PublicKey(), sf.Body, sf.Signature)
				}
			}
			signed = batch.Len() == end-start && batch.Verify()
		}
		for i := start; i < end; i++ {
			out[i].Err = j.checkReceived(facts[i], signed)
		}
		if yield {
			runtime.Gosched()
		}
	}
}

// queue hands each chunk's valid facts to the writer once the batch before
// is queued whole and as soon as the chunk is verified, in input order, so
// the writer processes them as one-by-one Receives would, while later chunks
// are still being verified. A batch of one chunk is verified here.
func (p *PendingBatch) queue(ctx context.Context, from core.DeviceID, prev chan struct{}, alone bool) error {
	if alone {
		p.verify(0, false)
	}
	if prev != nil {
		select {
		case <-prev:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for k := range p.verified {
		select {
		case <-p.verified[k]:
		case <-ctx.Done():
			return ctx.Err()
		}
		var group []*request
		lo, hi := p.chunk(k)
		for i := lo; i < hi; i++ {
			if p.out[i].Err != nil {
				continue
			}
			r := &p.reqs[i]
			r.facts, r.receive, r.from = p.facts[i:i+1], true, from
			group = append(group, r)
		}
		if len(group) == 0 {
			continue
		}
		if _, err := p.j.enqueue(ctx, &request{group: group}); err != nil {
			return err
		}
	}
	return nil
}

// Wait returns one result per fact of the batch, in order, once the valid
// ones are durable. If ctx ends first, facts may still commit. It is for one
// goroutine at a time; a later call returns the same.
func (p *PendingBatch) Wait(ctx context.Context) ([]ReceiveResult, error) {
	select {
	case <-p.queued:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if p.err != nil {
		return nil, p.err
	}
	for i := range p.reqs {
		r := &p.reqs[i]
		if r.done == nil {
			continue // refused before the writer
		}
		var res result
		select {
		case res = <-r.done:
			// Keep it for a later Wait.
			r.done <- res
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		var eo errOrphan
		switch {
		case errors.Is(res.err, core.ErrUnavailable) || errors.Is(res.err, core.ErrDataLoss):
			// The commit failed, not the fact.
			return nil, res.err
		case errors.As(res.err, &eo):
			sf := p.facts[i]
			p.out[i].Received = Received{Committed: Committed{ID: sf.ID, Namespace: sf.Namespace, Lamport: sf.Lamport}, Orphaned: true}
		case res.err != nil:
			p.out[i].Err = res.err
		default:
			p.out[i].Received = Received{Committed: res.committed[0]}
		}
	}
	return p.out, nil
}

// checkReceived runs the checks that need no state, on the caller's side of
// the writer; signed says a batch verification already accepted the
// signature.
func (j *Journal) checkReceived(sf *SignedFact, signed bool) error {
	if sf == nil {
		return fmt.Errorf("no fact: %w", core.ErrInvalidArgument)
	}
	if !signed && !edsig.Verify(sf.Author.PublicKey(), sf.Body, sf.Signature) {
		return fmt.Errorf("fact %s by %s: %w", sf.ID, sf.Author, ErrBadSignature)
	}
	return j.validate(sf)
}

package budget

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
)

// Config configures a Ledger.
type Config struct {
	// Policy computes flow and leakage limits.
	Policy Policy
	// EpochDuration is the budget period: how long a flow budget lasts
	// before it is replenished, a whole number of epochs (EpochLength) up to
	// MaxPeriod; 0 means DefaultPeriod. It was the epoch length once, hence
	// the name; epochs themselves are the protocol's and not configured.
	// Changing it carries every spend into the new period that holds its
	// epoch. Stores of layout 1 are read as numbered in units of it.
	EpochDuration time.Duration
	// AuditNamespace receives the epoch and leakage summary facts: the
	// device's own authority namespace. The zero Namespace disables them.
	AuditNamespace core.Namespace
}

// DefaultConfig is the default policy and budget period, without audit facts
// (the daemon sets its authority namespace).
func DefaultConfig() Config {
	return Config{Policy: DefaultPolicy(), EpochDuration: DefaultPeriod}
}

// Entry is one (context, peer) as the API shows it, as of the current epoch.
type Entry struct {
	Key   Key
	Class core.Class
	// State is the sending side: the effective limit, what this device has
	// spent on the peer in the current budget period, and the period's
	// first epoch.
	State State
	// Period is the length of the budget period in epochs.
	Period uint32
	// LastNonce is the nonce of the last receipt sent this epoch.
	LastNonce uint64
	// Received is what the peer has paid this device in the current budget
	// period, against ReceivedLimit, the limit granted to it.
	Received      uint64
	ReceivedLimit uint64
	// Epoch is the current epoch.
	Epoch core.Epoch
	// Override is the operator's limit for this key (SetLimit), if any.
	Override    uint64
	HasOverride bool
}

// LeakageEntry is one context's leakage in the current epoch.
type LeakageEntry struct {
	Context  core.ContextID
	Class    core.Class
	Epoch    core.Epoch
	Consumed core.Leakage
	Limits   core.Leakage
}

// Ledger holds this device's budgets: what it may send each peer and what
// each peer may send it, persisted in the journal. Safe for concurrent use.
//
// Memory holds every key's state as it will be once everything queued
// commits. A key's lock is held from the check through queueing its commit,
// so commits of one key land in the order they were built; the lock is not
// held through the fsync. Every TxOp checks that the stored state is the one
// it was built on, so should an earlier commit fail, the later ones of the
// same chain fail too rather than persisting a chain with a hole; the key is
// then reloaded from the store behind a barrier (a read queued after them).
type Ledger struct {
	j      *journal.Journal
	signer journal.Signer
	self   core.DeviceID
	log    *zap.Logger
	clock  core.Clock
	epochs *Epochs
	// period is the budget period in epochs (Config.EpochDuration).
	period uint32
	policy Policy
	audit  core.Namespace

	mu     sync.RWMutex
	send   map[Key]*sendState
	recv   map[Key]*recvState
	leak   map[core.ContextID]*leakState
	limits map[Key]uint64

	// limitMu orders SetLimit commits.
	limitMu sync.Mutex

	// gaps counts accepted receipts that skipped unseen ones.
	gaps atomic.Uint64

	// opened is each send chain's head as stored when the ledger opened;
	// read-only afterwards. Every later receipt of a chain is made by this
	// process, which is what lets the transport order frames (ChainStart).
	opened map[Key]sendRecord
}

// ChainStart is the nonce of a send chain's last receipt that was durable
// before this ledger opened (0 if none in that epoch). Receipts above it are
// all handed out by this process, in nonce order.
func (l *Ledger) ChainStart(k Key, e core.Epoch) uint64 {
	if rec, ok := l.opened[k]; ok && rec.epoch == e {
		return rec.nonce
	}
	return 0
}

// Gaps is how many accepted receipts skipped receipts this device never saw
// (frames lost with a connection after their charge).
func (l *Ledger) Gaps() uint64 { return l.gaps.Load() }

// sendState is the sender side of one key.
type sendState struct {
	mu  sync.Mutex
	rec sendRecord
	// queued counts commits queued for the key; synced is queued as of the
	// last reload. A failed commit with ticket t needs a reload if synced < t.
	queued, synced uint64
	// stale: memory may not match the store and must be reloaded before use.
	stale bool
	// checkpointed is when this process last sealed a checkpoint of the
	// key's chain (SealFor).
	checkpointed time.Time
}

// recvState is the receiver side of one key: a chain per epoch, for the
// epochs of the window and of the budget periods the window touches.
type recvState struct {
	mu             sync.Mutex
	class          core.Class
	chains         map[core.Epoch]recvRecord
	queued, synced uint64
	stale          bool
}

// leakState is one context's leakage. Its lock is taken after a key's.
type leakState struct {
	mu    sync.Mutex
	rec   leakRecord
	stale bool
}

// Open loads the ledger's state from the journal. The signer is this
// device's key: it signs receipts and summary facts.
func Open(ctx context.Context, j *journal.Journal, cfg Config, signer journal.Signer, clock core.Clock, log *zap.Logger) (*Ledger, error) {
	if j == nil || signer == nil {
		return nil, fmt.Errorf("budget ledger needs a journal and a signer: %w", core.ErrInvalidArgument)
	}
	if clock == nil {
		clock = core.SystemClock{}
	}
	if log == nil {
		log = zap.NewNop()
	}
	period, err := PeriodEpochs(cfg.EpochDuration)
	if err != nil {
		return nil, fmt.Errorf("budget ledger: %w", err)
	}
	l := &Ledger{
		j: j, signer: signer, self: signer.DeviceID(), log: log,
		clock: clock, epochs: NewEpochs(clock), period: period,
		policy: cfg.Policy, audit: cfg.AuditNamespace,
		send: map[Key]*sendState{}, recv: map[Key]*recvState{},
		leak: map[core.ContextID]*leakState{}, limits: map[Key]uint64{},
		opened: map[Key]sendRecord{},
	}
	if l.audit != (core.Namespace{}) {
		if err := l.checkAudit(ctx); err != nil {
			return nil, err
		}
	}
	if err := l.prepare(ctx, time.Duration(period)*EpochLength); err != nil {
		return nil, fmt.Errorf("budget: %w", err)
	}
	err = j.ViewExt(ctx, extOwner, func(root *journal.ExtStore) error {
		return l.load(viewBuckets(root))
	})
	if err != nil {
		return nil, fmt.Errorf("budget: load: %w", err)
	}
	return l, nil
}

// checkAudit makes sure summary facts will be accepted: the namespace holds
// this device, and the journal knows the summary types. Finding out at the
// first epoch rotation would stop every send.
func (l *Ledger) checkAudit(ctx context.Context) error {
	members, err := l.j.Members(ctx, l.audit)
	if err != nil {
		return fmt.Errorf("budget: audit namespace %s: %w", l.audit, err)
	}
	if !slices.Contains(members, l.self) {
		return fmt.Errorf("budget: this device is not a member of audit namespace %s: %w", l.audit, core.ErrFailedPrecondition)
	}
	probe := EpochSummary{Src: l.self, Dst: core.DeviceID{1}, Count: 1, LastNonce: 1, LastHash: core.Hash{1}}
	// An explicit lamport reserves nothing; the fact is never committed.
	if _, err := l.j.SignLocal(l.signer, journal.Draft{Namespace: l.audit, TypeID: TypeEpochSummary, Payload: probe.Encode(), Lamport: 1}); err != nil {
		return fmt.Errorf("budget: the journal refuses summary facts (register budget.Validators): %w", err)
	}
	return nil
}

// load fills memory from the store and restores the epoch high-water mark.
func (l *Ledger) load(bs *buckets) error {
	var maxEpoch core.Epoch
	if bs.send != nil {
		err := bs.send.ForEach(func(k, v []byte) error {
			key, err := parseKey(k)
			if err != nil {
				return err
			}
			rec, err := decodeSendRecord(v)
			if err != nil {
				return err
			}
			l.send[key] = &sendState{rec: rec}
			l.opened[key] = rec
			maxEpoch = max(maxEpoch, rec.epoch)
			return nil
		})
		if err != nil {
			return err
		}
	}
	if bs.recv != nil {
		err := bs.recv.ForEach(func(k, v []byte) error {
			key, e, err := parseRecvKey(k)
			if err != nil {
				return err
			}
			rec, err := decodeRecvRecord(v)
			if err != nil {
				return err
			}
			rs := l.recv[key]
			if rs == nil {
				rs = &recvState{chains: map[core.Epoch]recvRecord{}}
				l.recv[key] = rs
			}
			rs.chains[e] = rec
			rs.class = rec.class // keys sort by epoch: the latest class wins
			// Receipts of a future epoch were accepted only within the
			// window, so they bound how far the view may be restored.
			maxEpoch = max(maxEpoch, e)
			return nil
		})
		if err != nil {
			return err
		}
	}
	if bs.leak != nil {
		err := bs.leak.ForEach(func(k, v []byte) error {
			if len(k) != 32 {
				return fmt.Errorf("leakage key of %d bytes: %w", len(k), ErrCorrupt)
			}
			rec, err := decodeLeakRecord(v)
			if err != nil {
				return err
			}
			l.leak[core.ContextID(k)] = &leakState{rec: rec}
			maxEpoch = max(maxEpoch, rec.epoch)
			return nil
		})
		if err != nil {
			return err
		}
	}
	if bs.limits != nil {
		err := bs.limits.ForEach(func(k, v []byte) error {
			key, err := parseKey(k)
			if err != nil {
				return err
			}
			limit, err := decodeLimit(v)
			if err != nil {
				return err
			}
			l.limits[key] = limit
			return nil
		})
		if err != nil {
			return err
		}
	}
	l.epochs.restore(maxEpoch)
	return nil
}

// Epochs is the ledger's epoch view, shared with whoever stamps envelopes.
func (l *Ledger) Epochs() *Epochs { return l.epochs }

// Self is the device the ledger charges for.
func (l *Ledger) Self() core.DeviceID { return l.self }

// limit is the effective limit of k: the policy's, met with the operator's
// override for k. It bounds both directions of the key.
func (l *Ledger) limit(k Key, c core.Class) uint64 {
	lim := l.policy.Limit(k, c)
	l.mu.RLock()
	if o, ok := l.limits[k]; ok {
		lim = min(lim, o)
	}
	l.mu.RUnlock()
	return lim
}

func (l *Ledger) sendFor(k Key) *sendState {
	l.mu.RLock()
	s := l.send[k]
	l.mu.RUnlock()
	if s != nil {
		return s
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if s = l.send[k]; s == nil {
		s = &sendState{}
		l.send[k] = s
	}
	return s
}

func (l *Ledger) recvFor(k Key) *recvState {
	l.mu.RLock()
	s := l.recv[k]
	l.mu.RUnlock()
	if s != nil {
		return s
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if s = l.recv[k]; s == nil {
		s = &recvState{chains: map[core.Epoch]recvRecord{}}
		l.recv[k] = s
	}
	return s
}

func (l *Ledger) leakFor(c core.ContextID) *leakState {
	l.mu.RLock()
	s := l.leak[c]
	l.mu.RUnlock()
	if s != nil {
		return s
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if s = l.leak[c]; s == nil {
		s = &leakState{}
		l.leak[c] = s
	}
	return s
}

// wait learns a queued commit's outcome. It ignores the caller's
// cancellation: the journal finishes every queued Txn (also on Close), and
// the ledger must know whether a charge became durable.
func wait(ctx context.Context, p *journal.Pending) error {
	if p == nil {
		return nil
	}
	_, err := p.Wait(context.WithoutCancel(ctx))
	return err
}

package transport

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	tpt "github.com/libp2p/go-libp2p/core/transport"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"go.uber.org/zap"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
)

// Peers learned from identify live beside the operator's, in
// ext/transport.learned, with the same encoding; their time is when their
// addresses were last learned. Keeping them apart means a learned entry can
// never overwrite or evict one the operator added, and `peer remove` of a
// learned peer is the same operation as of an added one.
const extLearned = "transport.learned"

// Bounds of what identify may teach the peer book. Any device that completes
// the handshake can announce itself, so a flood of inbound peers must not grow
// the book: past MaxLearnedPeers the oldest learned entry goes.
const (
	MaxLearnedPeers = 1024
	maxLearnedAddrs = 16
	maxLearnedAddr  = 512
	// learnRefresh: an unchanged entry is rewritten this often at most, so
	// that a peer that keeps coming back does not age out as the oldest.
	learnRefresh = time.Hour
)

// learner carries identified peers' addresses from the event bus to the
// peer book. Until the book is attached (LoadPeers) they wait in pending,
// which is bounded like the book.
type learner struct {
	limit int
	wake  chan struct{}
	wg    sync.WaitGroup
	// after runs once a batch is durable (tests wait on it).
	after atomic.Pointer[func()]

	mu      sync.Mutex
	store   Store
	pending map[peer.ID][]ma.Multiaddr
}

func newLearner() *learner {
	return &learner{limit: MaxLearnedPeers, wake: make(chan struct{}, 1), pending: map[peer.ID][]ma.Multiaddr{}}
}

func (l *learner) signal() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// attach makes s the book that learned peers go to.
func (l *learner) attach(s Store) {
	l.mu.Lock()
	first := l.store == nil
	if first {
		l.store = s
	}
	l.mu.Unlock()
	if first {
		l.signal()
	}
}

func (l *learner) offer(p peer.ID, addrs []ma.Multiaddr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.pending[p]; !ok && len(l.pending) >= l.limit {
		return false
	}
	l.pending[p] = addrs
	return true
}

func (l *learner) take() (Store, map[peer.ID][]ma.Multiaddr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.store == nil || len(l.pending) == 0 {
		return nil, nil
	}
	batch := l.pending
	l.pending = map[peer.ID][]ma.Multiaddr{}
	return l.store, batch
}

// startLearning follows identify on h: a basic host identifies every peer
// once its connection is secured and multiplexed.
func (t *Transport) startLearning() {
	t.learn = newLearner()
	sub, err := t.host.EventBus().Subscribe(new(event.EvtPeerIdentificationCompleted))
	if err != nil {
		t.log.Warn("peers' addresses will not be learned from their connections", zap.Error(err))
		return
	}
	t.closers = append(t.closers, sub.Close)
	t.learn.wg.Add(2)
	go func() {
		defer t.learn.wg.Done()
		for {
			select {
			case <-t.ctx.Done():
				return
			case e, ok := <-sub.Out():
				if !ok {
					return
				}
				if ev, ok := e.(event.EvtPeerIdentificationCompleted); ok {
					t.identified(ev)
				}
			}
		}
	}()
	go func() {
		defer t.learn.wg.Done()
		for {
			select {
			case <-t.ctx.Done():
				return
			case <-t.learn.wake:
			}
			s, batch := t.learn.take()
			if s == nil {
				continue
			}
			if err := t.learnPeers(t.ctx, s, batch); err != nil {
				if t.ctx.Err() == nil {
					t.log.Warn("learned peers not stored", zap.Int("peers", len(batch)), zap.Error(err))
				}
				continue
			}
			if f := t.learn.after.Load(); f != nil {
				(*f)()
			}
		}
	}()
}

// identified queues what an identified peer announced, if any of it is of use.
func (t *Transport) identified(ev event.EvtPeerIdentificationCompleted) {
	p := ev.Peer
	if p == t.host.ID() || t.misbehave.banned(p) {
		return
	}
	if _, err := DeviceIDOf(p); err != nil {
		return
	}
	addrs := ev.ListenAddrs
	// A signed record (identify checked its signature) beats the bare list.
	if ev.SignedPeerRecord != nil {
		if r, err := ev.SignedPeerRecord.Record(); err == nil {
			if pr, ok := r.(*peer.PeerRecord); ok && pr.PeerID == p {
				addrs = pr.Addrs
			}
		}
	}
	var remote ma.Multiaddr
	if ev.Conn != nil {
		remote = ev.Conn.RemoteMultiaddr()
	}
	addrs = t.usableAddrs(addrs, remote)
	if len(addrs) == 0 {
		return
	}
	if t.learn.offer(p, addrs) {
		t.learn.signal()
	} else {
		t.log.Debug("learned peer dropped: too many waiting", zap.Stringer("peer", p))
	}
}

// usableAddrs keeps the addresses this host could dial later: no wildcard or
// link-local ones, circuit addresses only when relaying is on (the host then
// has a transport for them), and loopback ones only from a peer that came
// over loopback, so on this machine: a remote device's 127.0.0.1 is this
// machine's, where another device would answer, or none. Without the
// connection's address (remote nil), loopback is kept when this host listens
// there.
func (t *Transport) usableAddrs(in []ma.Multiaddr, remote ma.Multiaddr) []ma.Multiaddr {
	loopback := false
	if remote != nil {
		loopback = manet.IsIPLoopback(remote)
	} else {
		for _, a := range t.host.Network().ListenAddresses() {
			if manet.IsIPLoopback(a) {
				loopback = true
				break
			}
		}
	}
	dialer, _ := t.host.Network().(interface {
		TransportForDialing(ma.Multiaddr) tpt.Transport
	})
	var out []ma.Multiaddr
	for _, a := range in {
		if len(out) == maxLearnedAddrs {
			break
		}
		a, _ = peer.SplitAddr(a)
		if len(a) == 0 || len(a.Bytes()) > maxLearnedAddr {
			continue
		}
		if manet.IsIPUnspecified(a) || manet.IsIP6LinkLocal(a) || (manet.IsIPLoopback(a) && !loopback) {
			continue
		}
		if dialer != nil {
			if dialer.TransportForDialing(a) == nil {
				continue
			}
		} else if _, err := a.ValueForProtocol(ma.P_CIRCUIT); err == nil {
			continue
		}
		if !containsAddr(out, a) {
			out = append(out, a)
		}
	}
	return out
}

func containsAddr(as []ma.Multiaddr, a ma.Multiaddr) bool {
	for _, b := range as {
		if b.Equal(a) {
			return true
		}
	}
	return false
}

func sameAddrs(a, b []ma.Multiaddr) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !containsAddr(b, x) {
			return false
		}
	}
	return true
}

// learnPeers stores a batch of learned addresses in one transaction, evicts
// the oldest learned entries past the limit, and then brings the host's
// peerstore in line with the book.
func (t *Transport) learnPeers(ctx context.Context, s Store, batch map[peer.ID][]ma.Multiaddr) error {
	type change struct {
		pid   peer.ID
		addrs []ma.Multiaddr // now in the book
		stale []ma.Multiaddr // no longer announced, nor added by the operator
		gone  bool           // evicted
	}
	now := t.clock.Now()
	t.learn.mu.Lock()
	limit := t.learn.limit
	t.learn.mu.Unlock()
	pids := make([]peer.ID, 0, len(batch))
	for p := range batch {
		pids = append(pids, p)
	}
	sort.Slice(pids, func(i, j int) bool { return pids[i] < pids[j] })
	var changes []change
	_, err := s.Commit(ctx, journal.Txn{Ops: []journal.TxOp{func(tx *journal.ExtTx) error {
		changes = changes[:0]
		lb, err := tx.Bucket(extLearned)
		if err != nil {
			return err
		}
		mb, err := tx.Bucket(extPeers)
		if err != nil {
			return err
		}
		manual := func(d core.DeviceID) ([]ma.Multiaddr, error) {
			v := mb.Get(d[:])
			if v == nil {
				return nil, nil
			}
			kp, err := decodeKnownPeer(d, v)
			return kp.Addrs, err
		}
		written := map[core.DeviceID]bool{}
		for _, p := range pids {
			d, err := DeviceIDOf(p)
			if err != nil {
				continue
			}
			addrs := batch[p]
			var old []ma.Multiaddr
			if v := lb.Get(d[:]); v != nil {
				kp, err := decodeKnownPeer(d, v)
				if err != nil {
					return err
				}
				if sameAddrs(kp.Addrs, addrs) && now.Sub(kp.AddedAt) < learnRefresh {
					continue
				}
				old = kp.Addrs
			}
			if err := lb.Put(d[:], encodeKnownPeer(KnownPeer{Device: d, Addrs: addrs, AddedAt: now})); err != nil {
				return err
			}
			written[d] = true
			keep, err := manual(d)
			if err != nil {
				return err
			}
			c := change{pid: p, addrs: addrs}
			for _, a := range old {
				if !containsAddr(addrs, a) && !containsAddr(keep, a) {
					c.stale = append(c.stale, a)
				}
			}
			changes = append(changes, c)
		}
		if len(written) == 0 {
			return nil
		}
		// Eviction: oldest first; this batch's entries go last, so a burst
		// of newcomers displaces old entries before each other.
		type entry struct {
			d     core.DeviceID
			kp    KnownPeer
			fresh bool
		}
		var all []entry
		err = lb.ForEach(func(k, v []byte) error {
			var d core.DeviceID
			if len(k) != len(d) {
				return fmt.Errorf("learned peer key: %w", journal.ErrCorrupt)
			}
			copy(d[:], k)
			kp, err := decodeKnownPeer(d, v)
			all = append(all, entry{d: d, kp: kp, fresh: written[d]})
			return err
		})
		if err != nil {
			return err
		}
		if len(all) <= limit {
			return nil
		}
		sort.Slice(all, func(i, j int) bool {
			a, b := all[i], all[j]
			if a.fresh != b.fresh {
				return !a.fresh
			}
			if !a.kp.AddedAt.Equal(b.kp.AddedAt) {
				return a.kp.AddedAt.Before(b.kp.AddedAt)
			}
			return bytes.Compare(a.d[:], b.d[:]) < 0
		})
		for _, e := range all[:len(all)-limit] {
			if err := lb.Delete(e.d[:]); err != nil {
				return err
			}
			keep, err := manual(e.d)
			if err != nil {
				return err
			}
			pid, _ := PeerID(e.d)
			c := change{pid: pid, gone: true}
			for _, a := range e.kp.Addrs {
				if !containsAddr(keep, a) {
					c.stale = append(c.stale, a)
				}
			}
			changes = append(changes, c)
		}
		return nil
	}}})
	if err != nil {
		return err
	}
	ps := t.host.Peerstore()
	for _, c := range changes {
		if len(c.addrs) > 0 {
			ps.AddAddrs(c.pid, c.addrs, peerstore.PermanentAddrTTL)
		}
		if len(c.stale) == 0 {
			continue
		}
		// An evicted peer still connected keeps its addresses for as long as
		// the connection lasts, as any connected peer does.
		var ttl time.Duration
		if c.gone && t.host.Network().Connectedness(c.pid) == network.Connected {
			ttl = peerstore.ConnectedAddrTTL
		}
		ps.SetAddrs(c.pid, c.stale, ttl)
		if c.gone {
			t.log.Debug("learned peer evicted", zap.Stringer("peer", c.pid))
		}
	}
	return nil
}

// LearnAddrs offers the addresses a device published about itself (an
// account device's signed address fact) to the learned peer book, under the
// bounds and filter identify's go through. It is how a device reaches
// another of its account that it never connected to: the first device
// introduced each new one to itself only.
func (t *Transport) LearnAddrs(d core.DeviceID, addrs []ma.Multiaddr) {
	if d == t.self {
		return
	}
	pid, err := PeerID(d)
	if err != nil || t.misbehave.banned(pid) {
		return
	}
	if addrs = t.usableAddrs(addrs, nil); len(addrs) == 0 {
		return
	}
	if t.learn.offer(pid, addrs) {
		t.learn.signal()
	} else {
		t.log.Debug("published addresses dropped: too many peers waiting", zap.Stringer("peer", pid))
	}
}

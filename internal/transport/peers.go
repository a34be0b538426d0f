package transport

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"sort"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/zap"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
)

// Known peers live in the journal's extension bucket ext/transport.peers:
//
//	device id (32) -> added_at unix ms (8) ‖ count (2) ‖ { len (2) ‖ multiaddr bytes }*
const extPeers = "transport.peers"

// Store is what the peer book needs from the journal.
type Store interface {
	Commit(ctx context.Context, t journal.Txn) ([]journal.Committed, error)
	ViewExt(ctx context.Context, owner string, fn func(s *journal.ExtStore) error) error
}

// KnownPeer is a peer in the book: one the operator added, or one learned
// from its own announcement when it connected (Learned; AddedAt is then when
// its addresses were last learned).
type KnownPeer struct {
	Device  core.DeviceID
	Addrs   []ma.Multiaddr
	AddedAt time.Time
	Learned bool
}

func encodeKnownPeer(p KnownPeer) []byte {
	b := binary.BigEndian.AppendUint64(nil, uint64(p.AddedAt.UnixMilli()))
	b = binary.BigEndian.AppendUint16(b, uint16(len(p.Addrs)))
	for _, a := range p.Addrs {
		raw := a.Bytes()
		b = binary.BigEndian.AppendUint16(b, uint16(len(raw)))
		b = append(b, raw...)
	}
	return b
}

func decodeKnownPeer(d core.DeviceID, b []byte) (KnownPeer, error) {
	bad := fmt.Errorf("known peer %s: %w", d, journal.ErrCorrupt)
	if len(b) < 10 {
		return KnownPeer{}, bad
	}
	p := KnownPeer{Device: d, AddedAt: time.UnixMilli(int64(binary.BigEndian.Uint64(b)))}
	n := int(binary.BigEndian.Uint16(b[8:]))
	b = b[10:]
	for range n {
		if len(b) < 2 {
			return KnownPeer{}, bad
		}
		l := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+l {
			return KnownPeer{}, bad
		}
		a, err := ma.NewMultiaddrBytes(b[2 : 2+l])
		if err != nil {
			return KnownPeer{}, bad
		}
		p.Addrs = append(p.Addrs, a)
		b = b[2+l:]
	}
	if len(b) != 0 {
		return KnownPeer{}, bad
	}
	return p, nil
}

// ParsePeerAddr parses a multiaddr that ends in /p2p/<peer id>.
func ParsePeerAddr(s string) (core.DeviceID, ma.Multiaddr, error) {
	a, err := ma.NewMultiaddr(s)
	if err != nil {
		return core.DeviceID{}, nil, fmt.Errorf("multiaddr %q: %w: %w", s, err, core.ErrInvalidArgument)
	}
	info, err := peer.AddrInfoFromP2pAddr(a)
	if err != nil {
		return core.DeviceID{}, nil, fmt.Errorf("multiaddr %q must end in /p2p/<peer id>: %w", s, core.ErrInvalidArgument)
	}
	d, err := DeviceIDOf(info.ID)
	if err != nil {
		return core.DeviceID{}, nil, err
	}
	if len(info.Addrs) == 0 {
		return d, nil, nil
	}
	return d, info.Addrs[0], nil
}

// AddPeer remembers a peer's address across restarts and teaches the host
// where to find it.
func (t *Transport) AddPeer(ctx context.Context, s Store, addr string) (KnownPeer, error) {
	d, a, err := ParsePeerAddr(addr)
	if err != nil {
		return KnownPeer{}, err
	}
	if a == nil {
		return KnownPeer{}, fmt.Errorf("multiaddr %q has no transport address: %w", addr, core.ErrInvalidArgument)
	}
	if d == t.self {
		return KnownPeer{}, fmt.Errorf("that is this device: %w", core.ErrInvalidArgument)
	}
	var kp KnownPeer
	_, err = s.Commit(ctx, journal.Txn{Ops: []journal.TxOp{func(tx *journal.ExtTx) error {
		b, err := tx.Bucket(extPeers)
		if err != nil {
			return err
		}
		kp = KnownPeer{Device: d, AddedAt: t.clock.Now()}
		if v := b.Get(d[:]); v != nil {
			old, err := decodeKnownPeer(d, v)
			if err != nil {
				return err
			}
			kp.AddedAt = old.AddedAt
			for _, o := range old.Addrs {
				if !o.Equal(a) {
					kp.Addrs = append(kp.Addrs, o)
				}
			}
		}
		kp.Addrs = append(kp.Addrs, a)
		return b.Put(d[:], encodeKnownPeer(kp))
	}}})
	if err != nil {
		return KnownPeer{}, err
	}
	pid, _ := PeerID(d)
	t.host.Peerstore().AddAddrs(pid, kp.Addrs, peerstore.PermanentAddrTTL)
	// Dial now, best effort: the peer learns this device's addresses from
	// the connection (identify), so one `peer add` serves both directions.
	if !t.misbehave.banned(pid) {
		// Adding a peer says "try it now": a dial that failed a moment ago
		// (the peer was down) must not keep it in libp2p's dial backoff.
		if sw, ok := t.host.Network().(interface{ Backoff() *swarm.DialBackoff }); ok {
			sw.Backoff().Clear(pid)
		}
		go func() {
			ctx, cancel := context.WithTimeout(t.ctx, addDialTimeout)
			defer cancel()
			if err := t.host.Connect(ctx, peer.AddrInfo{ID: pid}); err != nil {
				t.log.Debug("added peer not reachable yet", zap.Stringer("peer", pid), zap.Error(err))
			}
		}()
	}
	return kp, nil
}

// addDialTimeout bounds the dial that follows a `peer add`.
const addDialTimeout = 10 * time.Second

// connectedPoll is how often AwaitConnected looks.
const connectedPoll = 10 * time.Millisecond

// AwaitConnected waits until d is connected or ctx ends, and says which.
// An operator's `peer add` waits on it briefly, so that the added peer can
// answer at once over the connection: it has no address of this device
// until identify on it finishes. Callers that must not wait on a peer
// (a ceremony reaching a frozen inviter) do not call it.
func (t *Transport) AwaitConnected(ctx context.Context, d core.DeviceID) bool {
	pid, err := PeerID(d)
	if err != nil {
		return false
	}
	tick := time.NewTicker(connectedPoll)
	defer tick.Stop()
	for {
		if t.host.Network().Connectedness(pid) == network.Connected {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}

// RemovePeer forgets a peer and disconnects it.
func (t *Transport) RemovePeer(ctx context.Context, s Store, d core.DeviceID) error {
	found := false
	_, err := s.Commit(ctx, journal.Txn{Ops: []journal.TxOp{func(tx *journal.ExtTx) error {
		b, err := tx.Bucket(extPeers)
		if err != nil {
			return err
		}
		lb, err := tx.Bucket(extLearned)
		if err != nil {
			return err
		}
		found = b.Get(d[:]) != nil || lb.Get(d[:]) != nil
		if err := lb.Delete(d[:]); err != nil {
			return err
		}
		return b.Delete(d[:])
	}}})
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("peer %s: %w", d, core.ErrNotFound)
	}
	pid, _ := PeerID(d)
	t.host.Peerstore().ClearAddrs(pid)
	_ = t.host.Network().ClosePeer(pid)
	return nil
}

// LoadPeers puts the remembered peers into the host's peerstore, and makes s
// the book where the addresses that connecting peers announce are kept from
// now on (only the first call's store is used).
func (t *Transport) LoadPeers(ctx context.Context, s Store) ([]KnownPeer, error) {
	peers, err := knownPeers(ctx, s)
	if err == nil {
		t.learn.attach(s)
	}
	for _, p := range peers {
		pid, _ := PeerID(p.Device)
		t.host.Peerstore().AddAddrs(pid, p.Addrs, peerstore.PermanentAddrTTL)
	}
	return peers, err
}

// knownPeers reads the book, sorted by device: an added peer lists the
// addresses the operator gave first, then any it announced itself.
func knownPeers(ctx context.Context, s Store) ([]KnownPeer, error) {
	byDev := map[core.DeviceID]*KnownPeer{}
	read := func(owner string, learned bool) error {
		return s.ViewExt(ctx, owner, func(b *journal.ExtStore) error {
			if b == nil {
				return nil
			}
			return b.ForEach(func(k, v []byte) error {
				var d core.DeviceID
				if len(k) != len(d) {
					return fmt.Errorf("known peer key: %w", journal.ErrCorrupt)
				}
				copy(d[:], k)
				p, err := decodeKnownPeer(d, v)
				if err != nil {
					return err
				}
				if have := byDev[d]; have != nil {
					for _, a := range p.Addrs {
						if !containsAddr(have.Addrs, a) {
							have.Addrs = append(have.Addrs, a)
						}
					}
					return nil
				}
				p.Learned = learned
				byDev[d] = &p
				return nil
			})
		})
	}
	if err := read(extPeers, false); err != nil {
		return nil, err
	}
	if err := read(extLearned, true); err != nil {
		return nil, err
	}
	out := make([]KnownPeer, 0, len(byDev))
	for _, p := range byDev {
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i].Device[:], out[j].Device[:]) < 0 })
	return out, nil
}

// PeerInfo is a peer as the operator sees it.
type PeerInfo struct {
	Device core.DeviceID
	PeerID peer.ID
	Known  bool
	// Learned: in the book only because it announced itself when it
	// connected, not added by the operator.
	Learned   bool
	Connected bool
	Addrs     []string
	Latency   time.Duration
	BackedOff bool
}

// Peers lists known, connected and backed-off peers, sorted by device.
func (t *Transport) Peers(ctx context.Context, s Store) ([]PeerInfo, error) {
	known, err := knownPeers(ctx, s)
	if err != nil {
		return nil, err
	}
	byDev := map[core.DeviceID]*PeerInfo{}
	info := func(d core.DeviceID) *PeerInfo {
		if p := byDev[d]; p != nil {
			return p
		}
		pid, _ := PeerID(d)
		p := &PeerInfo{Device: d, PeerID: pid}
		byDev[d] = p
		return p
	}
	for _, k := range known {
		p := info(k.Device)
		p.Known = true
		p.Learned = k.Learned
		for _, a := range k.Addrs {
			p.Addrs = append(p.Addrs, a.String())
		}
	}
	for _, pid := range t.host.Network().Peers() {
		d, err := DeviceIDOf(pid)
		if err != nil {
			continue
		}
		p := info(d)
		p.Connected = t.host.Network().Connectedness(pid) == network.Connected
		if !p.Known {
			for _, c := range t.host.Network().ConnsToPeer(pid) {
				p.Addrs = append(p.Addrs, c.RemoteMultiaddr().String())
			}
		}
	}
	// Peers cut off for misbehaviour are listed while their back-off lasts.
	for _, pid := range t.misbehave.banList() {
		if d, err := DeviceIDOf(pid); err == nil {
			info(d)
		}
	}
	out := make([]PeerInfo, 0, len(byDev))
	for _, p := range byDev {
		p.Latency = t.host.Peerstore().LatencyEWMA(p.PeerID)
		p.BackedOff = t.misbehave.banned(p.PeerID)
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i].Device[:], out[j].Device[:]) < 0 })
	return out, nil
}

// Connect dials a device at its known addresses, or at addr if given.
func (t *Transport) Connect(ctx context.Context, d core.DeviceID, addr ma.Multiaddr) error {
	pid, err := PeerID(d)
	if err != nil {
		return err
	}
	if t.misbehave.banned(pid) {
		return fmt.Errorf("%s: %w", d, ErrBackoff)
	}
	info := peer.AddrInfo{ID: pid}
	if addr != nil {
		info.Addrs = []ma.Multiaddr{addr}
	}
	if addr == nil && len(t.host.Peerstore().Addrs(pid)) == 0 {
		return fmt.Errorf("no address known for %s: add it with `auractl peer add`: %w", d, core.ErrNotFound)
	}
	if err := t.host.Connect(ctx, info); err != nil {
		return fmt.Errorf("connect %s: %w: %w", d, err, core.ErrUnavailable)
	}
	return nil
}

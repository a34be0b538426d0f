package sync

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"math/rand/v2"
	"slices"
	stdsync "sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
	"github.com/aura-p2p/aura/internal/transport"
)

// hub is an in-memory network for the protocol's unit tests and the byte
// counts of its benchmarks: frames between two devices are delivered in
// order, one at a time, to the receiver's handler, as the transport does on a
// peer's stream. The guard chain is the transport's business and is tested
// there and in the harness scenarios; here every message is delivered.
type hub struct {
	mu     stdsync.Mutex
	nodes  map[core.DeviceID]*memNet
	links  map[[2]core.DeviceID]chan transport.Incoming
	cut    map[core.DeviceID]bool
	wg     stdsync.WaitGroup
	bytes  map[string]uint64 // payload bytes by message type
	msgs   map[string]int
	misbeh map[string]int
	// tamper, if set, may change a message's payload before delivery.
	tamper func(from core.DeviceID, typ string, p []byte) []byte
	// chargeDelay, if set, is how long Send takes after a message is
	// queued for delivery (and its Queued called), as the transport's
	// wait for a durable charge; inFlight and maxInFlight count the batch
	// sends waiting so.
	chargeDelay           time.Duration
	inFlight, maxInFlight int
}

func newHub() *hub {
	return &hub{nodes: map[core.DeviceID]*memNet{}, links: map[[2]core.DeviceID]chan transport.Incoming{}, cut: map[core.DeviceID]bool{},
		bytes: map[string]uint64{}, msgs: map[string]int{}, misbeh: map[string]int{}}
}

func (h *hub) close() {
	h.mu.Lock()
	for _, c := range h.links {
		close(c)
	}
	h.links = map[[2]core.DeviceID]chan transport.Incoming{}
	h.mu.Unlock()
	h.wg.Wait()
}

func (h *hub) reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.bytes, h.msgs = map[string]uint64{}, map[string]int{}
}

func (h *hub) node(self core.DeviceID) *memNet {
	n := &memNet{h: h, self: self, handlers: map[protocol.ID]transport.Handler{}}
	h.mu.Lock()
	h.nodes[self] = n
	h.mu.Unlock()
	return n
}

type memNet struct {
	h        *hub
	self     core.DeviceID
	mu       stdsync.Mutex
	handlers map[protocol.ID]transport.Handler
}

func (n *memNet) Handle(p protocol.ID, fn transport.Handler) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.handlers[p] = fn
}

func (n *memNet) Self() core.DeviceID             { return n.self }
func (n *memNet) OnConnected(func(core.DeviceID)) {}
func (n *memNet) Misbehaved(_ core.DeviceID, reason string, _ error) {
	n.h.mu.Lock()
	defer n.h.mu.Unlock()
	n.h.misbeh[reason]++
}

func (n *memNet) Send(ctx context.Context, m transport.Message) error {
	h := n.h
	h.mu.Lock()
	dst := h.nodes[m.To]
	if dst == nil || h.cut[m.To] || h.cut[n.self] {
		h.mu.Unlock()
		return fmt.Errorf("%s unreachable: %w", m.To, core.ErrUnavailable)
	}
	p := slices.Clone(m.Payload)
	if h.tamper != nil {
		p = h.tamper(n.self, m.Type, p)
	}
	h.bytes[m.Type] += uint64(len(m.Payload))
	h.msgs[m.Type]++
	k := [2]core.DeviceID{n.self, m.To}
	c := h.links[k]
	if c == nil {
		c = make(chan transport.Incoming, 1<<16)
		h.links[k] = c
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			for in := range c {
				dst.mu.Lock()
				fn := dst.handlers[in.Protocol]
				dst.mu.Unlock()
				if fn != nil {
					fn(context.Background(), in)
				}
			}
		}()
	}
	h.mu.Unlock()
	select {
	case c <- transport.Incoming{Protocol: m.Protocol, Context: m.Context, From: n.self, Type: m.Type, Payload: p}:
	case <-ctx.Done():
		return ctx.Err()
	}
	if m.Queued != nil {
		m.Queued()
	}
	h.mu.Lock()
	delay := h.chargeDelay
	batch := m.Type == TypeBatch
	if delay > 0 && batch {
		h.inFlight++
		h.maxInFlight = max(h.maxInFlight, h.inFlight)
	}
	h.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay)
		if batch {
			h.mu.Lock()
			h.inFlight--
			h.mu.Unlock()
		}
	}
	return nil
}

type allowAll struct{}

func (allowAll) Allow(string, ...core.Class) {}

// staticShares: every device shares one namespace with every other.
type staticShares struct {
	self  core.DeviceID
	peers []core.DeviceID
	sh    Shared
}

func (s staticShares) SharedWith(_ context.Context, peer core.DeviceID) ([]Shared, error) {
	if slices.Contains(s.peers, peer) {
		return []Shared{s.sh}, nil
	}
	return nil, nil
}

func (s staticShares) Peers(context.Context) ([]core.DeviceID, error) { return s.peers, nil }

// device is one side of a test: its journal and its syncer.
type device struct {
	signer *journal.KeySigner
	j      *journal.Journal
	s      *Syncer
	net    *memNet
}

func seeded(seed byte) *journal.KeySigner {
	var b [32]byte
	b[0] = seed
	return journal.NewKeySigner(ed25519.NewKeyFromSeed(b[:]))
}

// pair founds a context namespace of two devices on both journals.
type pair struct {
	h    *hub
	a, b *device
	ns   core.Namespace
	ctx  core.ContextID
	rng  *rand.Rand
	seq  uint64
}

func newPair(t testing.TB, o Options) *pair {
	t.Helper()
	return newPairSync(t, o, false)
}

// newPairSync is newPair with b's journal syncing to disk on every commit
// when bSync is set (a's never does: it is only the source).
func newPairSync(t testing.TB, o Options, bSync bool) *pair {
	t.Helper()
	sa, sb := seeded(1), seeded(2)
	g := journal.Genesis{Kind: core.NamespaceContext, Threshold: 1, Members: []journal.Member{{Device: sa.DeviceID()}, {Device: sb.DeviceID()}}}
	slices.SortFunc(g.Members, func(x, y journal.Member) int { return slices.Compare(x.Device[:], y.Device[:]) })
	payload, err := g.Encode()
	if err != nil {
		t.Fatal(err)
	}
	ns := journal.NamespaceOf(core.NamespaceContext, payload)
	gen, err := journal.SignFact(sa, journal.Fact{Namespace: ns, TypeID: journal.TypeGenesis, Author: sa.DeviceID(), Lamport: 1, Payload: payload})
	if err != nil {
		t.Fatal(err)
	}
	p := &pair{h: newHub(), ns: ns, ctx: core.ContextID(ns.ID), rng: rand.New(rand.NewPCG(1, 2))}
	sh := Shared{Namespace: ns, Context: p.ctx, Secret: []byte("test secret")}
	mk := func(s *journal.KeySigner, other core.DeviceID, sync bool) *device {
		j, err := journal.Open(context.Background(), journal.Options{Path: t.TempDir() + "/j.db", NoSync: !sync})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = j.Close() })
		if _, err := j.Append(context.Background(), gen); err != nil {
			t.Fatal(err)
		}
		n := p.h.node(s.DeviceID())
		o := o
		o.Rand = cryptoRandReader{}
		o.Interval = -1
		sy := New(n, j, staticShares{self: s.DeviceID(), peers: []core.DeviceID{other}, sh: sh}, allowAll{}, o)
		return &device{signer: s, j: j, s: sy, net: n}
	}
	p.a = mk(sa, sb.DeviceID(), false)
	p.b = mk(sb, sa.DeviceID(), bSync)
	t.Cleanup(func() {
		p.a.s.Close()
		p.b.s.Close()
		p.h.close()
	})
	return p
}

type cryptoRandReader struct{}

func (cryptoRandReader) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	return len(b), nil
}

// fact signs a new fact of the pair's namespace by a's or b's device.
func (p *pair) fact(t testing.TB, byA bool) *journal.SignedFact {
	t.Helper()
	s := p.b.signer
	if byA {
		s = p.a.signer
	}
	p.seq++
	payload := make([]byte, 64)
	for i := range payload {
		payload[i] = byte(p.rng.Uint32())
	}
	sf, err := journal.SignFact(s, journal.Fact{Namespace: p.ns, TypeID: "test.note/v1", Author: s.DeviceID(), Lamport: 2 + p.seq%50, Payload: payload})
	if err != nil {
		t.Fatal(err)
	}
	return sf
}

// fact200 is the i-th fact of a bulk set: 200-byte payload, by a.
func (p *pair) fact200(t testing.TB, i int) *journal.SignedFact {
	t.Helper()
	payload := make([]byte, 200)
	for k := range payload {
		payload[k] = byte(p.rng.Uint32())
	}
	sf, err := journal.SignFact(p.a.signer, journal.Fact{Namespace: p.ns, TypeID: "test.note/v1", Author: p.a.signer.DeviceID(), Lamport: 2 + uint64(i/4), Payload: payload})
	if err != nil {
		t.Fatal(err)
	}
	return sf
}

// add appends facts to the given devices' journals.
func add(t testing.TB, facts []*journal.SignedFact, to ...*device) {
	t.Helper()
	for _, d := range to {
		for _, f := range facts {
			if _, err := d.j.Append(context.Background(), f); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// ids lists a device's facts of the namespace.
func (p *pair) ids(t testing.TB, d *device) []core.FactID {
	t.Helper()
	keys, err := allKeys(d.j, p.ns)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]core.FactID, len(keys))
	for i, k := range keys {
		out[i] = k.ID
	}
	return out
}

func allKeys(j *journal.Journal, ns core.Namespace) ([]journal.FactKey, error) {
	var out []journal.FactKey
	lo := journal.FactKey{}
	for {
		keys, more, err := j.RangeKeys(context.Background(), ns, lo, journal.FactKey{}, journal.MaxRangeKeys)
		if err != nil {
			return nil, err
		}
		out = append(out, keys...)
		if !more {
			return out, nil
		}
		lo = successor(keys[len(keys)-1])
	}
}

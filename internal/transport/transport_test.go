package transport_test

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	p2pcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"go.uber.org/zap/zaptest"

	"github.com/aura-p2p/aura/internal/budget"
	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
	"github.com/aura-p2p/aura/internal/transport"
)

const protoTest protocol.ID = "/aura/test/1"

// tnode is one device: journal, budget ledger, transport, as aurad wires them.
type tnode struct {
	j     *journal.Journal
	l     *budget.Ledger
	tr    *transport.Transport
	authz *transport.MemberAuthorizer
	dev   core.DeviceID
	// raw is the stream layer under a test's WrapWire, when one is set.
	raw transport.WireFunc

	mu    sync.Mutex
	got   []transport.Incoming
	seen  chan struct{}
	close func()
}

func newTNode(t testing.TB, policy budget.Policy, opts ...func(*transport.Options)) *tnode {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	return openTNode(t, filepath.Join(t.TempDir(), "j.db"), key, policy, opts...)
}

// openTNode opens (or reopens, after a restart) a device with its journal at path.
func openTNode(t testing.TB, path string, key ed25519.PrivateKey, policy budget.Policy, opts ...func(*transport.Options)) *tnode {
	t.Helper()
	return openTNodePeriod(t, path, key, policy, time.Hour, opts...)
}

// openTNodePeriod is openTNode with the given budget period.
func openTNodePeriod(t testing.TB, path string, key ed25519.PrivateKey, policy budget.Policy, period time.Duration, opts ...func(*transport.Options)) *tnode {
	t.Helper()
	ctx := context.Background()
	j, err := journal.Open(ctx, journal.Options{Path: path, Validators: budget.Validators()})
	if err != nil {
		t.Fatal(err)
	}
	signer := journal.NewKeySigner(key)
	g := journal.Genesis{Kind: core.NamespaceAuthority, Threshold: 1, Members: []journal.Member{{Device: signer.DeviceID()}}}
	payload, _ := g.Encode()
	ns := journal.NamespaceOf(core.NamespaceAuthority, payload)
	if _, _, err := j.AppendLocal(ctx, signer, journal.Draft{Namespace: ns, TypeID: journal.TypeGenesis, Payload: payload}); err != nil && !errors.Is(err, core.ErrAlreadyExists) {
		t.Fatal(err)
	}
	l, err := budget.Open(ctx, j, budget.Config{Policy: policy, EpochDuration: period, AuditNamespace: ns}, signer, core.SystemClock{}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	authz := transport.NewMemberAuthorizer(signer.DeviceID(), j)
	o := transport.Options{Authorizer: authz, Charger: l.Charger(), Logger: zaptest.NewLogger(t)}
	for _, f := range opts {
		f(&o)
	}
	tr, err := transport.Start(ctx, key, transport.Config{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}}, o)
	if err != nil {
		t.Fatal(err)
	}
	n := &tnode{j: j, l: l, tr: tr, authz: authz, dev: signer.DeviceID(), seen: make(chan struct{}, 1<<16)}
	authz.Allow("msg", core.ClassLink)
	tr.Handle(protoTest, func(_ context.Context, m transport.Incoming) {
		n.mu.Lock()
		n.got = append(n.got, m)
		n.mu.Unlock()
		n.seen <- struct{}{}
	})
	n.close = func() {
		tr.Shutdown()
		j.Close()
	}
	t.Cleanup(n.close)
	return n
}

func (n *tnode) received() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.got)
}

func connect(t testing.TB, a, b *tnode) {
	t.Helper()
	addrs := b.tr.Addrs()
	d, addr, err := transport.ParsePeerAddr(addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := a.tr.Connect(context.Background(), d, addr); err != nil {
		t.Fatal(err)
	}
}

func linkPolicy(limit uint64) budget.Policy {
	p := budget.DefaultPolicy()
	p.Flow.Link = limit
	return p
}

func (n *tnode) send(ctx context.Context, to core.DeviceID, typ string, payload []byte) error {
	return n.sendClaim(ctx, to, typ, "", payload)
}

// sendClaim sends a message claiming capability.
func (n *tnode) sendClaim(ctx context.Context, to core.DeviceID, typ, capability string, payload []byte) error {
	return n.tr.Send(ctx, transport.Message{Protocol: protoTest, Context: core.LinkContext(n.dev, to), To: to, Type: typ, Capability: capability, Cost: 1, Payload: payload})
}

// The guard chain is the only way out: under concurrency, budget denials and
// capability denials, the stream layer sees exactly as many frames as the
// ledger recorded charges, and the receiver accepts all of them.
func TestNoFrameWithoutACharge(t *testing.T) {
	const limit = 300
	a, b := newTNode(t, linkPolicy(limit)), newTNode(t, linkPolicy(limit))
	var frames atomic.Int64
	transport.WrapWire(a.tr, func(next transport.WireFunc) transport.WireFunc {
		return func(ctx context.Context, to peer.ID, frame []byte) error {
			frames.Add(1)
			return next(ctx, to, frame)
		}
	})
	connect(t, a, b)
	ctx := context.Background()
	var ok, exhausted, denied atomic.Int64
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				typ, claim := "msg", ""
				switch {
				case (w+i)%7 == 0:
					typ = "not-allowed" // refused at the capability step
				case (w+i)%11 == 0:
					claim = "not:granted" // so is a capability not held
				}
				err := a.sendClaim(ctx, b.dev, typ, claim, []byte{byte(i)})
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, core.ErrResourceExhausted):
					exhausted.Add(1)
				case errors.Is(err, core.ErrPermissionDenied):
					denied.Add(1)
				default:
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	e, err := a.l.Get(ctx, budget.Key{Context: core.LinkContext(a.dev, b.dev), Peer: b.dev})
	if err != nil {
		t.Fatal(err)
	}
	if ok.Load() != limit || exhausted.Load() == 0 || denied.Load() == 0 {
		t.Fatalf("ok %d exhausted %d denied %d", ok.Load(), exhausted.Load(), denied.Load())
	}
	if frames.Load() != int64(e.State.Spent) || e.LastNonce != uint64(frames.Load()) || e.State.Spent != limit {
		t.Fatalf("%d frames on the wire, %d charged (nonce %d)", frames.Load(), e.State.Spent, e.LastNonce)
	}
	deadline := time.After(10 * time.Second)
	for b.received() < limit {
		select {
		case <-b.seen:
		case <-deadline:
			t.Fatalf("receiver accepted %d of %d", b.received(), limit)
		}
	}
	if st := b.tr.Stats(); len(st.Dropped) != 0 {
		t.Fatalf("honest frames dropped: %v", st.Dropped)
	}
	// Every frame the sender counts is one the receiver read, byte for byte.
	sa, sb := a.tr.Stats(), b.tr.Stats()
	if sa.SentBytes == 0 || sa.SentBytes != sb.ReceivedBytes || sa.Sent != sb.Received {
		t.Fatalf("a sent %d frames (%d bytes), b read %d (%d bytes)", sa.Sent, sa.SentBytes, sb.Received, sb.ReceivedBytes)
	}
}

// Two current peers speak envelope protocol 4: receipts travel compact,
// the frames that carry a checkpoint are the first and every
// CheckpointEvery-th, and the receiver keeps the latest checkpoint, which
// verifies and names the whole chain's cost.
func TestCurrentPeersSendCompactReceipts(t *testing.T) {
	const n = transport.CheckpointEvery + 5
	a, b := newTNode(t, linkPolicy(10*n)), newTNode(t, linkPolicy(10*n))
	var mu sync.Mutex
	var sizes []int
	transport.WrapWire(a.tr, func(next transport.WireFunc) transport.WireFunc {
		return func(ctx context.Context, to peer.ID, frame []byte) error {
			e, err := transport.DecodeEnvelope(frame)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			sizes = append(sizes, len(e.Receipt))
			mu.Unlock()
			return next(ctx, to, frame)
		}
	})
	connect(t, a, b)
	ctx := context.Background()
	for i := range n {
		if err := a.send(ctx, b.dev, "msg", []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.After(10 * time.Second)
	for b.received() < n {
		select {
		case <-b.seen:
		case <-deadline:
			t.Fatalf("receiver accepted %d of %d", b.received(), n)
		}
	}
	var large []int
	for i, sz := range sizes {
		if sz >= budget.ReceiptSize {
			t.Fatalf("receipt %d of %d bytes: not compact", i+1, sz)
		}
		if sz > sizes[1] {
			large = append(large, i+1)
		}
	}
	// The first and the CheckpointEvery-th; a slow run adds some after a
	// pause.
	if !slices.Contains(large, 1) || !slices.Contains(large, transport.CheckpointEvery) {
		t.Fatalf("checkpoints on frames %v", large)
	}
	k := budget.Key{Context: core.LinkContext(a.dev, b.dev), Peer: a.dev}
	cps, err := b.l.Checkpoints(ctx, k) // newest first
	if err != nil || len(cps) == 0 {
		t.Fatalf("checkpoints %+v: %v", cps, err)
	}
	cp := cps[0]
	if last := uint64(large[len(large)-1]); cp.Verify() != nil || cp.Nonce != last || cp.Cumulative != last {
		t.Fatalf("kept checkpoint %+v, checkpoints on frames %v", cp, large)
	}
}

// A device that is not a member of a context cannot be sent to in it.
func TestSendToNonMemberIsRefusedBeforeCharging(t *testing.T) {
	a, b := newTNode(t, linkPolicy(100)), newTNode(t, linkPolicy(100))
	connect(t, a, b)
	other := core.ContextID{7}
	err := a.tr.Send(context.Background(), transport.Message{Protocol: protoTest, Context: other, To: b.dev, Type: "msg", Cost: 1})
	if !errors.Is(err, core.ErrNotFound) && !errors.Is(err, core.ErrPermissionDenied) {
		t.Fatalf("got %v", err)
	}
	if es, _ := a.l.List(context.Background()); len(es) != 0 {
		t.Fatalf("a refused send left budget state: %+v", es)
	}
}

func TestFloodingPeerIsCutOffWhileHonestPeerIsServed(t *testing.T) {
	victim := newTNode(t, linkPolicy(1000), func(o *transport.Options) { o.MisbehaviourLimit = 50 })
	honest := newTNode(t, linkPolicy(1000))
	connect(t, honest, victim)

	priv, _, _ := p2pcrypto.GenerateEd25519Key(rand.Reader)
	flooder, err := libp2p.New(libp2p.Identity(priv), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer flooder.Close()
	vid, _ := transport.PeerID(victim.dev)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := flooder.Connect(ctx, peer.AddrInfo{ID: vid, Addrs: transport.HostOf(victim.tr).Addrs()}); err != nil {
		t.Fatal(err)
	}
	flooderDev, _ := transport.DeviceIDOf(flooder.ID())

	// The flooder writes garbage and unpaid envelopes as fast as it can.
	floodDone := make(chan int)
	go func() {
		sent := 0
		defer func() { floodDone <- sent }()
		for ctx.Err() == nil {
			s, err := flooder.NewStream(ctx, vid, transport.ProtocolEnvelope)
			if err != nil {
				return // cut off
			}
			w := bufio.NewWriter(s)
			for i := 0; i < 1000 && ctx.Err() == nil; i++ {
				var frame []byte
				if i%2 == 0 {
					frame = []byte("garbage garbage garbage")
				} else {
					env := transport.Envelope{Context: core.LinkContext(flooderDev, victim.dev), Src: flooderDev, Dst: victim.dev, Epoch: 1, Seq: uint64(i), Cost: 1, Protocol: string(protoTest), Type: "msg", Receipt: make([]byte, 40), Payload: []byte("x")}
					frame = env.Encode()
				}
				var hdr [10]byte
				n := binary.PutUvarint(hdr[:], uint64(len(frame)))
				if _, err := w.Write(append(hdr[:n], frame...)); err != nil {
					break
				}
				sent++
			}
			if w.Flush() != nil {
				s.Reset()
			}
		}
	}()

	// Meanwhile the honest peer's messages all get through.
	const honestMsgs = 200
	for i := range honestMsgs {
		if err := honest.send(ctx, victim.dev, "msg", []byte{byte(i)}); err != nil {
			t.Fatalf("honest send %d: %v", i, err)
		}
	}
	for victim.received() < honestMsgs {
		select {
		case <-victim.seen:
		case <-ctx.Done():
			t.Fatalf("victim accepted %d of %d honest messages", victim.received(), honestMsgs)
		}
	}
	cancel()
	<-floodDone
	st := victim.tr.Stats()
	if st.Dropped[transport.DropBadFrame]+st.Dropped[transport.DropReceipt] == 0 {
		t.Fatalf("flood not dropped: %+v", st)
	}
	// The flooder is cut off and refused for its back-off; the honest peer is not.
	peers, err := victim.tr.Peers(context.Background(), victim.j)
	if err != nil {
		t.Fatal(err)
	}
	flooderListed := false
	for _, p := range peers {
		if p.Device == flooderDev {
			flooderListed = true
			if !p.BackedOff {
				t.Fatalf("flooder not backed off: %+v", p)
			}
		}
		if p.Device == honest.dev && p.BackedOff {
			t.Fatal("honest peer backed off")
		}
	}
	if !flooderListed {
		t.Fatal("flooder not listed as backed off")
	}
	if _, err := flooder.NewStream(context.Background(), vid, transport.ProtocolEnvelope); err == nil {
		t.Fatal("flooder opened a stream while backed off")
	}
	for _, m := range victim.got {
		if m.From != honest.dev {
			t.Fatalf("accepted a message from %s", m.From)
		}
	}
}

// A sender that ignores the limit its receiver grants is refused by the
// receiver: budgets are enforced at both ends.
func TestReceiverEnforcesItsOwnLimit(t *testing.T) {
	generous := newTNode(t, linkPolicy(1000))
	strict := newTNode(t, linkPolicy(10))
	connect(t, generous, strict)
	ctx := context.Background()
	for i := range 20 {
		if err := generous.send(ctx, strict.dev, "msg", []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.After(10 * time.Second)
	for {
		st := strict.tr.Stats()
		if st.Dropped[transport.DropReceipt] == 10 && strict.received() == 10 {
			return
		}
		select {
		case <-deadline:
			t.Fatalf("received %d, dropped %v", strict.received(), st.Dropped)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// A frame replayed by its own sender breaks the receipt chain and is dropped.
func TestReplayedFrameIsDropped(t *testing.T) {
	a, b := newTNode(t, linkPolicy(100)), newTNode(t, linkPolicy(100))
	var mu sync.Mutex
	var last []byte
	var replay transport.WireFunc
	transport.WrapWire(a.tr, func(next transport.WireFunc) transport.WireFunc {
		replay = next
		return func(ctx context.Context, to peer.ID, frame []byte) error {
			mu.Lock()
			last = append([]byte(nil), frame...)
			mu.Unlock()
			return next(ctx, to, frame)
		}
	})
	connect(t, a, b)
	ctx := context.Background()
	if err := a.send(ctx, b.dev, "msg", []byte("once")); err != nil {
		t.Fatal(err)
	}
	<-b.seen
	bid, _ := transport.PeerID(b.dev)
	mu.Lock()
	frame := last
	mu.Unlock()
	if err := replay(ctx, bid, frame); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(5 * time.Second)
	for b.tr.Stats().Dropped[transport.DropReceipt] == 0 {
		select {
		case <-deadline:
			t.Fatalf("replay not dropped: %+v", b.tr.Stats())
		case <-time.After(10 * time.Millisecond):
		}
	}
	if b.received() != 1 {
		t.Fatalf("replay delivered: %d messages", b.received())
	}
}

// After a restart the sender's chains continue from their durable nonces; the
// first frames must not wait for nonces an earlier process already sent.
func TestSendingResumesAfterRestart(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	path := filepath.Join(t.TempDir(), "j.db")
	a := openTNode(t, path, key, linkPolicy(100))
	b := newTNode(t, linkPolicy(100))
	connect(t, a, b)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range 3 {
		if err := a.send(ctx, b.dev, "msg", []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	a.close()
	a = openTNode(t, path, key, linkPolicy(100))
	connect(t, a, b)
	for i := range 3 {
		if err := a.send(ctx, b.dev, "msg", []byte{byte(10 + i)}); err != nil {
			t.Fatalf("send after restart: %v", err)
		}
	}
	for b.received() < 6 {
		select {
		case <-b.seen:
		case <-ctx.Done():
			b.mu.Lock()
			var got []byte
			for _, m := range b.got {
				got = append(got, m.Payload...)
			}
			b.mu.Unlock()
			t.Fatalf("received %d of 6 (%v); stats %+v; sender stats %+v", b.received(), got, b.tr.Stats(), a.tr.Stats())
		}
	}
}

// A frame is accepted only from the device that wrote it, addressed to us: a
// third device replaying someone else's paid frame, or a peer forwarding a
// frame it addressed elsewhere, is dropped as the wrong sender before the
// frame reaches the capability or budget checks.
func TestFrameFromWrongSenderIsDropped(t *testing.T) {
	tests := []struct {
		name string
		// deliver sends a's frame, written for b, to some device's transport
		// over the raw stream layer, and returns that device.
		deliver func(t *testing.T, ctx context.Context, a, b *tnode, frame []byte) *tnode
	}{
		{"relayed by a third device", func(t *testing.T, ctx context.Context, a, b *tnode, frame []byte) *tnode {
			m := newTNode(t, linkPolicy(100))
			var raw transport.WireFunc
			transport.WrapWire(m.tr, func(next transport.WireFunc) transport.WireFunc { raw = next; return next })
			connect(t, m, b)
			bid, _ := transport.PeerID(b.dev)
			if err := raw(ctx, bid, frame); err != nil {
				t.Fatal(err)
			}
			return b
		}},
		{"addressed to another device", func(t *testing.T, ctx context.Context, a, b *tnode, frame []byte) *tnode {
			c := newTNode(t, linkPolicy(100))
			connect(t, a, c)
			cid, _ := transport.PeerID(c.dev)
			if err := a.raw(ctx, cid, frame); err != nil {
				t.Fatal(err)
			}
			return c
		}},
	}
	// A version 4 frame names neither end: whoever writes it to a stream
	// speaks as itself, and its reader is its destination. Misdirected, it
	// is read as the relayer's, or as addressed to the wrong reader, in a
	// context that device is no member of. Versions 1 to 3 name both ends,
	// and a frame whose ends are not the stream's is dropped as such.
	forms := []struct {
		name   string
		v4     bool
		reason string
	}{{"v4", true, transport.DropUnauthorized}, {"v1", false, transport.DropWrongSender}}
	for _, tc := range tests {
		for _, form := range forms {
			t.Run(tc.name+"/"+form.name, func(t *testing.T) {
				misdirect(t, tc.deliver, form.v4, form.reason)
			})
		}
	}
}

func misdirect(t *testing.T, deliver func(t *testing.T, ctx context.Context, a, b *tnode, frame []byte) *tnode, v4 bool, reason string) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a, b := newTNode(t, linkPolicy(100)), newTNode(t, linkPolicy(100))
	// a's frame for b is paid for but kept off the network, so the
	// only copy anyone sees is the misdirected one.
	frame := heldFrame(t, a, b, func() error { return a.send(ctx, b.dev, "msg", []byte("for b only")) })
	e, err := transport.DecodeEnvelope(frame)
	if err != nil || !e.V4() {
		t.Fatalf("a current peer's frame: %+v %v", e, err)
	}
	if !v4 {
		// The same message as an older aurad writes it, both ends
		// named.
		frame = (&transport.Envelope{Context: e.Context, Src: a.dev, Dst: b.dev, Epoch: e.Epoch, Seq: e.Seq, Cost: e.Cost,
			Protocol: e.Protocol, Type: e.Type, Receipt: e.Receipt, Payload: e.Payload}).Encode()
	}
	wantOneDrop(t, ctx, deliver(t, ctx, a, b, frame), reason)
}

// heldFrame keeps a's frames off the network (the stream layer stays
// reachable as a.raw), connects a to b, runs send and returns the frame it
// paid for.
func heldFrame(t *testing.T, a, b *tnode, send func() error) []byte {
	t.Helper()
	var mu sync.Mutex
	var held []byte
	transport.WrapWire(a.tr, func(next transport.WireFunc) transport.WireFunc {
		a.raw = next
		return func(_ context.Context, _ peer.ID, frame []byte) error {
			mu.Lock()
			held = append([]byte(nil), frame...)
			mu.Unlock()
			return nil
		}
	})
	connect(t, a, b)
	if err := send(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if held == nil {
		t.Fatal("no frame reached the stream layer")
	}
	return held
}

// wantOneDrop waits until n has dropped or delivered a frame, and requires
// exactly one drop, under reason, and nothing delivered.
func wantOneDrop(t *testing.T, ctx context.Context, n *tnode, reason string) {
	t.Helper()
	for {
		st := n.tr.Stats()
		var dropped uint64
		for _, c := range st.Dropped {
			dropped += c
		}
		if dropped > 0 || n.received() > 0 {
			if st.Dropped[reason] != 1 || dropped != 1 || n.received() != 0 {
				t.Fatalf("dropped %v, delivered %d; want one %s drop", st.Dropped, n.received(), reason)
			}
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("frame neither dropped nor delivered: %+v", st)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// A capability the sender does not hold is refused at the capability step:
// no charge, nothing on the wire.
func TestSendClaimingUngrantedCapabilityIsRefusedBeforeCharging(t *testing.T) {
	a, b := newTNode(t, linkPolicy(100)), newTNode(t, linkPolicy(100))
	var frames atomic.Int64
	transport.WrapWire(a.tr, func(next transport.WireFunc) transport.WireFunc {
		return func(ctx context.Context, to peer.ID, frame []byte) error {
			frames.Add(1)
			return next(ctx, to, frame)
		}
	})
	connect(t, a, b)
	a.authz.Grant("msg", "demo:granted")
	ctx := context.Background()
	err := a.sendClaim(ctx, b.dev, "msg", "demo:other", []byte("x"))
	if !errors.Is(err, transport.ErrCapabilityDenied) || !errors.Is(err, core.ErrPermissionDenied) {
		t.Fatalf("got %v, want a capability denial", err)
	}
	if es, _ := a.l.List(ctx); len(es) != 0 || frames.Load() != 0 {
		t.Fatalf("a refused send left budget state %+v and %d frames", es, frames.Load())
	}
	// Too long to be a capability is bad input, refused as such.
	long := string(make([]byte, transport.MaxCapabilityLen+1))
	if err := a.sendClaim(ctx, b.dev, "msg", long, nil); !errors.Is(err, core.ErrInvalidArgument) {
		t.Fatalf("oversized capability: %v", err)
	}
	// The granted one goes through, and the receiver, granting it too, sees
	// the claim.
	b.authz.Grant("msg", "demo:granted")
	if err := a.sendClaim(ctx, b.dev, "msg", "demo:granted", []byte("y")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.seen:
	case <-time.After(20 * time.Second):
		t.Fatalf("granted claim not delivered: %+v", b.tr.Stats())
	}
	b.mu.Lock()
	got := b.got[0]
	b.mu.Unlock()
	if got.Capability != "demo:granted" || string(got.Payload) != "y" {
		t.Fatalf("received %+v", got)
	}
}

// A capability claimed on the wire that the sender does not hold, as the
// receiver's own rules see it, is dropped before the budget check and counted
// as a capability denial.
func TestClaimOfCapabilityNotHeldIsDropped(t *testing.T) {
	tests := []struct {
		name string
		// claim is what a sends with, through its guard chain.
		claim string
		// forge rewrites the paid frame before it reaches b.
		forge func(t *testing.T, frame []byte) []byte
	}{
		{"claim forged on the wire", "", func(t *testing.T, frame []byte) []byte {
			e, err := transport.DecodeEnvelope(frame)
			if err != nil {
				t.Fatal(err)
			}
			e.Capability = "admin:everything"
			return e.Encode()
		}},
		{"claim the receiver does not grant", "demo:sender-only", func(_ *testing.T, frame []byte) []byte { return frame }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			a, b := newTNode(t, linkPolicy(100)), newTNode(t, linkPolicy(100))
			a.authz.Grant("msg", "demo:sender-only")
			frame := heldFrame(t, a, b, func() error { return a.sendClaim(ctx, b.dev, "msg", tc.claim, []byte("claimed")) })
			bid, _ := transport.PeerID(b.dev)
			if err := a.raw(ctx, bid, tc.forge(t, frame)); err != nil {
				t.Fatal(err)
			}
			wantOneDrop(t, ctx, b, transport.DropCapabilityDenied)
			// The drop happened before the receipt check: the honest frame,
			// with the receipt the forged one carried, is still accepted.
			if tc.claim == "" {
				if err := a.raw(ctx, bid, frame); err != nil {
					t.Fatal(err)
				}
				select {
				case <-b.seen:
				case <-ctx.Done():
					t.Fatalf("honest frame not delivered: %+v", b.tr.Stats())
				}
			}
		})
	}
}

// acceptTokens stands for the web of trust's verifier: the unit under test
// is the transport's handling of a peer too old for tokens, not the token.
type acceptTokens struct{}

func (acceptTokens) CheckToken([]byte, core.DeviceID, string, core.Namespace) error { return nil }

// A peer built before envelope version 3 speaks only /aura/envelope/1: a
// message carrying a token is refused with ErrPeerTooOld before anything is
// charged or written, instead of being dropped there in silence; messages
// without one still go through.
func TestTokenToAnOlderPeerIsRefusedBeforeCharging(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a := newTNode(t, linkPolicy(100))
	a.authz.SetTokens(acceptTokens{})
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	priv, err := p2pcrypto.UnmarshalEd25519PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	old, err := libp2p.New(libp2p.Identity(priv), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	frames := make(chan []byte, 4)
	old.SetStreamHandler(transport.ProtocolEnvelope, func(s network.Stream) {
		defer s.Close()
		r := bufio.NewReader(s)
		for {
			f, err := transport.ReadFrameForTest(r)
			if err != nil {
				return
			}
			frames <- f
		}
	})
	oldDev, _ := core.DeviceIDFromKey(key.Public().(ed25519.PublicKey))
	addr := old.Addrs()[0].String() + "/p2p/" + old.ID().String()
	d, ma, err := transport.ParsePeerAddr(addr)
	if err != nil || d != oldDev {
		t.Fatal(err)
	}
	if err := a.tr.Connect(ctx, d, ma); err != nil {
		t.Fatal(err)
	}
	msg := transport.Message{Protocol: protoTest, Context: core.LinkContext(a.dev, oldDev), To: oldDev, Type: "msg", Capability: "demo:token", Token: []byte("token"), Cost: 1, Payload: []byte("x")}
	if err := a.tr.Send(ctx, msg); !errors.Is(err, transport.ErrPeerTooOld) || !errors.Is(err, core.ErrFailedPrecondition) {
		t.Fatalf("token to an older peer: %v", err)
	}
	if e, err := a.l.Get(ctx, budget.Key{Context: core.LinkContext(a.dev, oldDev), Peer: oldDev}); err == nil && e.State.Spent != 0 {
		t.Fatalf("a refused send was charged %d", e.State.Spent)
	}
	msg.Capability, msg.Token = "", nil
	if err := a.tr.Send(ctx, msg); err != nil {
		t.Fatalf("plain message to an older peer: %v", err)
	}
	select {
	case f := <-frames:
		e, err := transport.DecodeEnvelope(f)
		if err != nil || len(e.Token) != 0 {
			t.Fatalf("the older peer got %v %v", e, err)
		}
		// It reads receipts signed whole, as before envelope protocol 4.
		if r, err := budget.DecodeReceipt(e.Receipt); err != nil || r.Verify() != nil {
			t.Fatalf("the older peer got receipt %x: %v", e.Receipt, err)
		}
	case <-ctx.Done():
		t.Fatal("the plain message never arrived")
	}
	if len(frames) != 0 {
		t.Fatal("the token message reached the older peer")
	}
}

// Messages of one chain, each sent once the one before is queued, are in
// flight together and arrive in the order they were started.
func TestQueuedSendsKeepTheirOrder(t *testing.T) {
	a, b := newTNode(t, linkPolicy(1000)), newTNode(t, linkPolicy(1000))
	connect(t, a, b)
	ctx := context.Background()
	const n = 64
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		queued, done := make(chan struct{}), make(chan struct{})
		wg.Go(func() {
			defer close(done)
			errs[i] = a.tr.Send(ctx, transport.Message{Protocol: protoTest, Context: core.LinkContext(a.dev, b.dev), To: b.dev, Type: "msg", Cost: 1,
				Payload: []byte{byte(i)}, Queued: func() { close(queued) }})
		})
		select {
		case <-queued:
		case <-done: // refused before it was queued: errs says so
		}
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	deadline := time.After(10 * time.Second)
	for b.received() < n {
		select {
		case <-b.seen:
		case <-deadline:
			t.Fatalf("b received %d of %d", b.received(), n)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, m := range b.got {
		if m.Payload[0] != byte(i) {
			t.Fatalf("message %d arrived in place %d", m.Payload[0], i)
		}
	}
}

// AwaitConnected says whether the peer got connected before ctx ended.
func TestAwaitConnected(t *testing.T) {
	a, b := newTNode(t, linkPolicy(10)), newTNode(t, linkPolicy(10))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if a.tr.AwaitConnected(ctx, b.dev) {
		t.Fatal("connected before any dial")
	}
	connect(t, a, b)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	if !b.tr.AwaitConnected(ctx2, a.dev) {
		t.Fatal("the dialed peer never saw the connection")
	}
}

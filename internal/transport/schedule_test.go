package transport_test

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	p2pcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/aura-p2p/aura/internal/budget"
	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/transport"
)

// Issue #9, finding 4: one device's budget setting changes 1h -> 5m -> 1h
// across restarts while its peer stays at 1h. Pings go through the whole
// guard chain both ways after every restart, no frame is dropped at either
// end, and the restarted device's epoch stays the wall clock's.
func TestPingsSurviveBudgetPeriodChanges(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	path := filepath.Join(t.TempDir(), "j.db")
	b := newTNode(t, linkPolicy(1000))
	bp := transport.NewPinger(b.tr, b.authz)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i, period := range []time.Duration{time.Hour, budget.EpochLength, time.Hour} {
		a := openTNodePeriod(t, path, key, linkPolicy(1000), period)
		ap := transport.NewPinger(a.tr, a.authz)
		connect(t, a, b)
		for range 3 {
			if _, err := ap.Ping(ctx, b.dev, nil); err != nil {
				t.Fatalf("start %d (%s): a pings b: %v; a %+v, b %+v", i, period, err, a.tr.Stats(), b.tr.Stats())
			}
			if _, err := bp.Ping(ctx, a.dev, nil); err != nil {
				t.Fatalf("start %d (%s): b pings a: %v; a %+v, b %+v", i, period, err, a.tr.Stats(), b.tr.Stats())
			}
		}
		for name, n := range map[string]*tnode{"a": a, "b": b} {
			if d := n.tr.Stats().Dropped; len(d) != 0 {
				t.Fatalf("start %d (%s): %s dropped %v", i, period, name, d)
			}
		}
		wall := core.Epoch(time.Now().Unix() / int64(budget.EpochLength/time.Second))
		if e := a.l.Epochs().Current(); e+1 < wall || e > wall+1 {
			t.Fatalf("start %d (%s): epoch %d, the wall clock's %d", i, period, e, wall)
		}
		en, err := a.l.Get(ctx, budget.Key{Context: core.LinkContext(a.dev, b.dev), Peer: b.dev})
		if err != nil {
			t.Fatal(err)
		}
		if want := uint32(period / budget.EpochLength); en.Period != want || en.LastNonce == 0 {
			t.Fatalf("start %d (%s): a's budget %+v", i, period, en)
		}
		a.close()
	}
}

// A peer on the previous protocol version sends version 1 receipts, whose
// epochs count in units of its local setting: each is dropped and counted
// as epoch_schedule_mismatch, not lumped in with forged or over-limit ones.
func TestLegacyReceiptIsCountedAsScheduleMismatch(t *testing.T) {
	victim := newTNode(t, linkPolicy(100))
	_, oldKey, _ := ed25519.GenerateKey(rand.Reader)
	priv, err := p2pcrypto.UnmarshalEd25519PrivateKey(oldKey)
	if err != nil {
		t.Fatal(err)
	}
	old, err := libp2p.New(libp2p.Identity(priv), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	vid, _ := transport.PeerID(victim.dev)
	if err := old.Connect(ctx, peer.AddrInfo{ID: vid, Addrs: transport.HostOf(victim.tr).Addrs()}); err != nil {
		t.Fatal(err)
	}
	oldDev, _ := transport.DeviceIDOf(old.ID())

	// What the previous version sends: a signed version 1 receipt of an
	// hour-long epoch, in an envelope that agrees with it.
	r := budget.Receipt{Context: core.LinkContext(oldDev, victim.dev), Src: oldDev, Dst: victim.dev, Epoch: core.Epoch(time.Now().Unix() / 3600), Cost: 1, Nonce: 1}
	h := r.Hash()
	r.Sig = ed25519.Sign(oldKey, append(append([]byte("aura/receipt/sig/v1"), 0), h[:]...))
	if err := r.Verify(); err != nil {
		t.Fatal(err)
	}
	env := transport.Envelope{Context: r.Context, Src: oldDev, Dst: victim.dev, Epoch: r.Epoch, Seq: 1, Cost: 1, Protocol: string(protoTest), Type: "msg", Receipt: r.Encode(), Payload: []byte("x")}
	frame := env.Encode()
	s, err := old.NewStream(ctx, vid, transport.ProtocolEnvelope)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(s)
	var hdr [binary.MaxVarintLen64]byte
	if _, err := w.Write(append(hdr[:binary.PutUvarint(hdr[:], uint64(len(frame)))], frame...)); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	for victim.tr.Stats().Dropped[transport.DropEpochSchedule] == 0 {
		select {
		case <-ctx.Done():
			t.Fatalf("legacy receipt not counted: %+v", victim.tr.Stats())
		case <-time.After(10 * time.Millisecond):
		}
	}
	if st := victim.tr.Stats(); st.Dropped[transport.DropReceipt] != 0 || st.Received != 0 || victim.received() != 0 {
		t.Fatalf("stats %+v, delivered %d", st, victim.received())
	}
}

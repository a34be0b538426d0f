package transport_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/transport"
)

// learnedSignal returns a channel that receives once per durable batch of
// learned peers on n.
func learnedSignal(n *tnode) <-chan struct{} {
	ch := make(chan struct{}, 16)
	transport.OnLearned(n.tr, func() {
		select {
		case ch <- struct{}{}:
		default:
		}
	})
	return ch
}

func bookEntry(t *testing.T, n *tnode, d core.DeviceID) (transport.PeerInfo, bool) {
	t.Helper()
	ps, err := n.tr.Peers(context.Background(), n.j)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if p.Device == d {
			return p, true
		}
	}
	return transport.PeerInfo{}, false
}

// Issue #11, item 1: one `peer add` is enough in both directions. A adds B,
// which dials it; B learns A's listen address from identify and keeps it in its
// book, so that after a restart B reaches A without ever having added it.
func TestDialedPeerLearnsDialerAndReachesItAfterRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, bkey, _ := ed25519.GenerateKey(rand.Reader)
	bpath := filepath.Join(t.TempDir(), "j.db")
	a := newTNode(t, linkPolicy(100))
	b := openTNode(t, bpath, bkey, linkPolicy(100))
	transport.NewPinger(a.tr, a.authz)
	learned := learnedSignal(b)
	for _, n := range []*tnode{a, b} {
		if _, err := n.tr.LoadPeers(ctx, n.j); err != nil {
			t.Fatal(err)
		}
	}
	// `peer add` alone: it dials, and b learns a from that connection.
	if _, err := a.tr.AddPeer(ctx, a.j, b.tr.Addrs()[0]); err != nil {
		t.Fatal(err)
	}
	for {
		if p, ok := bookEntry(t, b, a.dev); ok && p.Known {
			if !p.Learned {
				t.Fatalf("b's entry for a %+v: want learned", p)
			}
			break
		}
		select {
		case <-learned:
		case <-ctx.Done():
			t.Fatalf("b never learned a; b's peers: %+v", must(b.tr.Peers(context.Background(), b.j)))
		}
	}
	// a, which dialed with the address it was given, learned nothing it
	// lacked, but its entry for b stays the operator's.
	if p, _ := bookEntry(t, a, b.dev); !p.Known || p.Learned {
		t.Fatalf("a's entry for b %+v: want added by the operator", p)
	}

	b.close()
	b = openTNode(t, bpath, bkey, linkPolicy(100))
	bp := transport.NewPinger(b.tr, b.authz)
	known, err := b.tr.LoadPeers(ctx, b.j)
	if err != nil {
		t.Fatal(err)
	}
	if len(known) != 1 || known[0].Device != a.dev || !known[0].Learned {
		t.Fatalf("b's book after restart: %+v", known)
	}
	want := a.tr.Addrs()[0]
	if got := known[0].Addrs[0].Encapsulate(ma.StringCast("/p2p/" + peerOf(t, a.dev).String())).String(); got != want {
		t.Fatalf("learned address %s, a listens on %s", got, want)
	}
	if c := transport.HostOf(b.tr).Network().Connectedness(peerOf(t, a.dev)); c == network.Connected {
		t.Fatal("b still connected to a after its restart")
	}
	if _, err := bp.Ping(ctx, a.dev, nil); err != nil {
		t.Fatalf("b pings a it never added: %v", err)
	}
}

func peerOf(t *testing.T, d core.DeviceID) peer.ID {
	t.Helper()
	p, err := transport.PeerID(d)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func newDevice(t *testing.T) (core.DeviceID, peer.ID) {
	t.Helper()
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	d, err := core.DeviceIDFromKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return d, peerOf(t, d)
}

// Learned entries are bounded: past the limit the oldest learned goes, and a
// peer the operator added is never evicted by learned ones (only its learned
// addresses may go; the ones the operator gave stay in the book and the host).
func TestLearnedPeersAreBoundedOldestFirst(t *testing.T) {
	ctx := context.Background()
	clock := core.NewManualClock(time.Unix(1_700_000_000, 0))
	n := newTNode(t, linkPolicy(100), func(o *transport.Options) { o.Clock = clock })
	transport.SetLearnLimit(n.tr, 3)
	if _, err := n.tr.LoadPeers(ctx, n.j); err != nil {
		t.Fatal(err)
	}
	manual, mpid := newDevice(t)
	manualAddr := ma.StringCast("/ip4/127.0.0.1/tcp/1")
	if _, err := n.tr.AddPeer(ctx, n.j, fmt.Sprintf("%s/p2p/%s", manualAddr, mpid)); err != nil {
		t.Fatal(err)
	}
	learn := func(p peer.ID, addr string) {
		t.Helper()
		clock.Advance(time.Second)
		if err := transport.Learn(ctx, n.tr, n.j, map[peer.ID][]ma.Multiaddr{p: {ma.StringCast(addr)}}); err != nil {
			t.Fatal(err)
		}
	}
	learn(mpid, "/ip4/127.0.0.1/tcp/2")
	devs := make([]core.DeviceID, 4)
	pids := make([]peer.ID, 4)
	for i := range devs {
		devs[i], pids[i] = newDevice(t)
		learn(pids[i], fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", 10+i))
		if i == 1 {
			// Re-announcing the same address does not make an entry young
			// again within the refresh interval: devs[0] stays older.
			learn(pids[0], "/ip4/127.0.0.1/tcp/10")
		}
	}

	tests := []struct {
		name    string
		dev     core.DeviceID
		pid     peer.ID
		inBook  bool
		learned bool
		addrs   []string
	}{
		{"added by the operator, its learned address evicted", manual, mpid, true, false, []string{"/ip4/127.0.0.1/tcp/1"}},
		{"oldest learned, announced again since", devs[0], pids[0], false, false, nil},
		{"second oldest learned", devs[1], pids[1], true, true, []string{"/ip4/127.0.0.1/tcp/11"}},
		{"newer", devs[2], pids[2], true, true, []string{"/ip4/127.0.0.1/tcp/12"}},
		{"newest", devs[3], pids[3], true, true, []string{"/ip4/127.0.0.1/tcp/13"}},
	}
	ps := transport.HostOf(n.tr).Peerstore()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, ok := bookEntry(t, n, tc.dev)
			if ok != tc.inBook || p.Learned != tc.learned || fmt.Sprint(p.Addrs) != fmt.Sprint(tc.addrs) {
				t.Fatalf("book entry %+v (present %v), want present %v learned %v addrs %v", p, ok, tc.inBook, tc.learned, tc.addrs)
			}
			var host []string
			for _, a := range ps.Addrs(tc.pid) {
				host = append(host, a.String())
			}
			if fmt.Sprint(host) != fmt.Sprint(tc.addrs) {
				t.Fatalf("host knows %v, want %v", host, tc.addrs)
			}
		})
	}
}

// Only addresses this device could dial later are learned.
func TestAnnouncedAddressesAreFiltered(t *testing.T) {
	n := newTNode(t, linkPolicy(100))
	_, pid := newDevice(t)
	overLoopback := ma.StringCast("/ip4/127.0.0.1/tcp/50000")
	tests := []struct {
		name   string
		in     string
		remote ma.Multiaddr // the connection's; nil when unknown
		want   string       // "" when refused
	}{
		{"loopback from a peer on this machine", "/ip4/127.0.0.1/tcp/4001", overLoopback, "/ip4/127.0.0.1/tcp/4001"},
		{"loopback from another machine", "/ip4/127.0.0.1/tcp/4001", ma.StringCast("/ip4/192.0.2.7/tcp/50000"), ""},
		{"loopback, connection unknown, this host listens there", "/ip4/127.0.0.1/tcp/4001", nil, "/ip4/127.0.0.1/tcp/4001"},
		{"peer id suffix dropped", "/ip4/192.0.2.7/tcp/4001/p2p/" + pid.String(), overLoopback, "/ip4/192.0.2.7/tcp/4001"},
		{"quic", "/ip4/192.0.2.7/udp/4001/quic-v1", overLoopback, "/ip4/192.0.2.7/udp/4001/quic-v1"},
		{"wildcard", "/ip4/0.0.0.0/tcp/4001", overLoopback, ""},
		{"ipv6 link-local", "/ip6/fe80::1/tcp/4001", overLoopback, ""},
		{"circuit with relaying off", "/ip4/192.0.2.7/tcp/4001/p2p/" + pid.String() + "/p2p-circuit", overLoopback, ""},
		{"no transport for it", "/ip4/192.0.2.7/udp/4001", overLoopback, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := transport.UsableAddrs(n.tr, []ma.Multiaddr{ma.StringCast(tc.in)}, tc.remote)
			var s string
			if len(got) == 1 {
				s = got[0].String()
			}
			if len(got) > 1 || s != tc.want {
				t.Fatalf("got %v, want %q", got, tc.want)
			}
		})
	}
}

// Issue #11, item 4: the peer list shows the round trip of the transport's
// own pings (the host's ping service is off).
func TestPingsShowInPeerLatency(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, b := newTNode(t, linkPolicy(100)), newTNode(t, linkPolicy(100))
	ap := transport.NewPinger(a.tr, a.authz)
	transport.NewPinger(b.tr, b.authz)
	connect(t, a, b)
	if p, _ := bookEntry(t, a, b.dev); p.Latency != 0 {
		t.Fatalf("latency %s before any ping", p.Latency)
	}
	for range 3 {
		if _, err := ap.Ping(ctx, b.dev, nil); err != nil {
			t.Fatal(err)
		}
	}
	p, ok := bookEntry(t, a, b.dev)
	if !ok || !p.Connected || p.Latency <= 0 {
		t.Fatalf("after pings: %+v", p)
	}
}

// Addresses a device published about itself go to the learned book, the
// host's peerstore included, through identify's filter; this device's own
// are ignored.
func TestPublishedAddressesAreLearned(t *testing.T) {
	ctx := context.Background()
	n := newTNode(t, linkPolicy(100))
	learned := make(chan struct{}, 4)
	transport.OnLearned(n.tr, func() { learned <- struct{}{} })
	if _, err := n.tr.LoadPeers(ctx, n.j); err != nil {
		t.Fatal(err)
	}
	n.tr.LearnAddrs(n.tr.Self(), []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/9")})
	d, pid := newDevice(t)
	n.tr.LearnAddrs(d, []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/4001"), ma.StringCast("/ip4/0.0.0.0/tcp/1")})
	select {
	case <-learned:
	case <-time.After(time.Minute):
		t.Fatal("the published addresses never reached the book")
	}
	p, ok := bookEntry(t, n, d)
	if !ok || !p.Learned || fmt.Sprint(p.Addrs) != "[/ip4/127.0.0.1/tcp/4001]" {
		t.Fatalf("book entry %+v (present %v)", p, ok)
	}
	if got := transport.HostOf(n.tr).Peerstore().Addrs(pid); len(got) != 1 || got[0].String() != "/ip4/127.0.0.1/tcp/4001" {
		t.Fatalf("host knows %v", got)
	}
	if _, ok := bookEntry(t, n, n.tr.Self()); ok {
		t.Fatal("this device's own addresses were learned")
	}
}

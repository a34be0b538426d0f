package account

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
)

func TestDeviceAddrsEncoding(t *testing.T) {
	addrs := []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/4001"), ma.StringCast("/ip6/::1/udp/4001/quic-v1")}
	b, err := EncodeAddrs(addrs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeAddrs(b)
	if err != nil || fmt.Sprint(got) != fmt.Sprint(addrs) {
		t.Fatalf("round trip: %v, %v", got, err)
	}
	withPeer := ma.StringCast("/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWLm87JNDrPyNvpxKU6UQG1tjbpF7e9wwchEdkjaALaTdm")
	if _, err := EncodeAddrs([]ma.Multiaddr{withPeer}); !errors.Is(err, core.ErrInvalidArgument) {
		t.Fatalf("an address naming a peer: %v", err)
	}
	many := make([]ma.Multiaddr, MaxDeviceAddrs+1)
	for i := range many {
		many[i] = addrs[0]
	}
	if _, err := EncodeAddrs(many); !errors.Is(err, core.ErrInvalidArgument) {
		t.Fatalf("%d addresses: %v", len(many), err)
	}
	raw := withPeer.Bytes()
	peerPayload := binary.BigEndian.AppendUint16([]byte{addrsVersion, 1}, uint16(len(raw)))
	for _, c := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"another version", append([]byte{2}, b[1:]...)},
		{"count past the bound", append([]byte{addrsVersion, MaxDeviceAddrs + 1}, b[2:]...)},
		{"cut short", b[:len(b)-1]},
		{"trailing byte", append(bytes.Clone(b), 0)},
		{"zero-length address", []byte{addrsVersion, 1, 0, 0}},
		{"not a multiaddr", []byte{addrsVersion, 1, 0, 2, 0xff, 0xff}},
		{"an address naming a peer", append(peerPayload, raw...)},
	} {
		if _, err := DecodeAddrs(c.b); !errors.Is(err, core.ErrInvalidArgument) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

// FuzzDeviceAddrs: address facts come from peers; what the decoder accepts
// re-encodes to the same bytes.
func FuzzDeviceAddrs(f *testing.F) {
	b, _ := EncodeAddrs([]ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/4001")})
	f.Add(b)
	f.Add([]byte{addrsVersion, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		addrs, err := DecodeAddrs(b)
		if err != nil {
			return
		}
		again, err := EncodeAddrs(addrs)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted bytes re-encode differently: %v", err)
		}
	})
}

// A device publishes its addresses once per change; the book keeps each
// device's latest fact, whatever order facts arrive in.
func TestPublishAddrsAndBook(t *testing.T) {
	ctx := context.Background()
	clock := core.NewManualClock(time.Unix(1_800_000_000, 0))
	a := openDevice(t, 1, clock)
	ns := core.AuthorityNamespace(a.s.o.Authority)
	list := func() []journal.StoredFact {
		t.Helper()
		page, _, err := a.j.List(ctx, journal.ListQuery{Namespace: &ns, TypeID: TypeDeviceAddrs, PageSize: 10})
		if err != nil {
			t.Fatal(err)
		}
		return page
	}
	first := []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/4001")}
	second := []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/4002")}
	for _, addrs := range [][]ma.Multiaddr{first, first, second, second} {
		if err := a.s.PublishAddrs(ctx, addrs); err != nil {
			t.Fatal(err)
		}
	}
	facts := list()
	if len(facts) != 2 {
		t.Fatalf("%d address facts for two address lists", len(facts))
	}
	older, newer := facts[0].SignedFact, facts[1].SignedFact
	if newer.Key().Less(older.Key()) {
		older, newer = newer, older
	}
	book := NewAddrBook()
	if !book.Take(newer) {
		t.Fatal("the newer fact not taken")
	}
	if book.Take(older) {
		t.Fatal("an older fact arriving late replaced the newer addresses")
	}
	if book.Take(newer) {
		t.Fatal("the same fact taken twice")
	}
	if got, ok := book.Addrs(newer.Author); !ok || fmt.Sprint(got) != fmt.Sprint(second) {
		t.Fatalf("the book holds %v, %v", got, ok)
	}
}

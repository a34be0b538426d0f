package account

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
)

// TypeDeviceAddrs is a device's listen addresses, published in its
// account's namespace so that every device of the account can reach every
// other: an enrollment introduces the new device to the inviting one only.
// The fact's author is the device the addresses are of; the addresses carry
// no peer id (the author's is implied), so a fact cannot point a device's
// traffic at another.
const TypeDeviceAddrs = "aura.account.addrs/v1"

// Bounds of an address fact, those of the transport's learned peer book.
const (
	MaxDeviceAddrs   = 16
	maxDeviceAddrLen = 512
	addrsVersion     = 1
)

// EncodeAddrs is an address fact's payload: version (1) | count (1) |
// count × { length (2) | multiaddr bytes }.
func EncodeAddrs(addrs []ma.Multiaddr) ([]byte, error) {
	if len(addrs) > MaxDeviceAddrs {
		return nil, fmt.Errorf("%d addresses, at most %d: %w", len(addrs), MaxDeviceAddrs, core.ErrInvalidArgument)
	}
	b := []byte{addrsVersion, byte(len(addrs))}
	for _, a := range addrs {
		raw := a.Bytes()
		if err := checkAddr(a); err != nil {
			return nil, err
		}
		b = binary.BigEndian.AppendUint16(b, uint16(len(raw)))
		b = append(b, raw...)
	}
	return b, nil
}

// DecodeAddrs reads EncodeAddrs' payload, refusing what it would not write.
func DecodeAddrs(b []byte) ([]ma.Multiaddr, error) {
	bad := func(what string) error { return fmt.Errorf("device addresses: %s: %w", what, core.ErrInvalidArgument) }
	if len(b) < 2 || b[0] != addrsVersion {
		return nil, bad("version")
	}
	n := int(b[1])
	if n > MaxDeviceAddrs {
		return nil, bad("too many")
	}
	b = b[2:]
	out := make([]ma.Multiaddr, 0, n)
	for range n {
		if len(b) < 2 {
			return nil, bad("cut short")
		}
		l := int(binary.BigEndian.Uint16(b))
		if l == 0 || l > maxDeviceAddrLen || len(b) < 2+l {
			return nil, bad("address length")
		}
		a, err := ma.NewMultiaddrBytes(b[2 : 2+l])
		if err != nil {
			return nil, bad(err.Error())
		}
		if !bytes.Equal(a.Bytes(), b[2:2+l]) {
			return nil, bad("address not canonical")
		}
		if err := checkAddr(a); err != nil {
			return nil, err
		}
		out, b = append(out, a), b[2+l:]
	}
	if len(b) != 0 {
		return nil, bad("trailing bytes")
	}
	return out, nil
}

func checkAddr(a ma.Multiaddr) error {
	if len(a.Bytes()) == 0 || len(a.Bytes()) > maxDeviceAddrLen {
		return fmt.Errorf("device address of %d bytes: %w", len(a.Bytes()), core.ErrInvalidArgument)
	}
	if _, err := a.ValueForProtocol(ma.P_P2P); err == nil {
		return fmt.Errorf("device address %s names a peer; the fact's author is the peer: %w", a, core.ErrInvalidArgument)
	}
	return nil
}

func validateAddrs(f *journal.SignedFact) error {
	if f.Namespace.Kind != core.NamespaceAuthority {
		return fmt.Errorf("device addresses outside an authority namespace: %w", core.ErrInvalidArgument)
	}
	_, err := DecodeAddrs(f.Payload)
	return err
}

// PublishAddrs records this device's addresses in its account's namespace,
// unless its latest address fact already holds exactly these.
func (s *Service) PublishAddrs(ctx context.Context, addrs []ma.Multiaddr) error {
	payload, err := EncodeAddrs(addrs)
	if err != nil {
		return err
	}
	ns := core.AuthorityNamespace(s.o.Authority)
	var latest *journal.SignedFact
	token := ""
	for {
		page, next, err := s.o.Journal.List(ctx, journal.ListQuery{Namespace: &ns, TypeID: TypeDeviceAddrs, PageSize: journal.MaxPageSize, PageToken: token})
		if err != nil {
			return err
		}
		for _, f := range page {
			if f.Author == s.self && (latest == nil || latest.Key().Less(f.Key())) {
				latest = f.SignedFact
			}
		}
		if next == "" {
			break
		}
		token = next
	}
	if latest != nil && bytes.Equal(latest.Payload, payload) {
		return nil
	}
	f, err := s.o.Journal.SignLocal(s.o.Signer, journal.Draft{Namespace: ns, TypeID: TypeDeviceAddrs, Payload: payload})
	if err != nil {
		return err
	}
	_, err = s.o.Journal.Commit(ctx, journal.Txn{Facts: []*journal.SignedFact{f}})
	return err
}

// AddrBook keeps the latest address fact of each device, by (lamport, id),
// so that facts arriving out of order never put an older address list back.
type AddrBook struct {
	latest map[core.DeviceID]bookEntry
}

type bookEntry struct {
	key   journal.FactKey
	addrs []ma.Multiaddr
}

// NewAddrBook returns an empty book.
func NewAddrBook() *AddrBook { return &AddrBook{latest: map[core.DeviceID]bookEntry{}} }

// Take keeps the addresses of f when it is its author's latest address fact
// so far, and says whether it was.
func (b *AddrBook) Take(f *journal.SignedFact) bool {
	if f.TypeID != TypeDeviceAddrs {
		return false
	}
	if e, ok := b.latest[f.Author]; ok && !e.key.Less(f.Key()) {
		return false
	}
	addrs, err := DecodeAddrs(f.Payload)
	if err != nil {
		return false
	}
	b.latest[f.Author] = bookEntry{key: f.Key(), addrs: slices.Clip(addrs)}
	return true
}

// Addrs is the latest address list of device d.
func (b *AddrBook) Addrs(d core.DeviceID) ([]ma.Multiaddr, bool) {
	e, ok := b.latest[d]
	return e.addrs, ok
}

package ceremony

import (
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
	"github.com/aura-p2p/aura/internal/wot"
)

// Contact is a contact as this device knows it: the relational context the
// ceremony made, who is on the other side, and the local name and block
// state.
type Contact struct {
	Context   core.ContextID
	Ceremony  core.Hash
	Authority core.AuthorityID
	Device    core.DeviceID
	Nickname  string
	Blocked   bool
	// Members are the context's participants (from its membership).
	Members []core.DeviceID
}

// Name is the nickname, or the start of the contact's authority id.
func (c *Contact) Name() string {
	if c.Nickname != "" {
		return c.Nickname
	}
	return c.Authority.String()[:16]
}

// Contacts lists every contact, by name.
func (s *Service) Contacts(ctx context.Context) ([]*Contact, error) {
	var out []*Contact
	var ferr error
	err := s.o.Journal.ScanState(ctx, reducerName, s.o.Namespace, nil, 0, func(_, v []byte) bool {
		st, err := decodeContactState(v)
		if err != nil {
			ferr = err
			return false
		}
		if st.Ceremony.IsZero() {
			return true // changes that arrived before their contact
		}
		out = append(out, &Contact{Context: st.Context, Ceremony: st.Ceremony, Authority: st.Authority, Device: st.Device, Nickname: st.Nickname, Blocked: st.Blocked})
		return true
	})
	if err == nil {
		err = ferr
	}
	if err != nil {
		return nil, err
	}
	for _, c := range out {
		if c.Members, err = s.o.Journal.Members(ctx, core.ContextNamespace(c.Context)); err != nil {
			return nil, err
		}
	}
	slices.SortFunc(out, func(a, b *Contact) int {
		if n := strings.Compare(a.Name(), b.Name()); n != 0 {
			return n
		}
		return strings.Compare(a.Context.String(), b.Context.String())
	})
	return out, nil
}

// FindContact resolves what a person typed: a nickname, or a unique prefix
// (at least 8 hex digits) of the contact's context, authority or device id.
func (s *Service) FindContact(ctx context.Context, ref string) (*Contact, error) {
	set, err := s.matchContacts(ctx, ref)
	if err != nil {
		return nil, err
	}
	if len(set) > 1 {
		return nil, ambiguous(ref, set)
	}
	return set[0], nil
}

// FindDevice resolves a contact reference to a device: like FindContact,
// but several contacts (contexts) with the same device are one answer.
func (s *Service) FindDevice(ctx context.Context, ref string) (core.DeviceID, error) {
	set, err := s.matchContacts(ctx, ref)
	if err != nil {
		return core.DeviceID{}, err
	}
	for _, c := range set[1:] {
		if c.Device != set[0].Device {
			return core.DeviceID{}, ambiguous(ref, set)
		}
	}
	return set[0].Device, nil
}

// matchContacts returns the contacts ref names: by nickname if any has it,
// else by id prefix; at least one, or ErrNoContact.
func (s *Service) matchContacts(ctx context.Context, ref string) ([]*Contact, error) {
	cs, err := s.Contacts(ctx)
	if err != nil {
		return nil, err
	}
	var byName, byID []*Contact
	ref = strings.TrimPrefix(ref, "context/")
	for _, c := range cs {
		if c.Nickname == ref {
			byName = append(byName, c)
		}
		if len(ref) >= 8 && isHex(ref) {
			l := strings.ToLower(ref)
			if strings.HasPrefix(c.Context.String(), l) || strings.HasPrefix(c.Authority.String(), l) || strings.HasPrefix(c.Device.String(), l) {
				byID = append(byID, c)
			}
		}
	}
	for _, set := range [][]*Contact{byName, byID} {
		if len(set) > 0 {
			return set, nil
		}
	}
	return nil, fmt.Errorf("%q: %w", ref, ErrNoContact)
}

func ambiguous(ref string, set []*Contact) error {
	var names []string
	for _, c := range set {
		names = append(names, c.Name()+" (context "+c.Context.String()[:16]+")")
	}
	return fmt.Errorf("%q names %d contacts: %s: %w", ref, len(set), strings.Join(names, ", "), core.ErrInvalidArgument)
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s + strings.Repeat("0", len(s)%2))
	return err == nil
}

// Rename sets a contact's local name (Category A: a fact, effective at once).
func (s *Service) Rename(ctx context.Context, ref, nickname string) (*Contact, error) {
	if err := CheckNickname(nickname, false); err != nil {
		return nil, err
	}
	c, err := s.FindContact(ctx, ref)
	if err != nil {
		return nil, err
	}
	ch := &ContactChange{Context: c.Context, Nickname: nickname}
	if _, _, err := s.appendLocal(ctx, TypeContactName, ch.encode(TypeContactName)); err != nil {
		return nil, err
	}
	c.Nickname = nickname
	return c, nil
}

// SetBlocked blocks or unblocks a contact (Category A): from the moment the
// fact commits, the guard chain refuses its devices' messages both ways.
func (s *Service) SetBlocked(ctx context.Context, ref string, blocked bool) (*Contact, error) {
	c, err := s.FindContact(ctx, ref)
	if err != nil {
		return nil, err
	}
	ch := &ContactChange{Context: c.Context, Blocked: blocked}
	if _, _, err := s.appendLocal(ctx, TypeContactBlock, ch.encode(TypeContactBlock)); err != nil {
		return nil, err
	}
	c.Blocked = blocked
	return c, s.loadBlocked(ctx)
}

func (s *Service) appendLocal(ctx context.Context, typeID string, payload []byte) (*journal.SignedFact, journal.Committed, error) {
	f, err := s.o.Journal.SignLocal(s.o.Signer, journal.Draft{Namespace: s.o.Namespace, TypeID: typeID, Payload: payload})
	if err != nil {
		return nil, journal.Committed{}, err
	}
	cs, err := s.o.Journal.Commit(ctx, journal.Txn{Facts: []*journal.SignedFact{f}})
	if err != nil {
		return nil, journal.Committed{}, err
	}
	return f, cs[0], nil
}

// loadBlocked recomputes the blocked devices from the contact state.
func (s *Service) loadBlocked(ctx context.Context) error {
	cs, err := s.Contacts(ctx)
	if err != nil {
		return err
	}
	blocked := map[core.DeviceID]bool{}
	for _, c := range cs {
		if !c.Blocked {
			continue
		}
		blocked[c.Device] = true
		for _, m := range c.Members {
			if m != s.self {
				blocked[m] = true
			}
		}
	}
	s.mu.Lock()
	s.blocked = blocked
	s.mu.Unlock()
	return nil
}

// Blocked reports whether d belongs to a blocked contact: the guard chain's
// question, asked for every message in and out.
func (s *Service) Blocked(d core.DeviceID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.blocked[d]
}

// ContextKey derives a context's key for a purpose and epoch from its root
// secret, which is unwrapped from its at-rest encryption for the call only.
func (s *Service) ContextKey(ctx context.Context, c core.ContextID, purpose string, epoch uint64) ([32]byte, error) {
	var wrapped []byte
	err := s.view(ctx, subRoots, func(b *journal.ExtStore) error {
		wrapped = slices.Clone(b.Get(c[:]))
		return nil
	})
	if err != nil {
		return [32]byte{}, err
	}
	if wrapped == nil {
		return [32]byte{}, fmt.Errorf("context %s: no root secret on this device: %w", c, core.ErrNotFound)
	}
	root, err := s.wrap.unwrap(c, wrapped)
	if err != nil {
		return [32]byte{}, err
	}
	return ContextKey(root, purpose, epoch)
}

// SharedContexts lists the relational contexts of this device's contacts,
// with who is on the other side: what the web of trust shares edges into.
func (s *Service) SharedContexts(ctx context.Context) ([]wot.SharedContext, error) {
	cs, err := s.Contacts(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]wot.SharedContext, len(cs))
	for i, c := range cs {
		out[i] = wot.SharedContext{Context: c.Context, Authority: c.Authority, Device: c.Device}
	}
	return out, nil
}

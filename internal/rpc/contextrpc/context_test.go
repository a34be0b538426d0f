package contextrpc

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"

	contextv1 "github.com/aura-p2p/aura/api/proto/aura/context/v1"
	"github.com/aura-p2p/aura/internal/ceremony"
	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
	"github.com/aura-p2p/aura/internal/rpc/rpctest"
)

// fakeContacts is the contact service and the fact counter. It records what
// reaches it; the method named failIn fails with err, the others succeed.
type fakeContacts struct {
	failIn string
	err    error
	calls  int

	contacts []*ceremony.Contact
	facts    map[core.Namespace]uint64
	ref      string
	nickname string
	blocked  []bool
	lo, hi   journal.FactKey
}

func (f *fakeContacts) fail(method string) error {
	f.calls++
	if method == f.failIn {
		return f.err
	}
	return nil
}

func (f *fakeContacts) Contacts(context.Context) ([]*ceremony.Contact, error) {
	if err := f.fail("Contacts"); err != nil {
		return nil, err
	}
	return f.contacts, nil
}

func (f *fakeContacts) FindContact(_ context.Context, ref string) (*ceremony.Contact, error) {
	f.ref = ref
	if err := f.fail("FindContact"); err != nil {
		return nil, err
	}
	return f.contacts[0], nil
}

func (f *fakeContacts) Rename(_ context.Context, ref, nickname string) (*ceremony.Contact, error) {
	f.ref, f.nickname = ref, nickname
	if err := f.fail("Rename"); err != nil {
		return nil, err
	}
	c := *f.contacts[0]
	c.Nickname = nickname
	return &c, nil
}

func (f *fakeContacts) SetBlocked(_ context.Context, ref string, blocked bool) (*ceremony.Contact, error) {
	f.ref = ref
	f.blocked = append(f.blocked, blocked)
	if err := f.fail("SetBlocked"); err != nil {
		return nil, err
	}
	c := *f.contacts[0]
	c.Blocked = blocked
	return &c, nil
}

func (f *fakeContacts) RangeSummary(_ context.Context, ns core.Namespace, lo, hi journal.FactKey) (uint64, journal.Fingerprint, error) {
	f.lo, f.hi = lo, hi
	if err := f.fail("RangeSummary"); err != nil {
		return 0, journal.Fingerprint{}, err
	}
	return f.facts[ns], journal.Fingerprint{}, nil
}

// Two contexts whose ids share their first 8 hex digits: a two-party
// contact without a nickname, and a group of three listed first although
// its id sorts last.
var (
	self, alice, carol = core.DeviceID{0x01}, core.DeviceID{0x02}, core.DeviceID{0x03}
	pair               = core.ContextID{0xaa, 0xbb, 0xcc, 0xdd, 0x01}
	group              = core.ContextID{0xaa, 0xbb, 0xcc, 0xdd, 0x02}
)

func newFake(failIn string, err error) *fakeContacts {
	return &fakeContacts{
		failIn: failIn, err: err,
		contacts: []*ceremony.Contact{
			{Context: group, Ceremony: core.Hash{0x12}, Authority: core.AuthorityID{0x22}, Device: carol, Nickname: "carol", Members: []core.DeviceID{carol, self, alice}},
			{Context: pair, Ceremony: core.Hash{0x11}, Authority: core.AuthorityID{0x21}, Device: alice, Members: []core.DeviceID{alice, self}},
		},
		facts: map[core.Namespace]uint64{core.ContextNamespace(pair): 3, core.ContextNamespace(group): 5},
	}
}

// Every method: input refused before the contact service sees it, and the
// service's errors, each with the code the caller gets.
func TestValidationAndCodes(t *testing.T) {
	ctx := context.Background()
	getContext := func(id string) func(s *Service) error {
		return func(s *Service) error {
			_, err := s.GetContext(ctx, &contextv1.GetContextRequest{Id: id})
			return err
		}
	}
	listContexts := func(s *Service) error {
		_, err := s.ListContexts(ctx, &contextv1.ListContextsRequest{})
		return err
	}
	listContacts := func(s *Service) error {
		_, err := s.ListContacts(ctx, &contextv1.ListContactsRequest{})
		return err
	}
	getContact := func(ref string) func(s *Service) error {
		return func(s *Service) error {
			_, err := s.GetContact(ctx, &contextv1.GetContactRequest{Contact: ref})
			return err
		}
	}
	rename := func(ref, nickname string) func(s *Service) error {
		return func(s *Service) error {
			_, err := s.RenameContact(ctx, &contextv1.RenameContactRequest{Contact: ref, Nickname: nickname})
			return err
		}
	}
	block := func(ref string) func(s *Service) error {
		return func(s *Service) error {
			_, err := s.BlockContact(ctx, &contextv1.BlockContactRequest{Contact: ref})
			return err
		}
	}
	unblock := func(ref string) func(s *Service) error {
		return func(s *Service) error {
			_, err := s.UnblockContact(ctx, &contextv1.UnblockContactRequest{Contact: ref})
			return err
		}
	}
	tests := []struct {
		name      string
		call      func(s *Service) error
		failIn    string // the fake's method that fails with domainErr
		domainErr error
		code      codes.Code
		reaches   bool
	}{
		{"list contexts: state unreadable", listContexts, "Contacts", fmt.Errorf("contact state: %w", core.ErrDataLoss), codes.DataLoss, true},
		{"list contexts: count fails", listContexts, "RangeSummary", fmt.Errorf("journal closed: %w", core.ErrUnavailable), codes.Unavailable, true},
		{"list contexts: ok", listContexts, "", nil, codes.OK, true},

		{"get context: no id", getContext(""), "", nil, codes.InvalidArgument, false},
		{"get context: bare namespace", getContext("context/"), "", nil, codes.InvalidArgument, false},
		{"get context: prefix too short", getContext("aabbccd"), "", nil, codes.InvalidArgument, false},
		{"get context: not hex", getContext("context/aabbccdz"), "", nil, codes.InvalidArgument, false},
		{"get context: another namespace", getContext("authority/aabbccdd01"), "", nil, codes.InvalidArgument, false},
		{"get context: ambiguous prefix", getContext("aabbccdd"), "", nil, codes.InvalidArgument, true},
		{"get context: unknown id", getContext("context/ffffffff"), "", nil, codes.NotFound, true},
		{"get context: state unreadable", getContext("aabbccdd01"), "Contacts", fmt.Errorf("contact state: %w", core.ErrDataLoss), codes.DataLoss, true},
		{"get context: count fails", getContext("aabbccdd01"), "RangeSummary", fmt.Errorf("journal closed: %w", core.ErrUnavailable), codes.Unavailable, true},
		{"get context: ok", getContext("context/aabbccdd01"), "", nil, codes.OK, true},

		{"list contacts: state unreadable", listContacts, "Contacts", fmt.Errorf("contact state: %w", core.ErrDataLoss), codes.DataLoss, true},
		{"list contacts: ok", listContacts, "", nil, codes.OK, true},

		{"get contact: none named", getContact(""), "", nil, codes.InvalidArgument, false},
		{"get contact: bare namespace", getContact("context/"), "", nil, codes.InvalidArgument, false},
		{"get contact: unknown", getContact("dave"), "FindContact", fmt.Errorf("%q: %w", "dave", ceremony.ErrNoContact), codes.NotFound, true},
		{"get contact: ambiguous", getContact("aabbccdd"), "FindContact", fmt.Errorf("names 2 contacts: %w", core.ErrInvalidArgument), codes.InvalidArgument, true},
		{"get contact: ok", getContact("carol"), "", nil, codes.OK, true},

		{"rename: none named", rename("", "al"), "", nil, codes.InvalidArgument, false},
		{"rename: bare namespace", rename("context/", "al"), "", nil, codes.InvalidArgument, false},
		{"rename: empty nickname", rename("alice", ""), "Rename", fmt.Errorf("empty nickname: %w", core.ErrInvalidArgument), codes.InvalidArgument, true},
		{"rename: control character", rename("alice", "a\u202eb"), "Rename", fmt.Errorf("nickname has a control character: %w", core.ErrInvalidArgument), codes.InvalidArgument, true},
		{"rename: unknown", rename("dave", "d"), "Rename", ceremony.ErrNoContact, codes.NotFound, true},
		{"rename: journal closed", rename("alice", "al"), "Rename", fmt.Errorf("commit: %w", core.ErrUnavailable), codes.Unavailable, true},
		{"rename: ok", rename("aabbccdd01", "al"), "", nil, codes.OK, true},

		{"block: none named", block(""), "", nil, codes.InvalidArgument, false},
		{"block: bare namespace", block("context/"), "", nil, codes.InvalidArgument, false},
		{"block: unknown", block("dave"), "SetBlocked", ceremony.ErrNoContact, codes.NotFound, true},
		{"block: journal closed", block("carol"), "SetBlocked", fmt.Errorf("commit: %w", core.ErrUnavailable), codes.Unavailable, true},
		{"block: ok", block("carol"), "", nil, codes.OK, true},
		{"unblock: none named", unblock(""), "", nil, codes.InvalidArgument, false},
		{"unblock: unknown", unblock("dave"), "SetBlocked", ceremony.ErrNoContact, codes.NotFound, true},
		{"unblock: ok", unblock("context/aabbccdd02"), "", nil, codes.OK, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(tc.failIn, tc.domainErr)
			err := tc.call(New(f, f))
			rpctest.CheckOutcome(t, err, tc.code, f.calls, tc.reaches, tc.domainErr)
		})
	}
}

// Contexts are listed by id, a context of more than two members is a group,
// members are sorted, and the fact count is of the whole namespace.
func TestListContexts(t *testing.T) {
	f := newFake("", nil)
	resp, err := New(f, f).ListContexts(context.Background(), &contextv1.ListContextsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	want := []*contextv1.Context{
		{Id: pair.String(), Class: core.ClassContact.String(), CeremonyId: core.Hash{0x11}.String(), FactCount: 3, Members: []string{self.String(), alice.String()}},
		{Id: group.String(), Class: core.ClassGroup.String(), CeremonyId: core.Hash{0x12}.String(), FactCount: 5, Members: []string{self.String(), alice.String(), carol.String()}},
	}
	got := resp.GetContexts()
	if len(got) != len(want) {
		t.Fatalf("%d contexts, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.GetId() != w.GetId() || g.GetClass() != w.GetClass() || g.GetCeremonyId() != w.GetCeremonyId() ||
			g.GetFactCount() != w.GetFactCount() || !slices.Equal(g.GetMembers(), w.GetMembers()) {
			t.Fatalf("context %d = %v, want %v", i, g, w)
		}
	}
	if f.lo != (journal.FactKey{}) || f.hi != (journal.FactKey{}) {
		t.Fatalf("counted [%v, %v), want the whole namespace", f.lo, f.hi)
	}
}

// A context resolves by a unique prefix, with or without its namespace, and
// comes with its contact.
func TestGetContextResolvesAPrefix(t *testing.T) {
	for _, id := range []string{"context/AABBCCDD01", "aabbccdd01", pair.String()} {
		f := newFake("", nil)
		resp, err := New(f, f).GetContext(context.Background(), &contextv1.GetContextRequest{Id: id})
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if resp.GetContext().GetId() != pair.String() || resp.GetContact().GetDeviceId() != alice.String() {
			t.Fatalf("%s: got context %s of %s", id, resp.GetContext().GetId(), resp.GetContact().GetDeviceId())
		}
	}
}

// The contact reference and the nickname reach the service as given, block
// and unblock ask for the state they name, and the answer shows the result.
func TestContactChangesReachTheService(t *testing.T) {
	ctx := context.Background()
	f := newFake("", nil)
	s := New(f, f)
	r, err := s.RenameContact(ctx, &contextv1.RenameContactRequest{Contact: "context/aabbccdd02", Nickname: "Carol C"})
	if err != nil {
		t.Fatal(err)
	}
	if f.ref != "context/aabbccdd02" || f.nickname != "Carol C" || r.GetContact().GetName() != "Carol C" {
		t.Fatalf("rename got %q %q, answered %v", f.ref, f.nickname, r.GetContact())
	}
	b, err := s.BlockContact(ctx, &contextv1.BlockContactRequest{Contact: "carol"})
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.UnblockContact(ctx, &contextv1.UnblockContactRequest{Contact: "carol"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(f.blocked, []bool{true, false}) || !b.GetContact().GetBlocked() || u.GetContact().GetBlocked() {
		t.Fatalf("asked %v, answered blocked %v then %v", f.blocked, b.GetContact().GetBlocked(), u.GetContact().GetBlocked())
	}
}

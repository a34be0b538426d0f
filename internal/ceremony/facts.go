package ceremony

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
)

// Fact types of ceremonies and contacts.
const (
	// TypeCommit is a ceremony's commit, authored by the device that decided
	// it, in the namespace the ceremony created.
	TypeCommit = "aura.ceremony.commit/v1"
	// TypeAbort records a ceremony that ended without a commit, in the
	// recording device's authority namespace.
	TypeAbort = "aura.ceremony.abort/v1"
	// TypeContact records a new contact in the device's authority namespace;
	// TypeContactName and TypeContactBlock change it (Category A).
	TypeContact      = "aura.contact/v1"
	TypeContactName  = "aura.contact.name/v1"
	TypeContactBlock = "aura.contact.block/v1"
)

// OperationContact is the operation a contact ceremony commits.
const OperationContact = "contact"

const (
	factVersion     = 1
	MaxNicknameLen  = 64
	maxReasonLen    = 256
	maxSealedLen    = 128
	maxOperationLen = 32
)

// Commit is the payload of TypeCommit.
type Commit struct {
	Ceremony     core.Hash
	Prestate     core.Hash
	Operation    string
	Invitation   [16]byte
	Inviter      core.AuthorityID
	Invitee      core.AuthorityID
	InviteeRoot  []byte // the root secret sealed to the invitee's HPKE key
	InviteeHPKE  [32]byte
	InviteeDevID core.DeviceID
}

func (c *Commit) Encode() []byte {
	w := &writer{}
	w.byte(factVersion)
	w.fixed(c.Ceremony[:])
	w.fixed(c.Prestate[:])
	w.string16(c.Operation)
	w.fixed(c.Invitation[:])
	w.fixed(c.Inviter[:])
	w.fixed(c.Invitee[:])
	w.fixed(c.InviteeDevID[:])
	w.fixed(c.InviteeHPKE[:])
	w.bytes16(c.InviteeRoot)
	return w.b
}

func DecodeCommit(b []byte) (*Commit, error) {
	r := &reader{b: b, what: TypeCommit}
	c := &Commit{}
	if v := r.byte("version"); r.err == nil && v != factVersion {
		r.fail("version %d", v)
	}
	r.fixed(c.Ceremony[:], "ceremony")
	r.fixed(c.Prestate[:], "prestate")
	c.Operation = string(r.bytes16("operation", maxOperationLen))
	r.fixed(c.Invitation[:], "invitation")
	r.fixed(c.Inviter[:], "inviter")
	r.fixed(c.Invitee[:], "invitee")
	r.fixed(c.InviteeDevID[:], "invitee device")
	r.fixed(c.InviteeHPKE[:], "invitee hpke")
	c.InviteeRoot = r.bytes16("sealed root", maxSealedLen)
	if err := r.done(); err != nil {
		return nil, err
	}
	if c.Operation != OperationContact {
		return nil, fmt.Errorf("%s: unknown operation %q: %w", TypeCommit, c.Operation, core.ErrInvalidArgument)
	}
	return c, nil
}

// Abort is the payload of TypeAbort.
type Abort struct {
	Ceremony  core.Hash
	Operation string
	Reason    string // one of the Reason* codes
	Detail    string
}

// Encode writes the abort; a reason or detail longer than the field's bound
// (an error's text can be) is cut at a rune boundary, with "…".
func (a *Abort) Encode() []byte {
	w := &writer{}
	w.byte(factVersion)
	w.fixed(a.Ceremony[:])
	w.string16(a.Operation)
	w.string16(clipText(a.Reason, maxReasonLen))
	w.string16(clipText(a.Detail, maxReasonLen))
	return w.b
}

// clipText cuts s to at most n bytes of valid UTF-8.
func clipText(s string, n int) string {
	s = strings.ToValidUTF8(s, "?")
	if len(s) <= n {
		return s
	}
	const ell = "…"
	cut := n - len(ell)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ell
}

func DecodeAbort(b []byte) (*Abort, error) {
	r := &reader{b: b, what: TypeAbort}
	a := &Abort{}
	if v := r.byte("version"); r.err == nil && v != factVersion {
		r.fail("version %d", v)
	}
	r.fixed(a.Ceremony[:], "ceremony")
	a.Operation = string(r.bytes16("operation", maxOperationLen))
	a.Reason = string(r.bytes16("reason", maxReasonLen))
	a.Detail = string(r.bytes16("detail", maxReasonLen))
	if err := r.done(); err != nil {
		return nil, err
	}
	if !utf8.ValidString(a.Detail) || !utf8.ValidString(a.Reason) {
		return nil, fmt.Errorf("%s: reason is not UTF-8: %w", TypeAbort, core.ErrInvalidArgument)
	}
	return a, nil
}

// ContactRecord is the payload of TypeContact: this device's side of a
// contact made by a committed ceremony.
type ContactRecord struct {
	Context   core.ContextID
	Ceremony  core.Hash
	Authority core.AuthorityID // the contact's
	Device    core.DeviceID    // the contact's device in the ceremony
	Nickname  string
}

func (c *ContactRecord) Encode() []byte {
	w := &writer{}
	w.byte(factVersion)
	w.fixed(c.Context[:])
	w.fixed(c.Ceremony[:])
	w.fixed(c.Authority[:])
	w.fixed(c.Device[:])
	w.string16(c.Nickname)
	return w.b
}

func DecodeContactRecord(b []byte) (*ContactRecord, error) {
	r := &reader{b: b, what: TypeContact}
	c := &ContactRecord{}
	if v := r.byte("version"); r.err == nil && v != factVersion {
		r.fail("version %d", v)
	}
	r.fixed(c.Context[:], "context")
	r.fixed(c.Ceremony[:], "ceremony")
	r.fixed(c.Authority[:], "authority")
	r.fixed(c.Device[:], "device")
	c.Nickname = string(r.bytes16("nickname", MaxNicknameLen))
	if err := r.done(); err != nil {
		return nil, err
	}
	return c, CheckNickname(c.Nickname, true)
}

// ContactChange is the payload of TypeContactName (Nickname) and
// TypeContactBlock (Blocked).
type ContactChange struct {
	Context  core.ContextID
	Nickname string
	Blocked  bool
}

func (c *ContactChange) encode(typeID string) []byte {
	w := &writer{}
	w.byte(factVersion)
	w.fixed(c.Context[:])
	if typeID == TypeContactName {
		w.string16(c.Nickname)
	} else if c.Blocked {
		w.byte(1)
	} else {
		w.byte(0)
	}
	return w.b
}

func decodeContactChange(typeID string, b []byte) (*ContactChange, error) {
	r := &reader{b: b, what: typeID}
	c := &ContactChange{}
	if v := r.byte("version"); r.err == nil && v != factVersion {
		r.fail("version %d", v)
	}
	r.fixed(c.Context[:], "context")
	if typeID == TypeContactName {
		c.Nickname = string(r.bytes16("nickname", MaxNicknameLen))
	} else {
		switch r.byte("blocked") {
		case 0:
		case 1:
			c.Blocked = true
		default:
			r.fail("blocked is not 0 or 1")
		}
	}
	if err := r.done(); err != nil {
		return nil, err
	}
	if typeID == TypeContactName {
		return c, CheckNickname(c.Nickname, false)
	}
	return c, nil
}

// CheckNickname checks a contact's local name: printable UTF-8 without
// control characters, at most MaxNicknameLen bytes.
func CheckNickname(s string, mayBeEmpty bool) error {
	if s == "" && !mayBeEmpty {
		return fmt.Errorf("empty nickname: %w", core.ErrInvalidArgument)
	}
	if len(s) > MaxNicknameLen || !utf8.ValidString(s) {
		return fmt.Errorf("nickname must be UTF-8 of at most %d bytes: %w", MaxNicknameLen, core.ErrInvalidArgument)
	}
	for _, r := range s {
		// C0, DEL and C1 (U+009B is a one-rune CSI terminals obey), and the
		// bidirectional overrides that make a name display as another.
		if unicode.IsControl(r) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) {
			return fmt.Errorf("nickname has a control character: %w", core.ErrInvalidArgument)
		}
	}
	return nil
}

// Validators are the checks the journal runs on ceremony facts, local or
// received.
func Validators() map[string]journal.Validator {
	return map[string]journal.Validator{
		TypeCommit: func(f *journal.SignedFact) error {
			if f.Namespace.Kind != core.NamespaceContext {
				return fmt.Errorf("%s outside a context namespace: %w", TypeCommit, core.ErrInvalidArgument)
			}
			_, err := DecodeCommit(f.Payload)
			return err
		},
		TypeAbort: func(f *journal.SignedFact) error {
			_, err := DecodeAbort(f.Payload)
			return err
		},
	}
}

// Contact state, reduced per context id in the authority namespace: the
// latest of each field in (lamport, id) order, which the journal guarantees
// by refolding a key when a fact arrives below its high-water mark.
type contactState struct {
	ContactRecord
	Blocked bool
}

func (s *contactState) encode() []byte {
	b := s.ContactRecord.Encode()
	if s.Blocked {
		return append(b, 1)
	}
	return append(b, 0)
}

func decodeContactState(b []byte) (*contactState, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("contact state of %d bytes: %w", len(b), core.ErrDataLoss)
	}
	rec, err := DecodeContactRecord(b[:len(b)-1])
	if err != nil {
		return nil, fmt.Errorf("contact state: %w: %w", err, core.ErrDataLoss)
	}
	return &contactState{ContactRecord: *rec, Blocked: b[len(b)-1] == 1}, nil
}

// reducerName is the contact reducer's name, and its state's bucket.
const reducerName = "contacts"

type contactReducer struct{}

// Reducer folds contact facts into one state per contact.
func Reducer() journal.Reducer { return contactReducer{} }

func (contactReducer) Name() string { return reducerName }
func (contactReducer) Handles(t string) bool {
	return t == TypeContact || t == TypeContactName || t == TypeContactBlock
}
func (contactReducer) Commutative() bool { return false }

func (contactReducer) Key(f *journal.SignedFact) ([]byte, error) {
	if f.Namespace.Kind != core.NamespaceAuthority {
		return nil, fmt.Errorf("%s outside an authority namespace: %w", f.TypeID, core.ErrInvalidArgument)
	}
	if f.TypeID == TypeContact {
		c, err := DecodeContactRecord(f.Payload)
		if err != nil {
			return nil, err
		}
		return c.Context[:], nil
	}
	c, err := decodeContactChange(f.TypeID, f.Payload)
	if err != nil {
		return nil, err
	}
	return c.Context[:], nil
}

func (contactReducer) Apply(state []byte, f *journal.SignedFact) ([]byte, error) {
	if f.TypeID == TypeContact {
		c, err := DecodeContactRecord(f.Payload)
		if err != nil {
			return nil, err
		}
		s := &contactState{ContactRecord: *c}
		if state != nil {
			// A second record of the same contact (another device of this
			// account) keeps what was changed since.
			old, err := decodeContactState(state)
			if err != nil {
				return nil, err
			}
			s.Blocked = old.Blocked
			if old.Nickname != "" {
				s.Nickname = old.Nickname
			}
		}
		return s.encode(), nil
	}
	ch, err := decodeContactChange(f.TypeID, f.Payload)
	if err != nil {
		return nil, err
	}
	// A change that arrives before its contact's record (from another
	// device) waits as a record with no contact yet.
	s := &contactState{ContactRecord: ContactRecord{Context: ch.Context}}
	if state != nil {
		if s, err = decodeContactState(state); err != nil {
			return nil, err
		}
	}
	if f.TypeID == TypeContactName {
		s.Nickname = ch.Nickname
	} else {
		s.Blocked = ch.Blocked
	}
	return s.encode(), nil
}

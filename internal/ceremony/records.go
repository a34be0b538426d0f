package ceremony

import (
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/aura-p2p/aura/internal/core"
)

// Local records, kept in the journal's extension stores: the invitations
// this device made (with their secrets, which never leave it) and the
// ceremonies it took part in. Facts record the outcomes; these records are
// the device's working state around them.
const (
	extOwner       = "ceremony"
	subInvitations = "invitations"
	subCeremonies  = "ceremonies"
	subRoots       = "roots"
	recordVersion  = 1
)

// InvitationState is where an invitation stands. Only pending moves, and
// only once.
type InvitationState uint8

const (
	InvitationPending InvitationState = iota + 1
	InvitationAccepted
	InvitationDeclined
	InvitationCancelled
)

func (s InvitationState) String() string {
	switch s {
	case InvitationPending:
		return "pending"
	case InvitationAccepted:
		return "accepted"
	case InvitationDeclined:
		return "declined"
	case InvitationCancelled:
		return "cancelled"
	}
	return fmt.Sprintf("state(%d)", s)
}

// InvitationRecord is an invitation this device made.
type InvitationRecord struct {
	ID      [16]byte
	State   InvitationState
	Created time.Time
	Expires time.Time
	Secret  [32]byte
	Message string
	// Set when resolved by the invitee.
	Invitee  core.DeviceID
	Ceremony core.Hash
	Context  core.ContextID
	Genesis  core.FactID
	Commit   core.FactID
	Resolved time.Time
}

// Expired reports whether a pending invitation can no longer be accepted.
func (r *InvitationRecord) Expired(now time.Time) bool {
	return r.State == InvitationPending && !now.Before(r.Expires)
}

func (r *InvitationRecord) encode() []byte {
	w := &writer{}
	w.byte(recordVersion)
	w.fixed(r.ID[:])
	w.byte(byte(r.State))
	w.u64(uint64(r.Created.UnixMilli()))
	w.u64(uint64(r.Expires.Unix()))
	w.fixed(r.Secret[:])
	w.string16(r.Message)
	w.fixed(r.Invitee[:])
	w.fixed(r.Ceremony[:])
	w.fixed(r.Context[:])
	w.fixed(r.Genesis[:])
	w.fixed(r.Commit[:])
	w.u64(uint64(r.Resolved.UnixMilli()))
	return w.b
}

func decodeInvitationRecord(b []byte) (*InvitationRecord, error) {
	r := &reader{b: b, what: "invitation record"}
	rec := &InvitationRecord{}
	if v := r.byte("version"); r.err == nil && v != recordVersion {
		r.fail("version %d", v)
	}
	r.fixed(rec.ID[:], "id")
	rec.State = InvitationState(r.byte("state"))
	rec.Created = time.UnixMilli(int64(r.u64("created"))).UTC()
	rec.Expires = time.Unix(int64(r.u64("expires")), 0).UTC()
	r.fixed(rec.Secret[:], "secret")
	rec.Message = string(r.bytes16("message", MaxMessageBytes))
	r.fixed(rec.Invitee[:], "invitee")
	r.fixed(rec.Ceremony[:], "ceremony")
	r.fixed(rec.Context[:], "context")
	r.fixed(rec.Genesis[:], "genesis")
	r.fixed(rec.Commit[:], "commit")
	rec.Resolved = time.UnixMilli(int64(r.u64("resolved"))).UTC()
	if err := r.done(); err != nil {
		return nil, fmt.Errorf("%w: %w", err, core.ErrDataLoss)
	}
	return rec, nil
}

// CeremonyState is where a ceremony stands; every state but running is
// final.
type CeremonyState uint8

const (
	CeremonyRunning CeremonyState = iota + 1
	CeremonyCommitted
	CeremonyAborted
	CeremonyDeclined
)

func (s CeremonyState) String() string {
	switch s {
	case CeremonyRunning:
		return "running"
	case CeremonyCommitted:
		return "committed"
	case CeremonyAborted:
		return "aborted"
	case CeremonyDeclined:
		return "declined"
	}
	return fmt.Sprintf("state(%d)", s)
}

// Final reports whether the state can no longer change.
func (s CeremonyState) Final() bool { return s != CeremonyRunning }

// Roles a device plays in a contact ceremony.
const (
	RoleInviter = "Inviter"
	RoleInvitee = "Invitee"
)

// Record is one ceremony as this device saw it.
type Record struct {
	ID         core.Hash
	Operation  string
	Role       string
	Peer       core.DeviceID
	Invitation [16]byte
	State      CeremonyState
	Reason     string // why it aborted: a reason code
	Detail     string
	Context    core.ContextID // when committed
	Confirmed  bool           // the invitee confirmed the commit (inviter side)
	Started    time.Time
	Updated    time.Time
}

func (r *Record) encode() []byte {
	w := &writer{}
	w.byte(recordVersion)
	w.fixed(r.ID[:])
	w.string16(r.Operation)
	w.string16(r.Role)
	w.fixed(r.Peer[:])
	w.fixed(r.Invitation[:])
	w.byte(byte(r.State))
	w.string16(clipText(r.Reason, maxReasonLen))
	w.string16(clipText(r.Detail, maxReasonLen))
	w.fixed(r.Context[:])
	if r.Confirmed {
		w.byte(1)
	} else {
		w.byte(0)
	}
	w.u64(uint64(r.Started.UnixMilli()))
	w.u64(uint64(r.Updated.UnixMilli()))
	return w.b
}

func decodeRecord(b []byte) (*Record, error) {
	r := &reader{b: b, what: "ceremony record"}
	rec := &Record{}
	if v := r.byte("version"); r.err == nil && v != recordVersion {
		r.fail("version %d", v)
	}
	r.fixed(rec.ID[:], "id")
	rec.Operation = string(r.bytes16("operation", maxOperationLen))
	rec.Role = string(r.bytes16("role", maxOperationLen))
	r.fixed(rec.Peer[:], "peer")
	r.fixed(rec.Invitation[:], "invitation")
	rec.State = CeremonyState(r.byte("state"))
	rec.Reason = string(r.bytes16("reason", maxReasonLen))
	rec.Detail = string(r.bytes16("detail", maxReasonLen))
	r.fixed(rec.Context[:], "context")
	switch r.byte("confirmed") {
	case 0:
	case 1:
		rec.Confirmed = true
	default:
		r.fail("confirmed is not 0 or 1")
	}
	rec.Started = time.UnixMilli(int64(r.u64("started"))).UTC()
	rec.Updated = time.UnixMilli(int64(r.u64("updated"))).UTC()
	if err := r.done(); err != nil {
		return nil, fmt.Errorf("%w: %w", err, core.ErrDataLoss)
	}
	if !utf8.ValidString(rec.Reason) || !utf8.ValidString(rec.Detail) {
		return nil, fmt.Errorf("ceremony record: reason is not UTF-8: %w", core.ErrDataLoss)
	}
	return rec, nil
}

// Abort reason codes, shared by both sides' records and the abort message.
const (
	ReasonUnknownInvitation = "unknown_invitation"
	ReasonExpired           = "expired"
	ReasonCancelled         = "cancelled"
	ReasonDeclined          = "declined"
	ReasonAlreadyResolved   = "already_resolved"
	ReasonBadProof          = "bad_proof"
	ReasonBadCommit         = "bad_commit"
	ReasonSession           = "session_failed"
	ReasonRestarted         = "restarted"
)

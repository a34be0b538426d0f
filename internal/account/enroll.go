package account

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/aura-p2p/aura/internal/ceremony"
	"github.com/aura-p2p/aura/internal/choreo"
	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
	"github.com/aura-p2p/aura/internal/session"
	"github.com/aura-p2p/aura/internal/tree"
)

// ProtocolEnrollment is the device enrollment ceremony
// (internal/choreo/protocols/device_enrollment.choreo).
const (
	ProtocolEnrollment = "DeviceEnrollment"
	RoleNewDevice      = "NewDevice"
	RoleDevice         = "Device"

	labelJoin    = "Join"
	labelCommit  = "Commit"
	labelAbort   = "Abort"
	labelConfirm = "Confirm"
	labelMore    = "More"    // the branch that sends a History message
	labelHistory = "History" // a part of the account's op history
)

// Invitation lifetimes: an enrollment code is meant to be typed on a device
// in the same room, so it lives an hour unless asked otherwise.
const (
	DefaultExpiry = time.Hour
	MinExpiry     = time.Minute
	MaxExpiry     = 7 * 24 * time.Hour
)

// Enrollment errors.
var (
	ErrOwnInvitation     = fmt.Errorf("that is this device's own invitation; run `auractl device join` on the new device: %w", core.ErrInvalidArgument)
	ErrAlreadyMember     = fmt.Errorf("this device is already a device of that account: %w", core.ErrAlreadyExists)
	ErrJoinRunning       = fmt.Errorf("a join is already running on this device: %w", core.ErrFailedPrecondition)
	ErrUnreachable       = fmt.Errorf("the inviting device is not reachable at any address in the code: %w", core.ErrUnavailable)
	ErrUnknownInvitation = fmt.Errorf("the inviting device has no such invitation (made on another device, or its data dir was replaced): %w", core.ErrNotFound)
	ErrInvitationUsed    = fmt.Errorf("the invitation was already used: %w", core.ErrFailedPrecondition)
	ErrBadProof          = fmt.Errorf("the join does not prove knowledge of the invitation's secret: %w", core.ErrPermissionDenied)
)

// extAccount is the account's extension bucket; invitations live under it.
const extAccount = "account"

var subInvitations = []byte("invitations")

// invitation states as stored.
const (
	invitePending byte = 1
	inviteUsed    byte = 2
)

const inviteRecordVersion = 1

// inviteRecord is what the inviting device keeps of an invitation: the
// secret the code carries, its expiry, and the device that used it.
type inviteRecord struct {
	Secret  [32]byte
	Expires time.Time
	State   byte
	Device  core.DeviceID
}

func (r *inviteRecord) encode() []byte {
	b := make([]byte, 0, 1+32+8+1+32)
	b = append(b, inviteRecordVersion)
	b = append(b, r.Secret[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Expires.Unix()))
	b = append(b, r.State)
	return append(b, r.Device[:]...)
}

func decodeInviteRecord(b []byte) (*inviteRecord, error) {
	if len(b) != 1+32+8+1+32 || b[0] != inviteRecordVersion {
		return nil, fmt.Errorf("stored device invitation of %d bytes: %w", len(b), journal.ErrCorrupt)
	}
	r := &inviteRecord{State: b[41]}
	copy(r.Secret[:], b[1:33])
	r.Expires = time.Unix(int64(binary.BigEndian.Uint64(b[33:41])), 0).UTC()
	copy(r.Device[:], b[42:])
	return r, nil
}

// Invite makes an invitation for a new device, valid for expires (0: the
// default), and returns its code.
func (s *Service) Invite(ctx context.Context, expires time.Duration) (*Invitation, error) {
	if expires == 0 {
		expires = DefaultExpiry
	}
	if expires < MinExpiry || expires > MaxExpiry {
		return nil, fmt.Errorf("expiry %s: want %s to %s: %w", expires, MinExpiry, MaxExpiry, core.ErrInvalidArgument)
	}
	s.readMu.Lock()
	r, err := s.current(ctx)
	var required int
	if err == nil {
		st := r.reducer.State()
		required, err = tree.Required(st.Policy(), st.Devices())
	}
	s.readMu.Unlock()
	if err != nil {
		return nil, err
	}
	if required > 1 {
		return nil, fmt.Errorf("cannot add a device: %w", ErrThresholdUnsupported)
	}
	iv := &ceremony.Invitation{Inviter: s.self, Authority: s.o.Authority, Addrs: s.o.Network.Addrs()}
	if len(iv.Addrs) > ceremony.MaxCodeAddrs {
		iv.Addrs = iv.Addrs[:ceremony.MaxCodeAddrs]
	}
	copy(iv.InviterHPKE[:], s.o.HPKEPub)
	if _, err := io.ReadFull(s.o.Rand, iv.ID[:]); err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(s.o.Rand, iv.Secret[:]); err != nil {
		return nil, err
	}
	iv.Expires = s.o.Clock.Now().Add(expires).Truncate(time.Second).UTC()
	if err := iv.SignAs(ceremony.DeviceCode(), s.o.DeviceKey); err != nil {
		return nil, err
	}
	rec := &inviteRecord{Secret: iv.Secret, Expires: iv.Expires, State: invitePending}
	if _, err := s.o.Journal.Commit(ctx, journal.Txn{Ops: []journal.TxOp{func(tx *journal.ExtTx) error {
		b, err := invitations(tx)
		if err != nil {
			return err
		}
		return b.Put(iv.ID[:], rec.encode())
	}}}); err != nil {
		return nil, err
	}
	return &Invitation{ID: iv.ID, Code: iv.CodeAs(ceremony.DeviceCode()), Expires: iv.Expires}, nil
}

func invitations(tx *journal.ExtTx) (*journal.ExtStore, error) {
	b, err := tx.Bucket(extAccount)
	if err != nil {
		return nil, err
	}
	return b.Sub(subInvitations)
}

// joinRequest is the new device's first message: which invitation, the
// HPKE key its leaf will hold, and a proof that it holds the code's secret.
// Its device key needs no field: the session's channel authenticates it.
type joinRequest struct {
	Invitation [16]byte
	HPKE       [32]byte
	Nonce      [32]byte
	Proof      [32]byte
}

// msgVersion versions the ceremony's messages. A device of another release,
// whose DeviceEnrollment differs, is refused when the session starts
// (the session runtime compares the protocols' hashes), before anything
// is decided.
const msgVersion = 1

func (j *joinRequest) encode() []byte {
	b := make([]byte, 0, 1+16+32*3)
	b = append(b, msgVersion)
	b = append(b, j.Invitation[:]...)
	b = append(b, j.HPKE[:]...)
	b = append(b, j.Nonce[:]...)
	return append(b, j.Proof[:]...)
}

func decodeJoinRequest(b []byte) (*joinRequest, error) {
	if len(b) != 1+16+32*3 || b[0] != msgVersion {
		return nil, fmt.Errorf("join request of %d bytes: %w", len(b), core.ErrInvalidArgument)
	}
	j := &joinRequest{}
	copy(j.Invitation[:], b[1:17])
	copy(j.HPKE[:], b[17:49])
	copy(j.Nonce[:], b[49:81])
	copy(j.Proof[:], b[81:])
	return j, nil
}

// joinProof binds the secret to this join: the invitation, the joining
// device, the key its leaf will hold and a fresh nonce.
func joinProof(secret [32]byte, device core.DeviceID, j *joinRequest) [32]byte {
	m := hmac.New(sha256.New, secret[:])
	m.Write([]byte("aura/account/join/v1"))
	m.Write(j.Invitation[:])
	m.Write(device[:])
	m.Write(j.HPKE[:])
	m.Write(j.Nonce[:])
	var out [32]byte
	copy(out[:], m.Sum(nil))
	return out
}

// enrollment is the inviting device's commit: what the new device needs to
// hold the account's tree up to its own leaf: the account's genesis, the
// applied chain of op facts from it (each admits the author of a later
// one), and last the attested AddLeaf of the new device. The head of a long
// chain goes ahead in History messages (historyPart); the Commit carries
// the rest. The account's other facts come by sync.
type enrollment struct {
	Genesis *journal.SignedFact
	Chain   []*journal.SignedFact
	Op      *journal.SignedFact
	// Welcome is the secret of the epoch Op starts (the key schedule's
	// start for the new device), when the inviting device holds it. The
	// session's channel is encrypted and authenticated end to end between
	// the two devices, and the message is never stored as a fact.
	Welcome *[32]byte
}

// Enrollment message versions: 2 adds the welcome after the facts; an
// inviting device that does not hold the epoch's secret sends 1.
const (
	enrollmentV1 = 1
	enrollmentV2 = 2
)

// maxChain bounds the ops of history an enrollment carries, in all its
// messages: far above what an account makes (a change of its devices or
// keys now and then), low enough that a hostile inviter cannot make a new
// device hold much.
const maxChain = 4096

// maxHistoryBytes bounds the history a new device holds before the
// Commit: about 16,000 update paths of a small account.
const maxHistoryBytes = 8 << 20

// maxEnrollmentBytes keeps each message within one session message
// (64 KiB) with room for the framing.
const maxEnrollmentBytes = 56 << 10

func (e *enrollment) encode() []byte {
	facts := append(append([]*journal.SignedFact{e.Genesis}, e.Chain...), e.Op)
	b := []byte{enrollmentV1}
	if e.Welcome != nil {
		b[0] = enrollmentV2
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(facts)))
	for _, f := range facts {
		enc := f.Encode()
		b = binary.BigEndian.AppendUint32(b, uint32(len(enc)))
		b = append(b, enc...)
	}
	if e.Welcome != nil {
		b = append(b, e.Welcome[:]...)
	}
	return b
}

func decodeEnrollment(b []byte) (*enrollment, error) {
	bad := func(what string) error { return fmt.Errorf("enrollment: %s: %w", what, core.ErrInvalidArgument) }
	if len(b) < 3 || (b[0] != enrollmentV1 && b[0] != enrollmentV2) {
		return nil, bad("unknown version")
	}
	version := b[0]
	n := int(binary.BigEndian.Uint16(b[1:]))
	if n < 2 || n > maxChain+2 {
		return nil, bad(fmt.Sprintf("%d facts, want 2..%d", n, maxChain+2))
	}
	b = b[3:]
	facts := make([]*journal.SignedFact, 0, n)
	for range n {
		if len(b) < 4 {
			return nil, bad("cut short")
		}
		l := binary.BigEndian.Uint32(b)
		b = b[4:]
		if l > journal.MaxSignedFactSize || uint64(l) > uint64(len(b)) {
			return nil, bad("fact length out of range")
		}
		f, err := journal.DecodeSignedFact(b[:l])
		if err != nil {
			return nil, err
		}
		facts, b = append(facts, f), b[l:]
	}
	e := &enrollment{Genesis: facts[0], Chain: facts[1 : n-1], Op: facts[n-1]}
	if version == enrollmentV2 {
		if len(b) < 32 {
			return nil, bad("welcome cut short")
		}
		e.Welcome = (*[32]byte)(bytes.Clone(b[:32]))
		b = b[32:]
	}
	if len(b) != 0 {
		return nil, bad("trailing bytes")
	}
	return e, nil
}

// historyPart is a run of the account's applied op facts, in order, ahead
// of the Commit: version (1) | count (2) | count × { length (4) | fact }.
type historyPart struct{ Facts []*journal.SignedFact }

func (p *historyPart) encode() []byte {
	b := binary.BigEndian.AppendUint16([]byte{msgVersion}, uint16(len(p.Facts)))
	for _, f := range p.Facts {
		enc := f.Encode()
		b = binary.BigEndian.AppendUint32(b, uint32(len(enc)))
		b = append(b, enc...)
	}
	return b
}

func decodeHistoryPart(b []byte) (*historyPart, error) {
	bad := func(what string) error {
		return fmt.Errorf("enrollment history: %s: %w", what, core.ErrInvalidArgument)
	}
	if len(b) < 3 || b[0] != msgVersion {
		return nil, bad("unknown version")
	}
	n := int(binary.BigEndian.Uint16(b[1:]))
	if n < 1 || n > maxChain {
		return nil, bad(fmt.Sprintf("%d facts, want 1..%d", n, maxChain))
	}
	b = b[3:]
	p := &historyPart{Facts: make([]*journal.SignedFact, 0, min(n, len(b)/4))}
	for range n {
		if len(b) < 4 {
			return nil, bad("cut short")
		}
		l := binary.BigEndian.Uint32(b)
		b = b[4:]
		if l > journal.MaxSignedFactSize || uint64(l) > uint64(len(b)) {
			return nil, bad("fact length out of range")
		}
		f, err := journal.DecodeSignedFact(b[:l])
		if err != nil {
			return nil, err
		}
		p.Facts, b = append(p.Facts, f), b[l:]
	}
	if len(b) != 0 {
		return nil, bad("trailing bytes")
	}
	return p, nil
}

// splitHistory cuts e's chain so that every message fits a session
// message: the head goes in parts, each as full as it gets, and the tail
// that fits beside the genesis, the op and the welcome stays for the
// Commit. It changes nothing: the caller sets e.Chain to the tail.
func splitHistory(e *enrollment) ([]*historyPart, []*journal.SignedFact, error) {
	sizes := make([]int, len(e.Chain))
	total := 0
	for i, f := range e.Chain {
		sizes[i] = 4 + len(f.Encode())
		total += sizes[i]
	}
	fixed := 3 + 4 + len(e.Genesis.Encode()) + 4 + len(e.Op.Encode()) + 32
	if fixed > maxEnrollmentBytes {
		return nil, nil, fmt.Errorf("the account's genesis and the new op (%d bytes) do not fit an enrollment message (%d): %w", fixed, maxEnrollmentBytes, core.ErrFailedPrecondition)
	}
	var parts []*historyPart
	i := 0
	// fixed fits, so while the rest does not, facts remain.
	for fixed+total > maxEnrollmentBytes {
		start, n := i, 3
		for i < len(e.Chain) && n+sizes[i] <= maxEnrollmentBytes {
			n += sizes[i]
			total -= sizes[i]
			i++
		}
		if i == start {
			return nil, nil, fmt.Errorf("a tree op fact of %d bytes does not fit an enrollment message (%d): %w", sizes[i]-4, maxEnrollmentBytes, core.ErrFailedPrecondition)
		}
		parts = append(parts, &historyPart{Facts: e.Chain[start:i:i]})
	}
	return parts, e.Chain[i:], nil
}

// abortMsg says why the inviting device refused.
type abortMsg struct{ Detail string }

const maxDetail = 512

// encode clips the detail at maxDetail bytes, on a character boundary: the
// detail ends up in the new device's error, which is text (the contact
// ceremony's abort messages follow the same rule).
func (a *abortMsg) encode() []byte {
	d := strings.ToValidUTF8(a.Detail, "")
	if len(d) > maxDetail {
		d = strings.ToValidUTF8(d[:maxDetail], "")
	}
	return append([]byte{msgVersion}, d...)
}

func decodeAbortMsg(b []byte) (*abortMsg, error) {
	if len(b) < 1 || b[0] != msgVersion || len(b) > 1+maxDetail {
		return nil, fmt.Errorf("abort message of %d bytes: %w", len(b), core.ErrInvalidArgument)
	}
	if !utf8.Valid(b[1:]) {
		return nil, fmt.Errorf("abort message: detail is not UTF-8: %w", core.ErrInvalidArgument)
	}
	return &abortMsg{Detail: string(b[1:])}, nil
}

// joinState is the new device's side of a running join.
type joinState struct {
	iv           *ceremony.Invitation
	req          joinRequest
	history      []*journal.SignedFact // History parts received so far
	historyBytes int
	session      session.SessionID
	bound        bool
	joined       bool
	refusal      string
	err          error
}

// Join runs the enrollment ceremony on this (new) device with the code an
// account's device made: when it returns without error, this device is a
// device of that account (recorded durably), and Options.Joined was told.
func (s *Service) Join(ctx context.Context, code string) (*View, error) {
	iv, err := ceremony.ParseCodeAs(ceremony.DeviceCode(), code)
	if err != nil {
		return nil, err
	}
	if iv.Inviter == s.self {
		return nil, ErrOwnInvitation
	}
	if iv.Expired(s.o.Clock.Now()) {
		return nil, fmt.Errorf("%w at %s", ceremony.ErrCodeExpired, iv.Expires.Format(time.RFC3339))
	}
	if iv.Authority == s.o.Authority {
		return nil, ErrAlreadyMember
	}
	if err := s.o.Leavable(ctx); err != nil {
		return nil, err
	}
	j := &joinState{iv: iv}
	j.req.Invitation = iv.ID
	copy(j.req.HPKE[:], s.o.HPKEPub)
	if _, err := io.ReadFull(s.o.Rand, j.req.Nonce[:]); err != nil {
		return nil, err
	}
	j.req.Proof = joinProof(iv.Secret, s.self, &j.req)

	s.enrolMu.Lock()
	if s.joining != nil {
		s.enrolMu.Unlock()
		return nil, ErrJoinRunning
	}
	s.joining = j
	s.enrolMu.Unlock()
	defer func() {
		s.enrolMu.Lock()
		s.joining = nil
		s.enrolMu.Unlock()
	}()

	reached := 0
	for _, addr := range iv.Addrs {
		if err := s.o.Network.AddPeer(ctx, addr); err == nil {
			reached++
		} else {
			s.o.Logger.Debug("invitation address not usable", zap.String("addr", addr), zap.Error(err))
		}
	}
	if reached == 0 {
		return nil, ErrUnreachable
	}
	sess, err := s.o.Sessions.Start(ctx, ProtocolEnrollment, map[string]core.DeviceID{RoleNewDevice: s.self, RoleDevice: iv.Inviter}, session.StartOptions{})
	if err != nil {
		return nil, fmt.Errorf("enrollment session: %w", err)
	}
	// The session outlives a caller that gives up: the commit, if it comes,
	// is recorded all the same, and the daemon still moves to the account.
	end, werr := s.o.Sessions.Wait(context.WithoutCancel(ctx), sess.ID)
	s.enrolMu.Lock()
	joined, refusal, herr := j.joined, j.refusal, j.err
	s.enrolMu.Unlock()
	switch {
	case joined:
		s.o.Logger.Info("joined an account", zap.Stringer("authority", iv.Authority), zap.Stringer("inviter", iv.Inviter))
		v, err := s.viewOf(context.WithoutCancel(ctx), iv.Authority)
		s.o.Joined(iv.Authority)
		return v, err
	case refusal != "":
		return nil, fmt.Errorf("the inviting device refused: %s: %w", refusal, core.ErrAborted)
	case herr != nil:
		return nil, herr
	case werr != nil:
		return nil, fmt.Errorf("enrollment session: %w", werr)
	case end.Reason != nil:
		return nil, fmt.Errorf("enrollment session ended without a commit: %s: %w", end.Reason.Error(), core.ErrAborted)
	}
	return nil, fmt.Errorf("enrollment session ended without a commit: %w", core.ErrAborted)
}

// joinFor binds the running join to the session that carries it: the first
// step of a session this device started claims it.
func (s *Service) joinFor(info session.Info) (*joinState, error) {
	s.enrolMu.Lock()
	defer s.enrolMu.Unlock()
	j := s.joining
	if j == nil || info.Roles[RoleNewDevice] != s.self || info.Roles[RoleDevice] != j.iv.Inviter {
		return nil, fmt.Errorf("no join is running for this session: %w", core.ErrFailedPrecondition)
	}
	if !j.bound {
		j.session, j.bound = info.ID, true
	} else if j.session != info.ID {
		return nil, fmt.Errorf("the running join belongs to another session: %w", core.ErrFailedPrecondition)
	}
	return j, nil
}

type newDeviceHandler struct{ s *Service }

func (h newDeviceHandler) Choose(context.Context, session.Info, []choreo.Action) (string, error) {
	return "", fmt.Errorf("the new device decides no choice: %w", core.ErrInternal)
}

func (h newDeviceHandler) Send(_ context.Context, info session.Info, act choreo.Action) ([]byte, []journal.Draft, error) {
	j, err := h.s.joinFor(info)
	if err != nil {
		return nil, nil, err
	}
	switch act.Label {
	case labelJoin:
		return j.req.encode(), nil, nil
	case labelConfirm:
		return nil, nil, nil
	}
	return nil, nil, fmt.Errorf("the new device sends no %q: %w", act.Label, core.ErrInternal)
}

func (h newDeviceHandler) Receive(ctx context.Context, info session.Info, act choreo.Action, payload []byte) error {
	j, err := h.s.joinFor(info)
	if err != nil {
		return err
	}
	switch act.Label {
	case labelAbort:
		m, err := decodeAbortMsg(payload)
		if err != nil {
			return err
		}
		h.s.enrolMu.Lock()
		j.refusal = m.Detail
		h.s.enrolMu.Unlock()
		return nil
	case labelHistory:
		p, err := decodeHistoryPart(payload)
		if err != nil {
			return err
		}
		h.s.enrolMu.Lock()
		defer h.s.enrolMu.Unlock()
		if len(j.history)+len(p.Facts) > maxChain || j.historyBytes+len(payload) > maxHistoryBytes {
			return fmt.Errorf("an enrollment history of more than %d ops or %d bytes: %w", maxChain, maxHistoryBytes, core.ErrInvalidArgument)
		}
		j.history = append(j.history, p.Facts...)
		j.historyBytes += len(payload)
		return nil
	case labelCommit:
		err := h.s.takeEnrollment(ctx, j, payload)
		h.s.enrolMu.Lock()
		if err != nil {
			j.err = err
		} else {
			j.joined = true
		}
		h.s.enrolMu.Unlock()
		return err
	}
	return fmt.Errorf("the new device receives no %q: %w", act.Label, core.ErrInternal)
}

// takeEnrollment checks the inviting device's commit against the code and
// this device's request, then commits the account's genesis, the op and the
// record that this device now belongs to the account, in one transaction.
func (s *Service) takeEnrollment(ctx context.Context, j *joinState, payload []byte) error {
	e, err := decodeEnrollment(payload)
	if err != nil {
		return err
	}
	s.enrolMu.Lock()
	head := j.history
	s.enrolMu.Unlock()
	if len(head)+len(e.Chain) > maxChain {
		return fmt.Errorf("an enrollment history of more than %d ops: %w", maxChain, core.ErrInvalidArgument)
	}
	e.Chain = append(slices.Clip(head), e.Chain...)
	iv := j.iv
	ns := core.AuthorityNamespace(iv.Authority)
	all := append(append([]*journal.SignedFact{e.Genesis}, e.Chain...), e.Op)
	for _, f := range all {
		if err := f.VerifySignature(); err != nil {
			return err
		}
		if f.Namespace != ns {
			return fmt.Errorf("enrollment fact outside the invited account: %w", core.ErrPermissionDenied)
		}
	}
	if e.Genesis.TypeID != journal.TypeGenesis || journal.NamespaceOf(core.NamespaceAuthority, e.Genesis.Payload) != ns {
		return fmt.Errorf("enrollment does not carry the account's genesis: %w", core.ErrPermissionDenied)
	}
	if e.Op.Author != iv.Inviter {
		return fmt.Errorf("enrollment op is not the inviting device's: %w", core.ErrPermissionDenied)
	}
	st, err := genesisState(e.Genesis)
	if err != nil {
		return err
	}
	ops := make([]*tree.Op, 0, len(e.Chain)+1)
	for _, f := range all[1:] {
		if f.TypeID != TypeTreeOp {
			return fmt.Errorf("enrollment carries a %q fact, not a tree op: %w", f.TypeID, core.ErrPermissionDenied)
		}
		if err := validateOp(f); err != nil {
			return err
		}
		op, err := tree.ParseOp(f.Payload)
		if err != nil {
			return err
		}
		ops = append(ops, op)
	}
	add, ok := ops[len(ops)-1].Body.(tree.AddLeafBody)
	if !ok || add.Leaf.Device != s.self || add.Leaf.HPKE != j.req.HPKE || add.Leaf.Role != tree.RoleDevice {
		return fmt.Errorf("enrollment op does not add this device with the key it offered: %w", core.ErrPermissionDenied)
	}
	// The chain must reduce to a tree with this device in it: otherwise
	// the op is not on the account's winning chain, and joining would
	// leave this device outside the account it adopted.
	res, err := tree.Reduce(st, ops, tree.SingleSigner{})
	if err != nil {
		return err
	}
	if _, in := res.State.FindDevice(s.self); !in {
		return fmt.Errorf("the account's tree does not take the op that adds this device: %w", core.ErrPermissionDenied)
	}
	steps := []journal.TxOp{s.o.Adopt(iv.Authority)}
	addID, err := ops[len(ops)-1].ID()
	if err != nil {
		return err
	}
	if e.Welcome != nil && len(res.Applied) > 0 && res.Applied[len(res.Applied)-1] == addID {
		// The welcome is the secret of the state the AddLeaf started; a
		// chain that ends elsewhere gets none, and this device derives
		// its keys from the genesis on, as far as it can.
		w, err := s.welcomeOp(iv.Authority, res.State, res.Applied, e.Welcome)
		if err != nil {
			return err
		}
		steps = append(steps, w)
	}
	_, err = s.o.Journal.Commit(ctx, journal.Txn{Facts: all, Ops: steps})
	if errors.Is(err, core.ErrAlreadyExists) {
		// A commit of an earlier try of this join landed already.
		_, err = s.o.Journal.Commit(ctx, journal.Txn{Ops: []journal.TxOp{s.o.Adopt(iv.Authority)}})
	}
	return err
}

// decision is the inviting device's side of a join it answers.
type decision struct {
	device  core.DeviceID
	req     *joinRequest
	decided bool
	commit  *enrollment
	parts   []*historyPart // still to send ahead of the commit
	refusal string
	started time.Time
}

// staleDecision drops decisions of sessions that ended between the join
// and the choice.
const staleDecision = 10 * time.Minute

type deviceHandler struct{ s *Service }

func (h deviceHandler) decisionFor(info session.Info) *decision {
	h.s.enrolMu.Lock()
	defer h.s.enrolMu.Unlock()
	return h.s.deciding[info.ID]
}

func (h deviceHandler) Receive(_ context.Context, info session.Info, act choreo.Action, payload []byte) error {
	s := h.s
	switch act.Label {
	case labelJoin:
		req, err := decodeJoinRequest(payload)
		if err != nil {
			return err
		}
		d := &decision{device: info.Roles[RoleNewDevice], req: req, started: s.o.Clock.Now()}
		s.enrolMu.Lock()
		for id, old := range s.deciding {
			if d.started.Sub(old.started) > staleDecision {
				delete(s.deciding, id)
			}
		}
		s.deciding[info.ID] = d
		s.enrolMu.Unlock()
		return nil
	case labelConfirm:
		s.enrolMu.Lock()
		delete(s.deciding, info.ID)
		s.enrolMu.Unlock()
		return nil
	}
	return fmt.Errorf("the account's device receives no %q: %w", act.Label, core.ErrInternal)
}

func (h deviceHandler) Choose(ctx context.Context, info session.Info, _ []choreo.Action) (string, error) {
	d := h.decisionFor(info)
	if d == nil {
		return "", fmt.Errorf("no join received in this session: %w", core.ErrFailedPrecondition)
	}
	if !d.decided {
		commit, parts, err := h.s.decide(ctx, d)
		if err != nil {
			if !isFinal(err) {
				return "", err
			}
			h.s.o.Logger.Info("device enrollment refused", zap.Stringer("device", d.device), zap.Error(err))
			d.refusal, d.decided = err.Error(), true
			return labelAbort, nil
		}
		// The op is committed: from here on the session only delivers it.
		d.commit, d.parts, d.decided = commit, parts, true
	}
	switch {
	case d.commit == nil:
		return labelAbort, nil
	case len(d.parts) > 0:
		return labelMore, nil
	}
	return labelCommit, nil
}

func (h deviceHandler) Send(_ context.Context, info session.Info, act choreo.Action) ([]byte, []journal.Draft, error) {
	d := h.decisionFor(info)
	if d == nil {
		return nil, nil, fmt.Errorf("no decision in this session: %w", core.ErrFailedPrecondition)
	}
	switch act.Label {
	case labelHistory:
		if len(d.parts) == 0 {
			return nil, nil, fmt.Errorf("no history left to send: %w", core.ErrInternal)
		}
		p := d.parts[0]
		d.parts = d.parts[1:]
		return p.encode(), nil, nil
	case labelCommit:
		return d.commit.encode(), nil, nil
	case labelAbort:
		h.s.enrolMu.Lock()
		delete(h.s.deciding, info.ID)
		h.s.enrolMu.Unlock()
		return (&abortMsg{Detail: d.refusal}).encode(), nil, nil
	}
	return nil, nil, fmt.Errorf("the account's device sends no %q: %w", act.Label, core.ErrInternal)
}

// decide attests and commits the AddLeaf op for a join whose invitation is
// pending, unexpired and proven: the op fact and the invitation's
// resolution are one transaction, durable before the new device hears of
// it, so an invitation adds at most one device.
func (s *Service) decide(ctx context.Context, d *decision) (*enrollment, []*historyPart, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.maintained(ctx)
	if err != nil {
		return nil, nil, err
	}
	st := r.reducer.State()
	applied := r.reducer.Result().Applied
	if len(applied) > maxChain {
		return nil, nil, fmt.Errorf("the account's history of %d tree ops is longer than an enrollment carries (%d): %w", len(applied), maxChain, core.ErrFailedPrecondition)
	}
	chain := make([]*journal.SignedFact, len(applied))
	for i, id := range applied {
		chain[i] = r.facts[id]
	}
	if _, ok := st.FindDevice(d.device); ok {
		return nil, nil, fmt.Errorf("device %s is already in the account: %w", d.device, core.ErrAlreadyExists)
	}
	author, ok := st.FindDevice(s.self)
	if !ok {
		return nil, nil, fmt.Errorf("this device is no longer in its account's tree: %w", core.ErrFailedPrecondition)
	}
	op := &tree.Op{Parent: st.Name(), Author: author, Body: tree.AddLeafBody{Leaf: tree.Leaf{Role: tree.RoleDevice, Device: d.device, HPKE: d.req.HPKE}}}
	if op.Attestation, err = tree.SignSingle(s.o.DeviceKey, op); err != nil {
		return nil, nil, err
	}
	// The tree's own rules (key validity, policy, signers) decide before
	// anything is stored.
	child, err := st.Apply(op, tree.SingleSigner{})
	if err != nil {
		if errors.Is(err, tree.ErrSignersUnsupported) {
			return nil, nil, ErrThresholdUnsupported
		}
		return nil, nil, err
	}
	welcome, err := s.welcome(child)
	if err != nil {
		return nil, nil, err
	}
	payload, err := tree.AppendOp(nil, op)
	if err != nil {
		return nil, nil, err
	}
	f, err := s.o.Journal.SignLocal(s.o.Signer, journal.Draft{Namespace: core.AuthorityNamespace(s.o.Authority), TypeID: TypeTreeOp, Payload: payload})
	if err != nil {
		return nil, nil, err
	}
	// The enrollment must fit the session's messages before anything is
	// committed: a refusal after the commit would leave a leaf that no
	// device holds.
	e := &enrollment{Genesis: r.genesis, Chain: chain, Op: f, Welcome: welcome}
	parts, tail, err := splitHistory(e)
	if err != nil {
		return nil, nil, err
	}
	e.Chain = tail
	now := s.o.Clock.Now()
	_, err = s.o.Journal.Commit(ctx, journal.Txn{Facts: []*journal.SignedFact{f}, Ops: []journal.TxOp{func(tx *journal.ExtTx) error {
		b, err := invitations(tx)
		if err != nil {
			return err
		}
		raw := b.Get(d.req.Invitation[:])
		if raw == nil {
			return ErrUnknownInvitation
		}
		rec, err := decodeInviteRecord(raw)
		if err != nil {
			return err
		}
		switch {
		case rec.State != invitePending:
			return ErrInvitationUsed
		case !now.Before(rec.Expires):
			return fmt.Errorf("the invitation expired at %s: %w", rec.Expires.Format(time.RFC3339), core.ErrFailedPrecondition)
		}
		if p := joinProof(rec.Secret, d.device, d.req); !hmac.Equal(p[:], d.req.Proof[:]) {
			return ErrBadProof
		}
		rec.State, rec.Device = inviteUsed, d.device
		return b.Put(d.req.Invitation[:], rec.encode())
	}}})
	if err != nil {
		return nil, nil, err
	}
	s.o.Logger.Info("device added to the account", zap.Stringer("device", d.device), zap.Stringer("parent", st.Name()))
	return e, parts, nil
}

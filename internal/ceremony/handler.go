package ceremony

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/aura-p2p/aura/internal/choreo"
	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
	"github.com/aura-p2p/aura/internal/session"
)

// Branch and message labels of contact.choreo.
const (
	labelAccept  = "Accept"
	labelDecline = "Decline"
	labelCommit  = "Commit"
	labelAbort   = "Abort"
	labelConfirm = "Confirm"
)

// staleDecision is how long an inviter keeps an undecided session's
// acceptance: far beyond the runtime's step timeouts.
const staleDecision = 10 * time.Minute

// answer is the invitee's side of one ceremony, from the code to its end.
type answer struct {
	iv       *Invitation
	nickname string
	decline  bool
	acc      acceptance
	rec      *Record
	// outcome, set by the handler before the session ends
	abort   *abortMsg
	context core.ContextID
	err     error
}

// decision is the inviter's side of one session: the acceptance received
// and, once decided, the commit or the reason to abort.
type decision struct {
	acc    *acceptance
	rec    *Record
	commit *commitMsg
	abort  *abortMsg
}

// Accept answers an invitation code: it reaches the inviter at the code's
// addresses, runs the ceremony and returns its record (committed: the new
// context is usable on both sides; aborted: nothing was made, and Reason
// says why). Decline runs the same with the declining branch.
func (s *Service) Accept(ctx context.Context, code, nickname string) (*Record, error) {
	return s.answer(ctx, code, nickname, false)
}

// Decline refuses an invitation code; the inviter records the refusal and
// the invitation can no longer be accepted.
func (s *Service) Decline(ctx context.Context, code string) (*Record, error) {
	return s.answer(ctx, code, "", true)
}

func (s *Service) answer(ctx context.Context, code, nickname string, decline bool) (*Record, error) {
	iv, err := ParseCode(code)
	if err != nil {
		return nil, err
	}
	if err := CheckNickname(nickname, true); err != nil {
		return nil, err
	}
	if iv.Inviter == s.self {
		return nil, ErrOwnInvitation
	}
	if iv.Expired(s.o.Clock.Now()) {
		return nil, fmt.Errorf("%w at %s", ErrCodeExpired, iv.Expires.Format("2006-01-02 15:04:05Z07:00"))
	}
	if prev, err := s.recordOfInvitation(ctx, iv.ID, RoleInvitee); err != nil {
		return nil, err
	} else if prev != nil && prev.State == CeremonyCommitted {
		return prev, fmt.Errorf("contact context %s: %w", prev.Context, ErrAlreadyAccepted)
	}
	a := &answer{iv: iv, nickname: nickname, decline: decline}
	a.acc.Invitation = iv.ID
	a.acc.Authority = s.o.Authority
	copy(a.acc.HPKE[:], s.o.HPKEPub)
	if _, err := io.ReadFull(s.o.Rand, a.acc.Nonce[:]); err != nil {
		return nil, err
	}
	label := labelAccept
	if decline {
		label = labelDecline
	}
	a.acc.Proof = proof(iv.Secret, label, s.self, &a.acc)
	pre := prestate(iv.Inviter, iv.Authority, iv.ID, s.self, s.o.Authority)
	now := s.o.Clock.Now()
	a.rec = &Record{
		ID: ceremonyID(pre, OperationContact, a.acc.Nonce), Operation: OperationContact, Role: RoleInvitee,
		Peer: iv.Inviter, Invitation: iv.ID, State: CeremonyRunning, Started: now,
	}

	s.answersMu.Lock()
	busy := s.busy[iv.Inviter]
	if !busy {
		s.busy[iv.Inviter] = true
	}
	s.answersMu.Unlock()
	if busy {
		return nil, ErrAcceptRunning
	}
	started := false
	defer func() {
		if !started {
			s.answersMu.Lock()
			delete(s.busy, iv.Inviter)
			s.answersMu.Unlock()
		}
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
	if err := s.saveRecord(ctx, a.rec); err != nil {
		return nil, err
	}
	// The answer waits for its session: the session's first step (the
	// invitee's choice, before anything is sent) claims it and binds it to
	// the session id, so a late frame of an earlier session never reaches
	// this answer.
	s.answersMu.Lock()
	s.pending[iv.Inviter] = a
	s.answersMu.Unlock()
	sess, err := s.o.Sessions.Start(ctx, ProtocolContact, map[string]core.DeviceID{RoleInvitee: s.self, RoleInviter: iv.Inviter}, session.StartOptions{})
	s.answersMu.Lock()
	if s.pending[iv.Inviter] == a {
		delete(s.pending, iv.Inviter)
		if err == nil {
			s.answers[sess.ID] = a
		}
	}
	s.answersMu.Unlock()
	if err != nil {
		return s.finishAnswer(ctx, a, sess, err)
	}
	started = true
	// The ceremony lives as long as its session, not as long as this
	// call: a caller that gives up leaves it running, and its end is
	// recorded whenever it comes.
	done := make(chan struct{})
	var (
		final    *Record
		finalErr error
	)
	go func() {
		defer close(done)
		end, werr := s.o.Sessions.Wait(context.Background(), sess.ID)
		final, finalErr = s.finishAnswer(context.Background(), a, end, werr)
		s.answersMu.Lock()
		delete(s.answers, sess.ID)
		delete(s.busy, iv.Inviter)
		s.answersMu.Unlock()
	}()
	select {
	case <-done:
		return final, finalErr
	case <-ctx.Done():
		return nil, fmt.Errorf("ceremony %s is still running (auractl ceremony show): %w", a.rec.ID, ctx.Err())
	}
}

// finishAnswer turns the session's end into the ceremony's final record.
func (s *Service) finishAnswer(ctx context.Context, a *answer, sess session.Session, err error) (*Record, error) {
	rec := a.rec
	switch {
	case a.err != nil:
		// The handler already recorded the failure.
		return rec, a.err
	case rec.State == CeremonyCommitted:
		// Committed on receipt of the commit: the context exists here even
		// if the confirmation did not reach the inviter.
		return rec, nil
	case a.abort != nil:
		rec.State, rec.Reason, rec.Detail = CeremonyAborted, a.abort.Reason, a.abort.Detail
	case err == nil && sess.State == session.StateCompleted && a.decline:
		rec.State = CeremonyDeclined
	default:
		rec.State, rec.Reason = CeremonyAborted, ReasonSession
		switch {
		case err != nil:
			rec.Detail = err.Error()
		case sess.Reason != nil:
			rec.Detail = sess.Reason.Error()
		default:
			rec.Detail = "the session ended without a commit"
		}
	}
	var facts []*journal.SignedFact
	if rec.State == CeremonyAborted {
		f, ferr := s.abortFact(rec)
		if ferr != nil {
			return rec, ferr
		}
		facts = append(facts, f)
	}
	// Record the end even if the caller gave up waiting.
	if serr := s.saveRecord(context.WithoutCancel(ctx), rec, facts...); serr != nil {
		return rec, serr
	}
	switch rec.State {
	case CeremonyAborted:
		if a.abort != nil {
			return rec, fmt.Errorf("inviter refused: %s: %w", a.abort.Detail, reasonError(a.abort.Reason))
		}
		return rec, fmt.Errorf("ceremony failed: %s: %w", rec.Detail, core.ErrAborted)
	}
	return rec, nil
}

// reasonError maps an inviter's abort reason to the error class the caller
// sees.
func reasonError(reason string) error {
	switch reason {
	case ReasonUnknownInvitation:
		return core.ErrNotFound
	case ReasonBadProof:
		return core.ErrPermissionDenied
	case ReasonExpired, ReasonCancelled, ReasonAlreadyResolved:
		return core.ErrFailedPrecondition
	}
	return core.ErrAborted
}

func (s *Service) answerFor(info session.Info) (*answer, error) {
	s.answersMu.Lock()
	defer s.answersMu.Unlock()
	a := s.answers[info.ID]
	if a == nil {
		// The first step of a session this device started claims the
		// answer waiting for that inviter.
		inviter := info.Roles[RoleInviter]
		if p := s.pending[inviter]; p != nil && p.iv.Inviter == inviter {
			a = p
			delete(s.pending, inviter)
			s.answers[info.ID] = a
		}
	}
	if a == nil || info.Roles[RoleInvitee] != s.self {
		return nil, fmt.Errorf("no answer to an invitation is running for this session: %w", core.ErrFailedPrecondition)
	}
	return a, nil
}

type inviteeHandler struct{ s *Service }

func (h inviteeHandler) Choose(_ context.Context, info session.Info, _ []choreo.Action) (string, error) {
	a, err := h.s.answerFor(info)
	if err != nil {
		return "", err
	}
	if a.decline {
		return labelDecline, nil
	}
	return labelAccept, nil
}

func (h inviteeHandler) Send(_ context.Context, info session.Info, act choreo.Action) ([]byte, []journal.Draft, error) {
	a, err := h.s.answerFor(info)
	if err != nil {
		return nil, nil, err
	}
	switch act.Label {
	case labelAccept, labelDecline:
		return a.acc.encode(), nil, nil
	case labelConfirm:
		return nil, nil, nil
	}
	return nil, nil, fmt.Errorf("invitee sends no %q: %w", act.Label, core.ErrInternal)
}

func (h inviteeHandler) Receive(ctx context.Context, info session.Info, act choreo.Action, payload []byte) error {
	a, err := h.s.answerFor(info)
	if err != nil {
		return err
	}
	switch act.Label {
	case labelAbort:
		m, err := decodeAbortMsg(payload)
		if err != nil {
			return err
		}
		a.abort = m
		return nil
	case labelCommit:
		if err := h.s.takeCommit(ctx, a, payload); err != nil {
			a.err = err
			a.rec.State, a.rec.Reason, a.rec.Detail = CeremonyAborted, ReasonBadCommit, err.Error()
			if f, ferr := h.s.abortFact(a.rec); ferr == nil {
				_ = h.s.saveRecord(context.WithoutCancel(ctx), a.rec, f)
			}
			return err
		}
		return nil
	}
	return fmt.Errorf("invitee receives no %q: %w", act.Label, core.ErrInternal)
}

// takeCommit checks the inviter's commit against what this device accepted
// and makes the context usable here: the inviter's facts, this device's
// contact record, the root secret wrapped at rest and the ceremony's final
// record, in one transaction.
func (s *Service) takeCommit(ctx context.Context, a *answer, payload []byte) error {
	m, err := decodeCommitMsg(payload)
	if err != nil {
		return err
	}
	iv := a.iv
	for _, f := range []*journal.SignedFact{m.Genesis, m.Commit} {
		if f.Author != iv.Inviter {
			return fmt.Errorf("commit fact by %s, not the inviter: %w", f.Author, core.ErrPermissionDenied)
		}
		if err := f.VerifySignature(); err != nil {
			return err
		}
	}
	if m.Genesis.TypeID != journal.TypeGenesis || m.Genesis.Namespace.Kind != core.NamespaceContext {
		return fmt.Errorf("commit does not found a context: %w", core.ErrInvalidArgument)
	}
	g, err := journal.DecodeGenesis(m.Genesis.Payload)
	if err != nil {
		return err
	}
	if journal.NamespaceOf(core.NamespaceContext, m.Genesis.Payload) != m.Genesis.Namespace {
		return fmt.Errorf("genesis names another namespace: %w", core.ErrInvalidArgument)
	}
	want := []journal.Member{{Device: iv.Inviter, HPKEKey: iv.InviterHPKE}, {Device: s.self, HPKEKey: a.acc.HPKE}}
	slices.SortFunc(want, func(x, y journal.Member) int { return compareDevices(x.Device, y.Device) })
	got := slices.Clone(g.Members)
	slices.SortFunc(got, func(x, y journal.Member) int { return compareDevices(x.Device, y.Device) })
	if !slices.Equal(got, want) {
		return fmt.Errorf("context's members are not the inviter and this device: %w", core.ErrPermissionDenied)
	}
	if m.Commit.TypeID != TypeCommit || m.Commit.Namespace != m.Genesis.Namespace {
		return fmt.Errorf("commit fact is not in the new context: %w", core.ErrInvalidArgument)
	}
	c, err := DecodeCommit(m.Commit.Payload)
	if err != nil {
		return err
	}
	for _, m := range []struct {
		field string
		ok    bool
	}{
		{"ceremony", c.Ceremony == a.rec.ID},
		{"prestate", c.Prestate == prestate(iv.Inviter, iv.Authority, iv.ID, s.self, s.o.Authority)},
		{"invitation", c.Invitation == iv.ID},
		{"accounts", c.Invitee == s.o.Authority && c.Inviter == iv.Authority},
		{"invitee device", c.InviteeDevID == s.self},
		{"HPKE key", c.InviteeHPKE == a.acc.HPKE},
	} {
		if !m.ok {
			return fmt.Errorf("commit is for another ceremony (its %s differs): %w", m.field, core.ErrPermissionDenied)
		}
	}
	root, err := openRoot(s.o.HPKE, c.InviteeRoot, c.Ceremony)
	if err != nil {
		return err
	}
	ctxID := core.ContextID(m.Genesis.Namespace.ID)
	wrapped, err := s.wrap.wrap(s.o.Rand, ctxID, root)
	if err != nil {
		return err
	}
	contact := &ContactRecord{Context: ctxID, Ceremony: c.Ceremony, Authority: iv.Authority, Device: iv.Inviter, Nickname: a.nickname}
	cf, err := s.o.Journal.SignLocal(s.o.Signer, journal.Draft{Namespace: s.o.Namespace, TypeID: TypeContact, Payload: contact.Encode()})
	if err != nil {
		return err
	}
	rec := *a.rec
	rec.State, rec.Context, rec.Updated = CeremonyCommitted, ctxID, s.o.Clock.Now()
	if _, err := s.o.Journal.Commit(ctx, journal.Txn{
		Facts: []*journal.SignedFact{m.Genesis, m.Commit, cf},
		Ops:   []journal.TxOp{putRecord(&rec), putRoot(ctxID, wrapped)},
	}); err != nil {
		return err
	}
	*a.rec = rec
	a.context = ctxID
	s.publish(&rec)
	return nil
}

func putRoot(c core.ContextID, wrapped []byte) journal.TxOp {
	return func(tx *journal.ExtTx) error {
		b, err := sub(tx, subRoots)
		if err != nil {
			return err
		}
		return b.Put(c[:], wrapped)
	}
}

type inviterHandler struct{ s *Service }

func (h inviterHandler) decisionFor(info session.Info) *decision {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	return h.s.deciding[info.ID]
}

func (h inviterHandler) Receive(ctx context.Context, info session.Info, act choreo.Action, payload []byte) error {
	s := h.s
	switch act.Label {
	case labelAccept, labelDecline:
		acc, err := decodeAcceptance(payload)
		if err != nil {
			return err
		}
		invitee := info.Roles[RoleInvitee]
		pre := prestate(s.self, s.o.Authority, acc.Invitation, invitee, acc.Authority)
		d := &decision{acc: acc, rec: &Record{
			ID: ceremonyID(pre, OperationContact, acc.Nonce), Operation: OperationContact, Role: RoleInviter,
			Peer: invitee, Invitation: acc.Invitation, State: CeremonyRunning, Started: s.o.Clock.Now(),
		}}
		s.mu.Lock()
		// A session that ends between Accept and Commit (a timeout, the
		// invitee gone) leaves its decision behind; drop stale ones here.
		for id, old := range s.deciding {
			if d.rec.Started.Sub(old.rec.Started) > staleDecision {
				delete(s.deciding, id)
			}
		}
		s.deciding[info.ID] = d
		s.mu.Unlock()
		if act.Label == labelDecline {
			return s.takeDecline(ctx, d, invitee)
		}
		return s.saveRecord(ctx, d.rec)
	case labelConfirm:
		d := h.decisionFor(info)
		if d == nil || d.commit == nil {
			return fmt.Errorf("confirmation without a commit: %w", core.ErrFailedPrecondition)
		}
		s.mu.Lock()
		delete(s.deciding, info.ID)
		s.mu.Unlock()
		d.rec.Confirmed = true
		return s.saveRecord(ctx, d.rec)
	}
	return fmt.Errorf("inviter receives no %q: %w", act.Label, core.ErrInternal)
}

// takeDecline resolves the invitation as declined, if the decline proves
// the secret; a decline that does not is ignored (and recorded as such).
func (s *Service) takeDecline(ctx context.Context, d *decision, invitee core.DeviceID) error {
	defer func() {
		s.mu.Lock()
		for id, x := range s.deciding {
			if x == d {
				delete(s.deciding, id)
			}
		}
		s.mu.Unlock()
	}()
	// The fact says what happened: a decline, or why the decline was
	// refused. Both are signed up front; the op's outcome picks one.
	sign := func(reason, detail string) (*journal.SignedFact, error) {
		a := &Abort{Ceremony: d.rec.ID, Operation: OperationContact, Reason: reason, Detail: detail}
		return s.o.Journal.SignLocal(s.o.Signer, journal.Draft{Namespace: s.o.Namespace, TypeID: TypeAbort, Payload: a.Encode()})
	}
	declined, err := sign(ReasonDeclined, "declined by the invitee")
	if err != nil {
		return err
	}
	d.rec.Updated = s.o.Clock.Now()
	var resolveErr error
	_, err = s.o.Journal.Commit(ctx, journal.Txn{Facts: []*journal.SignedFact{declined}, Ops: []journal.TxOp{
		func(tx *journal.ExtTx) error {
			_, resolveErr = s.resolve(tx, d.acc.Invitation, func(r *InvitationRecord) error {
				if p := proof(r.Secret, labelDecline, invitee, d.acc); !hmac.Equal(p[:], d.acc.Proof[:]) {
					return fmt.Errorf("decline without the invitation's secret: %w", core.ErrPermissionDenied)
				}
				r.State, r.Invitee, r.Ceremony = InvitationDeclined, invitee, d.rec.ID
				return nil
			})
			if resolveErr != nil {
				// Abort the transaction: the refusal is recorded below,
				// with a fact that says so, the invitation untouched.
				return resolveErr
			}
			d.rec.State = CeremonyDeclined
			return putRecord(d.rec)(tx)
		},
	}})
	if resolveErr != nil {
		d.rec.State, d.rec.Reason, d.rec.Detail = CeremonyAborted, reasonOf(resolveErr), resolveErr.Error()
		refused, ferr := sign(d.rec.Reason, d.rec.Detail)
		if ferr != nil {
			return ferr
		}
		err = s.saveRecord(ctx, d.rec, refused)
	}
	if err == nil {
		s.publish(d.rec)
	}
	return err
}

func (h inviterHandler) Choose(ctx context.Context, info session.Info, _ []choreo.Action) (string, error) {
	d := h.decisionFor(info)
	if d == nil {
		return "", fmt.Errorf("no acceptance received in this session: %w", core.ErrFailedPrecondition)
	}
	if err := h.s.decide(ctx, d, info.Roles[RoleInvitee]); err != nil {
		if !isFinalErr(err) && !errors.Is(err, core.ErrPermissionDenied) {
			return "", err
		}
		d.abort = &abortMsg{Reason: reasonOf(err), Detail: err.Error()}
		d.rec.State, d.rec.Reason, d.rec.Detail = CeremonyAborted, d.abort.Reason, d.abort.Detail
		return labelAbort, nil
	}
	return labelCommit, nil
}

func reasonOf(err error) string {
	switch {
	case errors.Is(err, ErrNotFound):
		return ReasonUnknownInvitation
	case errors.Is(err, core.ErrPermissionDenied):
		return ReasonBadProof
	case errors.Is(err, ErrInvitationExpired):
		return ReasonExpired
	case errors.Is(err, ErrNotPending):
		return ReasonAlreadyResolved
	}
	return ReasonSession
}

// decide commits the ceremony if the acceptance is good and the invitation
// still pending: the invitation's resolution, the context's genesis, the
// commit fact, the contact record and the wrapped root secret are one
// transaction, durable before the invitee hears of it. A second acceptance
// of the same invitation, or one racing a cancel, finds it resolved.
func (s *Service) decide(ctx context.Context, d *decision, invitee core.DeviceID) error {
	acc := d.acc
	var root [RootSize]byte
	if _, err := io.ReadFull(s.o.Rand, root[:]); err != nil {
		return err
	}
	sealed, err := sealRoot(s.o.Rand, acc.HPKE[:], root, d.rec.ID)
	if err != nil {
		return err
	}
	g := &journal.Genesis{Kind: core.NamespaceContext, Threshold: 1, Members: []journal.Member{
		{Device: s.self}, {Device: invitee, HPKEKey: acc.HPKE},
	}}
	copy(g.Members[0].HPKEKey[:], s.o.HPKEPub)
	copy(g.Nonce[:], d.rec.ID[:16])
	gp, err := g.Encode()
	if err != nil {
		return err
	}
	ns := journal.NamespaceOf(core.NamespaceContext, gp)
	ctxID := core.ContextID(ns.ID)
	genesis, err := s.o.Journal.SignLocal(s.o.Signer, journal.Draft{Namespace: ns, TypeID: journal.TypeGenesis, Payload: gp})
	if err != nil {
		return err
	}
	c := &Commit{Ceremony: d.rec.ID, Prestate: prestate(s.self, s.o.Authority, acc.Invitation, invitee, acc.Authority),
		Operation: OperationContact, Invitation: acc.Invitation, Inviter: s.o.Authority, Invitee: acc.Authority,
		InviteeRoot: sealed, InviteeHPKE: acc.HPKE, InviteeDevID: invitee}
	commit, err := s.o.Journal.SignLocal(s.o.Signer, journal.Draft{Namespace: ns, TypeID: TypeCommit, Payload: c.Encode()})
	if err != nil {
		return err
	}
	contact := &ContactRecord{Context: ctxID, Ceremony: d.rec.ID, Authority: acc.Authority, Device: invitee}
	cf, err := s.o.Journal.SignLocal(s.o.Signer, journal.Draft{Namespace: s.o.Namespace, TypeID: TypeContact, Payload: contact.Encode()})
	if err != nil {
		return err
	}
	wrapped, err := s.wrap.wrap(s.o.Rand, ctxID, root)
	if err != nil {
		return err
	}
	rec := *d.rec
	rec.State, rec.Context, rec.Updated = CeremonyCommitted, ctxID, s.o.Clock.Now()
	_, err = s.o.Journal.Commit(ctx, journal.Txn{
		Facts: []*journal.SignedFact{genesis, commit, cf},
		Ops: []journal.TxOp{func(tx *journal.ExtTx) error {
			_, err := s.resolve(tx, acc.Invitation, func(r *InvitationRecord) error {
				if p := proof(r.Secret, labelAccept, invitee, acc); !hmac.Equal(p[:], acc.Proof[:]) {
					return fmt.Errorf("acceptance without the invitation's secret: %w", core.ErrPermissionDenied)
				}
				r.State, r.Invitee, r.Ceremony, r.Context = InvitationAccepted, invitee, rec.ID, ctxID
				r.Genesis, r.Commit = genesis.ID, commit.ID
				return nil
			})
			return err
		}, putRecord(&rec), putRoot(ctxID, wrapped)},
	})
	if errors.Is(err, core.ErrAlreadyExists) {
		// The context's namespace comes from the ceremony id: an existing
		// genesis means this very acceptance already committed.
		return fmt.Errorf("acceptance replayed: %w", ErrNotPending)
	}
	if err != nil {
		return err
	}
	*d.rec = rec
	d.commit = &commitMsg{Genesis: genesis, Commit: commit}
	s.publish(&rec)
	return nil
}

func (h inviterHandler) Send(ctx context.Context, info session.Info, act choreo.Action) ([]byte, []journal.Draft, error) {
	d := h.decisionFor(info)
	if d == nil {
		return nil, nil, fmt.Errorf("no decision in this session: %w", core.ErrFailedPrecondition)
	}
	switch act.Label {
	case labelCommit:
		return d.commit.encode(), nil, nil
	case labelAbort:
		h.s.mu.Lock()
		delete(h.s.deciding, info.ID)
		h.s.mu.Unlock()
		a := &Abort{Ceremony: d.rec.ID, Operation: OperationContact, Reason: d.abort.Reason, Detail: d.abort.Detail}
		// The abort is recorded with the message that announces it.
		if err := h.s.saveRecord(ctx, d.rec); err != nil {
			return nil, nil, err
		}
		return d.abort.encode(), []journal.Draft{{Namespace: h.s.o.Namespace, TypeID: TypeAbort, Payload: a.Encode()}}, nil
	}
	return nil, nil, fmt.Errorf("inviter sends no %q: %w", act.Label, core.ErrInternal)
}

func compareDevices(a, b core.DeviceID) int {
	for i := range a {
		if a[i] != b[i] {
			return int(a[i]) - int(b[i])
		}
	}
	return 0
}

// recordOfInvitation finds this device's latest ceremony record for an
// invitation in a role, or nil.
func (s *Service) recordOfInvitation(ctx context.Context, id [16]byte, role string) (*Record, error) {
	recs, err := s.Records(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		if r.Invitation == id && r.Role == role {
			return r, nil
		}
	}
	return nil, nil
}

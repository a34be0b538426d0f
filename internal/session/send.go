package session

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"go.uber.org/zap"

	"github.com/aura-p2p/aura/internal/choreo"
	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
	"github.com/aura-p2p/aura/internal/transport"
)

// transmit sends one frame through the guard chain, adding the header if dev
// has not heard of the session yet, and turns failures into abort reasons.
func (s *session) transmit(dev core.DeviceID, typ, capability string, cost uint64, facts []*journal.SignedFact, f *frame) error {
	if !s.told[dev] && f.Header == nil {
		f.Header = s.hdr
	}
	ctx, cancel := s.stepContext()
	defer cancel()
	err := s.rt.o.Transport.Send(ctx, transport.Message{
		Protocol: ProtocolSession, Context: s.contextFor(dev), To: dev, Type: typ,
		Capability: capability, Cost: cost, Facts: facts, Payload: f.encode(),
	})
	if err != nil {
		return s.sendFailure(ctx, f.To, err)
	}
	s.told[dev] = true
	return nil
}

// sendFailure classifies a failed send.
func (s *session) sendFailure(ctx context.Context, to string, err error) error {
	if s.ctx.Err() != nil {
		return context.Cause(s.ctx)
	}
	r := &AbortReason{By: s.info.Role, Detail: fmt.Sprintf("send to %s: %v", to, err)}
	switch {
	case errors.Is(err, core.ErrResourceExhausted):
		r.Code = AbortBudget
	case errors.Is(err, core.ErrPermissionDenied), errors.Is(err, core.ErrNotFound):
		r.Code = AbortGuardDenied
	case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded):
		r.Code = AbortTimeout
	case errors.Is(err, core.ErrInvalidArgument):
		r.Code = AbortHandler
	default:
		r.Code = AbortUnreachable
	}
	return r
}

func (s *session) handlerFailure(what string, err error) error {
	if s.ctx.Err() != nil {
		return context.Cause(s.ctx)
	}
	code := AbortHandler
	if errors.Is(err, context.DeadlineExceeded) {
		code = AbortTimeout
	}
	return &AbortReason{Code: code, By: s.info.Role, Detail: what + ": " + err.Error()}
}

func (s *session) send(next []choreo.Action) error {
	a := next[0]
	if a.Branch != "" {
		ctx, cancel := s.stepContext()
		label, err := s.handler.Choose(ctx, s.info, next)
		cancel()
		if err != nil {
			return s.handlerFailure("choose", err)
		}
		found := false
		for _, n := range next {
			if n.Branch == label {
				a, found = n, true
				break
			}
		}
		if !found {
			return &AbortReason{Code: AbortHandler, By: s.info.Role, Detail: fmt.Sprintf("handler chose %q, not a branch here", label)}
		}
		s.info.Decisions++
	}
	ctx, cancel := s.stepContext()
	payload, drafts, err := s.handler.Send(ctx, s.info, a)
	cancel()
	if err != nil {
		return s.handlerFailure("send "+a.Label, err)
	}
	dev := s.hdr.Roles[a.Peer]
	step := uint64(s.info.Step + 1)
	facts, err := s.sendFacts(a, step, drafts)
	if err != nil {
		return err
	}
	f := frame{Session: s.info.ID, Label: a.Label, From: s.info.Role, To: a.Peer, Step: step, Payload: payload}
	if err := s.transmit(dev, TypeMsg, a.Ann.GuardCapability, uint64(a.Ann.FlowCost), facts, &f); err != nil {
		return err
	}
	if err := s.m.Step(a); err != nil {
		// Next offered a; the machine refusing it is a bug of ours.
		s.rt.o.Logger.Error("machine refused its own next step", zap.Error(err))
		return &AbortReason{Code: AbortViolation, By: s.info.Role, Detail: err.Error()}
	}
	s.stepped(StepSent, a, len(payload))
	return nil
}

// sendFacts signs the facts that commit with message a: the handler's, or
// else the runtime's own TypeFact when a is annotated journal_facts. Every
// check the journal can make before the commit is made here, so a bad fact
// ends the session as the handler's failure before the guard chain runs; the
// commit checks membership again, and a fact refused there fails the send
// with nothing charged or sent.
func (s *session) sendFacts(a choreo.Action, step uint64, drafts []journal.Draft) ([]*journal.SignedFact, error) {
	if len(drafts) == 0 {
		if a.Ann.JournalFacts == "" {
			return nil, nil
		}
		sf := SessionFact{Session: s.info.ID, Protocol: s.info.Protocol, Fact: a.Ann.JournalFacts, Label: a.Label, Role: s.info.Role, Step: step}
		fact, err := s.rt.o.Journal.SignLocal(s.rt.o.Signer, journal.Draft{Namespace: s.rt.o.Namespace, TypeID: TypeFact, Payload: sf.Encode()})
		if err != nil {
			return nil, &AbortReason{Code: AbortHandler, By: s.info.Role, Detail: "journal fact " + a.Ann.JournalFacts + ": " + err.Error()}
		}
		return []*journal.SignedFact{fact}, nil
	}
	fail := func(i int, err error) error {
		return &AbortReason{Code: AbortHandler, By: s.info.Role, Detail: fmt.Sprintf("send %s: fact %d of %d: %v", a.Label, i+1, len(drafts), err)}
	}
	if len(drafts) > maxSendFacts {
		return nil, &AbortReason{Code: AbortHandler, By: s.info.Role, Detail: fmt.Sprintf("send %s: %d facts, limit %d", a.Label, len(drafts), maxSendFacts)}
	}
	self := s.rt.o.Signer.DeviceID()
	member := map[core.Namespace]bool{}
	facts := make([]*journal.SignedFact, 0, len(drafts))
	for i, d := range drafts {
		if d.Lamport != 0 {
			// Lamports reserved by a handler could collide with the ones
			// the runtime assigns; the runtime owns them.
			return nil, fail(i, fmt.Errorf("lamport %d set by the handler: %w", d.Lamport, core.ErrInvalidArgument))
		}
		ok, seen := member[d.Namespace]
		if !seen {
			ctx, cancel := s.stepContext()
			ms, err := s.rt.o.Journal.Members(ctx, d.Namespace)
			cancel()
			if err != nil {
				if s.ctx.Err() != nil {
					return nil, context.Cause(s.ctx)
				}
				return nil, fail(i, err)
			}
			ok = slices.Contains(ms, self)
			member[d.Namespace] = ok
		}
		if !ok {
			return nil, fail(i, fmt.Errorf("this device is not a member of namespace %s: %w", d.Namespace, core.ErrPermissionDenied))
		}
		f, err := s.rt.o.Journal.SignLocal(s.rt.o.Signer, d)
		if err != nil {
			return nil, fail(i, err)
		}
		facts = append(facts, f)
	}
	return facts, nil
}

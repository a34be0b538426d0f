package session

import (
	"context"
	"errors"
	"fmt"

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
	payload, err := s.handler.Send(ctx, s.info, a)
	cancel()
	if err != nil {
		return s.handlerFailure("send "+a.Label, err)
	}
	dev := s.hdr.Roles[a.Peer]
	step := uint64(s.info.Step + 1)
	var facts []*journal.SignedFact
	if a.Ann.JournalFacts != "" {
		sf := SessionFact{Session: s.info.ID, Protocol: s.info.Protocol, Fact: a.Ann.JournalFacts, Label: a.Label, Role: s.info.Role, Step: step}
		fact, err := s.rt.o.Journal.SignLocal(s.rt.o.Signer, journal.Draft{Namespace: s.rt.o.Namespace, TypeID: TypeFact, Payload: sf.Encode()})
		if err != nil {
			return &AbortReason{Code: AbortHandler, By: s.info.Role, Detail: "journal fact " + a.Ann.JournalFacts + ": " + err.Error()}
		}
		facts = []*journal.SignedFact{fact}
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

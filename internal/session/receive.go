package session

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/aura-p2p/aura/internal/choreo"
	"github.com/aura-p2p/aura/internal/transport"
)

// receive is the transport handler of ProtocolSession.
func (rt *Runtime) receive(_ context.Context, in transport.Incoming) {
	f, err := decodeFrame(in.Payload)
	if err != nil {
		rt.o.Logger.Debug("dropped session frame", zap.Stringer("from", in.From), zap.Error(err))
		return
	}
	rt.mu.Lock()
	if rt.closed {
		rt.mu.Unlock()
		return
	}
	s := rt.sessions[f.Session]
	_, tomb := rt.tombs[f.Session]
	if s == nil && in.Type == TypeAbort {
		// A session we never joined (or already forgot): remember that it
		// is over, so a late header does not start it.
		rt.tombLocked(f.Session)
	}
	rt.mu.Unlock()

	switch in.Type {
	case TypeAbort:
		if s == nil {
			return
		}
		role := ""
		for r, d := range s.hdr.Roles {
			if d == in.From {
				role = r
			}
		}
		if role == "" {
			return // not a participant: it cannot end our session
		}
		r := &AbortReason{Code: f.Code, By: role, Remote: true, Detail: f.Detail}
		select {
		case <-s.done:
			rt.lateAbort(s, r)
		default:
			s.cancel(r)
			// The session may be past its last step and only recording its
			// outcome; then the cancel comes too late, and the abort is
			// applied as a late one once the record is written.
			go func() {
				<-s.done
				rt.lateAbort(s, r)
			}()
		}
	case TypeMsg, TypeJoin:
		if s != nil {
			select {
			case <-s.done:
				// Over on our side; a finished session's peer learns it
				// from our abort or has finished too.
			default:
				s.enqueue(inbound{typ: in.Type, from: in.From, ctx: in.Context, f: f})
			}
			return
		}
		if tomb {
			return
		}
		rt.join(in, f)
	}
}

func (s *session) recv() error {
	from, _ := s.m.Receiving()
	timer := time.NewTimer(s.rt.o.StepTimeout)
	defer timer.Stop()
	for {
		in, ok := s.pop()
		if !ok {
			select {
			case <-s.ctx.Done():
				return context.Cause(s.ctx)
			case <-timer.C:
				return &AbortReason{Code: AbortTimeout, By: s.info.Role, Detail: fmt.Sprintf("no message from %s within %s", from, s.rt.o.StepTimeout)}
			case <-s.wake:
			}
			continue
		}
		done, err := s.accept(in)
		if err != nil || done {
			return err
		}
	}
}

// accept checks one received frame against the session and the machine. It
// reports whether the frame was the awaited message.
func (s *session) accept(in inbound) (bool, error) {
	f := in.f
	if f.Header != nil && !f.Header.equal(s.hdr) {
		return false, &AbortReason{Code: AbortViolation, By: s.info.Role, Detail: "a message carries a different session header"}
	}
	if s.hdr.Roles[f.From] != in.from || in.ctx != s.contextFor(in.from) {
		return false, &AbortReason{Code: AbortWrongSender, By: s.info.Role, Detail: fmt.Sprintf("%s from device %s, which does not play %s here", f.Label, in.from, f.From)}
	}
	s.told[in.from] = true
	if in.typ == TypeJoin {
		// The join that made us, or a duplicate: nothing to do.
		return false, nil
	}
	if f.To != s.info.Role {
		return false, &AbortReason{Code: AbortViolation, By: s.info.Role, Detail: fmt.Sprintf("%s addressed to role %s", f.Label, f.To)}
	}
	a, ok := s.m.Lookup(choreo.Action{Kind: choreo.ActRecv, Peer: f.From, Label: f.Label})
	if !ok {
		v := &choreo.ViolationError{Role: s.info.Role, Got: choreo.Action{Kind: choreo.ActRecv, Peer: f.From, Label: f.Label}, Expected: s.m.Next()}
		return false, &AbortReason{Code: AbortViolation, By: s.info.Role, Detail: v.Error()}
	}
	ctx, cancel := s.stepContext()
	err := s.handler.Receive(ctx, s.info, a, f.Payload)
	cancel()
	if err != nil {
		return false, s.handlerFailure("receive "+a.Label, err)
	}
	if err := s.m.Step(a); err != nil {
		return false, &AbortReason{Code: AbortViolation, By: s.info.Role, Detail: err.Error()}
	}
	s.stepped(StepReceived, a, len(f.Payload))
	return true, nil
}

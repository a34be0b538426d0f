package session

import (
	"errors"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/transport"
)

// join starts a session a peer told us about, or refuses it with an abort to
// every participant.
func (rt *Runtime) join(in transport.Incoming, f *frame) {
	back := frame{Session: f.Session, From: f.To, To: f.From}
	linkTo := func(d core.DeviceID) core.ContextID { return core.LinkContext(rt.self, d) }
	if f.Header == nil {
		back.Code, back.Detail = AbortUnknownSession, "no such session here"
		rt.replyAbort([]core.DeviceID{in.From}, func(core.DeviceID) core.ContextID { return in.Context }, back)
		return
	}
	h := f.Header
	ctxOf := func(d core.DeviceID) core.ContextID {
		if h.Context != (core.ContextID{}) {
			return h.Context
		}
		return linkTo(d)
	}
	others := make([]core.DeviceID, 0, len(h.Roles))
	for _, d := range h.Roles {
		if d != rt.self {
			others = append(others, d)
		}
	}
	refuse := func(code AbortCode, detail string) {
		rt.mu.Lock()
		rt.tombLocked(f.Session)
		rt.mu.Unlock()
		back.Code, back.Detail = code, detail
		// Only devices the header names hear from us; the sender must be
		// one of them or we answer it alone.
		if h.Roles[f.From] != in.From {
			rt.replyAbort([]core.DeviceID{in.From}, func(core.DeviceID) core.ContextID { return in.Context }, back)
			return
		}
		rt.replyAbort(others, ctxOf, back)
	}
	pe, ok := rt.protos[h.Protocol]
	if !ok {
		refuse(AbortUnknownProtocol, "protocol "+h.Protocol+" is not known here")
		return
	}
	if pe.hash != h.Hash {
		refuse(AbortUnknownProtocol, "protocol "+h.Protocol+" differs here (hash mismatch)")
		return
	}
	role, err := checkRoles(pe.p, h.Roles, rt.self)
	if err != nil {
		refuse(AbortRefused, err.Error())
		return
	}
	if h.Roles[f.From] != in.From || in.Context != ctxOf(in.From) {
		refuse(AbortWrongSender, "the first message does not come from the device of "+f.From)
		return
	}
	rt.mu.Lock()
	hd := rt.handlerFor(h.Protocol, role)
	rt.mu.Unlock()
	if hd == nil {
		refuse(AbortRefused, "no handler for role "+role+" of "+h.Protocol)
		return
	}
	s, err := rt.newSession(f.Session, h, pe, role, hd, false)
	if errors.Is(err, core.ErrAlreadyExists) {
		// Another participant's first message got here first.
		rt.mu.Lock()
		s = rt.sessions[f.Session]
		rt.mu.Unlock()
		if s != nil {
			s.enqueue(inbound{typ: in.Type, from: in.From, ctx: in.Context, f: f})
		}
		return
	}
	if err != nil {
		return // closing: nothing to answer
	}
	s.enqueue(inbound{typ: in.Type, from: in.From, ctx: in.Context, f: f})
	rt.launch(s)
}

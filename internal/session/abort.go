package session

import (
	"context"

	"go.uber.org/zap"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/transport"
)

// tellAbort sends the reason to every other participant, best effort.
func (s *session) tellAbort(r *AbortReason) {
	for role, dev := range s.hdr.Roles {
		if dev == s.rt.self {
			continue
		}
		f := frame{Session: s.info.ID, From: s.info.Role, To: role, Code: r.Code, Detail: truncate(r.Detail, maxDetailLen)}
		s.rt.sendAbort(dev, s.contextFor(dev), &f)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// sendAbort sends one abort frame, with a short deadline of its own: it is
// sent when the session's context is already over.
func (rt *Runtime) sendAbort(dev core.DeviceID, c core.ContextID, f *frame) {
	ctx, cancel := context.WithTimeout(context.Background(), abortTimeout)
	defer cancel()
	err := rt.o.Transport.Send(ctx, transport.Message{
		Protocol: ProtocolSession, Context: c, To: dev, Type: TypeAbort, Cost: abortCost, Payload: f.encode(),
	})
	if err != nil {
		rt.o.Logger.Debug("abort not delivered", zap.Stringer("session", f.Session), zap.Stringer("peer", dev), zap.Error(err))
	}
}

// replyAbort answers a frame that belongs to no session we can run, off the
// transport's reading goroutine and with a bounded number in flight: a peer
// flooding us with junk gets at most that many answers at a time.
func (rt *Runtime) replyAbort(to []core.DeviceID, ctxOf func(core.DeviceID) core.ContextID, f frame) {
	select {
	case rt.reply <- struct{}{}:
	default:
		return
	}
	rt.mu.Lock()
	if rt.closed {
		rt.mu.Unlock()
		<-rt.reply
		return
	}
	// Added under the lock that Close takes before it waits.
	rt.wg.Add(1)
	rt.mu.Unlock()
	go func() {
		defer func() { <-rt.reply; rt.wg.Done() }()
		for _, d := range to {
			g := f
			rt.sendAbort(d, ctxOf(d), &g)
		}
	}()
}

// lateAbort records a peer's abort of a session whose part on this device
// had already completed: the session as a whole did not, and every
// participant's record should say so whether the abort arrived before or
// after its own last step.
func (rt *Runtime) lateAbort(s *session, r *AbortReason) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.closed || s.snap.State != StateCompleted {
		return
	}
	now := rt.o.Clock.Now()
	s.snap.State, s.snap.Reason, s.snap.Updated = StateAborted, r, now
	rt.publishLocked(s)
	rt.wg.Add(1)
	go func() {
		defer rt.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), abortTimeout)
		defer cancel()
		if err := rt.persist(ctx, s); err != nil {
			rt.o.Logger.Warn("recording session outcome", zap.Stringer("session", s.info.ID), zap.Error(err))
		}
	}()
}

func (rt *Runtime) tombLocked(id SessionID) {
	if _, ok := rt.tombs[id]; ok {
		return
	}
	if len(rt.tombList) == maxTombstones {
		delete(rt.tombs, rt.tombList[0])
		rt.tombList = rt.tombList[1:]
	}
	rt.tombs[id] = struct{}{}
	rt.tombList = append(rt.tombList, id)
}

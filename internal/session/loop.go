package session

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.uber.org/zap"

	"github.com/aura-p2p/aura/internal/choreo"
	"github.com/aura-p2p/aura/internal/core"
)

// newSession builds and registers a session (not yet running).
func (rt *Runtime) newSession(id SessionID, hdr *header, pe *protoEntry, role string, h Handler, initiator bool) (*session, error) {
	m, err := pe.p.Machine(role)
	if err != nil {
		return nil, err
	}
	now := rt.o.Clock.Now()
	s := &session{
		rt: rt, hdr: hdr, pe: pe, m: m, handler: h,
		info: Info{ID: id, Protocol: hdr.Protocol, Role: role, Roles: hdr.Roles, Context: hdr.Context, Choices: hdr.Choices},
		told: map[core.DeviceID]bool{},
		wake: make(chan struct{}, 1), done: make(chan struct{}),
	}
	s.snap = Session{
		ID: id, Protocol: hdr.Protocol, Hash: hdr.Hash, Role: role, Roles: hdr.Roles, Context: hdr.Context,
		Choices: hdr.Choices, Initiator: initiator, State: StateRunning, Started: now, Updated: now,
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.closed {
		return nil, fmt.Errorf("session runtime stopped: %w", core.ErrUnavailable)
	}
	if _, dup := rt.sessions[id]; dup {
		return nil, fmt.Errorf("session %s: %w", id, core.ErrAlreadyExists)
	}
	rt.seq++
	s.key = rt.seq
	s.ctx, s.cancel = context.WithCancelCause(rt.ctx)
	rt.sessions[id] = s
	rt.publishLocked(s)
	return s, nil
}

func (rt *Runtime) drop(s *session) {
	rt.mu.Lock()
	delete(rt.sessions, s.info.ID)
	rt.mu.Unlock()
	s.cancel(nil)
}

// launch starts the session's goroutine unless the runtime is closing.
func (rt *Runtime) launch(s *session) bool {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.closed {
		delete(rt.sessions, s.info.ID)
		s.cancel(nil)
		return false
	}
	rt.wg.Add(1)
	go s.run()
	return true
}

// contextFor is the context of messages between this device and peer.
func (s *session) contextFor(peer core.DeviceID) core.ContextID {
	if s.hdr.Context != (core.ContextID{}) {
		return s.hdr.Context
	}
	return core.LinkContext(s.rt.self, peer)
}

// inbound is a received frame waiting for its session.
type inbound struct {
	typ  string
	from core.DeviceID
	ctx  core.ContextID
	f    *frame
}

// session is the runtime's state of one session. Fields below the line are
// owned by the session goroutine; snap is guarded by rt.mu.
type session struct {
	rt      *Runtime
	key     uint64
	hdr     *header
	pe      *protoEntry
	handler Handler
	ctx     context.Context
	cancel  context.CancelCauseFunc
	done    chan struct{}

	qmu   sync.Mutex
	queue []inbound
	wake  chan struct{}

	snap Session

	m    *choreo.Machine
	info Info
	told map[core.DeviceID]bool
}

func (s *session) enqueue(in inbound) {
	s.qmu.Lock()
	if len(s.queue) >= maxInbox {
		s.qmu.Unlock()
		s.cancel(&AbortReason{Code: AbortOverload, By: s.info.Role, Detail: fmt.Sprintf("more than %d messages queued", maxInbox)})
		return
	}
	s.queue = append(s.queue, in)
	s.qmu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *session) pop() (inbound, bool) {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	if len(s.queue) == 0 {
		return inbound{}, false
	}
	in := s.queue[0]
	s.queue[0] = inbound{}
	s.queue = s.queue[1:]
	return in, true
}

func (s *session) run() {
	defer s.rt.wg.Done()
	err := s.loop()
	s.finish(err)
}

func (s *session) loop() error {
	if !s.snap.Initiator {
		if err := s.rt.persist(s.ctx, s); err != nil && s.ctx.Err() == nil {
			s.rt.o.Logger.Warn("recording joined session", zap.Stringer("session", s.info.ID), zap.Error(err))
		}
	} else if err := s.sendJoins(); err != nil {
		return err
	}
	for !s.m.Done() {
		if err := s.ctx.Err(); err != nil {
			return context.Cause(s.ctx)
		}
		next := s.m.Next()
		if len(next) == 0 {
			return &AbortReason{Code: AbortViolation, By: s.info.Role, Detail: "local type is stuck"}
		}
		var err error
		if next[0].Kind == choreo.ActSend {
			err = s.send(next)
		} else {
			err = s.recv()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// sendJoins tells the roles whose part begins with a send that the session
// exists: nobody would otherwise send them the header.
func (s *session) sendJoins() error {
	for _, r := range s.pe.p.Roles {
		if r.Role == s.info.Role {
			continue
		}
		m := choreo.NewMachine(r.Type)
		next := m.Next()
		if len(next) == 0 || next[0].Kind != choreo.ActSend {
			continue
		}
		dev := s.hdr.Roles[r.Role]
		f := frame{Session: s.info.ID, From: s.info.Role, To: r.Role, Header: s.hdr}
		if err := s.transmit(dev, TypeJoin, "", controlCost, nil, &f); err != nil {
			return err
		}
	}
	return nil
}

// stepContext bounds one step by the step timeout.
func (s *session) stepContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.ctx, s.rt.o.StepTimeout)
}

// stepped logs a step in the snapshot.
func (s *session) stepped(dir StepDir, a choreo.Action, size int) {
	s.info.Step++
	now := s.rt.o.Clock.Now()
	rt := s.rt
	rt.mu.Lock()
	defer rt.mu.Unlock()
	s.snap.Steps++
	s.snap.Updated = now
	if len(s.snap.Log) == maxStepLog {
		copy(s.snap.Log, s.snap.Log[1:])
		s.snap.Log = s.snap.Log[:maxStepLog-1]
	}
	s.snap.Log = append(s.snap.Log, StepRecord{At: now, Dir: dir, Peer: a.Peer, Label: a.Label, Branch: a.Branch, Size: size})
	if len(rt.watches) > 0 {
		rt.publishLocked(s)
	}
}

// finish records the outcome, tells the peers if this device gave up, and
// releases the session.
func (s *session) finish(err error) {
	rt := s.rt
	var reason *AbortReason
	if err != nil {
		if !errors.As(err, &reason) {
			switch {
			case rt.ctx.Err() != nil:
				reason = &AbortReason{Code: AbortShutdown, By: s.info.Role, Detail: "the daemon is stopping"}
			default:
				reason = &AbortReason{Code: AbortCancelled, By: s.info.Role, Detail: err.Error()}
			}
		}
	}
	s.cancel(nil)
	if reason != nil && !reason.Remote {
		s.tellAbort(reason)
	}
	now := rt.o.Clock.Now()
	rt.mu.Lock()
	s.snap.Updated, s.snap.Ended = now, now
	if reason == nil {
		s.snap.State = StateCompleted
	} else {
		s.snap.State = StateAborted
		s.snap.Reason = reason
	}
	rt.mu.Unlock()
	// Recorded with a fresh context: the session's own is over, and a
	// stopping daemon still wants the outcome on disk.
	pctx, cancel := context.WithTimeout(context.Background(), abortTimeout)
	if perr := rt.persist(pctx, s); perr != nil {
		rt.o.Logger.Warn("recording session outcome", zap.Stringer("session", s.info.ID), zap.Error(perr))
	}
	cancel()
	rt.mu.Lock()
	rt.finished = append(rt.finished, s.info.ID)
	for len(rt.finished) > rt.o.History {
		delete(rt.sessions, rt.finished[0])
		rt.finished = rt.finished[1:]
	}
	rt.publishLocked(s)
	rt.mu.Unlock()
	close(s.done)
}

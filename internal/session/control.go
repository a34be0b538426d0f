package session

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/aura-p2p/aura/internal/choreo"
	"github.com/aura-p2p/aura/internal/core"
)

// StartOptions are the starter's choices for a session.
type StartOptions struct {
	// Context to charge every message to; zero means each pair of devices
	// uses its link context. The authorizer decides membership.
	Context core.ContextID
	// Choices are passed to every participant's handler (the relay handler
	// takes its branches from them, in order).
	Choices []string
}

// Start begins a session of protocolName with roles assigned to devices; this
// device must play exactly one of them. It returns once the session is
// recorded and running; Wait follows it to the end.
func (rt *Runtime) Start(ctx context.Context, protocolName string, roles map[string]core.DeviceID, o StartOptions) (Session, error) {
	pe, ok := rt.protos[protocolName]
	if !ok {
		return Session{}, fmt.Errorf("protocol %s: %w", protocolName, choreo.ErrUnknown)
	}
	if len(o.Choices) > maxChoices {
		return Session{}, fmt.Errorf("%d choices, at most %d: %w", len(o.Choices), maxChoices, core.ErrInvalidArgument)
	}
	for _, c := range o.Choices {
		if c == "" || len(c) > maxNameLen {
			return Session{}, fmt.Errorf("choice %q: %w", c, core.ErrInvalidArgument)
		}
	}
	hdr := &header{Protocol: protocolName, Hash: pe.hash, Context: o.Context, Roles: roles, Choices: o.Choices}
	role, err := checkRoles(pe.p, hdr.Roles, rt.self)
	if err != nil {
		return Session{}, err
	}
	var id SessionID
	if _, err := io.ReadFull(rt.o.Rand, id[:]); err != nil {
		return Session{}, fmt.Errorf("session id: %w", err)
	}
	rt.mu.Lock()
	h := rt.handlerFor(protocolName, role)
	rt.mu.Unlock()
	if h == nil {
		return Session{}, fmt.Errorf("no handler for role %s of %s on this device: %w", role, protocolName, core.ErrFailedPrecondition)
	}
	s, err := rt.newSession(id, hdr, pe, role, h, true)
	if err != nil {
		return Session{}, err
	}
	// Recorded as running before anything is sent, so a crash from here on
	// is found by the next start.
	if err := rt.persist(ctx, s); err != nil {
		rt.drop(s)
		return Session{}, fmt.Errorf("record session: %w", err)
	}
	if !rt.launch(s) {
		return Session{}, fmt.Errorf("session runtime stopped: %w", core.ErrUnavailable)
	}
	return rt.snapshot(s, true), nil
}

// checkRoles verifies a role map against a protocol: every role assigned,
// nothing else, distinct devices. It returns the role self plays ("" if none
// and self is zero).
func checkRoles(p *choreo.Projection, roles map[string]core.DeviceID, self core.DeviceID) (string, error) {
	if len(roles) != len(p.Roles) {
		return "", fmt.Errorf("protocol %s has roles %s, %d assigned: %w", p.Protocol.Name, strings.Join(p.Protocol.RoleNames(), ", "), len(roles), core.ErrInvalidArgument)
	}
	seen := map[core.DeviceID]string{}
	mine := ""
	for _, r := range p.Roles {
		d, ok := roles[r.Role]
		if !ok {
			return "", fmt.Errorf("role %s of %s is not assigned: %w", r.Role, p.Protocol.Name, core.ErrInvalidArgument)
		}
		if d == (core.DeviceID{}) {
			return "", fmt.Errorf("role %s: no device: %w", r.Role, core.ErrInvalidArgument)
		}
		if other, dup := seen[d]; dup {
			return "", fmt.Errorf("roles %s and %s on the same device %s: %w", other, r.Role, d, core.ErrInvalidArgument)
		}
		seen[d] = r.Role
		if d == self {
			mine = r.Role
		}
	}
	if mine == "" {
		return "", fmt.Errorf("this device plays no role of %s: %w", p.Protocol.Name, core.ErrInvalidArgument)
	}
	return mine, nil
}

// Wait blocks until the session ends or ctx does, and returns its final
// snapshot; an aborted session is not an error here (Session.Reason says why).
func (rt *Runtime) Wait(ctx context.Context, id SessionID) (Session, error) {
	rt.mu.Lock()
	s := rt.sessions[id]
	rt.mu.Unlock()
	if s == nil {
		return Session{}, fmt.Errorf("session %s: %w", id, core.ErrNotFound)
	}
	select {
	case <-s.done:
		return rt.snapshot(s, true), nil
	case <-ctx.Done():
		return Session{}, ctx.Err()
	}
}

// Run starts a session and waits for it; cancelling ctx aborts it
// (AbortCancelled). The error is the session's AbortReason if it aborted.
func (rt *Runtime) Run(ctx context.Context, protocolName string, roles map[string]core.DeviceID, o StartOptions) (Session, error) {
	s, err := rt.Start(ctx, protocolName, roles, o)
	if err != nil {
		return s, err
	}
	final, err := rt.Wait(ctx, s.ID)
	if err != nil {
		rt.Abort(s.ID, "cancelled by the caller: "+err.Error())
		final, _ = rt.Wait(context.Background(), s.ID)
	}
	if final.Reason != nil {
		return final, final.Reason
	}
	return final, nil
}

// Abort ends a running session on this device (AbortCancelled) and tells
// the other participants.
func (rt *Runtime) Abort(id SessionID, detail string) error {
	rt.mu.Lock()
	s := rt.sessions[id]
	rt.mu.Unlock()
	if s == nil {
		return fmt.Errorf("session %s: %w", id, core.ErrNotFound)
	}
	s.cancel(&AbortReason{Code: AbortCancelled, By: s.info.Role, Detail: detail})
	return nil
}

// Get returns a snapshot of a session, with its step log.
func (rt *Runtime) Get(id SessionID) (Session, error) {
	rt.mu.Lock()
	s := rt.sessions[id]
	rt.mu.Unlock()
	if s == nil {
		return Session{}, fmt.Errorf("session %s: %w", id, core.ErrNotFound)
	}
	return rt.snapshot(s, true), nil
}

// List returns snapshots of the sessions this device knows, newest first,
// without their step logs.
func (rt *Runtime) List() []Session {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	out := make([]Session, 0, len(rt.sessions))
	keys := make([]uint64, 0, len(rt.sessions))
	byKey := map[uint64]*session{}
	for _, s := range rt.sessions {
		keys = append(keys, s.key)
		byKey[s.key] = s
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] > keys[j] })
	for _, k := range keys {
		c := byKey[k].snap.clone()
		c.Log = nil
		out = append(out, c)
	}
	return out
}

func (rt *Runtime) snapshot(s *session, withLog bool) Session {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	c := s.snap.clone()
	if !withLog {
		c.Log = nil
	}
	return c
}

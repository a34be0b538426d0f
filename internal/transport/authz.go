package transport

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/aura-p2p/aura/internal/core"
)

// Members is what the membership authorizer reads: who belongs to a context.
type Members interface {
	Members(ctx context.Context, ns core.Namespace) ([]core.DeviceID, error)
}

// ErrNotMember: the peer does not belong to the context.
var ErrNotMember = fmt.Errorf("not a member of the context: %w", core.ErrPermissionDenied)

// ErrTypeNotAllowed: the message type may not travel in that class of context.
var ErrTypeNotAllowed = fmt.Errorf("message type not allowed in this context: %w", core.ErrPermissionDenied)

// MemberAuthorizer is the capability step until capability tokens arrive
// (web of trust): a message may go to a member of its context, and only
// message types registered for the context's class may travel. A link context
// has exactly its two devices as members. Named capabilities are not checked
// yet: membership is the only capability a device holds until the web-of-trust
// issue brings tokens; that step will replace this authorizer.
type MemberAuthorizer struct {
	self    core.DeviceID
	members Members

	mu    sync.RWMutex
	types map[string][]core.Class
}

// NewMemberAuthorizer returns an authorizer with no message type allowed yet.
func NewMemberAuthorizer(self core.DeviceID, m Members) *MemberAuthorizer {
	return &MemberAuthorizer{self: self, members: m, types: map[string][]core.Class{}}
}

// Allow lets messages of type t travel in contexts of the given classes.
func (a *MemberAuthorizer) Allow(t string, classes ...core.Class) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.types[t] = append(a.types[t], classes...)
}

// Authorize implements Authorizer for outgoing messages.
func (a *MemberAuthorizer) Authorize(ctx context.Context, c core.ContextID, dst core.DeviceID, t, _ string) (core.Class, error) {
	return a.check(ctx, c, dst, t)
}

// AuthorizeIncoming implements Authorizer for received messages.
func (a *MemberAuthorizer) AuthorizeIncoming(ctx context.Context, c core.ContextID, src core.DeviceID, t string) (core.Class, error) {
	return a.check(ctx, c, src, t)
}

func (a *MemberAuthorizer) check(ctx context.Context, c core.ContextID, peer core.DeviceID, t string) (core.Class, error) {
	class, err := a.classOf(ctx, c, peer)
	if err != nil {
		return 0, err
	}
	a.mu.RLock()
	allowed := slices.Contains(a.types[t], class)
	a.mu.RUnlock()
	if !allowed {
		return 0, fmt.Errorf("%q in a %s context: %w", t, class, ErrTypeNotAllowed)
	}
	return class, nil
}

func (a *MemberAuthorizer) classOf(ctx context.Context, c core.ContextID, peer core.DeviceID) (core.Class, error) {
	if c == core.LinkContext(a.self, peer) {
		return core.ClassLink, nil
	}
	ms, err := a.members.Members(ctx, core.ContextNamespace(c))
	if err != nil {
		return 0, fmt.Errorf("context %s: %w", c, err)
	}
	if !slices.Contains(ms, a.self) || !slices.Contains(ms, peer) {
		return 0, fmt.Errorf("%s in context %s: %w", peer, c, ErrNotMember)
	}
	if len(ms) > 2 {
		return core.ClassGroup, nil
	}
	return core.ClassContact, nil
}

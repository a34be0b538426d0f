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

// ErrCapabilityDenied: the device does not hold the capability a message
// claims (sending) or that its sender claimed for it (receiving). The receive
// path counts these drops under their own reason.
var ErrCapabilityDenied = fmt.Errorf("capability not held in this context: %w", core.ErrPermissionDenied)

// ErrBlocked: the peer belongs to a contact this device blocked.
var ErrBlocked = fmt.Errorf("peer is blocked: %w", core.ErrPermissionDenied)

// TokenChecker verifies capability tokens (internal/wot): that token grants
// capability to holder in namespace ns. Errors wrap core.ErrPermissionDenied
// or core.ErrInvalidArgument and say which block failed.
type TokenChecker interface {
	CheckToken(token []byte, holder core.DeviceID, capability string, ns core.Namespace) error
}

// Blocklist says which devices this device refuses to talk with.
type Blocklist interface {
	Blocked(d core.DeviceID) bool
}

// MemberAuthorizer is the capability step until capability tokens arrive
// (web of trust): a message may go to a member of its context, only message
// types registered for the context's class may travel, and a named capability
// is held only if the message's type grants it. Membership is thus the source
// of every capability: a member of a context holds the capabilities of the
// message types its class allows. The web-of-trust issue replaces this with
// tokens carried in the envelope's capability field.
type MemberAuthorizer struct {
	self    core.DeviceID
	members Members

	mu        sync.RWMutex
	account   core.ContextID // this device's account context, zero if none
	accountNS core.Namespace
	blocked   Blocklist
	tokens    TokenChecker
	types     map[string][]core.Class
	grants    map[string]map[string]struct{} // message type -> capabilities
}

// NewMemberAuthorizer returns an authorizer with no message type allowed and
// no capability granted yet.
func NewMemberAuthorizer(self core.DeviceID, m Members) *MemberAuthorizer {
	return &MemberAuthorizer{self: self, members: m, types: map[string][]core.Class{}, grants: map[string]map[string]struct{}{}}
}

// SetAccount names this device's account: its account context's members
// are the account's authority namespace's (core.AccountContext).
func (a *MemberAuthorizer) SetAccount(auth core.AuthorityID) {
	a.mu.Lock()
	a.account, a.accountNS = core.AccountContext(auth), core.AuthorityNamespace(auth)
	a.mu.Unlock()
}

// SetBlocklist makes the authorizer refuse every message to and from the
// devices b reports blocked, in every context (a blocked contact's pings and
// sessions included).
func (a *MemberAuthorizer) SetBlocklist(b Blocklist) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.blocked = b
}

// SetTokens lets claims carry capability tokens, verified by v: a token
// that grants the claimed capability to the message's sender (this device
// when sending, the peer when receiving) in the message's context makes the
// capability held, whatever the message's type grants.
func (a *MemberAuthorizer) SetTokens(v TokenChecker) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.tokens = v
}

// Allow lets messages of type t travel in contexts of the given classes.
func (a *MemberAuthorizer) Allow(t string, classes ...core.Class) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.types[t] = append(a.types[t], classes...)
}

// Grant lets messages of type t claim the given capabilities: a member of a
// context whose class allows t holds them for such messages. Granting to a
// type no class allows grants nothing.
func (a *MemberAuthorizer) Grant(t string, capabilities ...string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	g := a.grants[t]
	if g == nil {
		g = map[string]struct{}{}
		a.grants[t] = g
	}
	for _, c := range capabilities {
		if c != "" {
			g[c] = struct{}{}
		}
	}
}

// Authorize implements Authorizer for outgoing messages: this device must
// hold the claimed capability to send a message of type t to dst.
func (a *MemberAuthorizer) Authorize(ctx context.Context, c core.ContextID, dst core.DeviceID, t string, claim Claim) (core.Class, error) {
	return a.check(ctx, c, dst, t, claim, a.self)
}

// AuthorizeIncoming implements Authorizer for received messages: src must
// hold the capability it claimed.
func (a *MemberAuthorizer) AuthorizeIncoming(ctx context.Context, c core.ContextID, src core.DeviceID, t string, claim Claim) (core.Class, error) {
	return a.check(ctx, c, src, t, claim, src)
}

// check needs both devices to be members of c: the membership rule is
// symmetric, so the sender's capabilities are the receiver's too. A claim
// with a token is held if the token grants it to holder, the sender.
func (a *MemberAuthorizer) check(ctx context.Context, c core.ContextID, peer core.DeviceID, t string, claim Claim, holder core.DeviceID) (core.Class, error) {
	a.mu.RLock()
	bl, tokens := a.blocked, a.tokens
	a.mu.RUnlock()
	if bl != nil && bl.Blocked(peer) {
		return 0, fmt.Errorf("%s: %w", peer, ErrBlocked)
	}
	class, err := a.classOf(ctx, c, peer)
	if err != nil {
		return 0, err
	}
	a.mu.RLock()
	allowed := slices.Contains(a.types[t], class)
	_, granted := a.grants[t][claim.Capability]
	a.mu.RUnlock()
	if !allowed {
		return 0, fmt.Errorf("%q in a %s context: %w", t, class, ErrTypeNotAllowed)
	}
	switch {
	case claim.Capability == "":
		if len(claim.Token) > 0 {
			return 0, fmt.Errorf("a capability token without a claimed capability: %w", ErrCapabilityDenied)
		}
	case len(claim.Token) > 0:
		if tokens == nil {
			return 0, fmt.Errorf("%q: this device checks no capability tokens: %w", claim.Capability, ErrCapabilityDenied)
		}
		if err := tokens.CheckToken(claim.Token, holder, claim.Capability, core.ContextNamespace(c)); err != nil {
			return 0, fmt.Errorf("%q: %v: %w", claim.Capability, err, ErrCapabilityDenied)
		}
	case !granted:
		return 0, fmt.Errorf("%q for %q in a %s context: %w", claim.Capability, t, class, ErrCapabilityDenied)
	}
	return class, nil
}

func (a *MemberAuthorizer) classOf(ctx context.Context, c core.ContextID, peer core.DeviceID) (core.Class, error) {
	if c == core.LinkContext(a.self, peer) {
		return core.ClassLink, nil
	}
	ns := core.ContextNamespace(c)
	a.mu.RLock()
	if c == a.account {
		ns = a.accountNS
	}
	a.mu.RUnlock()
	ms, err := a.members.Members(ctx, ns)
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

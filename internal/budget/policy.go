package budget

import "github.com/aura-p2p/aura/internal/core"

// Cost unit. Flow costs and limits are in abstract flow units priced by the
// sending protocol: a small control message (ping, announce) costs 1, and a
// protocol that ships bulk data adds about one unit per KiB of payload. Units
// rather than bytes, because what a budget protects against is a peer making
// us do work and expose metadata, which scales with messages as much as with
// bytes; the envelope's own size is bounded by transport.
//
// Default limits per budget period (5 minutes by default):
const (
	// DefaultLinkLimit bounds a pairwise link context (pings, handshakes):
	// 64 Ki units, about 200 small messages a second sustained.
	DefaultLinkLimit uint64 = 64 << 10
	// DefaultContactLimit bounds a two-party relational context: 1 Mi units.
	DefaultContactLimit uint64 = 1 << 20
	// DefaultGroupLimit bounds each peer of a group context: 4 Mi units.
	DefaultGroupLimit uint64 = 4 << 20
)

// Default leakage limits per (context, epoch), the same for every observer
// class: each context class may leak as many units as its flow default.
const (
	DefaultLinkLeakage    uint64 = DefaultLinkLimit
	DefaultContactLeakage uint64 = DefaultContactLimit
	DefaultGroupLeakage   uint64 = DefaultGroupLimit
)

// ClassLimits holds one value per context class.
type ClassLimits struct {
	Link, Contact, Group uint64
}

func (c ClassLimits) of(cl core.Class) uint64 {
	switch cl {
	case core.ClassLink:
		return c.Link
	case core.ClassContact:
		return c.Contact
	case core.ClassGroup:
		return c.Group
	}
	return 0 // unknown class: deny
}

// ClassLeakage holds the leakage limits per context class.
type ClassLeakage struct {
	Link, Contact, Group core.Leakage
}

func (c ClassLeakage) of(cl core.Class) core.Leakage {
	switch cl {
	case core.ClassLink:
		return c.Link
	case core.ClassContact:
		return c.Contact
	case core.ClassGroup:
		return c.Group
	}
	return core.Leakage{}
}

// Override is one more policy term. A zero Context or Peer matches every
// context or peer, so an Override can bound one peer everywhere, one context
// for every peer, or one (context, peer).
type Override struct {
	Context core.ContextID
	Peer    core.DeviceID
	Limit   uint64
}

func (o Override) matches(k Key) bool {
	return (o.Context == core.ContextID{} || o.Context == k.Context) &&
		(o.Peer == core.DeviceID{} || o.Peer == k.Peer)
}

// LeakageOverride lowers the leakage limits of one context.
type LeakageOverride struct {
	Context core.ContextID
	Limits  core.Leakage
}

// Policy computes limits. Every term is combined by meet (min):
//
//	limit(k, class) = Flow[class] ⊓ ⨅{o.Limit : o ∈ Overrides, o matches k}
//
// so adding a term can only lower a limit, never widen it, and a term cannot
// be undone by another term. The only ways to raise a limit are to raise the
// class default or to drop a term. The Ledger adds one more term per key,
// the operator's SetLimit, by the same meet.
//
// The zero Policy denies everything (every limit 0); DefaultPolicy is the
// documented default. Plain fields, so the daemon's config can fill it.
type Policy struct {
	Flow      ClassLimits
	Leakage   ClassLeakage
	Overrides []Override
	// LeakageOverrides lower the leakage limits of single contexts, by meet
	// per observer class.
	LeakageOverrides []LeakageOverride
}

// DefaultPolicy returns the default limits and no overrides.
func DefaultPolicy() Policy {
	return Policy{
		Flow: ClassLimits{Link: DefaultLinkLimit, Contact: DefaultContactLimit, Group: DefaultGroupLimit},
		Leakage: ClassLeakage{
			Link:    core.Leakage{DefaultLinkLeakage, DefaultLinkLeakage, DefaultLinkLeakage},
			Contact: core.Leakage{DefaultContactLeakage, DefaultContactLeakage, DefaultContactLeakage},
			Group:   core.Leakage{DefaultGroupLeakage, DefaultGroupLeakage, DefaultGroupLeakage},
		},
	}
}

// Limit is the flow limit per budget period of k, a context of class c. An
// unknown class gets 0, which denies.
func (p Policy) Limit(k Key, c core.Class) uint64 {
	l := p.Flow.of(c)
	for _, o := range p.Overrides {
		if o.matches(k) {
			l = min(l, o.Limit)
		}
	}
	return l
}

// LeakageLimit is the leakage limit per epoch of a context of class c, per
// observer class.
func (p Policy) LeakageLimit(ctx core.ContextID, c core.Class) core.Leakage {
	l := p.Leakage.of(c)
	for _, o := range p.LeakageOverrides {
		if o.Context == ctx {
			for i := range l {
				l[i] = min(l[i], o.Limits[i])
			}
		}
	}
	return l
}

package node

import (
	"bytes"
	"context"
	"slices"

	"github.com/aura-p2p/aura/internal/core"
	auraSync "github.com/aura-p2p/aura/internal/sync"
)

// syncPurpose keys a context's sketch: derived from the context's root
// secret, which only its members hold.
const syncPurpose = "aura/sync/sketch"

// sharedNamespaces tells sync what this device reconciles with whom: its
// account's authority namespace with the account's other devices, and the
// relational contexts of its contacts (not blocked), keyed by their root
// secrets. Groups add their namespaces here.
type sharedNamespaces struct{ n *Node }

func (s sharedNamespaces) SharedWith(ctx context.Context, peer core.DeviceID) ([]auraSync.Shared, error) {
	cs, err := s.n.ceremonies.Contacts(ctx)
	if err != nil {
		return nil, err
	}
	var out []auraSync.Shared
	devices, err := s.n.account.Devices(ctx)
	if err != nil {
		return nil, err
	}
	if slices.Contains(devices, peer) {
		secret, err := s.n.account.SyncSecret(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, auraSync.Shared{Namespace: core.AuthorityNamespace(s.n.auth), Context: core.AccountContext(s.n.auth), Secret: secret})
	}
	for _, c := range cs {
		if c.Blocked || !slices.Contains(c.Members, peer) {
			continue
		}
		k, err := s.n.ceremonies.ContextKey(ctx, c.Context, syncPurpose, 0)
		if err != nil {
			return nil, err
		}
		out = append(out, auraSync.Shared{Namespace: core.ContextNamespace(c.Context), Context: c.Context, Secret: k[:]})
	}
	slices.SortFunc(out, func(a, b auraSync.Shared) int { return bytes.Compare(a.Namespace.ID[:], b.Namespace.ID[:]) })
	return out, nil
}

func (s sharedNamespaces) Peers(ctx context.Context) ([]core.DeviceID, error) {
	cs, err := s.n.ceremonies.Contacts(ctx)
	if err != nil {
		return nil, err
	}
	self := s.n.keys.DeviceID()
	out, err := s.n.account.Devices(ctx)
	if err != nil {
		return nil, err
	}
	for _, c := range cs {
		if c.Blocked {
			continue
		}
		for _, m := range c.Members {
			if m != self && !slices.Contains(out, m) {
				out = append(out, m)
			}
		}
	}
	slices.SortFunc(out, func(a, b core.DeviceID) int { return bytes.Compare(a[:], b[:]) })
	return out, nil
}

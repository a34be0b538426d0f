package node

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/aura-p2p/aura/internal/account"
	"github.com/aura-p2p/aura/internal/budget"
	"github.com/aura-p2p/aura/internal/buildinfo"
	"github.com/aura-p2p/aura/internal/ceremony"
	"github.com/aura-p2p/aura/internal/choreo/protocols"
	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/crdt"
	"github.com/aura-p2p/aura/internal/journal"
	"github.com/aura-p2p/aura/internal/rpc"
	"github.com/aura-p2p/aura/internal/rpc/budgetrpc"
	"github.com/aura-p2p/aura/internal/rpc/ceremonyrpc"
	"github.com/aura-p2p/aura/internal/rpc/contextrpc"
	"github.com/aura-p2p/aura/internal/rpc/crdtrpc"
	"github.com/aura-p2p/aura/internal/rpc/journalrpc"
	"github.com/aura-p2p/aura/internal/rpc/noderpc"
	"github.com/aura-p2p/aura/internal/rpc/peerrpc"
	"github.com/aura-p2p/aura/internal/rpc/sessionrpc"
	"github.com/aura-p2p/aura/internal/rpc/syncrpc"
	"github.com/aura-p2p/aura/internal/rpc/treerpc"
	"github.com/aura-p2p/aura/internal/rpc/wotrpc"
	"github.com/aura-p2p/aura/internal/session"
	auraSync "github.com/aura-p2p/aura/internal/sync"
	"github.com/aura-p2p/aura/internal/transport"
	"github.com/aura-p2p/aura/internal/wot"
)

// service is a gRPC service adapter.
type service interface{ Register(*grpc.Server) }

// component is one subsystem as the node runs it. The static parts
// (validators, reducers, membership sources) are read before the journal
// opens; start runs in list order, stop in reverse, so a component may use
// whatever the components before it set on the node. A start that fails
// leaves nothing of its own open; stop runs only for components that started.
type component struct {
	name        string
	validators  map[string]journal.Validator
	reducers    []journal.Reducer
	membership  []journal.MembershipSource
	start       func(ctx context.Context, n *Node) error
	services    func(n *Node) []service
	permissions rpc.Permissions
	// loops run from the moment the node serves until it stops, and end
	// before any component stops.
	loops []func(ctx context.Context, n *Node)
	stop  func(n *Node) error
}

// standardOwner is the name under which the services every aurad serves
// besides its components' (health, reflection) are reported in conflicts.
const standardOwner = "grpc"

// ceremonyNetwork gives invitation codes this device's addresses and
// teaches the transport an inviter's.
type ceremonyNetwork struct{ n *Node }

func (c ceremonyNetwork) Addrs() []string { return c.n.transport.Addrs() }
func (c ceremonyNetwork) AddPeer(ctx context.Context, addr string) error {
	_, err := c.n.transport.AddPeer(ctx, c.n.journal, addr)
	return err
}

func mergePermissions(ps ...rpc.Permissions) rpc.Permissions {
	out := rpc.Permissions{}
	for _, p := range ps {
		maps.Copy(out, p)
	}
	return out
}

// daemonComponents is the daemon's subsystems in start order. The order is
// the shutdown order reversed: sessions stop (and tell their peers) while
// the transport runs, the transport stops before the journal closes.
func daemonComponents() []component {
	return []component{
		{
			name: "journal",
			start: func(ctx context.Context, n *Node) error {
				keys, auth, j, founded, err := openIdentity(ctx, n.cfg, n.deps, n.log, n.mayFound, n.registry, n.commitObserver())
				if err != nil {
					return err
				}
				n.keys, n.journal, n.auth = keys, j, auth
				n.signer = journal.NewKeySigner(keys.Device)
				n.defaultNS = core.AuthorityNamespace(auth)
				if founded {
					n.log.Info("founded one-device authority", zap.Stringer("authority", auth))
				}
				return nil
			},
			services: func(n *Node) []service {
				return []service{journalrpc.New(n.journal, n.signer, n.defaultNS)}
			},
			permissions: journalrpc.Permissions(),
			loops:       []func(context.Context, *Node){func(ctx context.Context, n *Node) { n.watchJournal(ctx) }},
			stop:        func(n *Node) error { return n.journal.Close() },
		},
		{
			name:       "crdt",
			validators: crdt.Validators(),
			reducers:   []journal.Reducer{crdt.Reducer()},
			start: func(_ context.Context, n *Node) error {
				n.objects = crdt.NewStore(n.journal, n.signer)
				return nil
			},
			services:    func(n *Node) []service { return []service{crdtrpc.New(n.objects, n.defaultNS)} },
			permissions: crdtrpc.Permissions(),
		},
		{
			name:       "budget",
			validators: budget.Validators(),
			start: func(ctx context.Context, n *Node) error {
				cfg := n.cfg.Budget
				policy := budget.DefaultPolicy()
				policy.Flow = budget.ClassLimits{Link: cfg.LinkLimit, Contact: cfg.ContactLimit, Group: cfg.GroupLimit}
				l, err := budget.Open(ctx, n.journal, budget.Config{
					Policy: policy, EpochDuration: time.Duration(cfg.Epoch), AuditNamespace: n.defaultNS,
				}, n.signer, n.clock, n.log.Named("budget"))
				if err != nil {
					return fmt.Errorf("budget ledger: %w", err)
				}
				n.ledger = l
				return nil
			},
			services:    func(n *Node) []service { return []service{budgetrpc.New(n.ledger, n.keys.DeviceID())} },
			permissions: budgetrpc.Permissions(),
			// Chains close every protocol epoch, whatever the budget period.
			loops: []func(context.Context, *Node){func(ctx context.Context, n *Node) { n.sweepBudgets(ctx, budget.EpochLength) }},
		},
		{
			name: "transport",
			start: func(ctx context.Context, n *Node) error {
				p := n.cfg.P2P
				n.authz = transport.NewMemberAuthorizer(n.keys.DeviceID(), treeMembers{n})
				n.authz.SetAccount(n.auth)
				var charger transport.Charger = n.ledger.Charger()
				if n.metrics != nil {
					charger = observedCharger{charger, n.metrics}
				}
				opts := transport.Options{Logger: n.log.Named("transport"), Clock: n.clock, Authorizer: n.authz, Charger: charger}
				var (
					t   *transport.Transport
					err error
				)
				if n.deps.Host != nil {
					t, err = n.startOnHost(opts)
				} else {
					tc := transport.Config{
						ListenAddrs: n.stickyListen(ctx, p.Listen), MDNS: p.MDNS, Relay: p.Relay, HolePunching: p.HolePunching,
						ConnLow: p.ConnLow, ConnHigh: p.ConnHigh,
						HostOptions: n.metrics.Libp2pOptions(), ResourceManagerOptions: n.metrics.ResourceManagerOptions(),
					}
					t, err = transport.Start(ctx, n.keys.Device, tc, opts)
					if err != nil && !slices.Equal(tc.ListenAddrs, p.Listen) {
						// Last time's port is taken: take a new one.
						n.log.Info("listen ports of the last start are taken; binding new ones", zap.Error(err))
						tc.ListenAddrs = p.Listen
						t, err = transport.Start(ctx, n.keys.Device, tc, opts)
					}
					if err == nil {
						n.saveListen(ctx, t)
					}
				}
				if err != nil {
					return err
				}
				n.transport = t
				n.pinger = transport.NewPinger(t, n.authz)
				return nil
			},
			stop: func(n *Node) error { return n.transport.Shutdown() },
		},
		{
			name:       "session",
			validators: session.Validators(),
			start: func(ctx context.Context, n *Node) error {
				// Sessions of the embedded protocols; the relay handler serves
				// those marked for it, so they can be run from auractl.
				embedded, err := protocols.All()
				if err != nil {
					return fmt.Errorf("embedded protocols: %w", err)
				}
				rt, err := session.New(ctx, session.Options{
					Transport: n.transport, Journal: n.journal, Signer: n.signer, Namespace: n.defaultNS, Authorizer: n.authz,
					Protocols: embedded, Clock: n.clock, Rand: n.deps.Rand, Logger: n.log.Named("choreo"),
				})
				if err != nil {
					return fmt.Errorf("session runtime: %w", err)
				}
				n.sessions = rt
				n.sessions.RegisterRelay()
				return nil
			},
			services:    func(n *Node) []service { return []service{sessionrpc.New(n.sessions, n.keys.DeviceID())} },
			permissions: sessionrpc.Permissions(),
			stop:        func(n *Node) error { return n.sessions.Close() },
		},
		{
			name: "peers",
			start: func(ctx context.Context, n *Node) error {
				known, err := n.transport.LoadPeers(ctx, n.journal)
				if err != nil {
					return fmt.Errorf("known peers: %w", err)
				}
				if len(known) > 0 {
					n.log.Info("known peers loaded", zap.Int("peers", len(known)))
				}
				return nil
			},
			services: func(n *Node) []service {
				return []service{peerrpc.New(n.transport, n.pinger, n.journal, n.clock)}
			},
			permissions: peerrpc.Permissions(),
		},
		{
			// Eager announcement of every fact this device writes in a
			// context to the context's other participants.
			name: "sync",
			start: func(_ context.Context, n *Node) error {
				n.announcer = auraSync.NewAnnouncer(n.transport, announceJournal{treeMembers{n}, n.journal}, n.authz, n.log.Named("sync"))
				n.announcer.SetAccount(n.auth)
				n.announcer.Follow(n.journal)
				return nil
			},
			stop: func(n *Node) error { n.announcer.Stop(); return nil },
		},
		{
			name:       "ceremony",
			validators: ceremony.Validators(),
			reducers:   []journal.Reducer{ceremony.Reducer()},
			start: func(ctx context.Context, n *Node) error {
				c, err := ceremony.New(ctx, ceremony.Options{
					Journal: n.journal, Sessions: n.sessions, Network: ceremonyNetwork{n},
					Signer: n.signer, DeviceKey: n.keys.Device, HPKE: n.keys.HPKE, HPKEPub: n.keys.HPKEPublic,
					Authority: n.auth, Namespace: n.defaultNS, Clock: n.clock, Rand: n.deps.Rand, Logger: n.log.Named("ceremony"),
				})
				if err != nil {
					return fmt.Errorf("ceremonies: %w", err)
				}
				n.ceremonies = c
				n.authz.SetBlocklist(c)
				return nil
			},
			services: func(n *Node) []service {
				return []service{ceremonyrpc.New(n.ceremonies, n.clock), contextrpc.New(n.ceremonies, n.journal)}
			},
			permissions: mergePermissions(ceremonyrpc.Permissions(), contextrpc.Permissions()),
		},
		{
			// The account: its commitment tree (the authority namespace's
			// membership) and device enrollment.
			name:       "account",
			validators: account.Validators(),
			membership: []journal.MembershipSource{account.Membership()},
			start: func(_ context.Context, n *Node) error {
				hpkePriv, err := n.keys.HPKE.MarshalBinary()
				if err != nil {
					return fmt.Errorf("account: device HPKE key: %w", err)
				}
				a, err := account.New(account.Options{
					Journal: n.journal, Sessions: n.sessions, Network: ceremonyNetwork{n}, Signer: n.signer,
					DeviceKey: n.keys.Device, HPKEPub: n.keys.HPKEPublic, HPKEPriv: hpkePriv, Authority: n.auth,
					Adopt: adoptAuthority, Joined: n.joinedAccount, Leavable: n.leavable,
					Clock: n.clock, Rand: n.deps.Rand, Logger: n.log.Named("account"),
				})
				if err != nil {
					return fmt.Errorf("account: %w", err)
				}
				n.account = a
				n.accountLive.Store(a)
				return nil
			},
			services:    func(n *Node) []service { return []service{treerpc.New(n.account)} },
			permissions: treerpc.Permissions(),
			loops:       []func(ctx context.Context, n *Node){func(ctx context.Context, n *Node) { n.shareAddrs(ctx) }},
			stop:        func(n *Node) error { n.account.Close(); return nil },
		},
		{
			name:       "wot",
			validators: wot.Validators(),
			reducers:   []journal.Reducer{wot.Reducer()},
			start: func(ctx context.Context, n *Node) error {
				t, err := wot.NewService(ctx, wot.ServiceOptions{
					Journal: n.journal, Contexts: n.ceremonies, Signer: n.signer, DeviceKey: n.keys.Device,
					Authority: n.auth, Namespace: n.defaultNS, Clock: n.clock, Rand: n.deps.Rand, Logger: n.log.Named("wot"),
				})
				if err != nil {
					return fmt.Errorf("web of trust: %w", err)
				}
				n.trust = t
				// Claims carrying capability tokens are checked at both
				// ends of the guard chain from here on.
				n.authz.SetTokens(t)
				return nil
			},
			services: func(n *Node) []service {
				return []service{wotrpc.New(n.trust, n.ceremonies, n.keys.DeviceID())}
			},
			permissions: wotrpc.Permissions(),
			stop:        func(n *Node) error { n.trust.Close(); return nil },
		},
		{
			// Anti-entropy: reconciliation of every namespace shared with a
			// peer, on connection, on a timer and on demand.
			name: "reconcile",
			start: func(_ context.Context, n *Node) error {
				interval := time.Duration(n.cfg.Sync.Interval)
				if interval == 0 {
					interval = -1
				}
				n.syncer = auraSync.New(n.transport, n.journal, sharedNamespaces{n}, n.authz, auraSync.Options{
					Interval: interval, Rand: n.deps.Rand, Clock: n.clock, Logger: n.log.Named("sync"),
					Observe: func(m auraSync.Mode, failed bool) { n.metrics.ObserveSyncSession(string(m), failed) },
				})
				n.announcer.OnGap(n.syncer.Kick)
				return nil
			},
			services:    func(n *Node) []service { return []service{syncrpc.New(n.syncer)} },
			permissions: syncrpc.Permissions(),
			stop:        func(n *Node) error { n.syncer.Close(); return nil },
		},
		{
			name: "node",
			start: func(_ context.Context, n *Node) error {
				id, err := peerIDOf(n.keys)
				if err != nil {
					return err
				}
				n.peerID = id
				return nil
			},
			services: func(n *Node) []service {
				return []service{noderpc.New(noderpc.Identity{
					Device: n.keys.DeviceID(), PeerID: n.peerID.String(), Authority: n.auth, Version: buildinfo.Version(),
					DataDir: n.cfg.DataDir, Socket: n.cfg.Socket, StartedAt: n.startedAt,
				}, n, n.clock)}
			},
			permissions: noderpc.Permissions(),
		},
	}
}

// registry is what the journal needs from the components when it opens.
type registry struct {
	validators map[string]journal.Validator
	reducers   []journal.Reducer
	membership []journal.MembershipSource
}

// collect checks the components' names and joins their static parts. Two
// components claiming one name, fact type, reducer or namespace kind is a
// wiring bug that would otherwise silently keep one of them, so it fails
// the start naming both.
func collect(comps []component) (registry, error) {
	reg := registry{validators: map[string]journal.Validator{}}
	names := map[string]bool{}
	validatorOwner := map[string]string{}
	reducerOwner := map[string]string{}
	membershipOwner := map[core.NamespaceKind]string{}
	for _, c := range comps {
		if c.name == "" {
			return registry{}, fmt.Errorf("a component has no name: %w", core.ErrInternal)
		}
		if names[c.name] {
			return registry{}, fmt.Errorf("two components are named %q: %w", c.name, core.ErrInternal)
		}
		names[c.name] = true
		for _, t := range sortedKeys(c.validators) {
			if prev, dup := validatorOwner[t]; dup {
				return registry{}, fmt.Errorf("components %q and %q both register a validator for fact type %q: %w", prev, c.name, t, core.ErrInternal)
			}
			validatorOwner[t] = c.name
			reg.validators[t] = c.validators[t]
		}
		for _, r := range c.reducers {
			if prev, dup := reducerOwner[r.Name()]; dup {
				return registry{}, fmt.Errorf("components %q and %q both register reducer %q: %w", prev, c.name, r.Name(), core.ErrInternal)
			}
			reducerOwner[r.Name()] = c.name
			reg.reducers = append(reg.reducers, r)
		}
		for _, m := range c.membership {
			if prev, dup := membershipOwner[m.Kind()]; dup {
				return registry{}, fmt.Errorf("components %q and %q both register a membership source for namespace kind %d: %w", prev, c.name, m.Kind(), core.ErrInternal)
			}
			membershipOwner[m.Kind()] = c.name
			reg.membership = append(reg.membership, m)
		}
	}
	return reg, nil
}

// daemonRegistry is the static parts of the daemon's own components, for
// the commands that open a journal without running a node.
func daemonRegistry() (registry, error) { return collect(daemonComponents()) }

// serviceSet is the gRPC services and permission entries of the started
// components, each attributed to its component.
type serviceSet struct {
	services []service
	perms    rpc.Permissions
}

// gatherServices collects the started components' services and permission
// entries, failing on a service or method two components claim (grpc would
// otherwise end the process on a duplicate service).
func gatherServices(comps []component, n *Node) (serviceSet, error) {
	set := serviceSet{perms: rpc.Permissions{}}
	svcOwner := map[string]string{
		healthpb.Health_ServiceDesc.ServiceName: standardOwner, "grpc.reflection.v1.ServerReflection": standardOwner,
		"grpc.reflection.v1alpha.ServerReflection": standardOwner,
	}
	permOwner := map[string]string{}
	addPerms := func(owner string, p rpc.Permissions) error {
		for _, m := range sortedKeys(p) {
			if prev, dup := permOwner[m]; dup {
				return fmt.Errorf("components %q and %q both list a permission entry for method %s: %w", prev, owner, m, core.ErrInternal)
			}
			permOwner[m] = owner
			set.perms[m] = p[m]
		}
		return nil
	}
	if err := addPerms(standardOwner, rpc.StandardPermissions()); err != nil {
		return serviceSet{}, err
	}
	for _, c := range comps {
		if err := addPerms(c.name, c.permissions); err != nil {
			return serviceSet{}, err
		}
		if c.services == nil {
			continue
		}
		svcs := c.services(n)
		// A server never served tells which service names the adapters claim.
		probe := grpc.NewServer()
		for _, s := range svcs {
			s.Register(probe)
		}
		info := probe.GetServiceInfo()
		probe.Stop()
		for _, name := range sortedKeys(info) {
			if prev, dup := svcOwner[name]; dup {
				return serviceSet{}, fmt.Errorf("components %q and %q both register gRPC service %s: %w", prev, c.name, name, core.ErrInternal)
			}
			svcOwner[name] = c.name
		}
		set.services = append(set.services, svcs...)
	}
	return set, nil
}

// startComponents starts comps in order, remembering each that started so
// closeResources stops exactly those.
func (n *Node) startComponents(ctx context.Context, comps []component) error {
	for _, c := range comps {
		if c.start != nil {
			if err := c.start(ctx, n); err != nil {
				return fmt.Errorf("start %s: %w", c.name, err)
			}
		}
		n.started = append(n.started, c)
	}
	return nil
}

// runLoops starts the started components' background loops.
func (n *Node) runLoops() {
	ctx, stop := context.WithCancel(context.Background())
	n.stopBG = stop
	for _, c := range n.started {
		for _, loop := range c.loops {
			n.bg.Add(1)
			go func() {
				defer n.bg.Done()
				loop(ctx, n)
			}()
		}
	}
}

// stopComponents stops the started components in reverse order.
func (n *Node) stopComponents() {
	for i := len(n.started) - 1; i >= 0; i-- {
		c := n.started[i]
		if c.stop == nil {
			continue
		}
		if err := c.stop(n); err != nil {
			n.log.Warn("stopping component", zap.String("component", c.name), zap.Error(err))
		}
	}
	n.started = nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

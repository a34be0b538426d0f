package node

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/zap"

	"github.com/aura-p2p/aura/internal/account"
	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
)

// adoptAuthority records auth as this device's account, in the
// transaction that commits the enrollment that made it one of its devices.
func adoptAuthority(auth core.AuthorityID) journal.TxOp {
	return func(tx *journal.ExtTx) error {
		b, err := tx.Bucket(extNode)
		if err != nil {
			return err
		}
		return b.Put(keyAuthority, auth[:])
	}
}

// joinedAccount restarts the node as a device of the account it joined:
// every component starts again under the recorded authority, so none of
// them has to learn to change accounts while running.
func (n *Node) joinedAccount(auth core.AuthorityID) {
	n.log.Info("joined an account; restarting as its device", zap.Stringer("authority", auth))
	n.restartOnce.Do(func() { close(n.restart) })
}

// RestartRequested is closed when the node must be stopped and started
// again with the same configuration (it joined another account).
func (n *Node) RestartRequested() <-chan struct{} { return n.restart }

// leavable refuses to move a device to another account while it holds
// what would be left behind: contacts, or other devices of its account.
func (n *Node) leavable(ctx context.Context) error {
	cs, err := n.ceremonies.Contacts(ctx)
	if err != nil {
		return err
	}
	if len(cs) > 0 {
		return fmt.Errorf("this device has %d contacts in its own account, which joining another would leave behind; join with a new device: %w", len(cs), core.ErrFailedPrecondition)
	}
	others, err := n.account.Devices(ctx)
	if err != nil {
		return err
	}
	if len(others) > 0 {
		return fmt.Errorf("this device already belongs to an account of %d devices: %w", len(others)+1, core.ErrFailedPrecondition)
	}
	return nil
}

// shareAddrs publishes this device's listen addresses in its account's
// namespace once the account has another device, and teaches the transport
// the addresses the account's other devices publish there, so that every
// device of the account reaches every other, not only the one that invited
// it. It follows the namespace's facts: a tree op may bring the first other
// device, an address fact another device's addresses.
func (n *Node) shareAddrs(ctx context.Context) {
	ns := core.AuthorityNamespace(n.auth)
	book := account.NewAddrBook()
	published := false
	publish := func() {
		if published {
			return
		}
		others, err := n.account.Devices(ctx)
		if err != nil || len(others) == 0 {
			return
		}
		if err := n.account.PublishAddrs(ctx, n.listenAddrs()); err != nil {
			if ctx.Err() == nil {
				n.log.Warn("this device's addresses are not published to its account's other devices", zap.Error(err))
			}
			return
		}
		published = true
	}
	publish()
	// Tree ops are followed up (Maintain, addresses) once per run of
	// facts, not once per op: a restart replays every one.
	treeChanged := true
	followUp := func() {
		if !treeChanged {
			return
		}
		treeChanged = false
		publish()
		if err := n.account.Maintain(ctx); err != nil && ctx.Err() == nil {
			n.log.Warn("the account's tree ops are not followed up (lost ops made again, keys advanced)", zap.Error(err))
		}
		// A device an op added may have published its addresses before
		// the op reached this device.
		n.learnAccountAddrs(ctx, book, nil)
	}
	polled, cancel := context.WithCancel(ctx)
	cancel() // Next returns what is there, and Canceled when nothing is
	var after uint64
	for ctx.Err() == nil {
		sub, err := n.journal.Watch(ctx, journal.WatchOptions{Namespace: &ns, AfterSeq: after})
		if err != nil {
			n.log.Warn("the account's device addresses are not followed", zap.Error(err))
			return
		}
		wait := ctx
		for {
			f, err := sub.Next(wait)
			if errors.Is(err, context.Canceled) && ctx.Err() == nil {
				// Nothing more for now: follow up, then block.
				followUp()
				wait = ctx
				continue
			}
			if err != nil {
				sub.Close()
				if !errors.Is(err, journal.ErrWatchLagging) && ctx.Err() == nil {
					n.log.Warn("the account's device addresses are no longer followed", zap.Error(err))
					return
				}
				break // lagging: watch again from the last fact taken
			}
			after, wait = f.Seq, polled
			switch f.TypeID {
			case account.TypeTreeOp:
				treeChanged = true
			case account.TypeDeviceAddrs:
				if book.Take(f.SignedFact) {
					n.learnAccountAddrs(ctx, book, []core.DeviceID{f.Author})
				}
			}
		}
	}
}

// learnAccountAddrs teaches the transport the book's addresses of the
// devices given (nil: all), if they are in the account's tree now: a
// removed device's facts stay in the namespace, but it is not to be dialed.
func (n *Node) learnAccountAddrs(ctx context.Context, book *account.AddrBook, devices []core.DeviceID) {
	members, err := n.account.Members(ctx)
	if err != nil {
		return
	}
	if devices == nil {
		devices = members
	}
	for _, d := range devices {
		if d == n.keys.DeviceID() || !slices.Contains(members, d) {
			continue
		}
		if a, ok := book.Addrs(d); ok {
			n.transport.LearnAddrs(d, a)
		}
	}
}

// listenAddrs are this device's listen addresses without its peer id.
func (n *Node) listenAddrs() []ma.Multiaddr {
	var addrs []ma.Multiaddr
	for _, s := range n.transport.Addrs() {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			continue
		}
		if t, _ := peer.SplitAddr(a); len(t) > 0 && len(addrs) < account.MaxDeviceAddrs {
			addrs = append(addrs, t)
		}
	}
	return addrs
}

// treeMembers answers who the members of a namespace are: for this device's
// account namespace, the devices in the account's tree now, else the
// journal's membership. The journal's is grow-only (it admits facts of
// every device the account ever added), so by it a removed device would
// still be sent the account's announcements and let in to send its own.
type treeMembers struct{ n *Node }

func (m treeMembers) Members(ctx context.Context, ns core.Namespace) ([]core.DeviceID, error) {
	if ns == core.AuthorityNamespace(m.n.auth) {
		if a := m.n.accountLive.Load(); a != nil {
			ms, err := a.Members(ctx)
			if err != nil {
				return nil, err
			}
			// This device stays a member in its own eyes: one whose
			// addition lost to a sibling, and is out of the tree until
			// its inviter's op made again arrives, must still take that
			// op in. (One that was removed hears nothing: the others do
			// not send to it.)
			if self := m.n.keys.DeviceID(); !slices.Contains(ms, self) {
				ms = append(ms, self)
			}
			return ms, nil
		}
	}
	return m.n.journal.Members(ctx, ns)
}

// announceJournal is the journal as the announcer uses it, with treeMembers'
// membership.
type announceJournal struct {
	treeMembers
	j *journal.Journal
}

func (a announceJournal) Receive(ctx context.Context, from core.DeviceID, sf *journal.SignedFact) (journal.Received, error) {
	return a.j.Receive(ctx, from, sf)
}

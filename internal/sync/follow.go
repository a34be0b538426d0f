package sync

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
)

// Watcher is the journal's commit feed.
type Watcher interface {
	Watch(ctx context.Context, opts journal.WatchOptions) (*journal.Subscription, error)
}

// gatherWait is how long the follower waits for more facts of a commit burst
// before announcing what it has: a bulk write goes out in batches, a single
// fact at once.
const gatherWait = 2 * time.Millisecond

// Follow announces every fact this device authors in a relational context
// to the context's other members as soon as it commits, whichever part of
// the daemon wrote it. It runs until Stop. Facts that miss a member (offline,
// over budget) reach it by reconciliation.
func (a *Announcer) Follow(w Watcher) {
	ctx, cancel := context.WithCancel(context.Background())
	a.stop = cancel
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		for ctx.Err() == nil {
			sub, err := w.Watch(ctx, journal.WatchOptions{FromNow: true})
			if err != nil {
				a.log.Warn("local facts will not be announced; reconciliation still carries them", zap.Error(err))
				return
			}
			err = a.follow(ctx, sub)
			sub.Close()
			if err != nil && !errors.Is(err, journal.ErrWatchLagging) && ctx.Err() == nil {
				a.log.Warn("announcing local facts stopped; reconciliation still carries them", zap.Error(err))
				return
			}
			// Lagging: what was skipped is reconciliation's; follow on.
		}
	}()
}

// Stop ends Follow.
func (a *Announcer) Stop() {
	if a.stop != nil {
		a.stop()
	}
	a.wg.Wait()
}

func (a *Announcer) follow(ctx context.Context, sub *journal.Subscription) error {
	self := a.t.Self()
	for {
		f, err := sub.Next(ctx)
		if err != nil {
			return err
		}
		byCtx := map[core.ContextID][]*journal.SignedFact{}
		var order []core.ContextID
		take := func(f journal.StoredFact) {
			if f.Author != self || f.TypeID == journal.TypeGenesis {
				return
			}
			var c core.ContextID
			switch {
			case f.Namespace.Kind == core.NamespaceContext:
				c = core.ContextID(f.Namespace.ID)
			case f.Namespace == a.accountNS:
				c = a.account
			default:
				return
			}
			if byCtx[c] == nil {
				order = append(order, c)
			}
			byCtx[c] = append(byCtx[c], f.SignedFact)
		}
		take(f)
		for n := 1; n < 4*MaxAnnounceFacts; n++ {
			wctx, cancel := context.WithTimeout(ctx, gatherWait)
			f, err := sub.Next(wctx)
			cancel()
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if errors.Is(err, context.DeadlineExceeded) {
					break
				}
				return err
			}
			take(f)
		}
		for _, c := range order {
			if err := a.Announce(ctx, c, byCtx[c]); err != nil {
				a.log.Debug("announcement not delivered everywhere", zap.Stringer("context", c), zap.Error(err))
			}
		}
	}
}

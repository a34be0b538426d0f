package session

import (
	"context"
	"fmt"
	"sync"

	"github.com/aura-p2p/aura/internal/core"
)

// ErrWatchLagging: a watcher did not keep up and was cut off; List gives the
// current state to start again from.
var ErrWatchLagging = fmt.Errorf("session watch fell behind: %w", core.ErrAborted)

// watchBuffer is how many events a watcher may fall behind.
const watchBuffer = 256

// Watch delivers a snapshot (without step log) of a session each time it
// starts, takes a step or ends. Events of one session arrive in order.
type Watch struct {
	rt   *Runtime
	c    chan Session
	stop chan struct{}
	once sync.Once
	err  error
}

// Watch subscribes to session changes until ctx ends or Close.
func (rt *Runtime) Watch(ctx context.Context) *Watch {
	w := &Watch{rt: rt, c: make(chan Session, watchBuffer), stop: make(chan struct{})}
	rt.mu.Lock()
	if rt.closed {
		w.end(nil)
	} else {
		rt.watches[w] = struct{}{}
	}
	rt.mu.Unlock()
	if ctx.Done() != nil {
		go func() {
			select {
			case <-ctx.Done():
				w.Close()
			case <-w.stop:
			}
		}()
	}
	return w
}

// C is the event channel; it is closed when the watch ends.
func (w *Watch) C() <-chan Session { return w.c }

// Err says why the channel closed: nil, or ErrWatchLagging.
func (w *Watch) Err() error {
	w.rt.mu.Lock()
	defer w.rt.mu.Unlock()
	return w.err
}

// Close ends the watch.
func (w *Watch) Close() {
	w.rt.mu.Lock()
	defer w.rt.mu.Unlock()
	delete(w.rt.watches, w)
	w.end(nil)
}

// end closes the channel once; the caller holds rt.mu.
func (w *Watch) end(err error) {
	w.once.Do(func() {
		w.err = err
		close(w.c)
		close(w.stop)
	})
}

// publishLocked sends s's snapshot to every watcher; the caller holds rt.mu.
func (rt *Runtime) publishLocked(s *session) {
	if len(rt.watches) == 0 {
		return
	}
	snap := s.snap.clone()
	snap.Log = nil
	for w := range rt.watches {
		select {
		case w.c <- snap:
		default:
			delete(rt.watches, w)
			w.end(ErrWatchLagging)
		}
	}
}

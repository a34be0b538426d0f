package budget

import (
	"fmt"
	"sync"
	"time"

	"github.com/aura-p2p/aura/internal/core"
)

// EpochLength is the protocol's budget epoch, the same on every device and
// never configured: epoch n is [n·EpochLength, (n+1)·EpochLength) since the
// Unix epoch. Receipt chains, the clock-skew window and the audit summaries
// are per epoch, so two devices name the same stretch of time with the same
// number whatever either has configured, and a stored epoch keeps its
// meaning across any change of configuration. (Aura's first Go version
// numbered epochs in units of a local setting: after a change, stored and
// received epochs meant other times, and budgets broke for good.)
const EpochLength = 5 * time.Minute

// A budget period is what a device configures: how long a flow budget lasts
// before it is replenished. It is a whole number of epochs, aligned on
// multiples of its length since the Unix epoch, so the period of epoch e
// starts at e - e mod k for a period of k epochs (an hour: every full UTC
// hour). The period is local policy, like the limit: a receiver enforces the
// limit over its own periods whatever the sender's are.
const (
	// DefaultPeriod is one epoch.
	DefaultPeriod = EpochLength
	// MaxPeriod is a day.
	MaxPeriod = 24 * time.Hour
	// maxPeriodEpochs bounds the period a receipt may name.
	maxPeriodEpochs = uint32(MaxPeriod / EpochLength)
)

// PeriodEpochs returns the number of epochs of a budget period of length d
// (DefaultPeriod if d is 0). It refuses what is not a whole number of epochs
// between one epoch and MaxPeriod.
func PeriodEpochs(d time.Duration) (uint32, error) {
	if d == 0 {
		d = DefaultPeriod
	}
	if d < EpochLength || d > MaxPeriod || d%EpochLength != 0 {
		return 0, fmt.Errorf("budget period %s: want a whole number of %s epochs, %s to %s: %w", d, EpochLength, EpochLength, MaxPeriod, core.ErrInvalidArgument)
	}
	return uint32(d / EpochLength), nil
}

// periodStart is the first epoch of the period of k epochs that holds e.
func periodStart(e core.Epoch, k uint32) core.Epoch {
	return e - e%core.Epoch(k)
}

// Epochs is this device's view of the current epoch. Epochs advance with
// time, so devices with roughly synchronised clocks agree without talking;
// peers then converge on the highest epoch observed, which absorbs small
// skew. The view only grows:
//
//	current = max(wall epoch, highest epoch observed or restored)
//
// Observe adopts a peer's higher epoch, but at most wall+1: a peer whose
// clock runs ahead (or who lies) can pull this device one epoch forward,
// never arbitrarily far, so it cannot make every other peer's receipts look
// stale. InWindow accepts receipts one epoch either side of current, the
// clock-skew window.
//
// Safe for concurrent use.
type Epochs struct {
	clock core.Clock

	mu sync.Mutex
	hw core.Epoch // highest epoch returned, observed or restored
}

// NewEpochs returns the epoch view read from clock.
func NewEpochs(clock core.Clock) *Epochs {
	return &Epochs{clock: clock}
}

// wall is the epoch the clock alone says it is. Times before 1970 are epoch 0.
func (e *Epochs) wall() core.Epoch {
	ns := e.clock.Now().UnixNano()
	if ns < 0 {
		return 0
	}
	return core.Epoch(ns / int64(EpochLength))
}

// Current returns the current epoch. It never returns less than it did
// before, even if the clock steps back.
func (e *Epochs) Current() core.Epoch {
	w := e.wall()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.hw = max(e.hw, w)
	return e.hw
}

// Observe takes note of an epoch seen from a peer (in an authenticated
// receipt). A higher epoch is adopted, capped at the wall epoch + 1.
func (e *Epochs) Observe(x core.Epoch) {
	w := e.wall()
	capped := min(x, w+1)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.hw = max(e.hw, capped)
}

// restore adopts an epoch this device itself persisted, without the cap: the
// view must not go back across a restart even if the clock did.
func (e *Epochs) restore(x core.Epoch) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.hw = max(e.hw, x)
}

// InWindow reports whether a receipt of epoch x is acceptable now:
// |x - current| <= 1.
func (e *Epochs) InWindow(x core.Epoch) bool {
	c := e.Current()
	if x >= c {
		return x-c <= 1
	}
	return c-x <= 1
}

package budget

import (
	"testing"
	"time"

	"github.com/aura-p2p/aura/internal/core"
)

func TestEpochsAdvanceWithTime(t *testing.T) {
	clock := core.NewManualClock(time.Unix(0, 0).Add(10 * time.Minute))
	e := NewEpochs(clock, time.Minute)
	if got := e.Current(); got != 10 {
		t.Fatalf("epoch %d, want 10", got)
	}
	clock.Advance(59 * time.Second)
	if got := e.Current(); got != 10 {
		t.Fatalf("epoch %d before the boundary", got)
	}
	clock.Advance(time.Second)
	if got := e.Current(); got != 11 {
		t.Fatalf("epoch %d after the boundary", got)
	}
	// A clock that steps back does not take the epoch with it.
	clock.Advance(-5 * time.Minute)
	if got := e.Current(); got != 11 {
		t.Fatalf("epoch regressed to %d", got)
	}
}

func TestEpochsObserveIsCapped(t *testing.T) {
	clock := core.NewManualClock(time.Unix(0, 0).Add(10 * time.Minute))
	e := NewEpochs(clock, time.Minute)
	e.Observe(9) // lower: ignored
	if got := e.Current(); got != 10 {
		t.Fatalf("observing a lower epoch moved us to %d", got)
	}
	e.Observe(1000) // far ahead: at most one ahead of the wall
	if got := e.Current(); got != 11 {
		t.Fatalf("observing 1000 moved us to %d, want 11", got)
	}
	e.Observe(1000) // again: a peer cannot ratchet us further
	if got := e.Current(); got != 11 {
		t.Fatalf("second observe moved us to %d", got)
	}
	clock.Advance(time.Minute)
	e.Observe(13)
	if got := e.Current(); got != 12 {
		t.Fatalf("epoch %d, want 12", got)
	}
}

func TestEpochsWindow(t *testing.T) {
	clock := core.NewManualClock(time.Unix(0, 0).Add(10 * time.Minute))
	e := NewEpochs(clock, time.Minute)
	for x, want := range map[core.Epoch]bool{8: false, 9: true, 10: true, 11: true, 12: false, 0: false} {
		if got := e.InWindow(x); got != want {
			t.Errorf("InWindow(%d) = %v", x, got)
		}
	}
	e.restore(100) // a persisted epoch is adopted without the cap
	if !e.InWindow(99) || e.InWindow(10) {
		t.Fatal("restore not adopted")
	}
}

func TestEpochsDefaults(t *testing.T) {
	e := NewEpochs(core.NewManualClock(time.Unix(-100, 0)), 0)
	if e.Duration() != DefaultEpochDuration || e.Current() != 0 {
		t.Fatalf("duration %v epoch %d", e.Duration(), e.Current())
	}
}

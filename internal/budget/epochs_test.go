package budget

import (
	"errors"
	"testing"
	"time"

	"github.com/aura-p2p/aura/internal/core"
)

func TestEpochsAdvanceWithTime(t *testing.T) {
	clock := core.NewManualClock(time.Unix(0, 0).Add(10 * EpochLength))
	e := NewEpochs(clock)
	if got := e.Current(); got != 10 {
		t.Fatalf("epoch %d, want 10", got)
	}
	clock.Advance(EpochLength - time.Second)
	if got := e.Current(); got != 10 {
		t.Fatalf("epoch %d before the boundary", got)
	}
	clock.Advance(time.Second)
	if got := e.Current(); got != 11 {
		t.Fatalf("epoch %d after the boundary", got)
	}
	// A clock that steps back does not take the epoch with it.
	clock.Advance(-5 * EpochLength)
	if got := e.Current(); got != 11 {
		t.Fatalf("epoch regressed to %d", got)
	}
}

// Epoch numbers are the protocol's: the same instant is the same epoch on
// every device, whatever its budget period.
func TestEpochNumbersAreAProtocolConstant(t *testing.T) {
	at := time.Date(2025, 3, 1, 12, 34, 56, 0, time.UTC)
	want := core.Epoch(at.Unix() / 300)
	if got := NewEpochs(core.NewManualClock(at)).Current(); got != want {
		t.Fatalf("epoch %d, want %d (5-minute units since 1970)", got, want)
	}
}

func TestEpochsObserveIsCapped(t *testing.T) {
	clock := core.NewManualClock(time.Unix(0, 0).Add(10 * EpochLength))
	e := NewEpochs(clock)
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
	clock.Advance(EpochLength)
	e.Observe(13)
	if got := e.Current(); got != 12 {
		t.Fatalf("epoch %d, want 12", got)
	}
}

func TestEpochsWindow(t *testing.T) {
	clock := core.NewManualClock(time.Unix(0, 0).Add(10 * EpochLength))
	e := NewEpochs(clock)
	for x, want := range map[core.Epoch]bool{8: false, 9: true, 10: true, 11: true, 12: false, 0: false} {
		if got := e.InWindow(x); got != want {
			t.Errorf("InWindow(%d) = %v", x, got)
		}
	}
	e.restore(100) // a persisted epoch is adopted without the cap
	if !e.InWindow(99) || e.InWindow(10) {
		t.Fatal("restore not adopted")
	}
	if got := NewEpochs(core.NewManualClock(time.Unix(-100, 0))).Current(); got != 0 {
		t.Fatalf("before 1970: epoch %d", got)
	}
}

func TestPeriodEpochs(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want uint32
	}{
		{0, 1}, {EpochLength, 1}, {time.Hour, 12}, {MaxPeriod, 288},
		{-EpochLength, 0}, {time.Minute, 0}, {EpochLength + time.Second, 0}, {MaxPeriod + EpochLength, 0},
	} {
		got, err := PeriodEpochs(tc.d)
		if tc.want == 0 {
			if !errors.Is(err, core.ErrInvalidArgument) {
				t.Errorf("%s: %d, %v", tc.d, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %d, %v; want %d", tc.d, got, err, tc.want)
		}
	}
	// Periods align on multiples of their length: an hour is a UTC hour.
	for _, tc := range []struct {
		e     core.Epoch
		k     uint32
		start core.Epoch
	}{{0, 1, 0}, {7, 1, 7}, {11, 12, 0}, {12, 12, 12}, {25, 12, 24}, {300, 288, 288}} {
		if got := periodStart(tc.e, tc.k); got != tc.start {
			t.Errorf("periodStart(%d, %d) = %d, want %d", tc.e, tc.k, got, tc.start)
		}
	}
}

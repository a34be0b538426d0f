package journal

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/aura-p2p/aura/internal/core"
)

func TestWatchAfterSeqBounds(t *testing.T) {
	const last = 3 // genesis and two facts
	tests := []struct {
		name      string
		opts      WatchOptions
		firstSeq  uint64 // 0: the watch is refused
		wantError string
	}{
		{name: "zero replays everything", opts: WatchOptions{AfterSeq: 0}, firstSeq: 1},
		{name: "before last", opts: WatchOptions{AfterSeq: last - 1}, firstSeq: last},
		{name: "last waits for the next commit", opts: WatchOptions{AfterSeq: last}, firstSeq: last + 1},
		{name: "last+1", opts: WatchOptions{AfterSeq: last + 1}, wantError: "after_seq 4 is beyond the last seq 3"},
		{name: "2^64-1 does not wrap", opts: WatchOptions{AfterSeq: math.MaxUint64}, wantError: "after_seq 18446744073709551615 is beyond the last seq 3"},
		{name: "from now ignores after_seq", opts: WatchOptions{AfterSeq: math.MaxUint64, FromNow: true}, firstSeq: last + 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.append(t, "app.a/v1", "2")
			if c := f.append(t, "app.a/v1", "3"); c.Seq != last {
				t.Fatalf("last seq %d, want %d", c.Seq, last)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			sub, err := f.j.Watch(ctx, tc.opts)
			if tc.wantError != "" {
				if !errors.Is(err, core.ErrInvalidArgument) || err.Error() != tc.wantError+": "+core.ErrInvalidArgument.Error() {
					t.Fatalf("got %v, want %q (invalid argument)", err, tc.wantError)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			if tc.firstSeq > last {
				// Appended after Watch: proves the live path honours the cursor too.
				f.append(t, "app.a/v1", "live")
			}
			got, err := sub.Next(ctx)
			if err != nil || got.Seq != tc.firstSeq {
				t.Fatalf("first fact seq %d (%v), want %d", got.Seq, err, tc.firstSeq)
			}
		})
	}
}

// bareJournal has only a hub: enough for watches that skip the replay.
func bareJournal(lastSeq uint64) *Journal { return &Journal{hub: newHub(lastSeq)} }

func storedFact(seq uint64, typ string) StoredFact {
	return StoredFact{SignedFact: &SignedFact{Fact: Fact{TypeID: typ}}, Seq: seq}
}

func TestWatchBacklogCutsOffLaggingWatcher(t *testing.T) {
	ctx := context.Background()
	j := bareJournal(0)
	sub, err := j.Watch(ctx, WatchOptions{FromNow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for seq := uint64(1); seq <= watchBacklog+1; seq++ {
		j.hub.publish([]StoredFact{storedFact(seq, "app.a/v1")})
	}
	// Everything queued before the overflow arrives, in order, then the cut.
	for want := uint64(1); want <= watchBacklog; want++ {
		got, err := sub.Next(ctx)
		if err != nil || got.Seq != want {
			t.Fatalf("fact %d: seq %d, %v", want, got.Seq, err)
		}
	}
	if _, err := sub.Next(ctx); !errors.Is(err, ErrWatchLagging) {
		t.Fatalf("after the backlog: %v, want ErrWatchLagging", err)
	}
}

func TestWatchBacklogCountsOnlyMatchingFacts(t *testing.T) {
	ctx := context.Background()
	j := bareJournal(0)
	sub, err := j.Watch(ctx, WatchOptions{FromNow: true, TypeID: "app.b/v1"})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	seq := uint64(0)
	for range 2 * watchBacklog {
		seq++
		j.hub.publish([]StoredFact{storedFact(seq, "app.a/v1")})
	}
	seq++
	j.hub.publish([]StoredFact{storedFact(seq, "app.b/v1")})
	got, err := sub.Next(ctx)
	if err != nil || got.Seq != seq {
		t.Fatalf("got seq %d (%v), want %d", got.Seq, err, seq)
	}
	if n := cap(sub.pending); n != 0 {
		t.Errorf("an idle watch keeps %d backlog slots", n)
	}
}

func TestWatchEndsWhenClosed(t *testing.T) {
	ctx := context.Background()
	j := bareJournal(0)
	sub, err := j.Watch(ctx, WatchOptions{FromNow: true})
	if err != nil {
		t.Fatal(err)
	}
	j.hub.publish([]StoredFact{storedFact(1, "app.a/v1")})
	j.hub.close()
	if got, err := sub.Next(ctx); err != nil || got.Seq != 1 {
		t.Fatalf("queued fact: seq %d, %v", got.Seq, err)
	}
	if _, err := sub.Next(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("after close: %v, want ErrClosed", err)
	}
	if _, err := j.Watch(ctx, WatchOptions{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("watch on a closed journal: %v", err)
	}
}

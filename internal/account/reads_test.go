package account

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
)

// heldJournal holds up every commit until release is closed, as an fsync
// that takes long does; entered is closed when the first commit arrives.
type heldJournal struct {
	Journal
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (h *heldJournal) Commit(ctx context.Context, t journal.Txn) ([]journal.Committed, error) {
	h.once.Do(func() { close(h.entered) })
	select {
	case <-h.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return h.Journal.Commit(ctx, t)
}

// While a maintenance commit is held up, every read answers, and answers
// from the journal as it is now: a tree op that arrived after maintenance
// began (b's update path) is in the membership, the view and the key.
func TestReadsDoNotWaitForMaintenance(t *testing.T) {
	ctx := context.Background()
	clock := core.NewManualClock(time.Unix(1_800_000_000, 0))
	a, b := openDevice(t, 1, clock), openDevice(t, 2, clock)
	auth := a.s.o.Authority
	enroll(t, a, b, clock)

	// A fresh service over a's journal: its first maintenance stores the
	// keys it loaded, so it commits.
	held := &heldJournal{Journal: a.j, entered: make(chan struct{}), release: make(chan struct{})}
	o := a.s.o
	o.Journal, o.Sessions = held, &registrar{}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	maintained := make(chan error, 1)
	go func() { maintained <- s.Maintain(ctx) }()
	released := false
	release := func() error {
		released = true
		close(held.release)
		select {
		case err := <-maintained:
			return err
		case <-time.After(time.Minute):
			return errors.New("maintenance did not end once its commit went through")
		}
	}
	defer func() {
		if !released {
			_ = release()
		}
	}()
	select {
	case <-held.entered:
	case <-time.After(time.Minute):
		t.Fatal("maintenance made no commit")
	}

	vb, err := b.s.UpdatePath(ctx)
	if err != nil {
		t.Fatal(err)
	}
	syncAccount(t, auth, b, a)
	kb := mustKey(t, b)
	both := []core.DeviceID{deviceOf(a.key), deviceOf(b.key)}
	slices.SortFunc(both, func(x, y core.DeviceID) int { return bytes.Compare(x[:], y[:]) })

	reads := []struct {
		name string
		read func() error
	}{
		{"Members", func() error {
			ms, err := s.Members(ctx)
			if err == nil && !slices.Equal(ms, both) {
				err = fmt.Errorf("members %v, want %v", ms, both)
			}
			return err
		}},
		{"Devices", func() error {
			ds, err := s.Devices(ctx)
			if err == nil && !slices.Equal(ds, []core.DeviceID{deviceOf(b.key)}) {
				err = fmt.Errorf("devices %v, want b alone", ds)
			}
			return err
		}},
		{"Show", func() error {
			v, err := s.Show(ctx)
			if err == nil && (v.Epoch != vb.Epoch || v.Root != vb.Root || len(v.Devices) != 2) {
				err = fmt.Errorf("view at epoch %d with %d devices, want b's at epoch %d", v.Epoch, len(v.Devices), vb.Epoch)
			}
			return err
		}},
		{"Key", func() error {
			k, err := s.Key(ctx)
			if err == nil && *k != *kb {
				err = fmt.Errorf("key %+v, b's %+v", k, kb)
			}
			return err
		}},
		{"SyncSecret", func() error {
			_, err := s.SyncSecret(ctx)
			return err
		}},
	}
	for _, r := range reads {
		done := make(chan error, 1)
		go func() { done <- r.read() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s during a maintenance commit: %v", r.name, err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s waits for a maintenance commit", r.name)
		}
	}

	if err := release(); err != nil {
		t.Fatalf("maintenance: %v", err)
	}
	// Maintenance stored what Key had derived in memory.
	if err := s.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if k, err := s.Key(ctx); err != nil || *k != *kb {
		t.Fatalf("key after maintenance %+v (%v), b's %+v", k, err, kb)
	}
	hist := histories(auth, s.main.tree.reducer.Result().Applied)
	err = a.j.ViewExt(ctx, extAccount, func(st *journal.ExtStore) error {
		if kb := st.SubIfExists(subKeys); kb == nil || kb.Get(stateKey(auth, hist[len(hist)-1])) == nil {
			t.Errorf("the keys of epoch %d are not stored after maintenance", vb.Epoch)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

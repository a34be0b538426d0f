package journal

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/aura-p2p/aura/internal/core"
)

func commitExt(t *testing.T, j *Journal, op TxOp) error {
	t.Helper()
	_, err := j.Commit(context.Background(), Txn{Ops: []TxOp{op}})
	return err
}

func TestExtStoreWritesAndReads(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	err := commitExt(t, f.j, func(tx *ExtTx) error {
		s, err := tx.Bucket("test.ext")
		if err != nil {
			return err
		}
		for _, k := range []string{"c", "a", "b", "gone"} {
			if err := s.Put([]byte(k), []byte("v"+k)); err != nil {
				return err
			}
		}
		if err := s.Delete([]byte("gone")); err != nil {
			return err
		}
		if err := s.Delete([]byte("never")); err != nil {
			return err
		}
		sub, err := s.Sub([]byte("sub"))
		if err != nil {
			return err
		}
		if err := sub.Put([]byte("x"), []byte("vx")); err != nil {
			return err
		}
		again, err := s.Sub([]byte("sub")) // exists: opened, not replaced
		if err != nil {
			return err
		}
		if got := string(again.Get([]byte("x"))); got != "vx" {
			t.Errorf("sub reopened in the same txn: x = %q", got)
		}
		if _, err := s.Sub([]byte("a")); err == nil {
			t.Error("Sub over a value succeeded")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	err = f.j.ViewExt(ctx, "test.ext", func(s *ExtStore) error {
		if s == nil {
			t.Fatal("written store reads as absent")
		}
		for _, tc := range []struct{ key, want string }{
			{"a", "va"}, {"b", "vb"}, {"c", "vc"}, {"gone", ""}, {"sub", ""},
		} {
			if got := string(s.Get([]byte(tc.key))); got != tc.want {
				t.Errorf("Get(%q) = %q, want %q", tc.key, got, tc.want)
			}
		}
		var keys []string
		var subValueNil bool
		if err := s.ForEach(func(k, v []byte) error {
			keys = append(keys, string(k))
			if string(k) == "sub" {
				subValueNil = v == nil
			}
			return nil
		}); err != nil {
			return err
		}
		if want := []string{"a", "b", "c", "sub"}; !slices.Equal(keys, want) || !subValueNil {
			t.Errorf("ForEach: %q (sub value nil %v), want %q with a nil sub value", keys, subValueNil, want)
		}
		stop := errors.New("stop")
		if err := s.ForEach(func(k, v []byte) error { return stop }); !errors.Is(err, stop) {
			t.Errorf("ForEach returned %v, want fn's error", err)
		}
		if n := s.KeyN(); n != 5 { // a b c sub, and sub/x
			t.Errorf("KeyN = %d, want 5", n)
		}
		sub := s.SubIfExists([]byte("sub"))
		if sub == nil || string(sub.Get([]byte("x"))) != "vx" {
			t.Errorf("SubIfExists(sub) = %v", sub)
		}
		if s.SubIfExists([]byte("none")) != nil || s.SubIfExists([]byte("a")) != nil {
			t.Error("SubIfExists returned a store for an absent name or a value")
		}

		for _, tc := range []struct {
			name  string
			start func(c *ExtCursor) ([]byte, []byte)
			back  bool
			want  []string
		}{
			{"first forward", (*ExtCursor).First, false, []string{"a", "b", "c", "sub"}},
			{"last backward", (*ExtCursor).Last, true, []string{"sub", "c", "b", "a"}},
			{"seek present", func(c *ExtCursor) ([]byte, []byte) { return c.Seek([]byte("b")) }, false, []string{"b", "c", "sub"}},
			{"seek between", func(c *ExtCursor) ([]byte, []byte) { return c.Seek([]byte("bb")) }, false, []string{"c", "sub"}},
			{"seek past the end", func(c *ExtCursor) ([]byte, []byte) { return c.Seek([]byte("z")) }, false, nil},
		} {
			c := s.Cursor()
			step := c.Next
			if tc.back {
				step = c.Prev
			}
			var got []string
			for k, _ := tc.start(c); k != nil; k, _ = step() {
				got = append(got, string(k))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
			}
		}
		if k, v := s.Cursor().Seek([]byte("c")); string(k) != "c" || string(v) != "vc" {
			t.Errorf("Seek(c) = %q, %q", k, v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A read view's store refuses every write with ErrReadOnly and leaves the
// data as it was; an absent store reads as nil.
func TestExtStoreReadViewRefusesWrites(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if err := f.j.ViewExt(ctx, "test.ext", func(s *ExtStore) error {
		if s != nil {
			t.Error("absent store is not nil")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := commitExt(t, f.j, func(tx *ExtTx) error {
		s, err := tx.Bucket("test.ext")
		if err != nil {
			return err
		}
		if _, err := s.Sub([]byte("sub")); err != nil {
			return err
		}
		return s.Put([]byte("k"), []byte("v"))
	}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		write func(s *ExtStore) error
	}{
		{"put", func(s *ExtStore) error { return s.Put([]byte("k"), []byte("w")) }},
		{"put new", func(s *ExtStore) error { return s.Put([]byte("n"), []byte("w")) }},
		{"delete", func(s *ExtStore) error { return s.Delete([]byte("k")) }},
		{"sub existing", func(s *ExtStore) error { _, err := s.Sub([]byte("sub")); return err }},
		{"sub new", func(s *ExtStore) error { _, err := s.Sub([]byte("new")); return err }},
		{"put in sub", func(s *ExtStore) error { return s.SubIfExists([]byte("sub")).Put([]byte("k"), []byte("w")) }},
	} {
		err := f.j.ViewExt(ctx, "test.ext", tc.write)
		if !errors.Is(err, ErrReadOnly) || !errors.Is(err, core.ErrInternal) {
			t.Errorf("%s in a read view: %v, want ErrReadOnly", tc.name, err)
		}
	}
	if err := f.j.ViewExt(ctx, "test.ext", func(s *ExtStore) error {
		if got := string(s.Get([]byte("k"))); got != "v" || s.Get([]byte("n")) != nil || s.SubIfExists([]byte("new")) != nil || s.SubIfExists([]byte("sub")).KeyN() != 0 {
			t.Errorf("refused writes changed the store: k = %q", got)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestExtTxBucketNeedsOwner(t *testing.T) {
	f := newFixture(t)
	err := commitExt(t, f.j, func(tx *ExtTx) error {
		_, err := tx.Bucket("")
		return err
	})
	if !errors.Is(err, core.ErrInvalidArgument) {
		t.Fatalf("empty owner: %v", err)
	}
}

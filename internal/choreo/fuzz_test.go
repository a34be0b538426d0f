package choreo

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary text through the whole front end. Nothing may
// panic; every failure must be a positioned *Error of a known kind; whatever
// loads must print, reparse to the same text, and give machines a start.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "*.choreo"))
	prots, _ := filepath.Glob(filepath.Join("protocols", "*.choreo"))
	for _, s := range append(seeds, prots...) {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("protocol P { roles: A, B; A -> B: X; }"))
	f.Add([]byte("protocol P { roles: A, B; rec L { choice at A { A -> B: X; continue L; } or { A -> B: Y; } } }"))
	f.Add([]byte("#[x]\nprotocol P { roles: A, B; A[flow_cost = 1] -> B: X(Vec<u8>); }"))
	f.Fuzz(func(t *testing.T, src []byte) {
		file, ps, err := Load(src)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("error without position: %v", err)
			}
			if !errors.Is(err, ErrSyntax) && !errors.Is(err, ErrIllFormed) && !errors.Is(err, ErrNotRealizable) {
				t.Fatalf("error of unknown kind: %v", err)
			}
			return
		}
		once := Format(file)
		again, err := Parse([]byte(once))
		if err != nil {
			t.Fatalf("formatted protocol does not parse: %v\n%s", err, once)
		}
		if twice := Format(again); twice != once {
			t.Fatalf("format not stable:\n%s\n---\n%s", once, twice)
		}
		for _, p := range ps {
			for _, r := range p.Roles {
				_ = LocalString(r.Type)
				m := NewMachine(r.Type)
				for range 8 {
					next := m.Next()
					if len(next) == 0 {
						break
					}
					if err := m.Step(next[len(next)-1]); err != nil {
						t.Fatalf("machine refused its own action: %v", err)
					}
				}
			}
		}
	})
}

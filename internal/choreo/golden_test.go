package choreo

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// go test ./internal/choreo -run Golden -update rewrites the .golden files.
var update = flag.Bool("update", false, "rewrite golden files")

// render is what a golden file holds for one source: the canonical form of
// each protocol and every role's local type, or the error.
func render(src []byte) string {
	f, ps, err := Load(src)
	if err != nil {
		return "error: " + err.Error() + "\n"
	}
	var b strings.Builder
	b.WriteString(Format(f))
	for _, p := range ps {
		b.WriteString("\n== ")
		b.WriteString(p.Protocol.Name)
		b.WriteString(" ==\n")
		for _, r := range p.Roles {
			b.WriteString(r.Role)
			b.WriteString(": ")
			b.WriteString(LocalString(r.Type))
			b.WriteByte('\n')
		}
		for _, r := range p.Roles {
			b.WriteByte('\n')
			b.WriteString(r.Role)
			b.WriteString(":\n")
			b.WriteString(FormatLocal(r.Type, 1))
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func TestGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.choreo"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	// The embedded protocols' projections are reviewed as goldens too.
	embedded, _ := filepath.Glob(filepath.Join("protocols", "*.choreo"))
	files = append(files, embedded...)
	for _, file := range files {
		t.Run(file, func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			got := render(src)
			golden := strings.TrimSuffix(file, ".choreo") + ".golden"
			if filepath.Dir(file) == "protocols" {
				golden = filepath.Join("testdata", "protocols", strings.TrimSuffix(filepath.Base(file), ".choreo")+".golden")
			}
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("output differs from %s (run with -update to accept):\n--- got\n%s\n--- want\n%s", golden, got, want)
			}
			// Files named err_* must fail, all others must load.
			if isErr := strings.HasPrefix(filepath.Base(file), "err_"); isErr != strings.HasPrefix(got, "error: ") {
				t.Errorf("error expected: %v, output: %s", isErr, got)
			}
		})
	}
}

// Printing a protocol and parsing it back gives the same protocol, for every
// source the package ships: the test data and the embedded protocols. Only
// an err_* file may fail to parse, and only with a syntax error.
func TestFormatRoundTrip(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.choreo"))
	if err != nil {
		t.Fatal(err)
	}
	embedded, err := filepath.Glob(filepath.Join("protocols", "*.choreo"))
	if err != nil || len(files) == 0 || len(embedded) == 0 {
		t.Fatalf("sources: %d in testdata, %d embedded, %v", len(files), len(embedded), err)
	}
	roundTripped := 0
	for _, file := range append(files, embedded...) {
		t.Run(file, func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			f, err := Parse(src)
			if err != nil {
				if !strings.HasPrefix(filepath.Base(file), "err_") || !errors.Is(err, ErrSyntax) {
					t.Fatalf("does not parse: %v", err)
				}
				return
			}
			if len(f.Protocols) == 0 {
				t.Fatal("parsed to no protocol")
			}
			once := Format(f)
			g, err := Parse([]byte(once))
			if err != nil {
				t.Fatalf("formatted text does not parse: %v\n%s", err, once)
			}
			if twice := Format(g); twice != once {
				t.Fatalf("format not stable:\n%s\n---\n%s", once, twice)
			}
			roundTripped++
		})
	}
	// At least every source not named err_* must have gone round.
	want := len(embedded)
	for _, file := range files {
		if !strings.HasPrefix(filepath.Base(file), "err_") {
			want++
		}
	}
	if roundTripped < want {
		t.Fatalf("%d sources round-tripped, want at least %d", roundTripped, want)
	}
}

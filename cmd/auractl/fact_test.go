package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadPayload(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "p.bin")
	if err := os.WriteFile(file, []byte{0, 1, 2, 'x'}, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.bin")
	if err := os.WriteFile(big, make([]byte, maxPayloadRead+1), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		arg   string
		stdin string
		want  string
		code  int // 0: no error
	}{
		{name: "literal", arg: "hello", want: "hello"},
		{name: "empty literal", arg: "", want: ""},
		{name: "literal with spaces", arg: "a b\tc", want: "a b\tc"},
		{name: "stdin", arg: "-", stdin: "from\nstdin", want: "from\nstdin"},
		{name: "empty stdin", arg: "-", stdin: "", want: ""},
		{name: "file", arg: "@" + file, want: "\x00\x01\x02x"},
		{name: "missing file", arg: "@" + filepath.Join(dir, "nope"), code: ExitUsage},
		{name: "at without a name", arg: "@", code: ExitUsage},
		{name: "file over the read cap", arg: "@" + big, code: ExitInvalidArgument},
		{name: "dash inside a literal", arg: "--", want: "--"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readPayload(tt.arg, strings.NewReader(tt.stdin))
			if tt.code != 0 {
				if err == nil {
					t.Fatalf("want error with exit %d, got payload %q", tt.code, got)
				}
				if c := exitCode(err); c != tt.code {
					t.Fatalf("exit %d, want %d (%v)", c, tt.code, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, []byte(tt.want)) {
				t.Errorf("payload %q, want %q", got, tt.want)
			}
		})
	}
}

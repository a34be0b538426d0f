package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
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

// Watch rows are printed one at a time, so their columns have fixed widths:
// a type id longer than its column is cut with a marker, and every column
// after it starts where the header's does.
func TestWatchLineColumnsStayAligned(t *testing.T) {
	header := watchLine("SEQ", "ID", "TYPE", "LAMPORT", "AUTHOR", "PAYLOAD")
	rows := []struct {
		typ, wantType string
	}{
		{"note", "note"},
		{strings.Repeat("t", watchTypeWidth), strings.Repeat("t", watchTypeWidth)},
		{"aura.chat.message.reaction.with.a.long.name/v1", "aura.chat.message.react…"},
		{"exe\u202etxt.with.hidden.char/v1", `exe\u202etxt.with.hidde…`},
		{"日本語のタイプ名", "日本語のタイプ名"},
	}
	cols := []string{"ID", "TYPE", "LAMPORT", "AUTHOR", "PAYLOAD"}
	for _, r := range rows {
		line := watchLine("12", strings.Repeat("1", 16), r.typ, "7", strings.Repeat("a", 16), "hello")
		for _, c := range cols {
			at := utf8.RuneCountInString(header[:strings.Index(header, c)])
			runes := []rune(line)
			if at >= len(runes) || runes[at] == ' ' || runes[at-1] != ' ' {
				t.Errorf("type %q: column %s does not start at rune %d:\n%s\n%s", r.typ, c, at, header, line)
			}
		}
		if !strings.Contains(line, "  "+r.wantType+" ") {
			t.Errorf("type %q shown as %q, want %q", r.typ, line, r.wantType)
		}
	}
	// Numbers are never cut: a cut one would read as another number.
	if line := watchLine("123456789012", "i", "t", "1", "a", "p"); !strings.HasPrefix(line, "123456789012  ") {
		t.Errorf("long seq cut: %q", line)
	}
}

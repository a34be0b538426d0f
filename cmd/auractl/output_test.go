package main

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"

	journalv1 "github.com/aura-p2p/aura/api/proto/aura/journal/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

func TestBytesText(t *testing.T) {
	tests := []struct {
		in   []byte
		want string
	}{
		{[]byte("hello world"), "hello world"},
		{[]byte("two\nlines"), "two\nlines"},
		{[]byte("héllo ✓"), "héllo ✓"},
		{[]byte{}, ""},
		{[]byte{0xff, 0x00}, "0xff00"},
		{[]byte("bell\a"), "0x62656c6c07"},
		{[]byte{0xc3}, "0xc3"}, // truncated UTF-8
	}
	for _, tt := range tests {
		if got := bytesText(tt.in); got != tt.want {
			t.Errorf("bytesText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestPreview(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"this is longer than ten", 10, "this is l…"},
		{"tab\tand\nnewline", 40, "tab and newline"},
		{"ééééééééééé", 5, "éééé…"},
	}
	for _, tt := range tests {
		if got := preview([]byte(tt.in), tt.max); got != tt.want {
			t.Errorf("preview(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
}

func TestShortHex(t *testing.T) {
	id := strings.Repeat("ab", 32)
	if got := shortHex(id, 16); got != id[:16] {
		t.Errorf("shortHex = %q", got)
	}
	if got := shortHex("abc", 16); got != "abc" {
		t.Errorf("shortHex of a short id = %q", got)
	}
}

func sampleFacts() *journalv1.ListFactsResponse {
	return &journalv1.ListFactsResponse{
		Facts: []*journalv1.Fact{
			{Id: strings.Repeat("1", 64), TypeId: "note", Payload: []byte("hello"), Author: strings.Repeat("a", 64), Lamport: 7, Seq: 3},
			{Id: strings.Repeat("2", 64), TypeId: "blob.v2", Payload: []byte{0, 1, 2}, Author: strings.Repeat("b", 64), Lamport: 12, Seq: 4},
		},
		NextPageToken: "",
	}
}

func TestPrinterJSONUsesProtoNames(t *testing.T) {
	var buf bytes.Buffer
	p := printer{w: &buf, json: true}
	resp := sampleFacts()
	if err := p.message(resp, nil); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, buf.String())
	}
	// EmitUnpopulated: the empty token is there, so scripts need no defaults.
	if _, ok := got["next_page_token"]; !ok {
		t.Errorf("next_page_token missing: %s", buf.String())
	}
	facts := got["facts"].([]any)
	f0 := facts[0].(map[string]any)
	for _, k := range []string{"id", "type_id", "payload", "schema_version", "created_at", "seq"} {
		if _, ok := f0[k]; !ok {
			t.Errorf("fact lacks %q: %v", k, f0)
		}
	}
	if _, ok := f0["typeId"]; ok {
		t.Error("JSON uses camelCase names")
	}
	// And it is protojson, so it reads back into the message.
	var back journalv1.ListFactsResponse
	if err := protojson.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if string(back.Facts[0].Payload) != "hello" {
		t.Errorf("payload round trip: %q", back.Facts[0].Payload)
	}
}

func TestPrinterStreamedJSONIsOneLine(t *testing.T) {
	var buf bytes.Buffer
	p := printer{w: &buf, json: true}
	for _, f := range sampleFacts().Facts {
		if err := p.streamed(&journalv1.WatchFactsResponse{Fact: f}, nil); err != nil {
			t.Fatal(err)
		}
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines, got %d:\n%s", len(lines), buf.String())
	}
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Errorf("line is not a JSON object: %v: %s", err, l)
		}
	}
}

func TestFactTableShape(t *testing.T) {
	var buf bytes.Buffer
	p := printer{w: &buf}
	if err := p.message(sampleFacts(), func(w io.Writer) error { return writeFactTable(w, sampleFacts().Facts) }); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("want header and 2 rows:\n%s", buf.String())
	}
	if got := strings.Fields(lines[0]); strings.Join(got, " ") != "SEQ ID TYPE LAMPORT AUTHOR PAYLOAD" {
		t.Errorf("header = %q", lines[0])
	}
	want := [][]string{
		{"3", strings.Repeat("1", 16), "note", "7", strings.Repeat("a", 16), "hello"},
		{"4", strings.Repeat("2", 16), "blob.v2", "12", strings.Repeat("b", 16), "0x000102"},
	}
	for i, w := range want {
		if got := strings.Fields(lines[i+1]); strings.Join(got, " ") != strings.Join(w, " ") {
			t.Errorf("row %d = %q, want fields %q", i, lines[i+1], w)
		}
	}
	// Columns line up: every row's ID starts where the header's does.
	col := strings.Index(lines[0], "ID")
	for _, l := range lines[1:] {
		if l[col-1] != ' ' || l[col] == ' ' {
			t.Errorf("misaligned row %q", l)
		}
	}
}

func TestEscapingWriter(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		want   string
	}{
		{"plain", []string{"a\tb\n"}, "a\tb\n"},
		{"bidi override", []string{"exe\u202etxt\n"}, `exe\u202etxt` + "\n"},
		{"split inside a character", []string{"exe\xe2\x80", "\xaetxt"}, `exe\u202etxt`},
		{"terminal escape", []string{"a\x1b[2Jb\r"}, `a\u001b[2Jb\u000d`},
		{"invalid bytes", []string{"a\xffb"}, `a\xffb`},
		{"incomplete at the end", []string{"ok\xe2\x80"}, `ok\xe2\x80`},
		{"zero-width and private use", []string{"a\u200bb\ue000"}, `a\u200bb\ue000`},
		{"right-to-left text itself", []string{"שלום"}, "שלום"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			ew := &escapingWriter{w: &b}
			for _, w := range tc.writes {
				if n, err := ew.Write([]byte(w)); err != nil || n != len(w) {
					t.Fatalf("Write: %d, %v", n, err)
				}
			}
			if err := ew.flush(); err != nil {
				t.Fatal(err)
			}
			if b.String() != tc.want {
				t.Fatalf("got %q, want %q", b.String(), tc.want)
			}
		})
	}
}

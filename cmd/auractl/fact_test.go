package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	journalv1 "github.com/aura-p2p/aura/api/proto/aura/journal/v1"
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

// lineJournal acknowledges the facts of AppendFacts in order, as aurad does,
// and ends the stream at fact failAt (if set) with failErr's code and its
// message after aurad's "fact N: ".
type lineJournal struct {
	journalv1.UnimplementedJournalServiceServer
	mu      sync.Mutex
	got     []*journalv1.AppendFactsRequest
	failAt  int // -1: none
	failErr *status.Status
}

func (f *lineJournal) AppendFacts(s grpc.BidiStreamingServer[journalv1.AppendFactsRequest, journalv1.AppendFactsResponse]) error {
	for i := 0; ; i++ {
		req, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		f.mu.Lock()
		f.got = append(f.got, req)
		f.mu.Unlock()
		if i == f.failAt {
			return status.Errorf(f.failErr.Code(), "fact %d: %s", i, f.failErr.Message())
		}
		if err := s.Send(&journalv1.AppendFactsResponse{
			Index: uint64(i), Id: fmt.Sprintf("%064x", i), Namespace: "authority/x", Lamport: uint64(i + 1), Seq: uint64(i + 10),
		}); err != nil {
			return err
		}
	}
}

func (f *lineJournal) requests() []*journalv1.AppendFactsRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.got)
}

func (f *lineJournal) payloads() []string {
	var out []string
	for _, r := range f.requests() {
		out = append(out, string(r.GetPayload()))
	}
	return out
}

// startLineDaemon serves f on a unix socket and returns the socket's path.
func startLineDaemon(t *testing.T, f *lineJournal) string {
	t.Helper()
	sock := filepath.Join(shortTempDir(t), "aurad.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	journalv1.RegisterJournalServiceServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return sock
}

func ids(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "%064x\n", i)
	}
	return b.String()
}

// Each line is one fact, with the flags' type, namespace and schema, sent in
// order; each acknowledged fact's id is printed, or its JSON with -o json.
func TestFactAppendLines(t *testing.T) {
	f := &lineJournal{failAt: -1}
	sock := startLineDaemon(t, f)
	r := runCtl(t, nil, strings.NewReader("one\ntwo\r\n\nfour"), "--socket", sock,
		"fact", "append", "--lines", "--payload", "-", "--type", "note", "--namespace", "context/abc", "--schema-version", "2")
	mustOK(t, r)
	if r.out != ids(4) {
		t.Errorf("output %q, want the 4 ids", r.out)
	}
	if got, want := f.payloads(), []string{"one", "two", "", "four"}; !slices.Equal(got, want) {
		t.Errorf("payloads %q, want %q", got, want)
	}
	for _, req := range f.requests() {
		if req.GetTypeId() != "note" || req.GetNamespace() != "context/abc" || req.GetSchemaVersion() != 2 {
			t.Fatalf("request %v", req)
		}
	}

	file := filepath.Join(t.TempDir(), "facts.txt")
	if err := os.WriteFile(file, []byte("a\nb\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = runCtl(t, nil, nil, "--socket", sock, "-o", "json", "fact", "append", "--lines", "--payload", "@"+file, "--type", "note")
	mustOK(t, r)
	lines := strings.Split(strings.TrimSuffix(r.out, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("json output %q, want 2 lines", r.out)
	}
	for i, l := range lines {
		var ack journalv1.AppendFactsResponse
		if err := protojson.Unmarshal([]byte(l), &ack); err != nil || ack.GetIndex() != uint64(i) || ack.GetId() != fmt.Sprintf("%064x", i) {
			t.Errorf("line %d: %q: %v", i, l, err)
		}
	}

	// No lines, no facts.
	r = runCtl(t, nil, strings.NewReader(""), "--socket", sock, "fact", "append", "--lines", "--payload", "-", "--type", "note")
	mustOK(t, r)
	if r.out != "" || len(f.payloads()) != 6 {
		t.Errorf("empty input: output %q, %d facts sent in all", r.out, len(f.payloads()))
	}
}

// The first failure stops the command with one error line naming the line
// whose fact failed, after printing the ids of the lines before it.
func TestFactAppendLinesFailure(t *testing.T) {
	long := strings.Repeat("x", maxPayloadRead+1)
	tests := []struct {
		name   string
		stdin  string
		failAt int
		err    *status.Status
		acked  int
		code   int
		line   string
	}{
		{"aurad refuses a fact", "a\nb\nbad\nd\n", 2, status.New(codes.InvalidArgument, "type app.x/v1: payload bad"), 2,
			ExitInvalidArgument, "Error: invalid argument: line 3: type app.x/v1: payload bad"},
		{"unknown namespace", "a\n", 0, status.New(codes.NotFound, "namespace context/zz is unknown here"), 0,
			ExitNotFound, "Error: not found: line 1: namespace context/zz is unknown here"},
		{"line over the read cap", "a\n" + long + "\nc\n", -1, nil, 1,
			ExitInvalidArgument, fmt.Sprintf("Error: invalid argument: line 2 of stdin is over %d bytes", maxPayloadRead)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &lineJournal{failAt: tt.failAt, failErr: tt.err}
			sock := startLineDaemon(t, f)
			r := runCtl(t, nil, strings.NewReader(tt.stdin), "--socket", sock, "fact", "append", "--lines", "--payload", "-", "--type", "app.x/v1")
			if r.code != tt.code || r.err != tt.line+"\n" || r.out != ids(tt.acked) {
				t.Errorf("exit %d stderr %q stdout %q; want exit %d stderr %q and %d ids", r.code, r.err, r.out, tt.code, tt.line, tt.acked)
			}
		})
	}
}

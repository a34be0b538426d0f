package main

import (
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/aura-p2p/aura/internal/rpc/safetext"
)

// Output formats for -o.
const (
	outputTable = "table"
	outputJSON  = "json"
)

// Widths of the shortened columns in tables. Full values are one `fact get` or
// `-o json` away.
const (
	shortIDLen     = 16
	shortAuthorLen = 16
	previewRunes   = 40
)

// Watch rows arrive one at a time, so a tabwriter, which needs every row
// before it can size a column, cannot align them. Their columns have fixed
// widths instead: text longer than its column is cut, ending in "…", so
// that the columns after it stay in place.
const (
	watchSeqWidth  = 10 // seq and lamport: ten digits are billions of facts
	watchTypeWidth = 24
)

// textCell pads s to width runes, or cuts it to width-1 and marks the cut.
// It escapes what the terminal would hide first, so that it measures what
// will be printed.
func textCell(s string, width int) string {
	s = safetext.Escape(s, "")
	n := utf8.RuneCountInString(s)
	if n > width {
		return string([]rune(s)[:width-1]) + "…"
	}
	return s + strings.Repeat(" ", width-n)
}

// numberCell pads a number to width; a wider one is printed whole, since a
// cut number would read as another number.
func numberCell(s string, width int) string {
	return fmt.Sprintf("%-*s", width, s)
}

// printer writes responses in the format chosen with -o. JSON is the protojson of
// the response message, so its shape is exactly as stable as the .proto files;
// tables are for people and may change.
type printer struct {
	w    io.Writer
	json bool
	hex  bool // bytes fields as hex in JSON (--hex)
}

func (p printer) jsonOptions(indent string) protojson.MarshalOptions {
	return protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true, Indent: indent}
}

// message prints one response: indented protojson, or whatever table draws into
// a tabwriter.
func (p printer) message(m proto.Message, table func(w io.Writer) error) error {
	if p.json {
		return p.writeJSON(m, "  ")
	}
	tw := newTabWriter(p.w)
	// Escaping before the tabwriter, so columns are measured as printed.
	ew := &escapingWriter{w: tw}
	if err := table(ew); err != nil {
		return err
	}
	if err := ew.flush(); err != nil {
		return err
	}
	return tw.Flush()
}

// streamed prints one message of a stream: a single line of compact protojson,
// so a reader can split the stream on newlines, or one table line.
func (p printer) streamed(m proto.Message, line func(w io.Writer) error) error {
	if p.json {
		return p.writeJSON(m, "")
	}
	ew := &escapingWriter{w: p.w}
	if err := line(ew); err != nil {
		return err
	}
	return ew.flush()
}

// escapingWriter shows hidden characters (bidi overrides, zero-width and
// other control or format characters) and bytes that are not UTF-8 as
// escapes, so that what a table shows is what is stored: names are checked
// when chosen, but older ones, peers' ones and values are not. Tabs and
// newlines pass: they lay the table out.
type escapingWriter struct {
	w    io.Writer
	tail []byte // an incomplete character at the end of the last write
}

func (e *escapingWriter) Write(p []byte) (int, error) {
	buf := append(e.tail, p...)
	cut := len(buf)
	for i := len(buf) - 1; i >= 0 && i >= len(buf)-utf8.UTFMax; i-- {
		if utf8.RuneStart(buf[i]) {
			if !utf8.FullRune(buf[i:]) {
				cut = i
			}
			break
		}
	}
	e.tail = append([]byte(nil), buf[cut:]...)
	if _, err := io.WriteString(e.w, safetext.Escape(string(buf[:cut]), "\t\n")); err != nil {
		return 0, fmt.Errorf("write output: %w", err)
	}
	return len(p), nil
}

// flush writes out a character left incomplete, escaped as the bytes it is.
func (e *escapingWriter) flush() error {
	if len(e.tail) == 0 {
		return nil
	}
	tail := e.tail
	e.tail = nil
	if _, err := io.WriteString(e.w, safetext.Escape(string(tail), "")); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

func (p printer) writeJSON(m proto.Message, indent string) error {
	name := m.ProtoReflect().Descriptor().FullName()
	b, err := p.jsonOptions(indent).Marshal(m)
	if err != nil {
		return fmt.Errorf("encode %s as json: %w", name, err)
	}
	if p.hex {
		if b, err = hexBytesJSON(b, m.ProtoReflect().Descriptor(), indent); err != nil {
			return fmt.Errorf("encode %s as json with hex bytes: %w", name, err)
		}
	}
	b = append(b, '\n')
	if _, err := p.w.Write(b); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

func newTabWriter(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
}

// kv is one line of a key/value table.
type kv struct{ key, value string }

func writeKVs(w io.Writer, rows []kv) error {
	for _, r := range rows {
		if _, err := fmt.Fprintf(w, "%s:\t%s\n", r.key, r.value); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
	}
	return nil
}

// shortHex cuts a hex id to n characters, as git does with commit hashes.
func shortHex(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// isPrintable reports whether b reads well as text: valid UTF-8 with no control
// characters other than ordinary whitespace.
func isPrintable(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if !unicode.IsPrint(r) && r != '\n' && r != '\t' && r != '\r' {
			return false
		}
	}
	return true
}

// bytesText shows bytes as text when they are printable and as 0x-prefixed hex
// otherwise, so a table never emits raw binary onto a terminal.
func bytesText(b []byte) string {
	if isPrintable(b) {
		return string(b)
	}
	return "0x" + hex.EncodeToString(b)
}

// preview is bytesText squeezed into one table cell: line breaks and tabs would
// break the columns, and long payloads would push them off the screen.
func preview(b []byte, maxRunes int) string {
	s := strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' || r == '\r' {
			return ' '
		}
		return r
	}, bytesText(b))
	if utf8.RuneCountInString(s) <= maxRunes {
		return s
	}
	runes := []rune(s)
	return string(runes[:maxRunes-1]) + "…"
}

func formatTime(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "-"
	}
	return ts.AsTime().Local().Format(time.RFC3339)
}

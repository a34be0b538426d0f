package progress

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestDraw(t *testing.T) {
	var buf bytes.Buffer
	start := time.Unix(100, 0)
	b := &Bar{w: &buf, label: "backup", format: Bytes, start: start, total: 4_000_000}
	b.draw(1_000_000, start.Add(time.Second))
	if got := buf.String(); got != "\rbackup [=======                       ] 1.0 MB / 4.0 MB  25% 1.0 MB/s " {
		t.Fatalf("%q", got)
	}
	buf.Reset()
	b.Finish(true)
	// The rate depends on the wall clock; the full bar and the line end do not.
	if got := buf.String(); !strings.Contains(got, "[==============================] 4.0 MB / 4.0 MB 100%") || !strings.HasSuffix(got, "\n") {
		t.Fatalf("finish drew %q", got)
	}
}

func TestCount(t *testing.T) {
	if got := Count("facts")(12); got != "12 facts" {
		t.Fatal(got)
	}
}

// Off a terminal nothing is drawn, and a nil bar is safe to use.
func TestNotATerminal(t *testing.T) {
	var buf bytes.Buffer
	b := New(&buf, "x", Bytes)
	if b != nil {
		t.Fatal("a bar on a buffer")
	}
	b.Update(1, 2)
	b.Finish(true)
	if buf.Len() != 0 {
		t.Fatalf("drew %q", buf.String())
	}
}

// Package progress draws the one-line progress bars of aurad's and
// auractl's long offline commands (backup, check, salvage). It is a package
// of its own because both binaries draw the same bar and neither may import
// the other.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// interval paces redraws: often enough to look alive, rarely enough to cost
// nothing next to the work.
const interval = 100 * time.Millisecond

// Bar is a self-overwriting line on a terminal. A nil *Bar (what New gives
// for anything that is not a terminal: a log, a pipe) draws nothing, so
// output stays parseable. Safe for concurrent Update calls.
type Bar struct {
	w      io.Writer
	label  string
	format func(uint64) string
	start  time.Time

	mu    sync.Mutex
	last  time.Time
	drawn bool
	done  uint64
	total uint64
}

// New returns a bar on w labelled label, with amounts shown by format
// (Count or Bytes), or nil if w is not a terminal.
func New(w io.Writer, label string, format func(uint64) string) *Bar {
	if !IsTerminal(w) {
		return nil
	}
	return &Bar{w: w, label: label, format: format, start: time.Now()}
}

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// Update records progress and redraws at most once per interval, and always
// when done reaches total.
func (b *Bar) Update(done, total uint64) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.total = total
	now := time.Now()
	if done < total && now.Sub(b.last) < interval {
		return
	}
	b.last = now
	b.draw(done, now)
}

func (b *Bar) draw(done uint64, now time.Time) {
	const width = 30
	frac := 1.0
	if b.total > 0 {
		frac = float64(min(done, b.total)) / float64(b.total)
	}
	fill := int(frac * width)
	rate := uint64(float64(done) / max(now.Sub(b.start).Seconds(), 1e-9))
	fmt.Fprintf(b.w, "\r%s [%s%s] %s / %s %3.0f%% %s/s ", b.label, strings.Repeat("=", fill), strings.Repeat(" ", width-fill),
		b.format(done), b.format(b.total), frac*100, b.format(rate))
	b.drawn, b.done = true, done
}

// Finish ends the bar's line: drawn full if complete, left where it was if
// the work was cut short.
func (b *Bar) Finish(complete bool) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if complete && (!b.drawn || b.done != b.total) {
		b.draw(b.total, time.Now())
	}
	if b.drawn {
		fmt.Fprintln(b.w)
	}
}

// Bytes shows an amount of bytes in kB or MB.
func Bytes(n uint64) string {
	if n < 1e6 {
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%.1f MB", float64(n)/1e6)
}

// Count shows a count of things named unit.
func Count(unit string) func(uint64) string {
	return func(n uint64) string { return fmt.Sprintf("%d %s", n, unit) }
}

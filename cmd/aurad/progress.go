package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// progressBar draws one self-overwriting line on a terminal; on anything else
// (a log, a pipe) it stays silent so output stays parseable.
type progressBar struct {
	w     io.Writer
	label string
	unit  string
	start time.Time

	mu   sync.Mutex
	last time.Time
	drew bool
}

func newProgress(w io.Writer, label, unit string) *progressBar {
	if f, ok := w.(*os.File); !ok || !isTerminal(f) {
		return nil
	}
	return &progressBar{w: w, label: label, unit: unit, start: time.Now()}
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// update is safe to call from several goroutines and as often as work
// progresses; it redraws at most ten times a second.
func (p *progressBar) update(done, total uint64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if now.Sub(p.last) < 100*time.Millisecond && done < total {
		return
	}
	p.last, p.drew = now, true
	const width = 30
	filled := 0
	pct := 0.0
	if total > 0 {
		pct = float64(min(done, total)) / float64(total)
		filled = int(pct * width)
	}
	bar := make([]byte, width)
	for i := range bar {
		bar[i] = ' '
		if i < filled {
			bar[i] = '#'
		}
	}
	rate := float64(done) / max(now.Sub(p.start).Seconds(), 1e-3)
	fmt.Fprintf(p.w, "\r%s [%s] %5.1f%%  %d/%d %s  %.0f/s ", p.label, bar, pct*100, done, total, p.unit, rate)
}

// finish ends the line, if one was drawn.
func (p *progressBar) finish() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drew {
		fmt.Fprintln(p.w)
	}
}

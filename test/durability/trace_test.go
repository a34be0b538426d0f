package durability

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// A syscall as strace saw it. Events are ordered by the line on which strace
// printed them: a thread stays stopped at each traced entry and exit until
// strace has printed it, so when one syscall returns before another starts
// (in particular when the second was caused by the first returning), the
// first's exit line comes before the second's entry line.
type event struct {
	// entry and exit are line numbers in the trace; equal when strace printed
	// the call on one line.
	entry, exit int
	pid         int
	ts          float64 // seconds since the Unix epoch, at entry (-ttt)
	name        string
	// fd is strace's decoding of the first argument (-yy): a path, or a
	// socket such as TCP:[a->b] or UNIX-STREAM:[i->j,"path"].
	fd string
	// data is the buffer written (write family), concatenated over iovecs;
	// only its first -s bytes when strace cut it short.
	data []byte
	ret  int64
	done bool // the exit was seen
}

func (e *event) ok() bool { return e.done && e.ret >= 0 }

var (
	lineRE = regexp.MustCompile(`^(\d+) +(\d+\.\d+) (.*)$`)
	callRE = regexp.MustCompile(`^([a-z0-9_]+)\((.*)$`)
	// resumedRE matches the second half of a call another thread interrupted.
	resumedRE = regexp.MustCompile(`^<\.\.\. ([a-z0-9_]+) resumed>(.*)$`)
	retRE     = regexp.MustCompile(`\) += (-?\d+)`)
	// fdRE is an fd and its -yy decoding. The decoding can hold "->", so it
	// ends at the first '>' that ends the argument.
	fdRE = regexp.MustCompile(`^(\d+)<(.*?)>(?:, |\)| <unfinished)`)
)

// parseTrace reads `strace -f -ttt -yy -xx` output. Lines it does not know
// (signals, exits) are skipped; a call line it cannot read is an error, so a
// change of strace's format fails the test instead of hiding events.
func parseTrace(r io.Reader) ([]*event, error) {
	var out []*event
	pending := map[int]*event{} // pid -> call waiting for its "resumed" half
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		m := lineRE.FindStringSubmatch(line)
		if m == nil {
			return nil, fmt.Errorf("trace line %d: unknown format: %.200q", n, line)
		}
		pid, _ := strconv.Atoi(m[1])
		ts, _ := strconv.ParseFloat(m[2], 64)
		rest := m[3]
		if strings.HasPrefix(rest, "+++") || strings.HasPrefix(rest, "---") {
			continue
		}
		if rm := resumedRE.FindStringSubmatch(rest); rm != nil {
			e := pending[pid]
			if e == nil || e.name != rm[1] {
				return nil, fmt.Errorf("trace line %d: %s resumed without its start", n, rm[1])
			}
			delete(pending, pid)
			e.exit = n
			e.ret, e.done = parseRet(rm[2])
			continue
		}
		cm := callRE.FindStringSubmatch(rest)
		if cm == nil {
			return nil, fmt.Errorf("trace line %d: unknown format: %.200q", n, line)
		}
		e := &event{entry: n, exit: n, pid: pid, ts: ts, name: cm[1]}
		args := cm[2]
		if fm := fdRE.FindStringSubmatch(args); fm != nil {
			e.fd = string(unescape(fm[2]))
			args = args[len(fm[1])+len(fm[2])+2:]
		}
		e.data = quoted(args)
		if strings.HasSuffix(rest, "<unfinished ...>") {
			pending[pid] = e
		} else {
			e.ret, e.done = parseRet(args)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

func parseRet(s string) (int64, bool) {
	m := retRE.FindAllStringSubmatch(s, -1)
	if m == nil {
		return 0, false // "= ?": the process died in the call
	}
	v, err := strconv.ParseInt(m[len(m)-1][1], 10, 64)
	return v, err == nil
}

// quoted concatenates the strings strace printed in args (one for write and
// pwrite64, one per iovec for writev and sendmsg).
func quoted(args string) (data []byte) {
	for i := 0; i < len(args); i++ {
		if args[i] != '"' {
			continue
		}
		j := i + 1
		for j < len(args) && args[j] != '"' {
			if args[j] == '\\' {
				j++
			}
			j++
		}
		if j >= len(args) {
			break
		}
		data = append(data, unescape(args[i+1:j])...)
		i = j
	}
	return data
}

// unescape decodes strace's string escapes (-xx prints every byte as \xHH).
func unescape(s string) []byte {
	out := make([]byte, 0, len(s)/4)
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			out = append(out, s[i])
			continue
		}
		i++
		switch s[i] {
		case 'x':
			if i+3 <= len(s) {
				if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
					out = append(out, byte(v))
					i += 2
					continue
				}
			}
			out = append(out, 'x')
		case 'n':
			out = append(out, '\n')
		case 't':
			out = append(out, '\t')
		case 'r':
			out = append(out, '\r')
		case 'v':
			out = append(out, '\v')
		case 'f':
			out = append(out, '\f')
		default:
			out = append(out, s[i])
		}
	}
	return out
}

func isWrite(e *event) bool {
	switch e.name {
	case "write", "pwrite64", "writev", "pwritev", "pwritev2", "sendmsg", "sendto":
		return true
	}
	return false
}

func isSync(e *event) bool { return e.name == "fsync" || e.name == "fdatasync" }

// isMeta reports whether a journal write is a bbolt meta page: bbolt commits
// a transaction by writing one (page id 0 or 1, flags 0x04) after the data
// pages, so that write is the transaction's commit point.
func isMeta(e *event) bool {
	return len(e.data) >= 10 && binary.LittleEndian.Uint64(e.data) <= 1 && binary.LittleEndian.Uint16(e.data[8:]) == 0x04
}

// firstAfter returns the first event at or after line whose entry matches f.
func firstAfter(events []*event, line int, f func(*event) bool) *event {
	for _, e := range events {
		if e.entry >= line && f(e) {
			return e
		}
	}
	return nil
}

func contains(e *event, b []byte) bool { return bytes.Contains(e.data, b) }

func describe(e *event) string {
	if e == nil {
		return "<none>"
	}
	meta := ""
	if isMeta(e) {
		meta = " (bbolt meta page: commit point)"
	}
	return fmt.Sprintf("line %d-%d pid %d %s(%s) %d bytes at %.6f%s", e.entry, e.exit, e.pid, e.name, e.fd, len(e.data), e.ts, meta)
}

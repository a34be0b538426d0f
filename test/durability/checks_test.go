package durability

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"
)

// The checks on hand-written traces: they run without strace, and show that
// each ordering that acknowledges before the sync is caught.

const (
	tJournal = "/d/journal.db"
	tSocket  = "/d/aurad.sock"
	tEpoch   = 1700000000
)

// xx prints b as strace -xx does.
func xx(b []byte) string {
	var s strings.Builder
	s.WriteByte('"')
	for _, c := range b {
		fmt.Fprintf(&s, `\x%02x`, c)
	}
	s.WriteByte('"')
	return s.String()
}

var (
	fdJournal = "8<" + strings.Trim(xx([]byte(tJournal)), `"`) + ">"
	fdSocket  = `13<UNIX-STREAM:[101->102,` + xx([]byte(tSocket)) + `]>`
	fdTCP     = "14<TCP:[127.0.0.1:40000->127.0.0.1:40001]>"
)

// page is a bbolt page of the given id and flags holding body.
func page(id uint64, flags uint16, body []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, id)
	b = binary.LittleEndian.AppendUint16(b, flags)
	return append(append(b, 0, 0, 0, 0, 0, 0), body...)
}

var metaPage = page(1, 0x04, nil)

// Trace lines, written as strace prints them: "pid ts call".
func pwrite(b []byte) string {
	return fmt.Sprintf("pwrite64(%s, %s, %d, 0) = %d", fdJournal, xx(b), len(b), len(b))
}
func syncJ() string { return fmt.Sprintf("fdatasync(%s) = 0", fdJournal) }
func respond(id string) string {
	return fmt.Sprintf("write(%s, %s, 40) = 40", fdSocket, xx([]byte("\x00\x00\x1f\x00"+id)))
}
func frame(n int) string {
	return fmt.Sprintf("write(%s, %s, %d) = %d", fdTCP, xx(make([]byte, n)), n, n)
}
func unfinished(call string) string {
	return strings.TrimSuffix(call[:strings.LastIndex(call, ") = ")], ")") + " <unfinished ...>"
}
func resumed(name, ret string) string {
	return fmt.Sprintf("<... %s resumed>) = %s", name, ret)
}

// trace numbers lines a second apart from tEpoch; a line "pid:call" runs
// on that pid, any other on pid 1.
func trace(t *testing.T, lines ...string) []*event {
	t.Helper()
	var b strings.Builder
	for i, l := range lines {
		pid := "1"
		if p, rest, ok := strings.Cut(l, ":"); ok && len(p) < 3 {
			pid, l = p, rest
		}
		fmt.Fprintf(&b, "%s %d.000001 %s\n", pid, tEpoch+i, l)
	}
	events, err := parseTrace(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return events
}

func TestParseTrace(t *testing.T) {
	events := trace(t,
		"1:"+unfinished(pwrite([]byte("abc"))),
		"2:--- SIGURG {si_signo=SIGURG} ---",
		"2:"+respond("id1"),
		"1:"+resumed("pwrite64", "3"),
		fmt.Sprintf("writev(%s, [{iov_base=%s, iov_len=2}, {iov_base=%s, iov_len=2}], 2) = 4", fdTCP, xx([]byte("ab")), xx([]byte("cd"))),
		fmt.Sprintf("fdatasync(%s) = -1 EIO (Input/output error)", fdJournal),
		"1:+++ exited with 0 +++",
	)
	want := []struct {
		name, fd, data string
		ret            int64
		entry, exit    int
	}{
		{"pwrite64", tJournal, "abc", 3, 1, 4},
		{"write", `UNIX-STREAM:[101->102,"` + tSocket + `"]`, "\x00\x00\x1f\x00id1", 40, 3, 3},
		{"writev", "TCP:[127.0.0.1:40000->127.0.0.1:40001]", "abcd", 4, 5, 5},
		{"fdatasync", tJournal, "", -1, 6, 6},
	}
	if len(events) != len(want) {
		t.Fatalf("%d events, want %d", len(events), len(want))
	}
	for i, w := range want {
		e := events[i]
		if e.name != w.name || e.fd != w.fd || string(e.data) != w.data || e.ret != w.ret || !e.done || e.entry != w.entry || e.exit != w.exit {
			t.Errorf("event %d: %+v, want %+v", i, *e, w)
		}
	}
	if !isControlSocket(events[1].fd, tSocket) || isControlSocket(events[2].fd, tSocket) {
		t.Error("control socket not told from a TCP one")
	}
	if _, err := parseTrace(strings.NewReader("1 1.0 <... write resumed>) = 1\n")); err == nil {
		t.Error("a resumed call without its start was accepted")
	}
	if _, err := parseTrace(strings.NewReader("not a trace line\n")); err == nil {
		t.Error("a line strace does not print was accepted")
	}
}

func TestCheckAck(t *testing.T) {
	fact := page(5, 0x02, []byte("..probe-1.."))
	a := ack{payload: []byte("probe-1"), id: "f00d"}
	for _, tc := range []struct {
		name  string
		lines []string
		fails string // substring of the error; empty: passes
	}{
		{"synced before the answer", []string{pwrite(fact), syncJ(), pwrite(metaPage), syncJ(), respond("f00d")}, ""},
		{"group commit: other facts in the batch", []string{pwrite(page(6, 2, []byte("x"))), pwrite(fact), syncJ(), pwrite(metaPage), syncJ(), respond("beef"), respond("f00d")}, ""},
		{"no sync (NoSync)", []string{pwrite(fact), pwrite(metaPage), respond("f00d")}, "before its commit"},
		{"answered, then synced", []string{pwrite(fact), syncJ(), pwrite(metaPage), respond("f00d"), syncJ()}, "was synced"},
		{"answered before the commit point", []string{pwrite(fact), respond("f00d"), syncJ(), pwrite(metaPage), syncJ()}, "commit point was written"},
		{"only the data pages synced", []string{pwrite(fact), syncJ(), pwrite(metaPage), respond("f00d")}, "was synced"},
		{"sync failed", []string{pwrite(fact), syncJ(), pwrite(metaPage), strings.Replace(syncJ(), "= 0", "= -1 EIO (Input/output error)", 1), respond("f00d")}, "was synced"},
		{"sync started before the commit point was written", []string{
			pwrite(fact), syncJ(),
			"1:" + unfinished(pwrite(metaPage)),
			"2:" + syncJ(),
			"1:" + resumed("pwrite64", "24"),
			respond("f00d"),
		}, "was synced"},
		{"fact never written", []string{pwrite(metaPage), syncJ(), respond("f00d")}, "no journal write carries it"},
		{"never answered", []string{pwrite(fact), syncJ(), pwrite(metaPage), syncJ()}, "no response"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkAck(trace(t, tc.lines...), tJournal, tSocket, a)
			switch {
			case tc.fails == "" && err != nil:
				t.Fatal(err)
			case tc.fails != "" && (err == nil || !strings.Contains(err.Error(), tc.fails)):
				t.Fatalf("error %v, want one saying %q", err, tc.fails)
			}
		})
	}
}

func TestCheckCharges(t *testing.T) {
	key := make([]byte, 65)
	key[64] = 1
	const epoch = 9
	charge := func(nonce uint64) string {
		mark := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(append([]byte(nil), key...), epoch), nonce)
		return pwrite(page(7, 0x02, mark))
	}
	commit := []string{syncJ(), pwrite(metaPage), syncJ()}
	seq := func(parts ...any) []string {
		var out []string
		for _, p := range parts {
			switch p := p.(type) {
			case string:
				out = append(out, p)
			case []string:
				out = append(out, p...)
			}
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		lines  []string
		frames int
		fails  string
	}{
		{"each charge synced before its frame", seq(charge(1), commit, frame(300), charge(2), commit, frame(300)), 2, ""},
		{"control traffic is not a frame", seq(frame(30), charge(1), commit, frame(300), charge(2), commit, frame(300)), 2, ""},
		{"no sync (NoSync)", seq(charge(1), pwrite(metaPage), frame(300), charge(2), pwrite(metaPage), frame(300)), 2, "first sync after it: <none>"},
		{"frame sent before the charge was written", seq(frame(300), charge(1), commit, charge(2), commit, frame(300)), 2, "frame 1 of the window"},
		{"second frame before its sync", seq(charge(1), commit, frame(300), charge(2), syncJ(), pwrite(metaPage), frame(300), syncJ()), 2, "nonce 2"},
		{"charge missing", seq(charge(1), commit, frame(300), frame(300)), 2, "no journal write carries its receipt key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			events := trace(t, tc.lines...)
			frames, errs := checkCharges(events, tJournal, time.Unix(tEpoch, 0), time.Unix(tEpoch+int64(len(tc.lines)), 0), key, epoch, 1, 2)
			if frames != tc.frames {
				t.Errorf("%d frames, want %d", frames, tc.frames)
			}
			all := strings.Join(errs, "\n")
			switch {
			case tc.fails == "" && len(errs) > 0:
				t.Fatal(all)
			case tc.fails != "" && !strings.Contains(all, tc.fails):
				t.Fatalf("errors %q, want one saying %q", all, tc.fails)
			}
		})
	}
}

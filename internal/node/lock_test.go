package node

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func readLockInfo(t *testing.T, dir string) (lockInfo, string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, lockFileName))
	if err != nil {
		t.Fatal(err)
	}
	var info lockInfo
	if len(b) > 0 {
		if err := json.Unmarshal(b, &info); err != nil {
			t.Fatalf("lock file %q: %v", b, err)
		}
	}
	return info, string(b)
}

func TestLockNamesItsHolder(t *testing.T) {
	dir := t.TempDir()
	// A longer leftover from an earlier daemon must not survive the rewrite.
	if err := os.WriteFile(filepath.Join(dir, lockFileName), []byte(strings.Repeat(" ", 500)+"junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := lockDataDir(dir, "/run/a.sock")
	if err != nil {
		t.Fatal(err)
	}
	defer l.release()
	if l.infoErr != nil {
		t.Fatalf("info not written: %v", l.infoErr)
	}
	if info, raw := readLockInfo(t, dir); info.PID != os.Getpid() || info.Socket != "/run/a.sock" || strings.Contains(raw, "junk") {
		t.Fatalf("lock file %q", raw)
	}
	_, err = lockDataDir(dir, "/run/b.sock")
	want := "aurad is already running on data dir " + dir + " (pid " + strconv.Itoa(os.Getpid()) + ", control socket /run/a.sock)"
	if !errors.Is(err, ErrAlreadyRunning) || err.Error() != want {
		t.Fatalf("second lock: %v, want %q", err, want)
	}
}

func TestLockHoldsWhenHolderInfoCannotBeWritten(t *testing.T) {
	tests := []struct {
		name  string
		write func(f *os.File, info []byte) error
	}{
		{"disk full", func(*os.File, []byte) error { return syscall.ENOSPC }},
		{"quota", func(*os.File, []byte) error { return syscall.EDQUOT }},
		{"partial write then full", func(f *os.File, info []byte) error {
			if _, err := f.WriteAt(info[:3], 0); err != nil {
				return err
			}
			return syscall.ENOSPC
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, lockFileName), []byte(`{"pid":1,"socket":"/old.sock"}`), 0o600); err != nil {
				t.Fatal(err)
			}
			l, err := lockDataDirWith(dir, "/run/a.sock", tc.write)
			if err != nil {
				t.Fatalf("lock refused: %v", err)
			}
			defer l.release()
			if l.infoErr == nil {
				t.Fatal("the failed write is not reported")
			}
			// The file names nobody rather than a daemon long gone...
			if _, raw := readLockInfo(t, dir); raw != "" {
				t.Fatalf("lock file holds %q", raw)
			}
			// ...and the lock still keeps a second daemon out.
			_, err = lockDataDir(dir, "/run/b.sock")
			if !errors.Is(err, ErrAlreadyRunning) || err.Error() != "aurad is already running on data dir "+dir {
				t.Fatalf("second lock: %v", err)
			}
		})
	}
}

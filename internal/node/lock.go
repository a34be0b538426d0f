package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

const lockFileName = "aurad.lock"

// ErrAlreadyRunning: another aurad holds the data dir or serves the socket.
var ErrAlreadyRunning = errors.New("aurad is already running")

// alreadyRunningError names the daemon that holds a data dir.
type alreadyRunningError struct {
	dir  string
	held lockInfo
}

func (e *alreadyRunningError) Error() string {
	if e.held.PID > 0 {
		return fmt.Sprintf("aurad is already running on data dir %s (pid %d, control socket %s)", e.dir, e.held.PID, e.held.Socket)
	}
	return fmt.Sprintf("aurad is already running on data dir %s", e.dir)
}

func (e *alreadyRunningError) Is(target error) bool { return target == ErrAlreadyRunning }

// lockInfo is written into the lock file so a second daemon can say which one
// holds the data dir.
type lockInfo struct {
	PID    int    `json:"pid"`
	Socket string `json:"socket"`
}

// dataDirLock is an exclusive flock on <datadir>/aurad.lock, released when the
// process dies however it dies, so a crash leaves no stale lock.
type dataDirLock struct{ f *os.File }

func lockDataDir(dir, socket string) (*dataDirLock, error) {
	path := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		e := &alreadyRunningError{dir: dir}
		if b, rerr := os.ReadFile(path); rerr == nil {
			_ = json.Unmarshal(b, &e.held)
		}
		return nil, e
	}
	info, _ := json.Marshal(lockInfo{PID: os.Getpid(), Socket: socket})
	if err := f.Truncate(0); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.WriteAt(append(info, '\n'), 0); err != nil {
		f.Close()
		return nil, err
	}
	return &dataDirLock{f: f}, nil
}

func (l *dataDirLock) release() {
	if l == nil || l.f == nil {
		return
	}
	_ = l.f.Truncate(0)
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	_ = l.f.Close()
	l.f = nil
}

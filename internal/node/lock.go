package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

const lockFileName = "aurad.lock"

// maxLockInfo bounds what is read back from a lock file.
const maxLockInfo = 4096

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
type dataDirLock struct {
	f *os.File
	// infoErr says why the pid and socket could not be written into the lock
	// file (a full disk, typically). The lock holds regardless: the info only
	// lets a second daemon name the first.
	infoErr error
}

func lockDataDir(dir, socket string) (*dataDirLock, error) {
	return lockDataDirWith(dir, socket, writeLockInfo)
}

// lockDataDirWith takes the lock, writing the holder's info with write.
func lockDataDirWith(dir, socket string, write func(f *os.File, info []byte) error) (*dataDirLock, error) {
	path := filepath.Join(dir, lockFileName)
	// O_NOFOLLOW: a link planted in place of the lock file must not make
	// aurad write into a file of someone else's choosing.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock file: %w", err)
	}
	if err := checkOwnerOnly(path, false); err != nil {
		f.Close()
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		e := &alreadyRunningError{dir: dir}
		// Bounded: the info is a line of JSON, and the file could be anything.
		if b, rerr := io.ReadAll(io.LimitReader(f, maxLockInfo)); rerr == nil {
			_ = json.Unmarshal(b, &e.held)
		}
		return nil, e
	}
	l := &dataDirLock{f: f}
	info, _ := json.Marshal(lockInfo{PID: os.Getpid(), Socket: socket})
	if err := write(f, append(info, '\n')); err != nil {
		// On a full disk aurad must still start and serve reads. What the
		// file held names a daemon that is gone; empty, it names none.
		_ = f.Truncate(0)
		l.infoErr = fmt.Errorf("write holder info into %s: %w", path, err)
	}
	return l, nil
}

// writeLockInfo overwrites the file with info. Writing over the old contents
// before trimming them reuses the blocks the file already has, where
// truncating first would need a free block for the new contents.
func writeLockInfo(f *os.File, info []byte) error {
	if _, err := f.WriteAt(info, 0); err != nil {
		return err
	}
	return f.Truncate(int64(len(info)))
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

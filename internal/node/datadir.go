package node

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/aura-p2p/aura/internal/core"
)

// JournalFileName is the journal inside a data dir.
const JournalFileName = "journal.db"

// Errors callers (aurad's commands) branch on.
var (
	// ErrNoJournal: the data dir holds an identity but no journal. Founding
	// a new one there would silently replace a person's relationships.
	ErrNoJournal = fmt.Errorf("data dir has device keys but no journal: %w", core.ErrFailedPrecondition)
	// ErrInitialised: `aurad init` on a data dir that already has a journal.
	ErrInitialised = fmt.Errorf("data dir already holds a journal: %w", core.ErrAlreadyExists)
)

// dataDirState is what a data dir holds before a start.
type dataDirState struct {
	deviceKey, hpkeKey, journal bool
}

// empty is a data dir no aurad has founded anything in: only such a dir is
// set up on a plain start.
func (s dataDirState) empty() bool { return !s.deviceKey && !s.hpkeKey && !s.journal }

// prepareDataDir creates the data dir owner-only if missing and refuses one
// that others could write into or read: another local user who can rename
// files in it can take the journal away or swap in their own socket.
func prepareDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	return checkOwnerOnly(dir, true)
}

// inspectDataDir says which of the founding files a data dir holds, checking
// each that exists is owner-only.
func inspectDataDir(dir string) (dataDirState, error) {
	var st dataDirState
	for _, f := range []struct {
		name string
		has  *bool
	}{{deviceKeyFile, &st.deviceKey}, {hpkeKeyFile, &st.hpkeKey}, {JournalFileName, &st.journal}} {
		path := filepath.Join(dir, f.name)
		_, err := os.Lstat(path)
		switch {
		case errors.Is(err, os.ErrNotExist):
			continue
		case err != nil:
			return st, err
		}
		if err := checkOwnerOnly(path, false); err != nil {
			return st, err
		}
		*f.has = true
	}
	return st, nil
}

// refuseDamagedDataDir turns a data dir that lost part of itself into one
// clear refusal naming what is missing and how to get it back.
func refuseDamagedDataDir(dir string, st dataDirState) error {
	switch {
	case st.empty():
		return nil
	case (st.deviceKey || st.hpkeKey) && !st.journal:
		return fmt.Errorf("%s: %s is missing (was it moved or deleted?); restore it with `aurad restore --from BACKUP --datadir %s`, "+
			"or, to start over as a new account with these keys, run `aurad init --datadir %s`: %w",
			dir, JournalFileName, dir, dir, ErrNoJournal)
	case !st.deviceKey:
		return fmt.Errorf("%s: holds %s but %s is missing; put the device key back from your key backup (it is this device's identity and no journal replaces it): %w",
			dir, JournalFileName, deviceKeyFile, core.ErrFailedPrecondition)
	}
	return nil
}

// checkOwnerOnly refuses a file (or, with dir, a directory) that is not owned
// by this process's user or that group or others may read or write: the
// same rule, and the same message, as for the device key.
func checkOwnerOnly(path string, dir bool) error {
	return checkPrivate(path, dir, false)
}

// checkSecretFile is checkOwnerOnly for secrets an operator provisions
// outside the data dir (the control token, the TLS key): root may own them
// too, as files in /etc usually are.
func checkSecretFile(path string) error { return checkPrivate(path, false, true) }

func checkPrivate(path string, dir, rootMayOwn bool) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	kind, fix := "file", "chmod 600"
	if dir {
		kind, fix = "directory", "chmod 700"
	}
	switch {
	case fi.Mode()&os.ModeSymlink != 0 && !dir && !rootMayOwn:
		return fmt.Errorf("%s is a symbolic link; aurad's state files must be plain files in the data dir: %w", path, core.ErrFailedPrecondition)
	case fi.Mode()&os.ModeSymlink != 0:
		// A data dir or provisioned secret given as a symlink is the
		// operator's choice; check where it points.
		if fi, err = os.Stat(path); err != nil {
			return err
		}
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() && !(rootMayOwn && st.Uid == 0) {
		return fmt.Errorf("%s is owned by uid %d, not by aurad's user (uid %d) (chown it, or run aurad as its owner): %w",
			path, st.Uid, os.Geteuid(), core.ErrFailedPrecondition)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%s has mode %04o; this %s must be accessible by its owner only (%s %s): %w",
			path, fi.Mode().Perm(), kind, fix, path, core.ErrFailedPrecondition)
	}
	return nil
}

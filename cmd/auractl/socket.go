package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Before talking to a control socket, auractl makes sure that the daemon
// behind it is one the user meant: whoever can replace the socket can answer
// in aurad's name and read what auractl sends. So the socket must be owned by
// the user or root, and no directory on its path may be writable by anyone but
// its owner (unless sticky, as /tmp is, where only an entry's owner may
// replace it), nor owned by a third user.
//
// One other owner is accepted: a service account whose directory root made
// for it, as systemd's RuntimeDirectory= makes /run/aurad for User=aurad. The
// directory above the service's must then be root's and writable by no one
// else, so the service directory cannot be an impostor's.

// unsafeSocket refuses the socket; PermissionDenied gives exit code 9.
func unsafeSocket(sock, format string, args ...any) error {
	return status.Errorf(codes.PermissionDenied, "refusing control socket %s: %s", sock, fmt.Sprintf(format, args...))
}

// checkSocket vets sock, an absolute path, for the user uid.
func checkSocket(sock string, uid int) error {
	resolved, err := filepath.EvalSymlinks(sock)
	if err != nil {
		return statError(sock, err)
	}
	fi, err := os.Lstat(resolved)
	if err != nil {
		return statError(sock, err)
	}
	owner := ownerOf(fi)
	trusted := func(u int) bool { return u == uid || u == 0 }
	service := -1
	if !trusted(owner) {
		if !serviceDir(filepath.Dir(resolved), owner) {
			return unsafeSocket(sock, "it is owned by %s, neither you (%s) nor root", userName(owner), userName(uid))
		}
		service = owner
	}
	// The directories the path names and the ones its symlinks lead to.
	dirs := ancestors(filepath.Dir(sock))
	if resolved != sock {
		dirs = append(dirs, ancestors(filepath.Dir(resolved))...)
	}
	for _, d := range dirs {
		di, err := os.Lstat(d)
		if err != nil {
			return statError(sock, err)
		}
		if di.Mode()&fs.ModeSymlink != 0 {
			// Only its directory can change a link, and that is checked.
			continue
		}
		mode := di.Mode()
		if mode.Perm()&0o022 != 0 && mode&fs.ModeSticky == 0 {
			return unsafeSocket(sock, "directory %s (mode %04o) is writable by others than its owner, who could have replaced the socket",
				d, mode.Perm())
		}
		if o := ownerOf(di); !trusted(o) && !(o == service && d == filepath.Dir(resolved)) {
			return unsafeSocket(sock, "directory %s is owned by %s, neither you (%s) nor root, who could have replaced the socket",
				d, userName(o), userName(uid))
		}
	}
	return nil
}

// statError explains why the socket's path could not be inspected, in the
// words a failed connection would have used.
func statError(sock string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &notRunningError{socket: sock}
	case errors.Is(err, fs.ErrPermission):
		return status.Errorf(codes.PermissionDenied, "cannot connect to aurad at %s: permission denied", sock)
	}
	return fmt.Errorf("control socket %s: %w", sock, err)
}

// serviceDir reports whether dir belongs to owner and root made it: dir is
// owner's and its parent root's, writable by no one else, sticky or not.
func serviceDir(dir string, owner int) bool {
	di, err := os.Lstat(dir)
	if err != nil || !di.IsDir() || ownerOf(di) != owner {
		return false
	}
	pi, err := os.Lstat(filepath.Dir(dir))
	return err == nil && pi.IsDir() && ownerOf(pi) == 0 && pi.Mode().Perm()&0o022 == 0
}

// ancestors lists dir and every directory above it, top first.
func ancestors(dir string) []string {
	var out []string
	for {
		out = append([]string{dir}, out...)
		parent := filepath.Dir(dir)
		if parent == dir {
			return out
		}
		dir = parent
	}
}

func ownerOf(fi fs.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	// No owner to check on this system: treat as root's, so only the
	// permission bits decide.
	return 0
}

// userName shows a uid as "name (uid N)", or "uid N" for an unknown user.
func userName(uid int) string {
	id := strconv.Itoa(uid)
	if u, err := user.LookupId(id); err == nil {
		return u.Username + " (uid " + id + ")"
	}
	return "uid " + id
}

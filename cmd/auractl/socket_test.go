package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// listenAt creates a unix socket at path, kept until the test ends.
func listenAt(t *testing.T, path string) {
	t.Helper()
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func chown(t *testing.T, path string, uid int) {
	t.Helper()
	if err := os.Lchown(path, uid, -1); err != nil {
		t.Fatal(err)
	}
}

// otherUser is a uid that is neither the test's nor root. Files can be given
// to it only by root; for others, vetting as that user makes the test's own
// files someone else's.
const otherUser = 4242

func TestCheckSocket(t *testing.T) {
	me := os.Geteuid()
	tests := []struct {
		name string
		// setup arranges dir (0700, the test's) and returns the socket path
		// to check and the uid to check it for.
		setup func(t *testing.T, dir string) (sock string, uid int)
		want  string // "" accepts
	}{
		{"own socket in own directory", func(t *testing.T, dir string) (string, int) {
			return filepath.Join(dir, "s"), me
		}, ""},
		{"group-shared socket", func(t *testing.T, dir string) (string, int) {
			chmod(t, filepath.Join(dir, "s"), 0o660)
			return filepath.Join(dir, "s"), me
		}, ""},
		{"group-writable directory", func(t *testing.T, dir string) (string, int) {
			chmod(t, dir, 0o770)
			return filepath.Join(dir, "s"), me
		}, "directory DIR (mode 0770) is writable by others than its owner, who could have replaced the socket"},
		{"world-writable directory", func(t *testing.T, dir string) (string, int) {
			chmod(t, dir, 0o777)
			return filepath.Join(dir, "s"), me
		}, "directory DIR (mode 0777) is writable by others than its owner"},
		{"sticky world-writable directory", func(t *testing.T, dir string) (string, int) {
			chmod(t, dir, 0o777|os.ModeSticky)
			return filepath.Join(dir, "s"), me
		}, ""},
		{"socket of another user", func(t *testing.T, dir string) (string, int) {
			sock := filepath.Join(dir, "s")
			if me != 0 {
				return sock, otherUser
			}
			chown(t, sock, otherUser)
			return sock, me
		}, "it is owned by"},
		{"link into a writable directory", func(t *testing.T, dir string) (string, int) {
			open := filepath.Join(dir, "open")
			if err := os.Mkdir(open, 0o700); err != nil {
				t.Fatal(err)
			}
			listenAt(t, filepath.Join(open, "real"))
			chmod(t, open, 0o777)
			link := filepath.Join(dir, "link")
			if err := os.Symlink(filepath.Join(open, "real"), link); err != nil {
				t.Fatal(err)
			}
			return link, me
		}, "directory DIR/open (mode 0777) is writable by others than its owner"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := shortTempDir(t)
			listenAt(t, filepath.Join(dir, "s"))
			sock, uid := tc.setup(t, dir)
			err := checkSocket(sock, uid)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			st, ok := status.FromError(err)
			want := "refusing control socket " + sock + ": " + strings.ReplaceAll(tc.want, "DIR", dir)
			if !ok || st.Code() != codes.PermissionDenied || !strings.HasPrefix(st.Message(), want) {
				t.Fatalf("got %v, want PermissionDenied %q", err, want)
			}
		})
	}
}

// A service account's socket, in the directory root made for it (systemd's
// RuntimeDirectory=), is accepted; the same in a directory anyone could have
// made is not.
func TestCheckSocketServiceDirectory(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files to a service account")
	}
	for _, tc := range []struct {
		name       string
		parentMode os.FileMode
		ok         bool
	}{
		{"made by root", 0o755, true},
		{"made in a public directory", 0o777 | os.ModeSticky, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent := shortTempDir(t)
			chmod(t, parent, tc.parentMode)
			svc := filepath.Join(parent, "aurad")
			if err := os.Mkdir(svc, 0o750); err != nil {
				t.Fatal(err)
			}
			sock := filepath.Join(svc, "aurad.sock")
			listenAt(t, sock)
			chmod(t, sock, 0o660)
			chown(t, svc, otherUser)
			chown(t, sock, otherUser)
			err := checkSocket(sock, 0)
			if tc.ok != (err == nil) {
				t.Fatalf("checkSocket: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestUnsafeSocketIsRefusedBeforeConnecting(t *testing.T) {
	d := startDaemon(t)
	dir := filepath.Dir(d.socket)
	chmod(t, dir, 0o777)
	r := d.run(t, "", "status")
	want := "Error: permission denied: refusing control socket " + d.socket + ": directory " + dir +
		" (mode 0777) is writable by others than its owner, who could have replaced the socket\n"
	if r.code != ExitPermissionDenied || r.err != want || r.out != "" {
		t.Fatalf("exit %d stderr %q stdout %q; want exit %d stderr %q", r.code, r.err, r.out, ExitPermissionDenied, want)
	}
	chmod(t, dir, 0o700)
	mustOK(t, d.run(t, "", "status"))
}

package main

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	crdtv1 "github.com/aura-p2p/aura/api/proto/aura/crdt/v1"
)

// Text that aurad stored before names were checked, or that came from a peer,
// reaches the terminal escaped: a bidi override cannot disguise a name, an
// escape sequence cannot clear the screen.
func TestHiddenCharactersFromTheDaemonAreEscaped(t *testing.T) {
	d := startDaemon(t)
	d.crdt.objects["tags"] = &crdtv1.Object{
		Name: "tags", Kind: crdtv1.ObjectKind_OBJECT_KIND_SET,
		Elements: []string{"report\u202Etxt.exe", "a\x1b[2Jb", "plain"},
	}
	r := d.run(t, "", "crdt", "set", "get", "tags")
	mustOK(t, r)
	if want := `report\u202etxt.exe` + "\n" + `a\u001b[2Jb` + "\nplain\n"; r.out != want {
		t.Errorf("table %q, want %q", r.out, want)
	}
	// JSON is for programs and stays exact.
	r = d.run(t, "", "-o", "json", "crdt", "set", "get", "tags")
	mustOK(t, r)
	if !strings.Contains(r.out, "report\u202etxt.exe") {
		t.Errorf("json lost the stored text: %s", r.out)
	}

	d.journal.err = status.Error(codes.NotFound, "object report\u202Etxt.exe")
	r = d.run(t, "", "fact", "append", "--type", "t", "--payload", "x")
	if want := `Error: not found: object report\u202etxt.exe` + "\n"; r.code != ExitNotFound || r.err != want {
		t.Errorf("exit %d stderr %q, want %q", r.code, r.err, want)
	}
}

package main

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	treev1 "github.com/aura-p2p/aura/api/proto/aura/tree/v1"
)

func TestTreeKey(t *testing.T) {
	key := &treev1.KeyResponse{Epoch: 3, Root: strings.Repeat("c3", 32), Fingerprint: strings.Repeat("f0", 16)}
	f := &fakeTree{key: key}
	sock, _ := startTree(t, f, &fakeStatus{})

	r := runCtl(t, nil, nil, "--socket", sock, "tree", "key")
	mustOK(t, r)
	want := "epoch:            3\n" +
		"root commitment:  " + strings.Repeat("c3", 32) + "\n" +
		"fingerprint:      " + strings.Repeat("f0", 16) + "\n"
	if r.out != want {
		t.Errorf("table\n%s\nwant\n%s", r.out, want)
	}
	r = runCtl(t, nil, nil, "--socket", sock, "-o", "json", "tree", "key")
	mustOK(t, r)
	if r.out != protoJSON(t, key) {
		t.Errorf("json output\n%s\nwant\n%s", r.out, protoJSON(t, key))
	}
	if r := runCtl(t, nil, nil, "--socket", sock, "tree", "key", "extra"); r.code != ExitUsage {
		t.Errorf("an argument: exit %d, want %d", r.code, ExitUsage)
	}
	f.mu.Lock()
	if f.keys != 2 {
		t.Errorf("%d Key calls, want the 2 valid ones", f.keys)
	}
	f.err = status.Error(codes.FailedPrecondition, "this device cannot derive the key of epoch 3")
	f.mu.Unlock()
	r = runCtl(t, nil, nil, "--socket", sock, "tree", "key")
	if line := "Error: failed precondition: this device cannot derive the key of epoch 3\n"; r.code != ExitFailedPrecondition || r.err != line || r.out != "" {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit %d, stderr %q", r.code, r.out, r.err, ExitFailedPrecondition, line)
	}
}

// The new state's epoch and root, or with -o json the whole view.
func TestTreeUpdate(t *testing.T) {
	after := sampleTreeView()
	after.Epoch, after.RootCommitment = 3, strings.Repeat("c3", 32)
	f := &fakeTree{after: after}
	sock, _ := startTree(t, f, &fakeStatus{})

	r := runCtl(t, nil, nil, "--socket", sock, "tree", "update")
	mustOK(t, r)
	want := "epoch:            3\n" +
		"root commitment:  " + strings.Repeat("c3", 32) + "\n"
	if r.out != want {
		t.Errorf("table\n%s\nwant\n%s", r.out, want)
	}
	r = runCtl(t, nil, nil, "--socket", sock, "-o", "json", "tree", "update")
	mustOK(t, r)
	if want := protoJSON(t, &treev1.UpdatePathResponse{View: after}); r.out != want {
		t.Errorf("json output\n%s\nwant\n%s", r.out, want)
	}
	if r := runCtl(t, nil, nil, "--socket", sock, "tree", "update", "now"); r.code != ExitUsage {
		t.Errorf("an argument: exit %d, want %d", r.code, ExitUsage)
	}
	f.mu.Lock()
	if f.updates != 2 {
		t.Errorf("%d UpdatePath calls, want the 2 valid ones", f.updates)
	}
	f.err = status.Error(codes.FailedPrecondition, "the account's policy needs several devices to attest a change")
	f.mu.Unlock()
	r = runCtl(t, nil, nil, "--socket", sock, "tree", "update")
	if line := "Error: failed precondition: the account's policy needs several devices to attest a change\n"; r.code != ExitFailedPrecondition || r.err != line || r.out != "" {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit %d, stderr %q", r.code, r.out, r.err, ExitFailedPrecondition, line)
	}
}

package journal

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/aura-p2p/aura/internal/core"
)

// A genesis names who may write to its namespace; if any device could found a
// namespace it is not a member of, it could plant a namespace in someone
// else's name. Both the local and the remote path must refuse it, store
// nothing, and leave the namespace free for its real members.
func TestGenesisAuthorMustBeAMember(t *testing.T) {
	ctx := context.Background()
	member, stranger := seededSigner(1), seededSigner(9)
	g := Genesis{Kind: core.NamespaceAuthority, Threshold: 1, Members: []Member{{Device: member.DeviceID()}}}
	payload, err := g.Encode()
	if err != nil {
		t.Fatal(err)
	}
	ns := NamespaceOf(core.NamespaceAuthority, payload)

	tests := []struct {
		name   string
		append func(j *Journal) error
	}{
		{"local", func(j *Journal) error {
			_, _, err := j.AppendLocal(ctx, stranger, Draft{Namespace: ns, TypeID: TypeGenesis, Payload: payload})
			return err
		}},
		{"remote", func(j *Journal) error {
			sf, err := SignFact(stranger, Fact{Namespace: ns, TypeID: TypeGenesis, Author: stranger.DeviceID(), Lamport: 1, Payload: payload})
			if err != nil {
				t.Fatal(err)
			}
			_, err = j.Append(ctx, sf)
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j := open(t, filepath.Join(t.TempDir(), "journal.db"))
			defer j.Close()
			if err := tc.append(j); !errors.Is(err, core.ErrPermissionDenied) {
				t.Fatalf("genesis by a non-member: %v, want %v", err, core.ErrPermissionDenied)
			}
			st, err := j.Stats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.Facts != 0 {
				t.Fatalf("refused genesis stored %d facts", st.Facts)
			}
			if _, err := j.Members(ctx, ns); !errors.Is(err, core.ErrNotFound) {
				t.Fatalf("members of the refused namespace: %v, want %v", err, core.ErrNotFound)
			}
			// The namespace is still free for its real member to found.
			if _, _, err := j.AppendLocal(ctx, member, Draft{Namespace: ns, TypeID: TypeGenesis, Payload: payload}); err != nil {
				t.Fatalf("member's genesis after the refusal: %v", err)
			}
		})
	}
}

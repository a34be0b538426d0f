package transport_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/transport"
)

// staticMembers answers membership from a fixed table.
type staticMembers map[core.Namespace][]core.DeviceID

func (m staticMembers) Members(_ context.Context, ns core.Namespace) ([]core.DeviceID, error) {
	ms, ok := m[ns]
	if !ok {
		return nil, core.ErrNotFound
	}
	return ms, nil
}

func TestMemberAuthorizerChecksCapabilities(t *testing.T) {
	self, peer, stranger := core.DeviceID{1}, core.DeviceID{2}, core.DeviceID{3}
	link := core.LinkContext(self, peer)
	contact, group := core.ContextID{10}, core.ContextID{11}
	members := staticMembers{
		core.ContextNamespace(contact): {self, peer},
		core.ContextNamespace(group):   {self, peer, stranger},
	}
	a := transport.NewMemberAuthorizer(self, members)
	a.Allow("msg", core.ClassLink, core.ClassContact)
	a.Grant("msg", "demo:relay", "")
	a.Allow("other", core.ClassLink, core.ClassContact, core.ClassGroup)
	a.Grant("other", "other:only")
	a.Grant("unallowed", "unallowed:cap")

	tests := []struct {
		name       string
		c          core.ContextID
		peer       core.DeviceID
		typ, cap   string
		wantClass  core.Class
		wantErr    error
		wantDenied bool // ErrCapabilityDenied, which the receive path counts apart
	}{
		{"no capability claimed", link, peer, "msg", "", core.ClassLink, nil, false},
		{"granted capability", link, peer, "msg", "demo:relay", core.ClassLink, nil, false},
		{"granted in a contact context", contact, peer, "msg", "demo:relay", core.ClassContact, nil, false},
		{"capability not granted at all", link, peer, "msg", "admin:all", 0, transport.ErrCapabilityDenied, true},
		{"capability of another type", link, peer, "msg", "other:only", 0, transport.ErrCapabilityDenied, true},
		{"capability of an unallowed type", link, peer, "unallowed", "unallowed:cap", 0, transport.ErrTypeNotAllowed, false},
		{"type not allowed in the class", group, peer, "msg", "demo:relay", 0, transport.ErrTypeNotAllowed, false},
		{"other type in a group", group, stranger, "other", "other:only", core.ClassGroup, nil, false},
		{"not a member", contact, stranger, "msg", "demo:relay", 0, transport.ErrNotMember, false},
		{"unknown context", core.ContextID{99}, peer, "msg", "", 0, core.ErrNotFound, false},
	}
	ctx := context.Background()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// The same rule holds both ways: what this device may send is
			// what it accepts from a peer claiming the same.
			for dir, check := range map[string]func() (core.Class, error){
				"send": func() (core.Class, error) {
					return a.Authorize(ctx, tc.c, tc.peer, tc.typ, transport.Claim{Capability: tc.cap})
				},
				"receive": func() (core.Class, error) {
					return a.AuthorizeIncoming(ctx, tc.c, tc.peer, tc.typ, transport.Claim{Capability: tc.cap})
				},
			} {
				class, err := check()
				if tc.wantErr == nil {
					if err != nil || class != tc.wantClass {
						t.Fatalf("%s: class %v, err %v; want %v", dir, class, err, tc.wantClass)
					}
					continue
				}
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("%s: err %v, want %v", dir, err, tc.wantErr)
				}
				if errors.Is(err, transport.ErrCapabilityDenied) != tc.wantDenied {
					t.Fatalf("%s: err %v: capability denial %v, want %v", dir, err, !tc.wantDenied, tc.wantDenied)
				}
				if errors.Is(err, transport.ErrCapabilityDenied) && !errors.Is(err, core.ErrPermissionDenied) {
					t.Fatalf("%s: %v does not map to PermissionDenied", dir, err)
				}
			}
		})
	}
}

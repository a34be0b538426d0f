package crdtrpc

import (
	"context"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"

	crdtv1 "github.com/aura-p2p/aura/api/proto/aura/crdt/v1"
	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/crdt"
	"github.com/aura-p2p/aura/internal/rpc/rpctest"
)

// fakeObjects records what reaches it and fails every call with err.
type fakeObjects struct {
	err   error
	calls int
	ns    core.Namespace
	op    crdt.Op
	limit int
}

func (f *fakeObjects) Update(_ context.Context, ns core.Namespace, name string, op crdt.Op) (core.FactID, crdt.Object, error) {
	f.calls++
	f.ns, f.op = ns, op
	return core.FactID{1}, crdt.Object{Namespace: ns, Name: name}, f.err
}

func (f *fakeObjects) Get(_ context.Context, ns core.Namespace, name string) (crdt.Object, error) {
	f.calls++
	f.ns = ns
	return crdt.Object{Namespace: ns, Name: name}, f.err
}

func (f *fakeObjects) List(_ context.Context, ns core.Namespace, _ string, limit int) ([]crdt.Summary, string, error) {
	f.calls++
	f.ns, f.limit = ns, limit
	return nil, "", f.err
}

func (f *fakeObjects) Watch(_ context.Context, ns core.Namespace, _ string, _ func(crdt.Object, core.FactID) error) error {
	f.calls++
	f.ns = ns
	return f.err
}

type watchStream struct{ crdtv1.CrdtService_WatchServer }

func (watchStream) Context() context.Context { return context.Background() }

var defaultNS = core.ContextNamespace(core.ContextID{1})

// Every method: input refused before the store sees it, and the store's
// errors, each with the code the caller gets.
func TestValidationAndCodes(t *testing.T) {
	ctx := context.Background()
	add := &crdtv1.UpdateRequest_CounterAdd{CounterAdd: &crdtv1.CounterAdd{Delta: 1}}
	tests := []struct {
		name      string
		call      func(s *Service) error
		domainErr error
		code      codes.Code
		reaches   bool
	}{
		{"update: no operation", func(s *Service) error {
			_, err := s.Update(ctx, &crdtv1.UpdateRequest{Name: "n"})
			return err
		}, nil, codes.InvalidArgument, false},
		{"update: garbage namespace", func(s *Service) error {
			_, err := s.Update(ctx, &crdtv1.UpdateRequest{Name: "n", Namespace: "group/1", Op: add})
			return err
		}, nil, codes.InvalidArgument, false},
		{"update: hidden character in name", func(s *Service) error {
			_, err := s.Update(ctx, &crdtv1.UpdateRequest{Name: "a\u202eb", Op: add})
			return err
		}, nil, codes.InvalidArgument, false},
		{"update: invalid UTF-8 name", func(s *Service) error {
			_, err := s.Update(ctx, &crdtv1.UpdateRequest{Name: "a\xffb", Op: add})
			return err
		}, nil, codes.InvalidArgument, false},
		{"update: wrong kind", func(s *Service) error {
			_, err := s.Update(ctx, &crdtv1.UpdateRequest{Name: "n", Op: add})
			return err
		}, fmt.Errorf("n is a set: %w", core.ErrFailedPrecondition), codes.FailedPrecondition, true},
		{"update: ok", func(s *Service) error {
			_, err := s.Update(ctx, &crdtv1.UpdateRequest{Name: "n", Op: add})
			return err
		}, nil, codes.OK, true},
		{"get: garbage namespace", func(s *Service) error {
			_, err := s.Get(ctx, &crdtv1.GetRequest{Name: "n", Namespace: "nope"})
			return err
		}, nil, codes.InvalidArgument, false},
		{"get: missing object", func(s *Service) error {
			_, err := s.Get(ctx, &crdtv1.GetRequest{Name: "n"})
			return err
		}, fmt.Errorf("object: %w", core.ErrNotFound), codes.NotFound, true},
		{"list: garbage namespace", func(s *Service) error {
			_, err := s.List(ctx, &crdtv1.ListRequest{Namespace: "nope"})
			return err
		}, nil, codes.InvalidArgument, false},
		{"list: bad page token", func(s *Service) error {
			_, err := s.List(ctx, &crdtv1.ListRequest{PageToken: "x"})
			return err
		}, fmt.Errorf("page token: %w", core.ErrInvalidArgument), codes.InvalidArgument, true},
		{"watch: garbage namespace", func(s *Service) error {
			return s.Watch(&crdtv1.WatchRequest{Name: "n", Namespace: "nope"}, watchStream{})
		}, nil, codes.InvalidArgument, false},
		{"watch: store refuses", func(s *Service) error {
			return s.Watch(&crdtv1.WatchRequest{Name: "n"}, watchStream{})
		}, fmt.Errorf("too many watches: %w", core.ErrResourceExhausted), codes.ResourceExhausted, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := &fakeObjects{err: tc.domainErr}
			err := tc.call(New(o, defaultNS))
			rpctest.CheckOutcome(t, err, tc.code, o.calls, tc.reaches, tc.domainErr)
		})
	}
}

// Each operation of the request reaches the store as the same crdt.Op, in
// the default namespace when none is named.
func TestUpdateOperations(t *testing.T) {
	tests := []struct {
		name string
		req  *crdtv1.UpdateRequest
		want crdt.Op
	}{
		{"counter add", &crdtv1.UpdateRequest{Name: "n", Op: &crdtv1.UpdateRequest_CounterAdd{CounterAdd: &crdtv1.CounterAdd{Delta: -3}}}, crdt.Op{Type: crdt.OpCounterAdd, Amount: -3}},
		{"register set", &crdtv1.UpdateRequest{Name: "n", Op: &crdtv1.UpdateRequest_RegisterSet{RegisterSet: &crdtv1.RegisterSet{Value: "v"}}}, crdt.Op{Type: crdt.OpRegisterSet, Value: "v"}},
		{"set add", &crdtv1.UpdateRequest{Name: "n", Op: &crdtv1.UpdateRequest_SetAdd{SetAdd: &crdtv1.SetAdd{Element: "e"}}}, crdt.Op{Type: crdt.OpSetAdd, Element: "e"}},
		{"set remove", &crdtv1.UpdateRequest{Name: "n", Op: &crdtv1.UpdateRequest_SetRemove{SetRemove: &crdtv1.SetRemove{Element: "e"}}}, crdt.Op{Type: crdt.OpSetRemove, Element: "e"}},
		{"map set", &crdtv1.UpdateRequest{Name: "n", Op: &crdtv1.UpdateRequest_MapSet{MapSet: &crdtv1.MapSet{Key: "k", Value: "v"}}}, crdt.Op{Type: crdt.OpMapSet, Element: "k", Value: "v"}},
		{"map remove", &crdtv1.UpdateRequest{Name: "n", Op: &crdtv1.UpdateRequest_MapRemove{MapRemove: &crdtv1.MapRemove{Key: "k"}}}, crdt.Op{Type: crdt.OpMapRemove, Element: "k"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := &fakeObjects{}
			if _, err := New(o, defaultNS).Update(context.Background(), tc.req); err != nil {
				t.Fatal(err)
			}
			if o.op != tc.want || o.ns != defaultNS {
				t.Fatalf("store got %+v in %s, want %+v in %s", o.op, o.ns, tc.want, defaultNS)
			}
		})
	}
}

// An unset page size is 100; a larger one than 1000 is cut to 1000.
func TestListPageSize(t *testing.T) {
	for _, tc := range []struct{ asked, want int }{{0, 100}, {5, 5}, {1000, 1000}, {5000, 1000}} {
		o := &fakeObjects{}
		if _, err := New(o, defaultNS).List(context.Background(), &crdtv1.ListRequest{PageSize: uint32(tc.asked)}); err != nil {
			t.Fatal(err)
		}
		if o.limit != tc.want {
			t.Errorf("page size %d: store asked for %d, want %d", tc.asked, o.limit, tc.want)
		}
	}
}

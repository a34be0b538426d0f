// Package crdtrpc adapts CRDT objects to aura.crdt.v1.CrdtService.
package crdtrpc

import (
	"context"
	"fmt"

	"google.golang.org/grpc"

	crdtv1 "github.com/aura-p2p/aura/api/proto/aura/crdt/v1"
	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/crdt"
	"github.com/aura-p2p/aura/internal/rpc"
	"github.com/aura-p2p/aura/internal/rpc/safetext"
)

// Objects is what the service needs from the object store.
type Objects interface {
	Update(ctx context.Context, ns core.Namespace, name string, op crdt.Op) (core.FactID, crdt.Object, error)
	Get(ctx context.Context, ns core.Namespace, name string) (crdt.Object, error)
	List(ctx context.Context, ns core.Namespace, pageToken string, limit int) ([]crdt.Summary, string, error)
	Watch(ctx context.Context, ns core.Namespace, name string, send func(crdt.Object, core.FactID) error) error
}

// Service implements CrdtService.
type Service struct {
	crdtv1.UnsafeCrdtServiceServer
	o         Objects
	defaultNS core.Namespace
}

// New returns the service; requests without a namespace use defaultNS.
func New(o Objects, defaultNS core.Namespace) *Service { return &Service{o: o, defaultNS: defaultNS} }

// Register adds the service to s.
func (s *Service) Register(g *grpc.Server) { crdtv1.RegisterCrdtServiceServer(g, s) }

// Permissions of the service's methods.
func Permissions() rpc.Permissions {
	return rpc.Permissions{
		crdtv1.CrdtService_Update_FullMethodName: rpc.Write,
		crdtv1.CrdtService_Get_FullMethodName:    rpc.Read,
		crdtv1.CrdtService_List_FullMethodName:   rpc.Read,
		crdtv1.CrdtService_Watch_FullMethodName:  rpc.Read,
	}
}

func (s *Service) namespace(ns string) (core.Namespace, error) {
	if ns == "" {
		return s.defaultNS, nil
	}
	return core.ParseNamespace(ns)
}

func (s *Service) Update(ctx context.Context, req *crdtv1.UpdateRequest) (*crdtv1.UpdateResponse, error) {
	ns, err := s.namespace(req.GetNamespace())
	if err != nil {
		return nil, err
	}
	var op crdt.Op
	switch x := req.GetOp().(type) {
	case *crdtv1.UpdateRequest_CounterAdd:
		op = crdt.Op{Type: crdt.OpCounterAdd, Amount: x.CounterAdd.GetDelta()}
	case *crdtv1.UpdateRequest_RegisterSet:
		op = crdt.Op{Type: crdt.OpRegisterSet, Value: x.RegisterSet.GetValue()}
	case *crdtv1.UpdateRequest_SetAdd:
		op = crdt.Op{Type: crdt.OpSetAdd, Element: x.SetAdd.GetElement()}
	case *crdtv1.UpdateRequest_SetRemove:
		op = crdt.Op{Type: crdt.OpSetRemove, Element: x.SetRemove.GetElement()}
	case *crdtv1.UpdateRequest_MapSet:
		op = crdt.Op{Type: crdt.OpMapSet, Element: x.MapSet.GetKey(), Value: x.MapSet.GetValue()}
	case *crdtv1.UpdateRequest_MapRemove:
		op = crdt.Op{Type: crdt.OpMapRemove, Element: x.MapRemove.GetKey()}
	default:
		return nil, fmt.Errorf("update names no operation: %w", core.ErrInvalidArgument)
	}
	// Only Update checks: it is where a name is chosen. Get and Watch still
	// reach objects a peer or an older aurad named with hidden characters.
	if err := safetext.CheckName("object name", req.GetName()); err != nil {
		return nil, err
	}
	id, obj, err := s.o.Update(ctx, ns, req.GetName(), op)
	if err != nil {
		return nil, err
	}
	return &crdtv1.UpdateResponse{FactId: id.String(), Object: toProto(obj)}, nil
}

func (s *Service) Get(ctx context.Context, req *crdtv1.GetRequest) (*crdtv1.GetResponse, error) {
	ns, err := s.namespace(req.GetNamespace())
	if err != nil {
		return nil, err
	}
	obj, err := s.o.Get(ctx, ns, req.GetName())
	if err != nil {
		return nil, err
	}
	return &crdtv1.GetResponse{Object: toProto(obj)}, nil
}

func (s *Service) List(ctx context.Context, req *crdtv1.ListRequest) (*crdtv1.ListResponse, error) {
	ns, err := s.namespace(req.GetNamespace())
	if err != nil {
		return nil, err
	}
	size := int(req.GetPageSize())
	if size == 0 {
		size = 100
	}
	size = min(size, 1000)
	objs, next, err := s.o.List(ctx, ns, req.GetPageToken(), size)
	if err != nil {
		return nil, err
	}
	resp := &crdtv1.ListResponse{NextPageToken: next}
	for _, o := range objs {
		resp.Objects = append(resp.Objects, &crdtv1.ObjectSummary{Name: o.Name, Kind: kindToProto(o.Kind), Updates: o.Updates})
	}
	return resp, nil
}

func (s *Service) Watch(req *crdtv1.WatchRequest, stream crdtv1.CrdtService_WatchServer) error {
	ns, err := s.namespace(req.GetNamespace())
	if err != nil {
		return err
	}
	return s.o.Watch(stream.Context(), ns, req.GetName(), func(o crdt.Object, id core.FactID) error {
		resp := &crdtv1.WatchResponse{Object: toProto(o)}
		if id != (core.FactID{}) {
			resp.FactId = id.String()
		}
		return stream.Send(resp)
	})
}

func kindToProto(k crdt.Kind) crdtv1.ObjectKind {
	switch k {
	case crdt.KindCounter:
		return crdtv1.ObjectKind_OBJECT_KIND_COUNTER
	case crdt.KindRegister:
		return crdtv1.ObjectKind_OBJECT_KIND_REGISTER
	case crdt.KindSet:
		return crdtv1.ObjectKind_OBJECT_KIND_SET
	case crdt.KindMap:
		return crdtv1.ObjectKind_OBJECT_KIND_MAP
	}
	return crdtv1.ObjectKind_OBJECT_KIND_UNSPECIFIED
}

func toProto(o crdt.Object) *crdtv1.Object {
	p := &crdtv1.Object{
		Namespace: o.Namespace.String(), Name: o.Name, Kind: kindToProto(o.Kind),
		Counter: o.Counter, Register: o.Register, Elements: o.Elements, Updates: o.Updates,
	}
	for _, e := range o.Entries {
		p.Entries = append(p.Entries, &crdtv1.MapEntry{Key: e.Key, Value: e.Value})
	}
	return p
}

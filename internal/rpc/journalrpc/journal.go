// Package journalrpc adapts the journal to aura.journal.v1.JournalService.
package journalrpc

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	journalv1 "github.com/aura-p2p/aura/api/proto/aura/journal/v1"
	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
	"github.com/aura-p2p/aura/internal/rpc"
)

// Journal is what the service needs from the fact store.
type Journal interface {
	AppendLocal(ctx context.Context, signer journal.Signer, d journal.Draft) (*journal.SignedFact, journal.Committed, error)
	Get(ctx context.Context, id core.FactID) (journal.StoredFact, error)
	FactIDsWithPrefix(ctx context.Context, prefix string, limit int) ([]core.FactID, error)
	List(ctx context.Context, q journal.ListQuery) ([]journal.StoredFact, string, error)
	Watch(ctx context.Context, opts journal.WatchOptions) (*journal.Subscription, error)
}

// Service implements JournalService.
type Service struct {
	journalv1.UnsafeJournalServiceServer
	j         Journal
	signer    journal.Signer
	defaultNS core.Namespace
}

// New returns the service; appends are signed by signer and default to defaultNS.
func New(j Journal, signer journal.Signer, defaultNS core.Namespace) *Service {
	return &Service{j: j, signer: signer, defaultNS: defaultNS}
}

// Register adds the service to s.
func (s *Service) Register(g *grpc.Server) { journalv1.RegisterJournalServiceServer(g, s) }

// Permissions of the service's methods.
func Permissions() rpc.Permissions {
	return rpc.Permissions{
		journalv1.JournalService_AppendFact_FullMethodName: rpc.Write,
		journalv1.JournalService_GetFact_FullMethodName:    rpc.Read,
		journalv1.JournalService_ListFacts_FullMethodName:  rpc.Read,
		journalv1.JournalService_WatchFacts_FullMethodName: rpc.Read,
	}
}

// ParseNamespace parses an optional namespace; empty yields def.
func ParseNamespace(s string, def core.Namespace) (core.Namespace, error) {
	if s == "" {
		return def, nil
	}
	return core.ParseNamespace(s)
}

func optionalNamespace(s string) (*core.Namespace, error) {
	if s == "" {
		return nil, nil
	}
	ns, err := core.ParseNamespace(s)
	return &ns, err
}

func (s *Service) AppendFact(ctx context.Context, req *journalv1.AppendFactRequest) (*journalv1.AppendFactResponse, error) {
	ns, err := ParseNamespace(req.GetNamespace(), s.defaultNS)
	if err != nil {
		return nil, err
	}
	if req.GetTypeId() == journal.TypeGenesis {
		return nil, fmt.Errorf("genesis facts are made by aurad, not appended: %w", core.ErrInvalidArgument)
	}
	_, c, err := s.j.AppendLocal(ctx, s.signer, journal.Draft{
		Namespace: ns, TypeID: req.GetTypeId(), SchemaVersion: req.GetSchemaVersion(), Payload: req.GetPayload(),
	})
	if err != nil {
		return nil, err
	}
	return &journalv1.AppendFactResponse{Id: c.ID.String(), Namespace: ns.String(), Lamport: c.Lamport, Seq: c.Seq}, nil
}

func (s *Service) GetFact(ctx context.Context, req *journalv1.GetFactRequest) (*journalv1.GetFactResponse, error) {
	id, err := s.factID(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	f, err := s.j.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return &journalv1.GetFactResponse{Fact: ToProto(f)}, nil
}

func (s *Service) ListFacts(ctx context.Context, req *journalv1.ListFactsRequest) (*journalv1.ListFactsResponse, error) {
	ns, err := optionalNamespace(req.GetNamespace())
	if err != nil {
		return nil, err
	}
	facts, next, err := s.j.List(ctx, journal.ListQuery{
		Namespace: ns, TypeID: req.GetTypeId(), PageSize: int(req.GetPageSize()), PageToken: req.GetPageToken(),
	})
	if err != nil {
		return nil, err
	}
	resp := &journalv1.ListFactsResponse{NextPageToken: next, Facts: make([]*journalv1.Fact, len(facts))}
	for i, f := range facts {
		resp.Facts[i] = ToProto(f)
	}
	return resp, nil
}

func (s *Service) WatchFacts(req *journalv1.WatchFactsRequest, stream journalv1.JournalService_WatchFactsServer) error {
	ns, err := optionalNamespace(req.GetNamespace())
	if err != nil {
		return err
	}
	if req.GetTypeId() != "" {
		if err := journal.CheckTypeID(req.GetTypeId()); err != nil {
			return err
		}
	}
	ctx := stream.Context()
	sub, err := s.j.Watch(ctx, journal.WatchOptions{Namespace: ns, TypeID: req.GetTypeId(), AfterSeq: req.GetAfterSeq(), FromNow: req.GetFromNow()})
	if err != nil {
		return err
	}
	defer sub.Close()
	for {
		f, err := sub.Next(ctx)
		if err != nil {
			return err
		}
		if err := stream.Send(&journalv1.WatchFactsResponse{Fact: ToProto(f)}); err != nil {
			return err
		}
	}
}

// ToProto renders a stored fact for the API.
func ToProto(f journal.StoredFact) *journalv1.Fact {
	return &journalv1.Fact{
		Id:            f.ID.String(),
		Namespace:     f.Namespace.String(),
		TypeId:        f.TypeID,
		SchemaVersion: f.SchemaVersion,
		Payload:       f.Payload,
		Author:        f.Author.String(),
		Lamport:       f.Lamport,
		CreatedAt:     timestamppb.New(f.CreatedAt()),
		Signature:     f.Signature,
		Seq:           f.Seq,
	}
}

// factID resolves a full fact id or a unique prefix of at least
// rpc.MinPrefix hex digits.
func (s *Service) factID(ctx context.Context, in string) (core.FactID, error) {
	if len(in) == 64 {
		return core.ParseFactID(in)
	}
	p := strings.ToLower(in)
	if len(p) < rpc.MinPrefix || strings.Trim(p, "0123456789abcdef") != "" {
		return core.FactID{}, fmt.Errorf("fact id %s: want 64 hex digits or a prefix of at least %d: %w", rpc.QuoteInput(in), rpc.MinPrefix, core.ErrInvalidArgument)
	}
	ids, err := s.j.FactIDsWithPrefix(ctx, p, 5)
	if err != nil {
		return core.FactID{}, err
	}
	hexes := make([]string, len(ids))
	for i, id := range ids {
		hexes[i] = id.String()
	}
	i, err := rpc.ResolvePrefix("fact", p, hexes)
	if err != nil {
		return core.FactID{}, err
	}
	return ids[i], nil
}

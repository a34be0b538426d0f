// Package journalrpc adapts the journal to aura.journal.v1.JournalService.
package journalrpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	journalv1 "github.com/aura-p2p/aura/api/proto/aura/journal/v1"
	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
	"github.com/aura-p2p/aura/internal/rpc"
)

// Journal is what the service needs from the fact store.
type Journal interface {
	AppendLocal(ctx context.Context, signer journal.Signer, d journal.Draft) (*journal.SignedFact, journal.Committed, error)
	NewLocalStream(signer journal.Signer) *journal.LocalStream
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
		journalv1.JournalService_AppendFact_FullMethodName:  rpc.Write,
		journalv1.JournalService_AppendFacts_FullMethodName: rpc.Write,
		journalv1.JournalService_GetFact_FullMethodName:     rpc.Read,
		journalv1.JournalService_ListFacts_FullMethodName:   rpc.Read,
		journalv1.JournalService_WatchFacts_FullMethodName:  rpc.Read,
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

// appendRequest is what AppendFact and each message of AppendFacts carry.
type appendRequest interface {
	GetNamespace() string
	GetTypeId() string
	GetSchemaVersion() uint32
	GetPayload() []byte
}

// draft checks what the journal cannot: the namespace's syntax and that
// genesis facts are aurad's own.
func (s *Service) draft(req appendRequest) (journal.Draft, error) {
	ns, err := ParseNamespace(req.GetNamespace(), s.defaultNS)
	if err != nil {
		return journal.Draft{}, err
	}
	if req.GetTypeId() == journal.TypeGenesis {
		return journal.Draft{}, fmt.Errorf("genesis facts are made by aurad, not appended: %w", core.ErrInvalidArgument)
	}
	return journal.Draft{
		Namespace: ns, TypeID: req.GetTypeId(), SchemaVersion: req.GetSchemaVersion(), Payload: req.GetPayload(),
	}, nil
}

func (s *Service) AppendFact(ctx context.Context, req *journalv1.AppendFactRequest) (*journalv1.AppendFactResponse, error) {
	d, err := s.draft(req)
	if err != nil {
		return nil, err
	}
	_, c, err := s.j.AppendLocal(ctx, s.signer, d)
	if err != nil {
		return nil, err
	}
	return &journalv1.AppendFactResponse{Id: c.ID.String(), Namespace: d.Namespace.String(), Lamport: c.Lamport, Seq: c.Seq}, nil
}

// appendWindow bounds the facts of one AppendFacts stream between being read
// and being acknowledged: as many as the journal's queue holds, so that one
// stream alone can fill a group commit while the previous one syncs. Each
// costs about a kilobyte until acknowledged.
const appendWindow = 1024

// streamedFact is a fact of an AppendFacts stream on its way to the journal,
// or the error that ends the stream at it.
type streamedFact struct {
	index uint64
	p     *journal.LocalPending
	err   error
}

// AppendFacts reads facts and hands each to the journal at once (readFacts),
// while this goroutine acknowledges them in order as they become durable.
func (s *Service) AppendFacts(stream grpc.BidiStreamingServer[journalv1.AppendFactsRequest, journalv1.AppendFactsResponse]) error {
	ctx, cancel := context.WithCancel(stream.Context())
	// Ends the reader's wait for room and the journal's work on facts not
	// yet queued; a Recv the reader is blocked in ends when we return.
	defer cancel()
	facts := make(chan streamedFact, appendWindow)
	go s.readFacts(ctx, stream, s.j.NewLocalStream(s.signer), facts)
	for {
		var f streamedFact
		var ok bool
		select {
		case f, ok = <-facts:
		case <-ctx.Done():
			return ctx.Err()
		}
		if !ok {
			return nil
		}
		if f.err != nil {
			return factError(f.index, f.err)
		}
		c, err := f.p.Wait(ctx)
		if err != nil {
			return factError(f.index, err)
		}
		if err := stream.Send(&journalv1.AppendFactsResponse{
			Index: f.index, Id: c.ID.String(), Namespace: c.Namespace.String(), Lamport: c.Lamport, Seq: c.Seq,
		}); err != nil {
			return err
		}
	}
}

// readFacts passes each request on as a streamedFact, in order, and closes
// facts at the end of the client's stream. It stops at the first request
// that fails: the journal queues nothing after a fact it refused, and
// nothing is read after one refused here.
func (s *Service) readFacts(ctx context.Context, stream grpc.BidiStreamingServer[journalv1.AppendFactsRequest, journalv1.AppendFactsResponse], ls *journal.LocalStream, facts chan<- streamedFact) {
	for i := uint64(0); ; i++ {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			close(facts)
			return
		}
		f := streamedFact{index: i, err: err}
		if err == nil {
			var d journal.Draft
			if d, f.err = s.draft(req); f.err == nil {
				f.p = ls.Add(ctx, d)
			}
		}
		select {
		case facts <- f:
		case <-ctx.Done():
			return
		}
		if f.err != nil {
			return
		}
	}
}

// factError says which fact of the stream failed: "fact N: " leads the
// message, N counting from 0, and the code is the failure's own.
func factError(index uint64, err error) error {
	if st, ok := status.FromError(err); ok {
		return status.Errorf(st.Code(), "fact %d: %s", index, st.Message())
	}
	return fmt.Errorf("fact %d: %w", index, err)
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

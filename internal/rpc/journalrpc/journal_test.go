package journalrpc

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	journalv1 "github.com/aura-p2p/aura/api/proto/aura/journal/v1"
	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
	"github.com/aura-p2p/aura/internal/rpc/rpctest"
)

// fakeJournal records what reaches it and fails every call with err.
type fakeJournal struct {
	err   error
	calls int
	draft journal.Draft
	query journal.ListQuery
}

func (f *fakeJournal) AppendLocal(_ context.Context, _ journal.Signer, d journal.Draft) (*journal.SignedFact, journal.Committed, error) {
	f.calls++
	f.draft = d
	if f.err != nil {
		return nil, journal.Committed{}, f.err
	}
	return &journal.SignedFact{}, journal.Committed{Lamport: 1, Seq: 2}, nil
}

// NewLocalStream serves AppendFacts, which is tested against the real
// journal (stream_test.go) since its point is how facts reach the writer.
func (f *fakeJournal) NewLocalStream(journal.Signer) *journal.LocalStream { return nil }

func (f *fakeJournal) Get(context.Context, core.FactID) (journal.StoredFact, error) {
	f.calls++
	return journal.StoredFact{}, f.err
}

func (f *fakeJournal) FactIDsWithPrefix(context.Context, string, int) ([]core.FactID, error) {
	f.calls++
	return nil, f.err
}

func (f *fakeJournal) List(_ context.Context, q journal.ListQuery) ([]journal.StoredFact, string, error) {
	f.calls++
	f.query = q
	return nil, "", f.err
}

func (f *fakeJournal) Watch(context.Context, journal.WatchOptions) (*journal.Subscription, error) {
	f.calls++
	if f.err == nil {
		return nil, fmt.Errorf("fake journal has no watch: %w", core.ErrUnavailable)
	}
	return nil, f.err
}

func testSigner() journal.Signer {
	return journal.NewKeySigner(ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)))
}

// watchStream is a WatchFacts stream whose context is all the service uses
// before the journal's subscription.
type watchStream struct {
	journalv1.JournalService_WatchFactsServer
}

func (watchStream) Context() context.Context { return context.Background() }

// Every method: input the adapter must refuse before the journal sees it, and
// the journal's own errors, each with the code the caller gets.
func TestValidationAndCodes(t *testing.T) {
	ctx := context.Background()
	ns := core.ContextNamespace(core.ContextID{1})
	id := strings.Repeat("ab", 32)
	tests := []struct {
		name      string
		call      func(s *Service) error
		domainErr error
		code      codes.Code
		reaches   bool // whether the journal is called
	}{
		{"append: garbage namespace", func(s *Service) error {
			_, err := s.AppendFact(ctx, &journalv1.AppendFactRequest{TypeId: "app.x/v1", Namespace: "group/1"})
			return err
		}, nil, codes.InvalidArgument, false},
		{"append: genesis type", func(s *Service) error {
			_, err := s.AppendFact(ctx, &journalv1.AppendFactRequest{TypeId: journal.TypeGenesis})
			return err
		}, nil, codes.InvalidArgument, false},
		{"append: journal refuses the author", func(s *Service) error {
			_, err := s.AppendFact(ctx, &journalv1.AppendFactRequest{TypeId: "app.x/v1"})
			return err
		}, fmt.Errorf("not a member: %w", core.ErrPermissionDenied), codes.PermissionDenied, true},
		{"append: unknown namespace", func(s *Service) error {
			_, err := s.AppendFact(ctx, &journalv1.AppendFactRequest{TypeId: "app.x/v1", Namespace: ns.String()})
			return err
		}, fmt.Errorf("namespace: %w", core.ErrNotFound), codes.NotFound, true},
		{"append: ok", func(s *Service) error {
			_, err := s.AppendFact(ctx, &journalv1.AppendFactRequest{TypeId: "app.x/v1"})
			return err
		}, nil, codes.OK, true},
		{"get: empty id", func(s *Service) error {
			_, err := s.GetFact(ctx, &journalv1.GetFactRequest{})
			return err
		}, nil, codes.InvalidArgument, false},
		{"get: short id", func(s *Service) error {
			_, err := s.GetFact(ctx, &journalv1.GetFactRequest{Id: "abcd"})
			return err
		}, nil, codes.InvalidArgument, false},
		{"get: unknown fact", func(s *Service) error {
			_, err := s.GetFact(ctx, &journalv1.GetFactRequest{Id: id})
			return err
		}, fmt.Errorf("fact: %w", core.ErrNotFound), codes.NotFound, true},
		{"list: garbage namespace", func(s *Service) error {
			_, err := s.ListFacts(ctx, &journalv1.ListFactsRequest{Namespace: "nope"})
			return err
		}, nil, codes.InvalidArgument, false},
		{"list: bad page token", func(s *Service) error {
			_, err := s.ListFacts(ctx, &journalv1.ListFactsRequest{PageToken: "x"})
			return err
		}, fmt.Errorf("page token: %w", core.ErrInvalidArgument), codes.InvalidArgument, true},
		{"list: journal unavailable", func(s *Service) error {
			_, err := s.ListFacts(ctx, &journalv1.ListFactsRequest{})
			return err
		}, fmt.Errorf("closed: %w", core.ErrUnavailable), codes.Unavailable, true},
		{"watch: garbage namespace", func(s *Service) error {
			return s.WatchFacts(&journalv1.WatchFactsRequest{Namespace: "nope"}, watchStream{})
		}, nil, codes.InvalidArgument, false},
		{"watch: malformed type", func(s *Service) error {
			return s.WatchFacts(&journalv1.WatchFactsRequest{TypeId: "App X"}, watchStream{})
		}, nil, codes.InvalidArgument, false},
		{"watch: journal refuses", func(s *Service) error {
			return s.WatchFacts(&journalv1.WatchFactsRequest{TypeId: "app.x/v1"}, watchStream{})
		}, fmt.Errorf("too many watches: %w", core.ErrResourceExhausted), codes.ResourceExhausted, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j := &fakeJournal{err: tc.domainErr}
			err := tc.call(New(j, testSigner(), ns))
			rpctest.CheckOutcome(t, err, tc.code, j.calls, tc.reaches, tc.domainErr)
		})
	}
}

// An append without a namespace goes to the default one, with the request's
// type, schema and payload.
func TestAppendDefaultsNamespace(t *testing.T) {
	ns := core.ContextNamespace(core.ContextID{7})
	j := &fakeJournal{}
	resp, err := New(j, testSigner(), ns).AppendFact(context.Background(), &journalv1.AppendFactRequest{TypeId: "app.x/v1", SchemaVersion: 3, Payload: []byte("p")})
	if err != nil {
		t.Fatal(err)
	}
	if j.draft.Namespace != ns || j.draft.TypeID != "app.x/v1" || j.draft.SchemaVersion != 3 || string(j.draft.Payload) != "p" {
		t.Fatalf("draft %+v", j.draft)
	}
	if resp.GetNamespace() != ns.String() || resp.GetLamport() != 1 || resp.GetSeq() != 2 {
		t.Fatalf("response %v", resp)
	}
}

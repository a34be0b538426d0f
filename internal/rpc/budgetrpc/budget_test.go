package budgetrpc

import (
	"context"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"

	budgetv1 "github.com/aura-p2p/aura/api/proto/aura/budget/v1"
	"github.com/aura-p2p/aura/internal/budget"
	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/rpc/rpctest"
)

// fakeLedger records the keys that reach it and fails every call with err.
type fakeLedger struct {
	err   error
	keys  []budget.Key
	limit uint64
	n     int // receipts limit asked for
	calls int
}

func (f *fakeLedger) List(context.Context) ([]budget.Entry, error) {
	f.calls++
	return nil, f.err
}

func (f *fakeLedger) Get(_ context.Context, k budget.Key) (budget.Entry, error) {
	f.calls++
	f.keys = append(f.keys, k)
	return budget.Entry{Key: k}, f.err
}

func (f *fakeLedger) SetLimit(_ context.Context, k budget.Key, limit uint64) error {
	f.calls++
	f.keys = append(f.keys, k)
	f.limit = limit
	return f.err
}

func (f *fakeLedger) Receipts(_ context.Context, k budget.Key, n int) ([]budget.Receipt, error) {
	f.calls++
	f.keys = append(f.keys, k)
	f.n = n
	return nil, f.err
}

func (f *fakeLedger) Checkpoints(_ context.Context, k budget.Key) ([]*budget.Checkpoint, error) {
	f.calls++
	return nil, f.err
}

func (f *fakeLedger) Leakage(_ context.Context, c core.ContextID) (budget.LeakageEntry, error) {
	f.calls++
	return budget.LeakageEntry{Context: c}, f.err
}

var (
	self = core.DeviceID{1}
	peer = core.DeviceID{2}
)

// Every method: input refused before the ledger sees it, and the ledger's
// errors, each with the code the caller gets.
func TestValidationAndCodes(t *testing.T) {
	ctx := context.Background()
	ctxRef := "context/" + core.ContextID{9}.String()
	tests := []struct {
		name      string
		call      func(s *Service) error
		domainErr error
		code      codes.Code
		reaches   bool
	}{
		{"list: ledger unavailable", func(s *Service) error {
			_, err := s.ListBudgets(ctx, &budgetv1.ListBudgetsRequest{})
			return err
		}, fmt.Errorf("closed: %w", core.ErrUnavailable), codes.Unavailable, true},
		{"get: no peer", func(s *Service) error {
			_, err := s.GetBudget(ctx, &budgetv1.GetBudgetRequest{})
			return err
		}, nil, codes.InvalidArgument, false},
		{"get: garbage peer", func(s *Service) error {
			_, err := s.GetBudget(ctx, &budgetv1.GetBudgetRequest{Peer: "nobody"})
			return err
		}, nil, codes.InvalidArgument, false},
		{"get: this device", func(s *Service) error {
			_, err := s.GetBudget(ctx, &budgetv1.GetBudgetRequest{Peer: self.String()})
			return err
		}, nil, codes.InvalidArgument, false},
		{"get: garbage context", func(s *Service) error {
			_, err := s.GetBudget(ctx, &budgetv1.GetBudgetRequest{Peer: peer.String(), Context: "context/zz"})
			return err
		}, nil, codes.InvalidArgument, false},
		{"get: unknown budget", func(s *Service) error {
			_, err := s.GetBudget(ctx, &budgetv1.GetBudgetRequest{Peer: peer.String()})
			return err
		}, fmt.Errorf("budget: %w", core.ErrNotFound), codes.NotFound, true},
		{"set: this device", func(s *Service) error {
			_, err := s.SetLimit(ctx, &budgetv1.SetLimitRequest{Peer: self.String(), Limit: 5})
			return err
		}, nil, codes.InvalidArgument, false},
		{"set: ledger refuses", func(s *Service) error {
			_, err := s.SetLimit(ctx, &budgetv1.SetLimitRequest{Peer: peer.String(), Limit: 5})
			return err
		}, fmt.Errorf("not a member: %w", core.ErrFailedPrecondition), codes.FailedPrecondition, true},
		{"receipts: garbage peer", func(s *Service) error {
			_, err := s.ListReceipts(ctx, &budgetv1.ListReceiptsRequest{Peer: "x"})
			return err
		}, nil, codes.InvalidArgument, false},
		{"receipts: damaged", func(s *Service) error {
			_, err := s.ListReceipts(ctx, &budgetv1.ListReceiptsRequest{Peer: peer.String()})
			return err
		}, fmt.Errorf("receipt: %w", core.ErrDataLoss), codes.DataLoss, true},
		{"leakage: no context", func(s *Service) error {
			_, err := s.GetLeakage(ctx, &budgetv1.GetLeakageRequest{})
			return err
		}, nil, codes.InvalidArgument, false},
		{"leakage: unknown context", func(s *Service) error {
			_, err := s.GetLeakage(ctx, &budgetv1.GetLeakageRequest{Context: ctxRef})
			return err
		}, fmt.Errorf("context: %w", core.ErrNotFound), codes.NotFound, true},
		{"leakage: ok", func(s *Service) error {
			_, err := s.GetLeakage(ctx, &budgetv1.GetLeakageRequest{Context: ctxRef})
			return err
		}, nil, codes.OK, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := &fakeLedger{err: tc.domainErr}
			err := tc.call(New(l, self))
			rpctest.CheckOutcome(t, err, tc.code, l.calls, tc.reaches, tc.domainErr)
		})
	}
}

// A peer alone means the pair's link context; a named context is used as
// given; an unset receipt limit is 100.
func TestKeysAndDefaults(t *testing.T) {
	ctx := context.Background()
	l := &fakeLedger{}
	s := New(l, self)
	if _, err := s.SetLimit(ctx, &budgetv1.SetLimitRequest{Peer: peer.String(), Limit: 7}); err != nil {
		t.Fatal(err)
	}
	named := core.ContextID{9}
	if _, err := s.ListReceipts(ctx, &budgetv1.ListReceiptsRequest{Peer: peer.String(), Context: "context/" + named.String()}); err != nil {
		t.Fatal(err)
	}
	link := budget.Key{Context: core.LinkContext(self, peer), Peer: peer}
	want := []budget.Key{link, link, {Context: named, Peer: peer}}
	if len(l.keys) != len(want) {
		t.Fatalf("keys %v, want %v", l.keys, want)
	}
	for i := range want {
		if l.keys[i] != want[i] {
			t.Fatalf("key %d: %v, want %v", i, l.keys[i], want[i])
		}
	}
	if l.limit != 7 || l.n != 100 {
		t.Fatalf("limit %d, receipts limit %d; want 7, 100", l.limit, l.n)
	}
}

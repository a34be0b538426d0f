// Package budgetrpc adapts the budget ledger to aura.budget.v1.BudgetService.
package budgetrpc

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/grpc"

	budgetv1 "github.com/aura-p2p/aura/api/proto/aura/budget/v1"
	"github.com/aura-p2p/aura/internal/budget"
	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/rpc"
)

// Ledger is what the service reads and sets.
type Ledger interface {
	List(ctx context.Context) ([]budget.Entry, error)
	Get(ctx context.Context, k budget.Key) (budget.Entry, error)
	SetLimit(ctx context.Context, k budget.Key, limit uint64) error
	Receipts(ctx context.Context, k budget.Key, limit int) ([]budget.Receipt, error)
	Checkpoints(ctx context.Context, k budget.Key) ([]*budget.Checkpoint, error)
	Leakage(ctx context.Context, c core.ContextID) (budget.LeakageEntry, error)
}

// Service implements BudgetService.
type Service struct {
	budgetv1.UnsafeBudgetServiceServer
	l    Ledger
	self core.DeviceID
}

// New returns the service for this device's ledger.
func New(l Ledger, self core.DeviceID) *Service { return &Service{l: l, self: self} }

// Register adds the service to g.
func (s *Service) Register(g *grpc.Server) { budgetv1.RegisterBudgetServiceServer(g, s) }

// Permissions of the service's methods.
func Permissions() rpc.Permissions {
	return rpc.Permissions{
		budgetv1.BudgetService_ListBudgets_FullMethodName:  rpc.Read,
		budgetv1.BudgetService_GetBudget_FullMethodName:    rpc.Read,
		budgetv1.BudgetService_SetLimit_FullMethodName:     rpc.Admin,
		budgetv1.BudgetService_ListReceipts_FullMethodName: rpc.Read,
		budgetv1.BudgetService_GetLeakage_FullMethodName:   rpc.Read,
	}
}

// key parses (context, peer); an empty context is the pairwise link context.
func (s *Service) key(ctxID, peer string) (budget.Key, error) {
	d, err := core.ParseDevice(peer)
	if err != nil {
		return budget.Key{}, err
	}
	if d == s.self {
		return budget.Key{}, fmt.Errorf("that is this device: %w", core.ErrInvalidArgument)
	}
	k := budget.Key{Context: core.LinkContext(s.self, d), Peer: d}
	if ctxID != "" {
		if k.Context, err = core.ParseContextRef(ctxID); err != nil {
			return budget.Key{}, err
		}
	}
	return k, nil
}

func (s *Service) ListBudgets(ctx context.Context, _ *budgetv1.ListBudgetsRequest) (*budgetv1.ListBudgetsResponse, error) {
	es, err := s.l.List(ctx)
	if err != nil {
		return nil, err
	}
	resp := &budgetv1.ListBudgetsResponse{}
	for _, e := range es {
		resp.Budgets = append(resp.Budgets, toProto(e))
	}
	return resp, nil
}

func (s *Service) GetBudget(ctx context.Context, req *budgetv1.GetBudgetRequest) (*budgetv1.GetBudgetResponse, error) {
	k, err := s.key(req.GetContext(), req.GetPeer())
	if err != nil {
		return nil, err
	}
	e, err := s.l.Get(ctx, k)
	if err != nil {
		return nil, err
	}
	return &budgetv1.GetBudgetResponse{Budget: toProto(e)}, nil
}

func (s *Service) SetLimit(ctx context.Context, req *budgetv1.SetLimitRequest) (*budgetv1.SetLimitResponse, error) {
	k, err := s.key(req.GetContext(), req.GetPeer())
	if err != nil {
		return nil, err
	}
	if err := s.l.SetLimit(ctx, k, req.GetLimit()); err != nil {
		return nil, err
	}
	e, err := s.l.Get(ctx, k)
	if err != nil {
		return nil, err
	}
	return &budgetv1.SetLimitResponse{Budget: toProto(e)}, nil
}

func (s *Service) ListReceipts(ctx context.Context, req *budgetv1.ListReceiptsRequest) (*budgetv1.ListReceiptsResponse, error) {
	k, err := s.key(req.GetContext(), req.GetPeer())
	if err != nil {
		return nil, err
	}
	limit := int(req.GetLimit())
	if limit == 0 {
		limit = 100
	}
	rs, err := s.l.Receipts(ctx, k, limit)
	if err != nil {
		return nil, err
	}
	cps, err := s.l.Checkpoints(ctx, k)
	if err != nil {
		return nil, err
	}
	resp := &budgetv1.ListReceiptsResponse{}
	for _, cp := range cps {
		resp.Checkpoints = append(resp.Checkpoints, &budgetv1.Checkpoint{
			Context: "context/" + cp.Context.String(), Src: cp.Src.String(), Dst: cp.Dst.String(), Epoch: uint64(cp.Epoch),
			Period: cp.Period, Nonce: cp.Nonce, Cumulative: cp.Cumulative, Head: cp.Head.String(), Encoded: cp.Encode(),
		})
	}
	for _, r := range rs {
		resp.Receipts = append(resp.Receipts, &budgetv1.Receipt{
			Context: "context/" + r.Context.String(), Src: r.Src.String(), Dst: r.Dst.String(),
			Epoch: uint64(r.Epoch), Cost: r.Cost, Nonce: r.Nonce, Prev: r.Prev.String(), Hash: r.Hash().String(),
		})
	}
	return resp, nil
}

func (s *Service) GetLeakage(ctx context.Context, req *budgetv1.GetLeakageRequest) (*budgetv1.GetLeakageResponse, error) {
	c, err := s.contextRef(ctx, req.GetContext())
	if err != nil {
		return nil, err
	}
	e, err := s.l.Leakage(ctx, c)
	if err != nil {
		return nil, err
	}
	return &budgetv1.GetLeakageResponse{Leakage: &budgetv1.Leakage{
		Context: "context/" + e.Context.String(), Epoch: uint64(e.Epoch),
		External: e.Consumed[core.ObserverExternal], Neighbor: e.Consumed[core.ObserverNeighbor], InGroup: e.Consumed[core.ObserverInGroup],
		ExternalLimit: e.Limits[core.ObserverExternal], NeighborLimit: e.Limits[core.ObserverNeighbor], InGroupLimit: e.Limits[core.ObserverInGroup],
	}}, nil
}

func toProto(e budget.Entry) *budgetv1.Budget {
	return &budgetv1.Budget{
		Context: "context/" + e.Key.Context.String(), Peer: e.Key.Peer.String(), Class: e.Class.String(),
		Epoch: uint64(e.Epoch), Limit: e.State.Limit, Spent: e.State.Spent,
		Received: e.Received, ReceivedLimit: e.ReceivedLimit, LastNonce: e.LastNonce,
	}
}

// contextRef resolves context/<id>, <id>, or a unique prefix of at least
// rpc.MinPrefix hex digits among the contexts this device has budgets in.
func (s *Service) contextRef(ctx context.Context, in string) (core.ContextID, error) {
	if c, err := core.ParseContextRef(in); err == nil {
		return c, nil
	}
	if err := rpc.CheckPrefix("context", strings.TrimPrefix(in, "context/")); err != nil {
		return core.ContextID{}, err
	}
	es, err := s.l.List(ctx)
	if err != nil {
		return core.ContextID{}, err
	}
	var ids []string
	var ctxs []core.ContextID
	seen := map[core.ContextID]bool{}
	for _, e := range es {
		if !seen[e.Key.Context] {
			seen[e.Key.Context] = true
			ids = append(ids, e.Key.Context.String())
			ctxs = append(ctxs, e.Key.Context)
		}
	}
	i, err := rpc.ResolvePrefix("context", strings.TrimPrefix(in, "context/"), ids)
	if err != nil {
		return core.ContextID{}, err
	}
	return ctxs[i], nil
}

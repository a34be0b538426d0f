// Package contextrpc adapts relational contexts and contacts
// (internal/ceremony) to aura.context.v1.ContextService.
package contextrpc

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/grpc"

	contextv1 "github.com/aura-p2p/aura/api/proto/aura/context/v1"
	"github.com/aura-p2p/aura/internal/ceremony"
	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
	"github.com/aura-p2p/aura/internal/rpc"
)

// Contacts is what the service needs of the ceremony service.
type Contacts interface {
	Contacts(ctx context.Context) ([]*ceremony.Contact, error)
	FindContact(ctx context.Context, ref string) (*ceremony.Contact, error)
	Rename(ctx context.Context, ref, nickname string) (*ceremony.Contact, error)
	SetBlocked(ctx context.Context, ref string, blocked bool) (*ceremony.Contact, error)
}

// Counter counts a namespace's facts.
type Counter interface {
	RangeSummary(ctx context.Context, ns core.Namespace, lo, hi journal.FactKey) (uint64, journal.Fingerprint, error)
}

// Service implements ContextService.
type Service struct {
	contextv1.UnsafeContextServiceServer
	c     Contacts
	count Counter
}

// New returns the service.
func New(c Contacts, count Counter) *Service { return &Service{c: c, count: count} }

// Register adds the service to g.
func (s *Service) Register(g *grpc.Server) { contextv1.RegisterContextServiceServer(g, s) }

// Permissions of the service's methods.
func Permissions() rpc.Permissions {
	return rpc.Permissions{
		contextv1.ContextService_ListContexts_FullMethodName:   rpc.Read,
		contextv1.ContextService_GetContext_FullMethodName:     rpc.Read,
		contextv1.ContextService_ListContacts_FullMethodName:   rpc.Read,
		contextv1.ContextService_GetContact_FullMethodName:     rpc.Read,
		contextv1.ContextService_RenameContact_FullMethodName:  rpc.Write,
		contextv1.ContextService_BlockContact_FullMethodName:   rpc.Write,
		contextv1.ContextService_UnblockContact_FullMethodName: rpc.Write,
	}
}

func (s *Service) ListContexts(ctx context.Context, _ *contextv1.ListContextsRequest) (*contextv1.ListContextsResponse, error) {
	cs, err := s.c.Contacts(ctx)
	if err != nil {
		return nil, err
	}
	out := &contextv1.ListContextsResponse{}
	for _, c := range cs {
		pc, err := s.context(ctx, c)
		if err != nil {
			return nil, err
		}
		out.Contexts = append(out.Contexts, pc)
	}
	slices.SortFunc(out.Contexts, func(a, b *contextv1.Context) int { return strings.Compare(a.Id, b.Id) })
	return out, nil
}

func (s *Service) GetContext(ctx context.Context, req *contextv1.GetContextRequest) (*contextv1.GetContextResponse, error) {
	id := strings.TrimPrefix(req.GetId(), "context/")
	if err := rpc.CheckPrefix("context", id); err != nil {
		return nil, err
	}
	cs, err := s.c.Contacts(ctx)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(cs))
	for i, c := range cs {
		ids[i] = c.Context.String()
	}
	i, err := rpc.ResolvePrefix("context", id, ids)
	if err != nil {
		return nil, err
	}
	pc, err := s.context(ctx, cs[i])
	if err != nil {
		return nil, err
	}
	return &contextv1.GetContextResponse{Context: pc, Contact: contact(cs[i])}, nil
}

func (s *Service) context(ctx context.Context, c *ceremony.Contact) (*contextv1.Context, error) {
	n, _, err := s.count.RangeSummary(ctx, core.ContextNamespace(c.Context), journal.FactKey{}, journal.FactKey{})
	if err != nil {
		return nil, err
	}
	out := &contextv1.Context{Id: c.Context.String(), Class: core.ClassContact.String(), CeremonyId: c.Ceremony.String(), FactCount: n}
	if len(c.Members) > 2 {
		out.Class = core.ClassGroup.String()
	}
	for _, m := range c.Members {
		out.Members = append(out.Members, m.String())
	}
	slices.Sort(out.Members)
	return out, nil
}

func (s *Service) ListContacts(ctx context.Context, _ *contextv1.ListContactsRequest) (*contextv1.ListContactsResponse, error) {
	cs, err := s.c.Contacts(ctx)
	if err != nil {
		return nil, err
	}
	out := &contextv1.ListContactsResponse{}
	for _, c := range cs {
		out.Contacts = append(out.Contacts, contact(c))
	}
	return out, nil
}

func (s *Service) GetContact(ctx context.Context, req *contextv1.GetContactRequest) (*contextv1.GetContactResponse, error) {
	if err := checkRef(req.GetContact()); err != nil {
		return nil, err
	}
	c, err := s.c.FindContact(ctx, req.GetContact())
	if err != nil {
		return nil, err
	}
	return &contextv1.GetContactResponse{Contact: contact(c)}, nil
}

func (s *Service) RenameContact(ctx context.Context, req *contextv1.RenameContactRequest) (*contextv1.RenameContactResponse, error) {
	if err := checkRef(req.GetContact()); err != nil {
		return nil, err
	}
	c, err := s.c.Rename(ctx, req.GetContact(), req.GetNickname())
	if err != nil {
		return nil, err
	}
	return &contextv1.RenameContactResponse{Contact: contact(c)}, nil
}

func (s *Service) BlockContact(ctx context.Context, req *contextv1.BlockContactRequest) (*contextv1.BlockContactResponse, error) {
	if err := checkRef(req.GetContact()); err != nil {
		return nil, err
	}
	c, err := s.c.SetBlocked(ctx, req.GetContact(), true)
	if err != nil {
		return nil, err
	}
	return &contextv1.BlockContactResponse{Contact: contact(c)}, nil
}

func (s *Service) UnblockContact(ctx context.Context, req *contextv1.UnblockContactRequest) (*contextv1.UnblockContactResponse, error) {
	if err := checkRef(req.GetContact()); err != nil {
		return nil, err
	}
	c, err := s.c.SetBlocked(ctx, req.GetContact(), false)
	if err != nil {
		return nil, err
	}
	return &contextv1.UnblockContactResponse{Contact: contact(c)}, nil
}

// checkRef refuses an empty contact reference. The contact service matches
// a reference against nicknames first, and a contact without one has the
// empty nickname, so "" (or a bare "context/") would name the unnamed
// contact when there is just one: `contact block ""` would block it.
func checkRef(ref string) error {
	if strings.TrimPrefix(ref, "context/") == "" {
		return fmt.Errorf("no contact given: %w", core.ErrInvalidArgument)
	}
	return nil
}

func contact(c *ceremony.Contact) *contextv1.Contact {
	return &contextv1.Contact{
		Name: c.Name(), Nickname: c.Nickname, AuthorityId: c.Authority.String(), DeviceId: c.Device.String(),
		ContextId: c.Context.String(), Blocked: c.Blocked,
	}
}

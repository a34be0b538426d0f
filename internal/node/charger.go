package node

import (
	"context"
	"fmt"

	"github.com/aura-p2p/aura/internal/budget"
	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/transport"
)

// ledgerCharger lets the transport's guard chain charge the budget ledger.
// The two packages do not know each other: budget sits above transport in the
// dependency order, and the transport only defines what it needs.
type ledgerCharger struct{ l *budget.Ledger }

func budgetClass(c transport.Class) budget.Class {
	switch c {
	case transport.ClassLink:
		return budget.ClassLink
	case transport.ClassContact:
		return budget.ClassContact
	default:
		return budget.ClassGroup
	}
}

func (c ledgerCharger) Charge(ctx context.Context, ch transport.Charge) (transport.Receipt, error) {
	r, err := c.l.Charge(ctx, budget.Key{Context: ch.Context, Peer: ch.Peer}, budgetClass(ch.Class), ch.Cost, budget.Leakage(ch.Leakage), ch.Facts)
	if err != nil {
		return transport.Receipt{}, err
	}
	return transport.Receipt{Raw: r.Encode(), Epoch: r.Epoch, Nonce: r.Nonce}, nil
}

// errEnvelopeMismatch: the envelope claims something its receipt does not.
var errEnvelopeMismatch = fmt.Errorf("envelope does not match its receipt: %w", core.ErrInvalidArgument)

func (c ledgerCharger) Accept(ctx context.Context, e *transport.Envelope, cl transport.Class) error {
	r, err := budget.DecodeReceipt(e.Receipt)
	if err != nil {
		return err
	}
	if r.Context != e.Context || r.Src != e.Src || r.Dst != e.Dst || r.Epoch != e.Epoch || r.Cost != e.Cost || r.Nonce != e.Seq {
		return errEnvelopeMismatch
	}
	return c.l.Accept(ctx, r, budgetClass(cl))
}

package budget

import (
	"context"
	"fmt"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/transport"
)

// Charger returns the ledger as the transport's flow-budget and
// journal-coupling steps. budget sits above transport: the transport defines
// what it needs, and the ledger provides it here.
func (l *Ledger) Charger() transport.Charger { return charger{l} }

type charger struct{ l *Ledger }

// Charge takes the transport's class as it is: both speak core.Class, and the
// ledger refuses an invalid class (0 included), so an unclassified send fails
// closed, never to the most generous class.
func (c charger) Charge(ctx context.Context, ch transport.Charge) (transport.Receipt, error) {
	r, err := c.l.ChargeQueued(ctx, Key{Context: ch.Context, Peer: ch.Peer}, ch.Class, ch.Cost, ch.Leakage, ch.Facts, ch.Queued)
	if err != nil {
		return transport.Receipt{}, err
	}
	return transport.Receipt{Epoch: r.Epoch, Nonce: r.Nonce, Seal: func(compact bool) ([]byte, error) { return c.l.SealFor(r, compact) }}, nil
}

// ErrEnvelopeMismatch: an envelope claims something its receipt does not.
var ErrEnvelopeMismatch = fmt.Errorf("envelope does not match its receipt: %w", core.ErrInvalidArgument)

// Accept takes a receipt in either form: compact (envelope protocol 4,
// rebuilt from the envelope) or signed whole.
func (c charger) Accept(ctx context.Context, e *transport.Envelope, cl core.Class) error {
	if len(e.Receipt) > 0 && e.Receipt[0] == compactVersion {
		r, cp, err := decodeCompact(e)
		if err != nil {
			return err
		}
		return c.l.AcceptCompact(ctx, r, cp, cl)
	}
	r, err := DecodeReceipt(e.Receipt)
	if err != nil {
		return err
	}
	if r.Context != e.Context || r.Src != e.Src || r.Dst != e.Dst || r.Epoch != e.Epoch || r.Cost != e.Cost || r.Nonce != e.Seq {
		return ErrEnvelopeMismatch
	}
	return c.l.Accept(ctx, r, cl)
}

func (c charger) ChainStart(ctx core.ContextID, peer core.DeviceID, e core.Epoch) uint64 {
	return c.l.ChainStart(Key{Context: ctx, Peer: peer}, e)
}

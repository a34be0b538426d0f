package node

import (
	"context"
	"strings"

	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/zap"

	"github.com/aura-p2p/aura/internal/journal"
	"github.com/aura-p2p/aura/internal/transport"
)

// A listen address with port 0 binds a random port. The port it got is kept
// in the journal and asked for again at the next start, so a restart does not
// move the device: peer books, learned addresses and invitation codes that
// name it stay good. If the port is taken by then, a new random one is used
// (and kept).
const keyStickyPorts = "p2p.listen"

// stickyListen replaces each port-0 address of listen by the address it
// bound last time, if there is one of the same shape (same IP, same
// transports).
func (n *Node) stickyListen(ctx context.Context, listen []string) []string {
	var saved []string
	_ = n.journal.ViewExt(ctx, extNode, func(s *journal.ExtStore) error {
		if s != nil {
			if v := s.Get([]byte(keyStickyPorts)); v != nil {
				saved = strings.Split(string(v), "\n")
			}
		}
		return nil
	})
	out := make([]string, len(listen))
	for i, l := range listen {
		out[i] = l
		shape, ok := zeroPortShape(l)
		if !ok {
			continue
		}
		for _, s := range saved {
			if sh, ok := portShape(s); ok && sh == shape {
				out[i] = s
				break
			}
		}
	}
	return out
}

// saveListen keeps the addresses the host bound, for the next start.
func (n *Node) saveListen(ctx context.Context, t *transport.Transport) {
	var bound []string
	for _, a := range t.Addrs() {
		m, err := ma.NewMultiaddr(a)
		if err != nil {
			continue
		}
		bare, _ := ma.SplitFunc(m, func(c ma.Component) bool { return c.Protocol().Code == ma.P_P2P })
		bound = append(bound, bare.String())
	}
	_, err := n.journal.Commit(ctx, journal.Txn{Ops: []journal.TxOp{func(tx *journal.ExtTx) error {
		s, err := tx.Bucket(extNode)
		if err != nil {
			return err
		}
		return s.Put([]byte(keyStickyPorts), []byte(strings.Join(bound, "\n")))
	}}})
	if err != nil {
		n.log.Warn("could not keep the listen ports for the next start", zap.Error(err))
	}
}

// zeroPortShape is an address's shape (its text with the port blanked) if
// its port is 0.
func zeroPortShape(a string) (string, bool) {
	parts := strings.Split(a, "/")
	for i := 1; i+1 < len(parts); i++ {
		if (parts[i] == "tcp" || parts[i] == "udp") && parts[i+1] == "0" {
			return shapeOf(parts, i+1), true
		}
	}
	return "", false
}

// portShape is the shape of an address with a concrete port.
func portShape(a string) (string, bool) {
	parts := strings.Split(a, "/")
	for i := 1; i+1 < len(parts); i++ {
		if (parts[i] == "tcp" || parts[i] == "udp") && parts[i+1] != "0" {
			return shapeOf(parts, i+1), true
		}
	}
	return "", false
}

func shapeOf(parts []string, port int) string {
	c := append([]string(nil), parts...)
	c[port] = "*"
	return strings.Join(c, "/")
}

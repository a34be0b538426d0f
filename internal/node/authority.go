package node

import (
	"context"
	"fmt"
	"io"

	bolt "go.etcd.io/bbolt"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
)

// extNode is the node's extension bucket; it holds which authority this device
// founded, so later starts do not have to search for it.
const extNode = "node"

var keyAuthority = []byte("authority")

// ensureAuthority returns the device's authority, founding a one-device
// authority on first start: its genesis is the first fact of its namespace and
// is committed in the same transaction as the record of which authority it is.
func ensureAuthority(ctx context.Context, j *journal.Journal, signer journal.Signer, keys *Keys, rand io.Reader) (core.AuthorityID, bool, error) {
	var id core.AuthorityID
	found := false
	err := j.ViewExt(ctx, extNode, func(b *bolt.Bucket) error {
		if b == nil {
			return nil
		}
		if v := b.Get(keyAuthority); v != nil {
			if len(v) != len(id) {
				return fmt.Errorf("stored authority id of %d bytes: %w", len(v), journal.ErrCorrupt)
			}
			copy(id[:], v)
			found = true
		}
		return nil
	})
	if err != nil || found {
		return id, false, err
	}
	g := journal.Genesis{Kind: core.NamespaceAuthority, Threshold: 1, Members: []journal.Member{{Device: keys.DeviceID()}}}
	copy(g.Members[0].HPKEKey[:], keys.HPKEPublic)
	if _, err := io.ReadFull(rand, g.Nonce[:]); err != nil {
		return id, false, err
	}
	payload, err := g.Encode()
	if err != nil {
		return id, false, err
	}
	ns := journal.NamespaceOf(core.NamespaceAuthority, payload)
	sf, err := j.SignLocal(signer, journal.Draft{Namespace: ns, TypeID: journal.TypeGenesis, Payload: payload})
	if err != nil {
		return id, false, err
	}
	id = core.AuthorityID(ns.ID)
	_, err = j.Commit(ctx, journal.Txn{
		Facts: []*journal.SignedFact{sf},
		Ops: []journal.TxOp{func(tx *journal.ExtTx) error {
			b, err := tx.Bucket(extNode)
			if err != nil {
				return err
			}
			return b.Put(keyAuthority, id[:])
		}},
	})
	return id, err == nil, err
}

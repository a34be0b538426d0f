package node

import (
	"context"
	"fmt"
	"io"

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
//
// Without a record (a journal salvaged from a damaged one may have lost it)
// the authority is recovered from the journal's own genesis facts. Founding
// happens only when mayFound says the data dir was empty or the operator ran
// `aurad init`: a journal that holds facts but no authority for this device
// is refused, not joined by a fresh identity.
func ensureAuthority(ctx context.Context, j *journal.Journal, signer journal.Signer, keys *Keys, rand io.Reader, mayFound bool) (core.AuthorityID, bool, error) {
	id, found, err := recordedAuthority(ctx, j)
	if err != nil || found {
		return id, false, err
	}
	if rec, ok, err := recoverAuthority(ctx, j, keys.DeviceID()); err != nil {
		return id, false, err
	} else if ok {
		return rec, false, recordAuthority(ctx, j, rec)
	}
	if !mayFound {
		return id, false, fmt.Errorf("the journal holds no authority with device %s as a member (is it another device's journal?); "+
			"restore this device's journal, or start over with `aurad init` in an empty data dir: %w", keys.DeviceID(), core.ErrFailedPrecondition)
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

// recoverAuthority finds the first authority genesis (in commit order) that
// names device as a member.
func recoverAuthority(ctx context.Context, j *journal.Journal, device core.DeviceID) (core.AuthorityID, bool, error) {
	token := ""
	for {
		page, next, err := j.List(ctx, journal.ListQuery{TypeID: journal.TypeGenesis, PageSize: journal.MaxPageSize, PageToken: token})
		if err != nil {
			return core.AuthorityID{}, false, err
		}
		for _, f := range page {
			if f.Namespace.Kind != core.NamespaceAuthority {
				continue
			}
			if g, err := journal.DecodeGenesis(f.Payload); err == nil && g.HasMember(device) {
				return core.AuthorityID(f.Namespace.ID), true, nil
			}
		}
		if next == "" {
			return core.AuthorityID{}, false, nil
		}
		token = next
	}
}

func recordAuthority(ctx context.Context, j *journal.Journal, id core.AuthorityID) error {
	_, err := j.Commit(ctx, journal.Txn{Ops: []journal.TxOp{func(tx *journal.ExtTx) error {
		b, err := tx.Bucket(extNode)
		if err != nil {
			return err
		}
		return b.Put(keyAuthority, id[:])
	}}})
	return err
}

// recordedAuthority reads which authority the node recorded as its own.
func recordedAuthority(ctx context.Context, j *journal.Journal) (core.AuthorityID, bool, error) {
	var id core.AuthorityID
	found := false
	err := j.ViewExt(ctx, extNode, func(b *journal.ExtStore) error {
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
	return id, found, err
}

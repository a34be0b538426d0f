package journal

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/aura-p2p/aura/internal/core"
)

// Get returns a fact by id.
func (j *Journal) Get(ctx context.Context, id core.FactID) (StoredFact, error) {
	var out StoredFact
	err := j.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketIDs).Get(id[:])
		if v == nil {
			return fmt.Errorf("fact %s: %w", id, core.ErrNotFound)
		}
		loc, err := decodeIDEntry(id, v)
		if err != nil {
			return err
		}
		sf, err := readFact(tx, loc)
		if err != nil {
			return err
		}
		out = StoredFact{SignedFact: sf, Seq: loc.seq}
		return nil
	})
	return out, err
}

// FactIDsWithPrefix returns up to limit ids of stored facts whose hex form
// starts with prefix (lowercase hex, any length): what resolves the
// shortened ids tables print. The id index is ordered, so this seeks, never
// scans.
func (j *Journal) FactIDsWithPrefix(ctx context.Context, prefix string, limit int) ([]core.FactID, error) {
	if len(prefix) > 64 {
		return nil, fmt.Errorf("fact id prefix of %d digits: %w", len(prefix), core.ErrInvalidArgument)
	}
	// The whole bytes of the prefix seek; an odd last digit filters.
	whole, err := hex.DecodeString(prefix[:len(prefix)&^1])
	if err != nil {
		return nil, fmt.Errorf("fact id prefix %q is not hex: %w", prefix, core.ErrInvalidArgument)
	}
	var out []core.FactID
	err = j.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketIDs).Cursor()
		for k, _ := c.Seek(whole); k != nil && bytes.HasPrefix(k, whole) && len(out) < limit; k, _ = c.Next() {
			if len(k) != len(core.FactID{}) || !strings.HasPrefix(hex.EncodeToString(k), prefix) {
				continue
			}
			out = append(out, core.FactID(k))
		}
		return nil
	})
	return out, err
}

// Page sizes for List.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// ListQuery selects a page of facts. With a namespace, facts come in (lamport,
// id) order; without, in commit order.
type ListQuery struct {
	Namespace *core.Namespace
	TypeID    string
	PageSize  int
	PageToken string
}

// ErrBadPageToken: the token is malformed or belongs to a different query.
var ErrBadPageToken = fmt.Errorf("bad page token: %w", core.ErrInvalidArgument)

// A page token is base64url(version ‖ query hash(8) ‖ position), where the
// position is a seq (commit order) or lamport ‖ id (namespace order). The query
// hash ties a token to the filters it was issued for.
const tokenVersion = 1

func (q *ListQuery) hash() []byte {
	h := sha256.New()
	if q.Namespace != nil {
		h.Write(nsKey(*q.Namespace))
	}
	h.Write([]byte{0})
	h.Write([]byte(q.TypeID))
	return h.Sum(nil)[:8]
}

func (q *ListQuery) encodeToken(pos []byte) string {
	b := append([]byte{tokenVersion}, q.hash()...)
	return base64.RawURLEncoding.EncodeToString(append(b, pos...))
}

func (q *ListQuery) decodeToken(wantLen int) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(q.PageToken)
	if err != nil || len(b) != 9+wantLen || b[0] != tokenVersion {
		return nil, ErrBadPageToken
	}
	if !bytes.Equal(b[1:9], q.hash()) {
		return nil, fmt.Errorf("page token was issued for a different query: %w", ErrBadPageToken)
	}
	return b[9:], nil
}

// List returns one page of facts and the token of the next page ("" at the end).
func (j *Journal) List(ctx context.Context, q ListQuery) ([]StoredFact, string, error) {
	if q.PageSize < 0 {
		return nil, "", fmt.Errorf("page size %d: %w", q.PageSize, core.ErrInvalidArgument)
	}
	if q.PageSize == 0 {
		q.PageSize = DefaultPageSize
	}
	q.PageSize = min(q.PageSize, MaxPageSize)
	if q.TypeID != "" {
		if err := CheckTypeID(q.TypeID); err != nil {
			return nil, "", err
		}
	}
	if q.Namespace != nil {
		return j.listNamespace(q)
	}
	return j.listLog(q)
}

func (j *Journal) listLog(q ListQuery) ([]StoredFact, string, error) {
	start := uint64(1)
	if q.PageToken != "" {
		pos, err := q.decodeToken(8)
		if err != nil {
			return nil, "", err
		}
		start = binary.BigEndian.Uint64(pos) + 1
	}
	var out []StoredFact
	var next string
	err := j.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketLog).Cursor()
		var last uint64
		for k, v := c.Seek(u64(start)); k != nil; k, v = c.Next() {
			seq := getU64(k)
			if len(out) == q.PageSize {
				next = q.encodeToken(u64(last))
				return nil
			}
			last = seq
			loc, err := decodeLogEntry(seq, v)
			if err != nil {
				return err
			}
			sf, err := readFact(tx, loc)
			if err != nil {
				return err
			}
			if q.TypeID != "" && sf.TypeID != q.TypeID {
				continue
			}
			out = append(out, StoredFact{SignedFact: sf, Seq: seq})
		}
		return nil
	})
	return out, next, err
}

func (j *Journal) listNamespace(q ListQuery) ([]StoredFact, string, error) {
	var after []byte
	if q.PageToken != "" {
		pos, err := q.decodeToken(40)
		if err != nil {
			return nil, "", err
		}
		after = pos
	}
	var out []StoredFact
	var next string
	err := j.view(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketNamespaces).Get(nsKey(*q.Namespace)) == nil {
			return fmt.Errorf("namespace %s: %w", q.Namespace, core.ErrNotFound)
		}
		b := tx.Bucket(bucketFacts).Bucket(nsKey(*q.Namespace))
		if b == nil {
			return nil
		}
		ids := tx.Bucket(bucketIDs)
		sums := sumsOf(tx, nsKey(*q.Namespace))
		c := b.Cursor()
		k, v := c.First()
		if after != nil {
			k, v = c.Seek(after)
			if k != nil && bytes.Equal(k, after) {
				k, v = c.Next()
			}
		}
		var last []byte
		for ; k != nil; k, v = c.Next() {
			if len(out) == q.PageSize {
				next = q.encodeToken(last)
				return nil
			}
			last = append(last[:0], k...)
			fk, err := parseFactKey(k)
			if err != nil {
				return err
			}
			sf, err := decodeStored(fk, v, sumIn(sums, k))
			if err != nil {
				return err
			}
			if q.TypeID != "" && sf.TypeID != q.TypeID {
				continue
			}
			loc, err := decodeIDEntry(sf.ID, ids.Get(sf.ID[:]))
			if err != nil {
				return err
			}
			out = append(out, StoredFact{SignedFact: sf, Seq: loc.seq})
		}
		return nil
	})
	return out, next, err
}

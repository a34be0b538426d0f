package journal

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"
)

// SchemaVersion is the layout this binary reads and writes (doc.go).
const SchemaVersion = 3

// migration moves a store from version to-1 to version to. Each one gets a test
// that builds the old layout, migrates and checks the new one.
type migration struct {
	to    uint32
	name  string
	apply func(tx *bolt.Tx) error
}

// migrations in order. Append only; never edit one that has shipped.
var migrations = []migration{
	{to: 1, name: "create the fact, index, log, state and extension buckets", apply: migrateCreateV1},
	{to: 2, name: "membership as a reduction: members/<ns> from the genesis members", apply: migrateMembersV2},
	{to: 3, name: "fact checksums: sums/ (empty; facts stored before keep being checked by signature)", apply: migrateSumsV3},
}

// v1Buckets are the top-level buckets of schema 1, spelled out so that later
// additions to topLevelBuckets do not change what migration 1 does.
var v1Buckets = []bucketName{
	bucketMeta, bucketNamespaces, bucketFacts, bucketIDs, bucketLog, bucketState, bucketRIndex, bucketExt,
}

func migrateCreateV1(tx *bolt.Tx) error {
	for _, b := range v1Buckets {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return fmt.Errorf("create bucket %s: %w", b, err)
		}
	}
	return nil
}

// migrateSumsV3 creates sums/. It computes no checksum for the facts already
// stored: a fact without one is checked on read by its signature, as before,
// and a checksum written now would vouch for bytes nobody verified since
// they were written.
func migrateSumsV3(tx *bolt.Tx) error {
	if _, err := tx.CreateBucketIfNotExists(bucketSums); err != nil {
		return fmt.Errorf("create bucket %s: %w", bucketSums, err)
	}
	return nil
}

// migrateMembersV2 creates members/ and fills members/<ns> with each
// namespace's genesis members, admitted by the genesis. Schema 1 knew no fact
// that changes membership, so that is every namespace's whole membership.
func migrateMembersV2(tx *bolt.Tx) error {
	mb, err := tx.CreateBucketIfNotExists(bucketMembers)
	if err != nil {
		return fmt.Errorf("create bucket %s: %w", bucketMembers, err)
	}
	ids := tx.Bucket(bucketIDs)
	return tx.Bucket(bucketNamespaces).ForEach(func(k, v []byte) error {
		ns, err := parseNSKey(k)
		if err != nil {
			return err
		}
		r, err := decodeNSRecord(v)
		if err != nil {
			return err
		}
		e := ids.Get(r.genesis[:])
		if e == nil {
			return fmt.Errorf("genesis %s of %s is not in the id index: %w", r.genesis, ns, ErrCorrupt)
		}
		loc, err := decodeIDEntry(r.genesis, e)
		if err != nil {
			return err
		}
		b, err := mb.CreateBucketIfNotExists(k)
		if err != nil {
			return err
		}
		val := factKey(loc.key)
		for _, m := range r.members {
			if err := b.Put(m[:], val); err != nil {
				return err
			}
		}
		return nil
	})
}

// schemaVersion reads the stored version; 0 for a new, empty file.
func schemaVersion(tx *bolt.Tx) (uint32, error) {
	m := tx.Bucket(bucketMeta)
	if m == nil {
		return 0, nil
	}
	v := m.Get(keySchemaVersion)
	if len(v) != 4 {
		return 0, fmt.Errorf("schema_version of %d bytes: %w", len(v), ErrCorrupt)
	}
	return binary.BigEndian.Uint32(v), nil
}

// migrate brings the store to SchemaVersion in one transaction, or refuses a
// store from a newer binary.
func migrate(db *bolt.DB, createdBy string, log *zap.Logger) error {
	return db.Update(func(tx *bolt.Tx) error {
		have, err := schemaVersion(tx)
		if err != nil {
			return err
		}
		if have > SchemaVersion {
			return fmt.Errorf("file has schema %d, this aurad knows up to %d: %w", have, SchemaVersion, ErrNewerSchema)
		}
		if have == SchemaVersion {
			return nil
		}
		if have == 0 {
			// Only a file bbolt has just created may be set up from nothing:
			// buckets without a schema version mean a lost meta bucket, and
			// "migrating" would paper over the damage.
			if k, _ := tx.Cursor().First(); k != nil {
				return fmt.Errorf("%w: the file holds buckets but no schema version (meta bucket lost?)", ErrDamaged)
			}
		}
		for _, m := range migrations {
			if m.to <= have {
				continue
			}
			if err := m.apply(tx); err != nil {
				return fmt.Errorf("migration %d (%s): %w", m.to, m.name, err)
			}
			log.Info("journal migrated", zap.Uint32("schema", m.to), zap.String("migration", m.name))
		}
		meta := tx.Bucket(bucketMeta)
		if have == 0 && createdBy != "" {
			if err := meta.Put(keyCreatedBy, []byte(createdBy)); err != nil {
				return err
			}
		}
		return meta.Put(keySchemaVersion, binary.BigEndian.AppendUint32(nil, SchemaVersion))
	})
}

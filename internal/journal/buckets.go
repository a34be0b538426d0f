package journal

// bucketName is a top-level or nested bbolt bucket name. The whole tree is
// drawn in doc.go; every name used anywhere in the package is declared here.
type bucketName []byte

var (
	bucketMeta       = bucketName("meta")
	bucketNamespaces = bucketName("namespaces")
	bucketFacts      = bucketName("facts")
	bucketIDs        = bucketName("ids")
	bucketLog        = bucketName("log")
	bucketState      = bucketName("state")
	bucketRIndex     = bucketName("rindex")
	bucketExt        = bucketName("ext")
	bucketMembers    = bucketName("members")
	bucketSums       = bucketName("sums")
)

// topLevelBuckets exist in every store of the current schema.
var topLevelBuckets = []bucketName{
	bucketMeta, bucketNamespaces, bucketFacts, bucketIDs, bucketLog, bucketState, bucketRIndex, bucketExt,
	bucketMembers, bucketSums,
}

var (
	keySchemaVersion = []byte("schema_version")
	keyCreatedBy     = []byte("created_by")
	keyLastSeq       = []byte("last_seq")
	keyFactCount     = []byte("fact_count")
)

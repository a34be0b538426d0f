// Package tree is the commitment tree of an authority or group context: the
// left-balanced array tree of RFC 9420 (MLS), whose leaves hold members'
// devices and whose branches carry threshold policies.
//
// What exists so far is the foundation:
//   - math.go: the array-tree index math of RFC 9420 §4 and Appendix C for
//     trees of a power-of-two leaf count (node indices, level, children,
//     parent, sibling, root, direct path, copath), checked against the MLS
//     working group's tree-math vector (testdata/tree-math.json, a copy of
//     shared/reference/mls-vectors/tree-math.json). Indices come from peers'
//     ops, so every function that takes one checks it and returns an error.
//   - policy.go: branch policies (Any, KOfN(k), All), their strictness order
//     and Meet, the signers a policy requires among n members, and the
//     policy's canonical, versioned encoding that the root commitment
//     hashes.
//   - state.go: the tree state, immutable and path-copied: leaves (device or
//     guardian: Ed25519 signing key, X25519 HPKE key, both checked as
//     canonical points of large order), one threshold policy over the
//     devices, the epoch, and the commitments (tagged SHA-256 of leaves,
//     branches and the root, which binds epoch and policy). A state is named
//     by (epoch, root commitment). Adding takes the first blank leaf and
//     doubles the tree when it is full; removing blanks the leaf.
//   - ops.go: the ops AddLeaf, RemoveLeaf, ChangePolicy, RotateEpoch and
//     UpdatePath, each naming its parent state and author leaf, with their
//     strict, versioned encoding; an op's id is the tagged hash of the
//     complete encoding, attestation included.
//   - attest.go: the Attester interface the reducer checks attestations
//     with, and SingleSigner, the one-signer (Ed25519) attester. Ops that
//     need more signers than the attester verifies are refused, until the
//     FROST attester exists.
//   - reduce.go: which ops are valid on a state (State.Apply: parent, author,
//     keys, last device, policy only widened with every device's
//     attestation), and the reduction of an op set: a walk from genesis in
//     which, at each state, the valid op with the highest id wins and its
//     siblings are superseded; Reduce from scratch and the incremental
//     Reducer, which agree for every arrival order.
//   - keys.go: the TreeKEM key schedule on crypto/hpke: a committer's path
//     secrets up its direct path, each sealed to the resolution of the
//     matching copath node (excluded leaves get nothing), processed by every
//     other member into the same root secret; group keys per epoch.
//
// The rest of issue #14 builds on it: the FROST attester, the key schedule
// wired into the state (parent-node keys, UpdatePath bodies) and membership
// ops, ops as facts of the authority's namespace, and the enrollment
// ceremony.
package tree

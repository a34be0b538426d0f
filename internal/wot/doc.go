// Package wot is the web of trust and the capability tokens. The Graph, the
// search, the tokens and the Verifier are pure (no storage, no network);
// Service (service.go) keeps them current from the journal's facts and is
// what the node wires to the TrustService.
//
// Trust. A device states how much it trusts another device with a TrustEdge
// fact in its own authority namespace, and may share a copy with a contact as
// an Endorsement in their relational context. The node indexes the edges a
// device can see in a Graph; Compute and Authorize answer "how much does A
// trust B" over visible edges only, so nothing about a person's other
// relationships leaks unless they chose to share it. Transitive trust along a
// path is its weakest edge lowered one level per hop beyond the first; the
// trust between two devices is the best over simple paths of at most max_hops.
// The search is exact, integer-only and deterministic, including the evidence
// path it returns (see trust_compute.go for why it is exact).
//
// Capabilities. A Token is a delegation chain: a root block signed by an
// authority's key grants a holder device a capability set, a scope and an
// expiry; each further block is signed by the previous holder and may only
// attenuate. Verifier checks a chain offline against the issuer's current key
// and epoch, a RevocationSet (revoking a block revokes every token delegated
// through it) and the injected clock, and caches its verdicts.
package wot

// Package core holds the vocabulary every other Aura package shares: identifiers
// (with a device's libp2p peer-id form), domain-separated hashes, epochs, context
// classes and link contexts, leakage vectors, the injected clock and the error
// sentinels that the API edge maps to gRPC codes. It depends on nothing inside Aura.
package core

// Package core holds the vocabulary every other Aura package shares: identifiers,
// domain-separated hashes, epochs, the injected clock and the error sentinels that
// the API edge maps to gRPC codes. It depends on nothing inside Aura.
package core

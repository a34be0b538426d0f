// Package rpc is the gRPC edge of aurad: the interceptor chain every call passes
// (recovery → logging → lifecycle gate → auth → stream limits, for streams →
// error mapping), the one place where domain errors become status codes (and
// long echoed input is cut short; an error an adapter marked with
// PeerUnreachable also carries a google.rpc.ErrorInfo, so clients tell a
// peer's failure from the daemon's), and the method → permission table.
// Adapters for each service live in subpackages (rpc/node, rpc/journal,
// rpc/crdt); they validate requests, call the domain and return its errors.
package rpc

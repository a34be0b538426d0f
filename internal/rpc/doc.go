// Package rpc is the gRPC edge of aurad: the interceptor chain every call passes
// (recovery → logging → lifecycle gate → auth → stream limits, for streams →
// error mapping), the one place where domain errors become status codes (and
// long echoed input is cut short), and the method → permission table.
// Adapters for each service live in subpackages (rpc/node, rpc/journal,
// rpc/crdt); they validate requests, call the domain and return its errors.
package rpc

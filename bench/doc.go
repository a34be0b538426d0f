// Package bench holds aurad's committed performance benchmarks: durable
// appends and CRDT reads driven through the real gRPC API over the control
// socket of an in-process node (append_test.go, run with go test -bench), and
// the restart/memory/binary-size harness in bench/restart. See README.md.
package bench

package rpc

import (
	"fmt"
	"maps"
)

// Permission is what a method needs from its caller, and what a caller holds:
// the levels are ordered Read < Write < Admin, and a caller may call every
// method that needs at most its own level. The unix socket's owner holds
// Admin; a TCP caller holds its bearer token's level.
type Permission uint8

const (
	// Read: observe state (status, facts, objects).
	Read Permission = iota + 1
	// Write: create facts or change objects.
	Write
	// Admin: control the daemon itself (shutdown).
	Admin
)

func (p Permission) String() string {
	switch p {
	case Read:
		return "read"
	case Write:
		return "write"
	case Admin:
		return "admin"
	}
	return fmt.Sprintf("permission(%d)", p)
}

// Permissions maps full method names ("/aura.node.v1.NodeService/Shutdown") to
// what they need. A method absent from the table is refused, so a new RPC is
// unreachable until someone decides who may call it.
type Permissions map[string]Permission

// Merge returns the union of tables, failing on a method listed twice.
func Merge(tables ...Permissions) (Permissions, error) {
	out := Permissions{}
	for _, t := range tables {
		for m, p := range t {
			if _, dup := out[m]; dup {
				return nil, fmt.Errorf("method %s has two permission entries", m)
			}
			out[m] = p
		}
	}
	return out, nil
}

// StandardPermissions covers the services every aurad registers besides its own:
// health checks and reflection are read-only.
func StandardPermissions() Permissions {
	return maps.Clone(Permissions{
		"/grpc.health.v1.Health/Check":                                   Read,
		"/grpc.health.v1.Health/List":                                    Read,
		"/grpc.health.v1.Health/Watch":                                   Read,
		"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo":      Read,
		"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": Read,
	})
}

package account

import (
	"time"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/tree"
)

// View is what an operator sees of the account: the reduced tree state and
// the fate of every op this device knows.
type View struct {
	Authority core.AuthorityID
	Epoch     uint64
	Root      core.Hash
	Policy    string
	// Required is how many devices must attest the next op under Policy.
	Required int
	Devices  []Device
	Ops      []OpInfo
}

// Device is one leaf of the account's tree.
type Device struct {
	Leaf   tree.LeafIndex
	Device core.DeviceID
	Role   tree.Role
	HPKE   [32]byte
	// Self marks the device this daemon runs as.
	Self bool
}

// OpInfo is one tree op and what became of it.
type OpInfo struct {
	ID     tree.OpID
	Kind   tree.Kind
	Author tree.LeafIndex
	Parent tree.StateName
	// Status is applied, superseded (By names the sibling that won) or
	// rejected (Reason says why).
	Status tree.Status
	By     tree.OpID
	Reason string
	// Reproposed is the op this device made again in place of its own
	// superseded one (see repropose); when it made none, Reason says why.
	Reproposed *tree.OpID
}

// Invitation is a device invitation as its maker sees it.
type Invitation struct {
	ID      [16]byte
	Code    string
	Expires time.Time
}

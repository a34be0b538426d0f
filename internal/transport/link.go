package transport

import (
	"bytes"

	"github.com/aura-p2p/aura/internal/core"
)

// TagLink names the pairwise link context of two devices.
const TagLink core.Tag = "aura/link/v1"

// LinkContext is the context two devices share with no other: traffic that
// belongs to no relationship yet (ping, handshakes) is charged to it. Both
// sides derive the same id, whatever the order of the arguments.
func LinkContext(a, b core.DeviceID) core.ContextID {
	if bytes.Compare(a[:], b[:]) > 0 {
		a, b = b, a
	}
	return core.ContextID(core.TaggedHash(TagLink, a[:], b[:]))
}

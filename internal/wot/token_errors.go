package wot

import (
	"fmt"

	"github.com/aura-p2p/aura/internal/core"
)

// Token refusals. Each wraps the core sentinel the API maps to a gRPC code;
// the message around it names the block at fault ("token block 2: ...").
var (
	// ErrTokenMalformed: bytes that are not a token, or a token whose fields
	// contradict its structure.
	ErrTokenMalformed = fmt.Errorf("malformed capability token: %w", core.ErrInvalidArgument)
	// ErrTokenDepth: more blocks than MaxTokenDepth.
	ErrTokenDepth = fmt.Errorf("capability token too deep: %w", core.ErrInvalidArgument)
	// ErrTokenSignature: a block's signature does not verify under the key
	// that must have signed it (the issuer's for the root, the previous
	// holder's after), or a block is not bound to its predecessor.
	ErrTokenSignature = fmt.Errorf("capability token signature: %w", core.ErrPermissionDenied)
	// ErrTokenWidened: a block grants more than its predecessor: a capability
	// it did not have, a wider scope or a later expiry.
	ErrTokenWidened = fmt.Errorf("capability token widens its delegation: %w", core.ErrPermissionDenied)
	// ErrTokenExpired: the token's effective expiry has passed.
	ErrTokenExpired = fmt.Errorf("capability token expired: %w", core.ErrPermissionDenied)
	// ErrTokenRevoked: a block of the chain was revoked by the issuer.
	ErrTokenRevoked = fmt.Errorf("capability token revoked: %w", core.ErrPermissionDenied)
	// ErrTokenEpoch: the token was issued in an epoch of its issuer that is
	// not the current one (rotated since, or not known yet).
	ErrTokenEpoch = fmt.Errorf("capability token from another issuer epoch: %w", core.ErrPermissionDenied)
	// ErrTokenHolder: the device presenting or attenuating the token is not
	// its holder.
	ErrTokenHolder = fmt.Errorf("not the capability token's holder: %w", core.ErrPermissionDenied)
	// ErrTokenNotPermitted: a valid token that does not grant what is asked
	// (capability missing or namespace out of scope).
	ErrTokenNotPermitted = fmt.Errorf("capability token does not permit this: %w", core.ErrPermissionDenied)
)

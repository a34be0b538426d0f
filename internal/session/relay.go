package session

import (
	"context"
	"fmt"
	"slices"

	"github.com/aura-p2p/aura/internal/choreo"
	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
)

// Relay is the built-in handler for protocols without application meaning:
// demos, benchmarks, and checking from the command line that a protocol runs
// between real devices. Each send carries a short text naming the label, the
// role and the step; every payload received is accepted. At the k-th choice
// a role decides, it takes the k-th of the starter's choices if there is one
// (which must then be a branch offered there), else the first branch.
//
// A protocol opts in with the attribute #[handler = "relay"]: giving the relay
// a protocol with meaning (recovery, enrollment) would let any peer make this
// device commit that protocol's facts.
type Relay struct{}

// RelayAttr is the attribute value that hands a protocol to the Relay.
const RelayAttr = "relay"

func (Relay) Choose(_ context.Context, s Info, branches []choreo.Action) (string, error) {
	if s.Decisions < len(s.Choices) {
		want := s.Choices[s.Decisions]
		if slices.ContainsFunc(branches, func(a choreo.Action) bool { return a.Branch == want }) {
			return want, nil
		}
		return "", fmt.Errorf("choice %d is %q, not a branch of this choice: %w", s.Decisions+1, want, core.ErrInvalidArgument)
	}
	return branches[0].Branch, nil
}

func (Relay) Send(_ context.Context, s Info, a choreo.Action) ([]byte, []journal.Draft, error) {
	return fmt.Appendf(nil, "%s from %s, step %d", a.Label, s.Role, s.Step+1), nil, nil
}

func (Relay) Receive(context.Context, Info, choreo.Action, []byte) error { return nil }

// RegisterRelay registers the Relay for every role of every protocol marked
// #[handler = "relay"], and returns their names.
func (rt *Runtime) RegisterRelay() []string {
	var names []string
	for _, n := range rt.Protocols() {
		v, ok := rt.protos[n].p.Protocol.Attr("handler")
		if !ok || v.Text != RelayAttr {
			continue
		}
		if err := rt.Register(n, "", Relay{}); err == nil {
			names = append(names, n)
		}
	}
	return names
}

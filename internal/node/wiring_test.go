package node

import (
	"testing"

	"github.com/aura-p2p/aura/internal/budget"
	"github.com/aura-p2p/aura/internal/crdt"
	"github.com/aura-p2p/aura/internal/journal"
	"github.com/aura-p2p/aura/internal/session"
)

func TestValidatorsRegisteredTwiceFailTheStart(t *testing.T) {
	ok := func(*journal.SignedFact) error { return nil }
	if _, err := mergeValidators(map[string]journal.Validator{"app.a/v1": ok}, map[string]journal.Validator{"app.b/v1": ok}); err != nil {
		t.Fatalf("distinct types: %v", err)
	}
	_, err := mergeValidators(map[string]journal.Validator{"app.a/v1": ok}, map[string]journal.Validator{"app.a/v1": ok})
	if err == nil {
		t.Fatal("a type registered twice was accepted")
	}
	// The daemon's own subsystems claim disjoint types.
	if _, err := mergeValidators(crdt.Validators(), budget.Validators(), session.Validators()); err != nil {
		t.Fatal(err)
	}
}

package protocols

import (
	"errors"
	"testing"

	"github.com/aura-p2p/aura/internal/choreo"
	"github.com/aura-p2p/aura/internal/core"
)

// Every embedded protocol parses, passes the checks and projects.
func TestAllEmbeddedProtocolsLoad(t *testing.T) {
	names := map[string]string{}
	if len(Files()) == 0 {
		t.Fatal("no embedded protocol files")
	}
	for _, file := range Files() {
		_, ps, err := LoadFile(file)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		for _, p := range ps {
			if prev, ok := names[p.Protocol.Name]; ok {
				t.Errorf("protocol %s in both %s and %s", p.Protocol.Name, prev, file)
			}
			names[p.Protocol.Name] = file
			if _, ok := p.Protocol.Attr("namespace"); !ok {
				t.Errorf("%s: protocol %s has no #[namespace]", file, p.Protocol.Name)
			}
			for _, r := range p.Roles {
				if _, ok := r.Type.(*choreo.End); ok {
					t.Errorf("%s: role %s of %s does nothing", file, r.Role, p.Protocol.Name)
				}
			}
		}
	}
	for _, want := range []string{
		"Ping", "PingPong", "SecureRequest", "InvitationExchange", "GuardianInvitation",
		"InvitationCeremony", "DeviceEnrollment", "GuardianSetup", "GuardianCeremony",
		"GuardianMembershipChange", "RecoveryProtocol", "ConsensusFastPath",
		"EpochRotation", "DeviceEpochRotation",
	} {
		if _, ok := names[want]; !ok {
			t.Errorf("protocol %s missing", want)
		}
	}
}

// The costs of aura-notes §6 are what the files say, summed per role's sends.
func TestCosts(t *testing.T) {
	sent := func(proto, role string) uint64 {
		p, err := Lookup(proto)
		if err != nil {
			t.Fatal(err)
		}
		m, err := p.Machine(role)
		if err != nil {
			t.Fatal(err)
		}
		var total uint64
		// Straight-line protocols only: take the first action each time.
		for !m.Done() {
			a := m.Next()[0]
			if a.Kind == choreo.ActSend {
				total += uint64(a.Ann.FlowCost)
			}
			if err := m.Step(a); err != nil {
				t.Fatal(err)
			}
		}
		return total
	}
	for _, tt := range []struct {
		proto, role string
		want        uint64
	}{
		{"InvitationExchange", "Sender", 2},
		{"InvitationExchange", "Receiver", 1},
		{"GuardianInvitation", "Sender", 3},
		{"DeviceEnrollment", "NewDevice", 2},
		{"GuardianSetup", "Initiator", 3*300 + 3*150},
		{"GuardianSetup", "G2", 200},
		{"RecoveryProtocol", "Coordinator", 150},
		{"RecoveryProtocol", "Account", 100},
		{"ConsensusFastPath", "Coordinator", 3 * (100 + 75 + 100)},
		{"ConsensusFastPath", "W3", 100},
		{"EpochRotation", "Coordinator", 2 * (120 + 100)},
		{"DeviceEpochRotation", "Device", 40},
		{"Ping", "Pinger", 1},
	} {
		if got := sent(tt.proto, tt.role); got != tt.want {
			t.Errorf("%s/%s sends %d flow units, want %d", tt.proto, tt.role, got, tt.want)
		}
	}
}

func TestNotFound(t *testing.T) {
	if _, err := Lookup("NoSuchProtocol"); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("Lookup: %v", err)
	}
	if _, _, err := LoadFile("missing.choreo"); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("LoadFile: %v", err)
	}
}

package core

import "testing"

func TestLinkContextIsSymmetric(t *testing.T) {
	a, b := DeviceID{1}, DeviceID{2}
	if LinkContext(a, b) != LinkContext(b, a) || LinkContext(a, b) == LinkContext(a, DeviceID{3}) {
		t.Fatal("link context not symmetric or not distinct")
	}
}

// Both ends of a link derive its id on their own and budgets are stored
// under it, so the id of a given pair may never change.
func TestLinkContextIsStable(t *testing.T) {
	const want = "d75c7e0ca9b1a02a40401a0be2c50a6a5c395b389eb16238d399dc9b512dec7e"
	if got := LinkContext(DeviceID{2}, DeviceID{1}).String(); got != want {
		t.Fatalf("link context %s, want %s", got, want)
	}
}

// The budget store records classes as one byte, so their values are fixed.
func TestClassValues(t *testing.T) {
	for _, tc := range []struct {
		c     Class
		value uint8
		valid bool
		name  string
	}{
		{0, 0, false, "class(0)"},
		{ClassLink, 1, true, "link"},
		{ClassContact, 2, true, "contact"},
		{ClassGroup, 3, true, "group"},
		{4, 4, false, "class(4)"},
	} {
		if uint8(tc.c) != tc.value || tc.c.Valid() != tc.valid || tc.c.String() != tc.name {
			t.Errorf("%d: value %d valid %v name %q, want %d %v %q", tc.c, uint8(tc.c), tc.c.Valid(), tc.c.String(), tc.value, tc.valid, tc.name)
		}
	}
}

// Package choreo is Aura's language for multi-party protocols: a protocol is
// written once, from the global point of view, and projected to one local
// type per role; a runtime then drives each role's local type over the
// network. Writing the global view is what makes the ceremonies (invitation,
// enrollment, guardian setup, recovery, threshold signing) checkable: a
// protocol that projects cannot deadlock and cannot leave a role guessing
// which branch was taken.
package choreo

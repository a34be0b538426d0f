// Package choreo is Aura's language for multi-party protocols: a protocol is
// written once, from the global point of view, and projected to one local
// type per role; a runtime (package internal/session) then drives each
// role's local type over the network. Writing the global view is what makes
// the ceremonies (invitation, enrollment, guardian setup, recovery, threshold
// signing) checkable: a protocol that projects cannot deadlock and cannot
// leave a role guessing which branch was taken.
//
// # Language
//
//	file        = protocol { protocol } .
//	protocol    = { attribute } "protocol" Name "{" roles { stmt } "}" .
//	attribute   = "#" "[" attr { "," attr } "]" .
//	attr        = Name [ "=" value ] .
//	roles       = "roles" ":" Name { "," Name } ";" .
//	stmt        = message | choice | rec | continue | do .
//	message     = Name [ annotations ] "->" Name ":" Name [ "(" type ")" ] ";" .
//	annotations = "[" annotation { "," annotation } "]" .
//	annotation  = ( "guard_capability" | "journal_facts" ) "=" String
//	            | "flow_cost" "=" Int .
//	type        = Name { "::" Name } [ "<" type { "," type } ">" ] .
//	choice      = "choice" "at" Name "{" branch { [ "or" ] branch } "}" [ ";" ]
//	            | "choice" "at" Name block { "or" block } [ ";" ] .
//	branch      = Name ":" block .
//	block       = "{" { stmt } "}" .
//	rec         = "rec" Name block [ ";" ] .
//	continue    = "continue" Name ";" .
//	do          = "do" Name ";" .
//	value       = String | Int | Name .
//
// Name is a letter or '_' followed by letters, digits and '_'; the words
// protocol, roles, choice, at, or, rec, continue and do are reserved. Int is
// decimal (a leading '-' lexes, so that a negative cost gets a clear error).
// String is double-quoted with the escapes \" \\ \n \t. Comments are // to
// the end of the line and /* ... */ (not nested).
//
// The guide's examples parse as written there, without the Rust
// choreography! { } wrapper:
//
//	#[namespace = "secure_request"]
//	protocol SecureRequest {
//	    roles: Client, Server;
//	    Client[guard_capability = "send_request", flow_cost = 50]
//	    -> Server: SendRequest(RequestData);
//	    Server[guard_capability = "send_response", flow_cost = 30, journal_facts = "response_sent"]
//	    -> Client: SendResponse(ResponseData);
//	}
//
// # Meaning
//
// Statements run in order. A message is sent by the role before "->"
// through the guard chain with its annotations (the capability checked, the
// flow cost charged before the send, the journal facts committed) and
// received by the role after it. flow_cost is 0..2^32-1, like the budget
// counters. Unknown annotation keys are refused, since a misspelt flow_cost
// would silently charge nothing; attributes (#[...]) may be anything and are
// kept for the runtime.
//
// In `choice at A`, role A decides. Each branch must start with a message
// from A, and no two branches with the same message, because that first
// message is how its receiver learns the decision. A labelled branch
// `Commit: { ... }` is named by its label; in the unlabelled form
// `choice at A { ... } or { ... }` a branch is named by its first message's
// label. Branch names must differ.
//
// `rec L { ... }` is a loop: `continue L;` starts the body again and must be
// the last statement of its block; falling off the end of the body leaves
// the loop. A loop must send something before it can restart, loop names do
// not shadow enclosing ones, and nothing may follow a statement that never
// finishes.
//
// `do P;` runs the body of protocol P, from the same file, at that point:
// sequential composition. P's roles stand for the roles of the same name in
// the including protocol, which must declare them all; roles P does not
// mention take no part. do may not recurse.
//
// # Projection
//
// Project computes each role's Local type: Send, Recv, Select (the role
// decides a choice, one arm per branch), Branch (the role is told, by
// label, from one sender), Rec/Var (loops) and End. A role not deciding a
// choice gets the merge of its views of the branches: identical views merge
// to themselves, and receptions from the same sender merge into one Branch
// over the union of their labels (a label in both needs the same payload,
// annotations and mergeable continuations). Anything else means the role
// would have to guess which branch was taken, and projection fails with
// ErrNotRealizable naming the role, the choice and what the role would do in
// two of its branches. A role with no part in a loop that can only end by
// falling through skips the loop and waits for what follows it: this is
// what lets "loop, then tell the auditor" protocols project.
//
// A choice places what follows it in each branch, so a role's local type is
// a tree that can be exponentially larger than the protocol; one larger than
// 65536 steps is refused rather than built.
//
// # Session machines
//
// A Machine steps through one local type for a runtime: Next lists what the
// role may do now (sends, with their annotations and, for a decision, the
// branch they select; or the receives it accepts), Step takes one, and a
// step not allowed is a *ViolationError wrapping ErrViolation. Receiving
// says which peer a waiting role listens to. Machines do no I/O and keep no
// clock; timeouts and cancellation belong to the runtime.
//
// # Runtime
//
// Running sessions over the network is package internal/session's job; this
// package does no I/O, so a tool that only reads protocol files links no
// networking or storage code.
//
// Errors: every error carries a core sentinel via one of ErrSyntax,
// ErrIllFormed, ErrNotRealizable (all core.ErrInvalidArgument), ErrUnknown
// (core.ErrNotFound) and ErrViolation (core.ErrAborted). Source errors are
// *Error values printing as "line:col: message".
package choreo

// Package transport is aurad's network edge: a libp2p host (TCP and QUIC,
// Noise, yamux, resource and connection managers) whose identity is the device
// key, and THE path by which bytes leave the device.
//
// Every outgoing message goes through Send, which runs the guard chain in a
// fixed order and stops, with no side effect, at the first step that denies:
//
//  1. capability: the destination is a member of the context, the message
//     type may be sent there, and this device holds the capability the
//     message names (Authorizer); the envelope carries that claim;
//  2. flow budget: the cost is charged to (context, peer), persisted (Charger);
//  3. journal coupling: the charge and the message's facts commit in one
//     group-committed transaction (Charger, through the journal);
//  4. send: the envelope, carrying the signed receipt, is written to the peer.
//
// The libp2p host is never handed out, and the stream layer is reached only
// through the unexported wire interface that Send alone calls; a test counts
// frames at that layer against recorded charges.
//
// Incoming frames are decoded, checked against the authenticated sender, the
// capability it claims (dropped as capability_denied if it does not hold it)
// and the receipt they carry (Charger.Accept: signature, epoch window, chain, the
// limit this device grants the sender) before any handler sees them. A frame
// that fails is dropped and counted per reason (a receipt on another epoch
// schedule, ErrEpochSchedule, apart from other receipt failures); a peer that
// keeps failing is disconnected and refused for a growing back-off.
//
// The peer book (journal extension store) holds the peers the operator added
// and, apart from them, peers learned from their own announcement: once a
// connection is secured, libp2p's identify tells each side the other's listen
// addresses, and the dialable ones are kept, so that one `peer add` between
// two devices is enough in both directions. Learned entries are bounded
// (MaxLearnedPeers, oldest learned evicted) and never displace added ones.
package transport

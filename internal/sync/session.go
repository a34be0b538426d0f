package sync

import (
	"context"
	"errors"
	"fmt"
	"iter"
	stdsync "sync"
	"time"

	"go.uber.org/zap"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
	"github.com/aura-p2p/aura/internal/sync/riblt"
	"github.com/aura-p2p/aura/internal/transport"
)

// A session reconciles one namespace with one peer. The initiator streams
// coded symbols of its set; the responder decodes the difference, or asks for
// range-based reconciliation when the difference is too large for the
// sketch; then each side sends the facts the other lacks. Either side knows
// how many facts it still waits for (announced by the sender before it
// sends), so a session ends by itself once the sets agree.
type session struct {
	s    *Syncer
	id   sessionID
	role Role
	peer core.DeviceID
	sh   Shared
	key  riblt.Key

	inbox    chan transport.Incoming
	done     chan struct{}
	progress func(Progress)
	p        Progress
	started  time.Time

	// The sketch: the initiator's snapshot of its own stream, and the
	// responder's decoder with its own snapshot.
	enc   *riblt.Encoder
	count uint64
	fp    [fpLen]byte
	sent  uint64 // initiator: symbols sent
	dec   *riblt.Decoder
	// responder: its own symbols of the current round past the cache
	round      []riblt.Symbol
	roundStart uint64
	roundEnd   uint64 // end of the round whose symbols are arriving

	reconBytes uint64 // reconciliation bytes taken from the peer
	sentBytes  uint64 // bytes of the session's own (non-push) messages
	reconDone  bool
	expecting  uint64 // facts announced to us and not yet received
	pushing    int    // push jobs running
	pushed     chan error
	// The peer's batches in the journal's pipeline, oldest first.
	recv     *journal.Receiver
	inFlight []inFlight
	refused  uint64
	// What push goroutines sent, folded into p when they end.
	pushMu               stdsync.Mutex
	pushBytes, pushFacts uint64
}

// errEnd ends a session with a typed reason.
type errEnd struct {
	reason string
	err    error
}

func (e *errEnd) Error() string {
	if e.err == nil {
		return e.reason
	}
	return e.reason + ": " + e.err.Error()
}

func (e *errEnd) Unwrap() error { return e.err }

func endWith(reason string, format string, args ...any) error {
	return &errEnd{reason: reason, err: fmt.Errorf(format, args...)}
}

func (ss *session) ns() core.Namespace { return ss.sh.Namespace }

func (ss *session) report() {
	ss.pushMu.Lock()
	ss.p.FactsOut, ss.p.BytesOut = ss.pushFacts, ss.sentBytes+ss.pushBytes
	ss.pushMu.Unlock()
	if ss.progress != nil {
		ss.progress(ss.p)
	}
}

// run drives the session until it converges or fails.
func (ss *session) run(ctx context.Context) {
	ss.started = ss.s.o.Clock.Now()
	ss.p.Rounds = 0
	err := ss.loop(ctx)
	for len(ss.inFlight) > 0 {
		ss.settle(ctx)
	}
	close(ss.done)
	ss.s.forget(ss)
	// Wait for pushes still running: they hold the session's counters.
	for ss.pushing > 0 {
		if perr := <-ss.pushed; perr != nil && err == nil {
			err = perr
		}
		ss.pushing--
	}
	if err != nil {
		var ee *errEnd
		reason := reasonLocal
		if errors.As(err, &ee) {
			reason = ee.reason
		} else if ctx.Err() != nil {
			reason = reasonCancelled
		}
		ss.p.Phase, ss.p.Err = PhaseFailed, reason
		if reason == reasonBusy && ss.role == RoleInitiator {
			// The peer refused the open: nothing to tell it.
		} else if reason != reasonCancelled || ss.s.ctx.Err() == nil {
			sendCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ss.s.o.Timeout)
			ss.s.sendEnd(sendCtx, ss.peer, ss.sh.Context, ss.id, reason)
			cancel()
		}
		ss.s.log.Debug("sync session failed", zap.Stringer("peer", ss.peer), zap.Stringer("namespace", ss.ns()), zap.String("role", string(ss.role)), zap.Error(err))
	} else {
		ss.p.Phase = PhaseDone
	}
	if ss.role == RoleInitiator && ss.p.Err == reasonBusy {
		// Not a session that ran: initiate waits and tries again, and
		// that attempt is the one to report.
		return
	}
	ss.report()
	if ss.s.o.Observe != nil {
		ss.s.o.Observe(ss.p.Mode, ss.p.Err != "")
	}
	finished := ss.s.o.Clock.Now()
	ss.s.record(activeKey{ss.peer, ss.ns()}, ss.sh.Context, func(ps *PeerStatus) {
		ps.LastStarted, ps.LastFinished = ss.started, finished
		ps.LastMode, ps.LastRole, ps.LastRounds, ps.LastError = ss.p.Mode, ss.role, ss.p.Rounds, ss.p.Err
		ps.Sessions++
		if ss.p.Err != "" {
			ps.Failures++
		}
		ps.FactsIn += ss.p.FactsIn
		ps.Refused += ss.refused
		ps.FactsOut += ss.p.FactsOut
		ps.BytesIn += ss.p.BytesIn
		ps.BytesOut += ss.p.BytesOut
	})
}

func (ss *session) finished() bool {
	return ss.reconDone && ss.expecting == 0 && ss.pushing == 0
}

func (ss *session) loop(ctx context.Context) error {
	if ss.role == RoleInitiator {
		if err := ss.open(ctx); err != nil {
			return err
		}
	}
	timer := time.NewTimer(ss.s.o.Timeout)
	defer timer.Stop()
	for !ss.finished() {
		if ss.p.Rounds > ss.s.o.MaxRounds {
			return endWith(reasonTooLong, "%d rounds", ss.p.Rounds)
		}
		// Silence counts only while this side waits for the peer: a long
		// push of its own is bounded by the transport's write timeout.
		silence := timer.C
		if ss.pushing > 0 {
			silence = nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case in := <-ss.inbox:
			if err := ss.handle(ctx, in); err != nil {
				return err
			}
		case err := <-ss.pushed:
			ss.pushing--
			if err != nil {
				return err
			}
		case <-silence:
			return endWith(reasonTimeout, "no word from the peer for %s", ss.s.o.Timeout)
		}
		ss.report()
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(ss.s.o.Timeout)
	}
	return nil
}

// sendFailed types a failed send: over budget (the session resumes with the
// next one, after the budget period turns), or the peer out of reach.
func sendFailed(ctx context.Context, err error) error {
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, core.ErrResourceExhausted):
		return &errEnd{reason: reasonBudget, err: err}
	default:
		return &errEnd{reason: reasonUnreachable, err: err}
	}
}

func transportMessage(ss *session, typ string, payload []byte) transport.Message {
	return transport.Message{Protocol: ProtocolSync, Context: ss.sh.Context, To: ss.peer, Type: typ, Cost: costOf(len(payload)), Payload: payload}
}

// send charges and sends one message of the session.
func (ss *session) send(ctx context.Context, typ string, payload []byte) error {
	err := ss.s.net.Send(ctx, transportMessage(ss, typ, payload))
	if err != nil {
		return sendFailed(ctx, err)
	}
	ss.sentBytes += uint64(len(payload))
	return nil
}

// handle takes one message of the peer.
func (ss *session) handle(ctx context.Context, in transport.Incoming) error {
	ss.p.BytesIn += uint64(len(in.Payload))
	_, body, err := parseHeader(in.Payload)
	if err != nil {
		return &errEnd{reason: reasonMalformed, err: err}
	}
	if in.Type != TypeBatch {
		if ss.reconBytes += uint64(len(in.Payload)); ss.reconBytes > ss.s.o.MaxReconBytes {
			return endWith(reasonTooBig, "%d reconciliation bytes from the peer", ss.reconBytes)
		}
	}
	bad := func(err error) error {
		ss.s.net.Misbehaved(ss.peer, "sync_malformed", err)
		return &errEnd{reason: reasonMalformed, err: err}
	}
	switch in.Type {
	case TypeOpen:
		if ss.role != RoleResponder || ss.dec != nil || ss.enc != nil {
			return bad(fmt.Errorf("unexpected open"))
		}
		m, err := decodeOpen(body)
		if err != nil {
			return bad(err)
		}
		return ss.onOpen(ctx, m)
	case TypeSketch:
		if ss.role != RoleResponder {
			return bad(fmt.Errorf("unexpected symbols"))
		}
		m, err := decodeSketch(body)
		if err != nil {
			return bad(err)
		}
		if ss.dec == nil {
			// The rest of a round the responder no longer needs (it
			// decoded, or went to ranges, mid-round) is dropped.
			if m.RoundEnd <= ss.roundEnd {
				return nil
			}
			return bad(fmt.Errorf("unexpected symbols"))
		}
		return ss.onSketch(ctx, m)
	case TypeReply:
		if ss.role != RoleInitiator {
			return bad(fmt.Errorf("unexpected reply"))
		}
		m, err := decodeReply(body)
		if err != nil {
			return bad(err)
		}
		return ss.onReply(ctx, m)
	case TypeRange:
		return ss.onRange(ctx, body)
	case TypeWant:
		ids, err := decodeWant(body)
		if err != nil {
			return bad(err)
		}
		ss.startPush(ctx, pushJob{wants: ids})
		return nil
	case TypeBatch:
		m, err := decodeBatch(body)
		if err != nil {
			return bad(err)
		}
		ss.take(ctx, m.Facts)
		got := uint64(len(m.Facts)) + m.Missing
		ss.expecting -= min(ss.expecting, got)
		if ss.reconDone {
			ss.p.Phase = PhaseTransferring
		}
		return nil
	case TypeEnd:
		reason, err := decodeEnd(body)
		if err != nil {
			return bad(err)
		}
		if reason == reasonBusy {
			// Refused for now (the peer's own session with this device
			// runs, or it is at its session bound): initiate retries.
			return endWith(reasonBusy, "the peer is busy")
		}
		return endWith(reasonProtocol, "the peer ended the session: %s", reason)
	}
	return bad(fmt.Errorf("message type %q", in.Type))
}

type inFlight struct {
	facts []*journal.SignedFact
	p     *journal.PendingBatch
}

// take passes a batch of the peer's facts to the journal: into its pipeline
// when it has one (at most maxInFlight batches deep), else at once.
func (ss *session) take(ctx context.Context, facts []*journal.SignedFact) {
	st, mine := ss.s.ownFacts(ss.peer, ss.ns(), facts)
	pl, ok := ss.s.st.(pipelined)
	if !ok {
		res, err := ss.s.st.ReceiveBatch(ctx, ss.peer, mine)
		ss.s.tally(ctx, ss.peer, mine, res, err, &st)
		ss.p.FactsIn += st.accepted
		ss.refused += st.refused
		return
	}
	ss.refused += st.refused
	if ss.recv == nil {
		ss.recv = pl.NewReceiver(ss.peer)
	}
	ss.inFlight = append(ss.inFlight, inFlight{facts: mine, p: ss.recv.Start(ctx, mine)})
	for len(ss.inFlight) > maxInFlight {
		ss.settle(ctx)
	}
}

// settle waits for the oldest batch in the pipeline and counts its outcome.
func (ss *session) settle(ctx context.Context) {
	b := ss.inFlight[0]
	ss.inFlight = ss.inFlight[1:]
	res, err := b.p.Wait(ctx)
	var st ingestStats
	ss.s.tally(ctx, ss.peer, b.facts, res, err, &st)
	ss.p.FactsIn += st.accepted
	ss.refused += st.refused
}

// snapshot takes this device's sketch, count and fingerprint of the
// namespace, all as of one commit.
func (ss *session) snapshot(ctx context.Context) error {
	mk := func() (journal.SetIndex, error) {
		enc, err := riblt.NewEncoder(ss.key, ss.s.o.CacheLen)
		if err != nil {
			return nil, err
		}
		return &sketch{enc: enc, key: ss.key}, nil
	}
	err := ss.s.st.WithSetIndex(ctx, ss.ns(), sketchIndex+"/"+string(ss.key[:]), mk, func(ix journal.SetIndex, count uint64, fp journal.Fingerprint) error {
		ss.enc = ix.(*sketch).enc.Clone()
		ss.count = count
		copy(ss.fp[:], fp[:fpLen])
		return nil
	})
	if err != nil {
		return &errEnd{reason: reasonLocal, err: err}
	}
	return nil
}

// sketch is the journal-maintained coded-symbol index of a namespace.
type sketch struct {
	enc *riblt.Encoder
	key riblt.Key
}

func (k *sketch) Insert(id core.FactID) { k.enc.Add(id) }

// symbols returns symbols [from, to) of the snapshot, streaming the
// namespace's ids for those past the cache. The ids must still be the
// snapshot's set; if the namespace grew meanwhile, ok is false.
func (ss *session) symbols(ctx context.Context, from, to uint64) ([]riblt.Symbol, bool, error) {
	if to <= uint64(ss.enc.CacheLen()) {
		syms, err := ss.enc.Symbols(from, to, nil)
		return syms, err == nil, err
	}
	ids, err := ss.allIDs(ctx)
	if err != nil {
		return nil, false, &errEnd{reason: reasonLocal, err: err}
	}
	if uint64(len(ids)) != ss.count {
		return nil, false, nil
	}
	syms, err := ss.enc.Symbols(from, to, iter.Seq[[32]byte](func(yield func([32]byte) bool) {
		for _, id := range ids {
			if !yield(id) {
				return
			}
		}
	}))
	if errors.Is(err, riblt.ErrItems) {
		return nil, false, nil
	}
	return syms, err == nil, err
}

// allIDs lists the namespace's ids from the journal's range aggregate.
func (ss *session) allIDs(ctx context.Context) ([][32]byte, error) {
	out := make([][32]byte, 0, ss.count)
	lo := journal.FactKey{}
	for {
		keys, more, err := ss.s.st.RangeKeys(ctx, ss.ns(), lo, journal.FactKey{}, journal.MaxRangeKeys)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			out = append(out, k.ID)
		}
		if !more || len(keys) == 0 {
			return out, nil
		}
		lo = successor(keys[len(keys)-1])
	}
}

// successor is the least key after k.
func successor(k journal.FactKey) journal.FactKey {
	for i := len(k.ID) - 1; i >= 0; i-- {
		k.ID[i]++
		if k.ID[i] != 0 {
			return k
		}
	}
	k.Lamport++
	return k
}

// open starts the session: the initiator's summary and first symbols.
func (ss *session) open(ctx context.Context) error {
	if err := ss.snapshot(ctx); err != nil {
		return err
	}
	m := openMsg{Count: ss.count, FP: ss.fp, Symbols: riblt.Batch{}}
	if ss.count > 0 {
		n := uint64(min(firstSymbols, ss.s.o.CacheLen))
		syms, _, err := ss.symbols(ctx, 0, n)
		if err != nil {
			return &errEnd{reason: reasonLocal, err: err}
		}
		m.Symbols.Symbols = syms
		ss.sent = n
	}
	p, err := m.encode(ss.id)
	if err != nil {
		return &errEnd{reason: reasonLocal, err: err}
	}
	ss.p.Mode = ModeSketch
	ss.p.Rounds = 1
	return ss.send(ctx, TypeOpen, p)
}

// onOpen is the responder's first step.
func (ss *session) onOpen(ctx context.Context, m openMsg) error {
	if err := ss.snapshot(ctx); err != nil {
		return err
	}
	reply := replyMsg{Count: ss.count}
	switch {
	case m.Count == ss.count && m.FP == ss.fp:
		ss.p.Mode = ModeEqual
		reply.Status = replyEqual
		ss.reconDone = true
	case m.Count == 0:
		ss.p.Mode = ModeFull
		reply.Status, reply.Push = replyFull, ss.count
		ss.reconDone = true
		if err := ss.send(ctx, TypeReply, reply.encode(ss.id)); err != nil {
			return err
		}
		ss.startPush(ctx, pushJob{all: true})
		return nil
	case ss.count == 0:
		ss.p.Mode = ModeFull
		reply.Status, reply.WantAll = replyFull, true
		ss.expecting = m.Count
		ss.reconDone = true
	case m.RangeOnly || absDiff(m.Count, ss.count) > uint64(ss.s.o.MaxSketch)*2/3:
		return ss.toRanges(ctx, &reply)
	default:
		ss.p.Mode = ModeSketch
		dec, err := riblt.NewDecoder(ss.key, ss.s.o.MaxSketch)
		if err != nil {
			return &errEnd{reason: reasonLocal, err: err}
		}
		ss.dec = dec
		ss.p.Rounds = 1
		return ss.addSymbols(ctx, m.Symbols, uint64(len(m.Symbols.Symbols)))
	}
	return ss.send(ctx, TypeReply, reply.encode(ss.id))
}

func absDiff(a, b uint64) uint64 {
	if a > b {
		return a - b
	}
	return b - a
}

// toRanges tells the initiator to reconcile by ranges.
func (ss *session) toRanges(ctx context.Context, reply *replyMsg) error {
	ss.p.Mode = ModeRange
	ss.dec = nil
	reply.Status = replyExhausted
	return ss.send(ctx, TypeReply, reply.encode(ss.id))
}

func (ss *session) onSketch(ctx context.Context, m sketchMsg) error {
	if m.Symbols.Start == ss.dec.Received() && m.Symbols.Start >= ss.roundStart+uint64(len(ss.round)) {
		ss.p.Rounds++
	}
	return ss.addSymbols(ctx, m.Symbols, m.RoundEnd)
}

// addSymbols feeds the initiator's symbols to the decoder with this device's
// own of the same indices, then answers once the round is complete.
func (ss *session) addSymbols(ctx context.Context, b riblt.Batch, roundEnd uint64) error {
	n := uint64(len(b.Symbols))
	ss.roundEnd = roundEnd
	if roundEnd > uint64(ss.s.o.MaxSketch) {
		reply := replyMsg{Count: ss.count}
		return ss.toRanges(ctx, &reply)
	}
	local, err := ss.localSymbols(ctx, b.Start, b.Start+n, roundEnd)
	if err != nil {
		return err
	}
	if local == nil {
		// The namespace grew under the session: ranges are exact whatever
		// happens meanwhile.
		reply := replyMsg{Count: ss.count}
		return ss.toRanges(ctx, &reply)
	}
	err = ss.dec.Add(b, local)
	switch {
	case errors.Is(err, riblt.ErrTooManySymbols):
		reply := replyMsg{Count: ss.count}
		return ss.toRanges(ctx, &reply)
	case errors.Is(err, riblt.ErrInconsistent):
		ss.s.net.Misbehaved(ss.peer, "sync_inconsistent", err)
		return &errEnd{reason: reasonInconsistent, err: err}
	case err != nil:
		return &errEnd{reason: reasonMalformed, err: err}
	}
	if ss.dec.Done() {
		return ss.decoded(ctx)
	}
	if b.Start+n < roundEnd {
		return nil // more of this round to come
	}
	reply := replyMsg{Status: replyMore, Count: ss.count}
	if est, ok := ss.dec.EstimateDifference(); ok {
		reply.Estimate = est
	}
	return ss.send(ctx, TypeReply, reply.encode(ss.id))
}

// localSymbols returns this device's symbols [from, to), computing the whole
// round [from, roundEnd) at once when it lies past the cache (one pass over
// the namespace per round, not per message). nil means the namespace no
// longer matches the snapshot.
func (ss *session) localSymbols(ctx context.Context, from, to, roundEnd uint64) ([]riblt.Symbol, error) {
	if to <= uint64(ss.enc.CacheLen()) {
		syms, err := ss.enc.Symbols(from, to, nil)
		if err != nil {
			return nil, &errEnd{reason: reasonLocal, err: err}
		}
		return syms, nil
	}
	if from < ss.roundStart || to > ss.roundStart+uint64(len(ss.round)) {
		syms, ok, err := ss.symbols(ctx, from, roundEnd)
		if err != nil || !ok {
			return nil, err
		}
		ss.round, ss.roundStart = syms, from
	}
	return ss.round[from-ss.roundStart : to-ss.roundStart], nil
}

// decoded: the responder knows the difference. It asks for what it lacks and
// sends what the initiator lacks.
func (ss *session) decoded(ctx context.Context) error {
	mine := ss.dec.LocalOnly()
	theirs := ss.dec.RemoteOnly()
	ss.dec = nil
	want := make([]idPrefix, len(theirs))
	for i, id := range theirs {
		want[i] = prefixOf(id)
	}
	push := make([]core.FactID, len(mine))
	for i, id := range mine {
		push[i] = id
	}
	// Wants that do not fit the reply go first, so the initiator has them
	// all before the reply can let it finish.
	inReply := want[:min(len(want), maxWants-8)]
	if err := ss.sendWants(ctx, want[len(inReply):]); err != nil {
		return err
	}
	reply := replyMsg{Status: replyDecoded, Count: ss.count, Push: uint64(len(push)), Want: inReply}
	if err := ss.send(ctx, TypeReply, reply.encode(ss.id)); err != nil {
		return err
	}
	ss.expecting += uint64(len(want))
	ss.reconDone = true
	if len(push) > 0 {
		ss.startPush(ctx, pushJob{ids: push})
	}
	return nil
}

func (ss *session) sendWants(ctx context.Context, ids []idPrefix) error {
	for len(ids) > 0 {
		n := min(len(ids), maxWants)
		if err := ss.send(ctx, TypeWant, encodeWant(ss.id, ids[:n])); err != nil {
			return err
		}
		ids = ids[n:]
	}
	return nil
}

// onReply is the initiator's next step.
func (ss *session) onReply(ctx context.Context, m replyMsg) error {
	switch m.Status {
	case replyEqual:
		ss.p.Mode = ModeEqual
		ss.reconDone = true
	case replyFull:
		ss.p.Mode = ModeFull
		ss.reconDone = true
		if m.WantAll {
			ss.startPush(ctx, pushJob{all: true})
		} else {
			ss.expecting += m.Push
			ss.p.FactsExpected += m.Push
		}
	case replyDecoded:
		ss.reconDone = true
		ss.expecting += m.Push
		ss.p.FactsExpected += m.Push
		if len(m.Want) > 0 {
			ss.startPush(ctx, pushJob{wants: m.Want})
		}
	case replyExhausted:
		ss.p.Mode = ModeRange
		ss.enc = nil
		return ss.startRanges(ctx)
	case replyMore:
		if ss.enc == nil {
			return endWith(reasonMalformed, "symbols asked for after ranges began")
		}
		return ss.moreSymbols(ctx, m)
	}
	return nil
}

// Round sizing. A difference of d decodes from about 1.35·d symbols (1.3 to
// 1.6 measured), so the aim is one round that reaches ≈ 1.45·d; the
// responder's estimate of d has a relative error of about √(2/m) after m
// symbols, too coarse below ~128 symbols to size a large final round on. So:
// after the open's two symbols, 16 (an estimate becomes possible); while the
// estimate calls for much more than 128 and fewer than 128 were sent, 128
// (it is then within ≈ 12%); then 1.6 times the estimate, and never less
// than a quarter more than sent, so an underestimate costs rounds, not
// failure.
const (
	secondRound = 16
	refineRound = 128
)

func nextRound(sent, estimate, countDiff uint64) uint64 {
	want := max(estimate, countDiff)*8/5 + 4
	switch {
	case sent < secondRound && estimate == 0:
		return max(secondRound, want)
	case sent < refineRound && want > refineRound:
		return refineRound
	}
	return max(want, sent+max(sent/4, 4))
}

// moreSymbols sends the next round: large enough to decode what the
// responder's estimate says, and at least half again what was sent, so the
// rounds grow geometrically and the overshoot stays within half.
func (ss *session) moreSymbols(ctx context.Context, m replyMsg) error {
	next := nextRound(ss.sent, m.Estimate, absDiff(m.Count, ss.count))
	if next > uint64(ss.s.o.MaxSketch) {
		next = uint64(ss.s.o.MaxSketch)
	}
	if next <= ss.sent {
		ss.p.Mode = ModeRange
		ss.enc = nil
		return ss.startRanges(ctx)
	}
	syms, ok, err := ss.symbols(ctx, ss.sent, next)
	if err != nil {
		return err
	}
	if !ok {
		ss.p.Mode = ModeRange
		ss.enc = nil
		return ss.startRanges(ctx)
	}
	ss.p.Rounds++
	start := ss.sent
	for len(syms) > 0 {
		k := min(len(syms), symbolsPerMsg)
		msg := sketchMsg{RoundEnd: next, Symbols: riblt.Batch{Start: start, Symbols: syms[:k]}}
		p, err := msg.encode(ss.id)
		if err != nil {
			return &errEnd{reason: reasonLocal, err: err}
		}
		if err := ss.send(ctx, TypeSketch, p); err != nil {
			return err
		}
		start += uint64(k)
		syms = syms[k:]
	}
	ss.sent = next
	return nil
}

package durability

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// pings is how many pings the measured window holds.
const pings = 8

// controlFrame is the largest TCP write that cannot be an envelope frame. A
// Noise message holding only yamux headers or stream negotiation is under
// 64 bytes; an envelope carries two device ids and a signed receipt, well
// over 200.
const controlFrame = 64

// A flow-budget charge is durable before the frame it pays for leaves. Daemon
// a pings b; a's pings and b's pongs are both charged sends. In each trace,
// the transaction of each charge made while the pings ran (found by its
// receipt's key in the budget's audit ring, written in the same transaction
// as the spend) was synced before the frame it paid for was written to the
// peer's TCP connection, counting frames in order.
func TestLedgerChargeSyncedBeforeFrameLeaves(t *testing.T) {
	a, b := start(t), start(t)
	if out, code := a.ctl("peer", "add", b.tcpAddr()); code != 0 {
		t.Fatalf("peer add: exit %d: %s", code, out)
	}
	// Connecting, negotiating streams and creating the link context happen
	// on the first ping and keep some control traffic going for a moment;
	// the measured window starts after a second one.
	for range 2 {
		if out, code := a.ctl("peer", "ping", b.ready.DeviceID); code != 0 {
			t.Fatalf("warm-up ping: exit %d: %s", code, out)
		}
	}
	var w window
	for attempt := 1; ; attempt++ {
		w = pingWindow(t, a, b)
		if w.sameEpochs() {
			break
		}
		// A budget epoch turned mid-window and restarted the nonces: the
		// charges are not n+1..n+pings. Epochs last minutes; measure again.
		if attempt == 3 {
			t.Fatalf("budget epoch turned during each of %d windows", attempt)
		}
	}
	evA, evB := a.stop(), b.stop()
	for _, side := range []struct {
		name   string
		d      *daemon
		events []*event
		before budgetView
		after  budgetView
	}{
		{"a (pings)", a, evA, w.aBefore, w.aAfter},
		{"b (pongs)", b, evB, w.bBefore, w.bAfter},
	} {
		key, err := side.after.receiptKey()
		if err != nil {
			t.Fatalf("%s: %v", side.name, err)
		}
		first, last := side.before.nonce+1, side.after.nonce
		if last-side.before.nonce != pings {
			t.Fatalf("%s: nonces %d..%d while pinging, want %d charges", side.name, first, last, pings)
		}
		frames, errs := checkCharges(side.events, side.d.journal, w.from, w.to, key, side.after.epoch, first, last)
		if frames < pings {
			errs = append(errs, fmt.Sprintf("%d frames to the peer while pinging, want at least %d: the trace missed the traffic", frames, pings))
		}
		if !report(t, side.name, errs) {
			t.Logf("%s: %d charges, each synced before its frame", side.name, pings)
		}
	}
}

type window struct {
	from, to        time.Time
	aBefore, aAfter budgetView // a's budget towards b
	bBefore, bAfter budgetView // b's budget towards a
}

func (w window) sameEpochs() bool {
	return w.aBefore.epoch == w.aAfter.epoch && w.bBefore.epoch == w.bAfter.epoch
}

// pingWindow has a ping b `pings` times, noting both budgets around it.
func pingWindow(t *testing.T, a, b *daemon) window {
	t.Helper()
	w := window{aBefore: showBudget(t, a, b), bBefore: showBudget(t, b, a)}
	w.from = time.Now()
	out, code := a.ctl("peer", "ping", b.ready.DeviceID, "--count", strconv.Itoa(pings), "--interval", "10ms")
	w.to = time.Now()
	if code != 0 || !strings.Contains(out, fmt.Sprintf("%d pings", pings)) || !strings.Contains(out, fmt.Sprintf("budget charged %d", pings)) {
		t.Fatalf("ping: exit %d\n%s", code, out)
	}
	w.aAfter, w.bAfter = showBudget(t, a, b), showBudget(t, b, a)
	return w
}

// budgetView is what `budget show` says of d's sends to a peer.
type budgetView struct {
	context, peer string
	epoch, nonce  uint64
}

func showBudget(t *testing.T, d, peer *daemon) budgetView {
	t.Helper()
	var r struct {
		Budget struct {
			Context   string `json:"context"`
			Peer      string `json:"peer"`
			Epoch     string `json:"epoch"`
			LastNonce string `json:"last_nonce"`
		} `json:"budget"`
	}
	d.ctlJSON(&r, "budget", "show", peer.ready.DeviceID)
	v := budgetView{context: r.Budget.Context, peer: r.Budget.Peer}
	var err1, err2 error
	v.epoch, err1 = strconv.ParseUint(r.Budget.Epoch, 10, 64)
	v.nonce, err2 = strconv.ParseUint(r.Budget.LastNonce, 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("budget show: %+v", r.Budget)
	}
	return v
}

// receiptKey is the prefix of the keys under which the budget's audit ring
// stores receipts sent in this context to this peer (internal/budget/doc.go:
// ctx ‖ peer ‖ dir 1 ‖ epoch ‖ nonce). A charge writes its receipt there in
// the same transaction as the spend, so that key marks the charge's commit.
func (v budgetView) receiptKey() ([]byte, error) {
	ctx, err1 := hex.DecodeString(strings.TrimPrefix(v.context, "context/"))
	peer, err2 := hex.DecodeString(v.peer)
	if err1 != nil || err2 != nil || len(ctx) != 32 || len(peer) != 32 {
		return nil, fmt.Errorf("budget show: context %q, peer %q", v.context, v.peer)
	}
	return append(append(ctx, peer...), 1), nil
}

// checkCharges checks the charges of nonces first..last (of one epoch)
// against the frames: writes to a TCP socket that started within [from, to]
// and are too large to be control traffic. Each charge is found by the first
// journal write carrying its receipt key; its commit point is the next bbolt
// meta page write; it is durable once a successful journal sync started
// after that write has returned. The k-th charge pays for the k-th frame, so
// at most k-1 frames may have been written before the k-th charge was
// durable.
func checkCharges(events []*event, journal string, from, to time.Time, key []byte, epoch, first, last uint64) (frames int, errs []string) {
	lo, hi := float64(from.UnixMicro())/1e6, float64(to.UnixMicro())/1e6
	tcp := func(e *event) bool { return isWrite(e) && strings.HasPrefix(e.fd, "TCP") && e.ts >= lo && e.ts <= hi }
	var sent []*event
	for _, e := range events {
		if tcp(e) && len(e.data) > controlFrame {
			sent = append(sent, e)
		}
	}
	for n := first; n <= last; n++ {
		mark := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(bytes.Clone(key), epoch), n)
		page := firstAfter(events, 0, func(e *event) bool {
			return e.fd == journal && isWrite(e) && e.ok() && contains(e, mark)
		})
		if page == nil {
			errs = append(errs, fmt.Sprintf("charge of nonce %d: no journal write carries its receipt key (trace truncated, or the budget's storage layout changed?)", n))
			continue
		}
		commit := firstAfter(events, page.exit+1, func(e *event) bool {
			return e.fd == journal && isWrite(e) && e.ok() && isMeta(e)
		})
		if commit == nil {
			errs = append(errs, fmt.Sprintf("charge of nonce %d: no commit point after its page %s", n, describe(page)))
			continue
		}
		sync := firstAfter(events, commit.exit+1, func(e *event) bool {
			return e.fd == journal && isSync(e) && e.ok()
		})
		allowed := int(n - first)
		early := 0
		for _, f := range sent {
			if sync == nil || f.entry < sync.exit {
				early++
			}
		}
		if early > allowed {
			errs = append(errs, fmt.Sprintf("charge of nonce %d: frame %d of the window (%s) was written before the charge's commit (%s) was synced (first sync after it: %s)",
				n, allowed+1, describe(sent[allowed]), describe(commit), describe(sync)))
		}
	}
	return len(sent), errs
}

package durability

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	journalv1 "github.com/aura-p2p/aura/api/proto/aura/journal/v1"
)

// An acknowledged append: its payload (unique, so the journal page holding
// the fact can be found in the trace) and the id the response carried.
type ack struct {
	payload []byte
	id      string
}

// Every AppendFact response leaves aurad only after the journal transaction
// holding the fact reached its commit point and that was fsynced: appends
// one at a time (one transaction each), then concurrent ones (group commit,
// one sync answering several).
func TestJournalAnswersAppendOnlyAfterSync(t *testing.T) {
	d := start(t)
	conn, err := grpc.NewClient("unix://"+d.ready.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	jc := journalv1.NewJournalServiceClient(conn)
	ctx := t.Context()

	var mu sync.Mutex
	var acks []ack
	appendOne := func(payload string) error {
		r, err := jc.AppendFact(ctx, &journalv1.AppendFactRequest{TypeId: "app.durability/v1", Payload: []byte(payload)})
		if err != nil {
			return fmt.Errorf("append %s: %w", payload, err)
		}
		mu.Lock()
		acks = append(acks, ack{payload: []byte(payload), id: r.GetId()})
		mu.Unlock()
		return nil
	}
	for i := range 10 {
		if err := appendOne(fmt.Sprintf("durability-probe-seq-%03d", i)); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 3 {
				if err := appendOne(fmt.Sprintf("durability-probe-par-%d-%d", w, i)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	conn.Close()

	events := d.stop()
	var failed []string
	for _, a := range acks {
		if err := checkAck(events, d.journal, d.ready.Socket, a); err != nil {
			failed = append(failed, err.Error())
		}
	}
	if !report(t, "journal", failed) {
		t.Logf("%d appends, each answered after the sync of its commit", len(acks))
	}
}

// checkAck finds, in the trace, the first journal write carrying a's fact,
// its transaction's commit point (the next bbolt meta page write) and the
// first response on the control socket carrying a's id, and requires a
// successful sync of the journal, started after the commit point was
// written, to have returned before the response was written.
func checkAck(events []*event, journal, socket string, a ack) error {
	page := firstAfter(events, 0, func(e *event) bool {
		return e.fd == journal && isWrite(e) && e.ok() && contains(e, a.payload)
	})
	if page == nil {
		return fmt.Errorf("fact %s (%q): no journal write carries it (trace truncated? see strace -s)", a.id, a.payload)
	}
	resp := firstAfter(events, 0, func(e *event) bool {
		return isWrite(e) && isControlSocket(e.fd, socket) && contains(e, []byte(a.id))
	})
	if resp == nil {
		return fmt.Errorf("fact %s: no response carrying its id was written to %s", a.id, socket)
	}
	commit := firstAfter(events, page.exit+1, func(e *event) bool {
		return e.fd == journal && isWrite(e) && e.ok() && isMeta(e)
	})
	if commit == nil || commit.exit > resp.entry {
		return fmt.Errorf("fact %s: answered (%s) before its transaction's commit point was written (fact page %s, commit %s)",
			a.id, describe(resp), describe(page), describe(commit))
	}
	sync := firstAfter(events, commit.exit+1, func(e *event) bool {
		return e.fd == journal && isSync(e) && e.ok()
	})
	if sync == nil || sync.exit > resp.entry {
		return fmt.Errorf("fact %s: answered (%s) before its commit (%s) was synced (first sync after it: %s)",
			a.id, describe(resp), describe(commit), describe(sync))
	}
	return nil
}

// isControlSocket reports whether an fd, as strace -yy decodes it, is a
// connection on aurad's unix control socket.
func isControlSocket(fd, socket string) bool {
	return strings.HasPrefix(fd, "UNIX") && strings.Contains(fd, `"`+socket+`"`)
}

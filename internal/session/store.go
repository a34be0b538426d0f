package session

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
)

// Session records live in the journal's extension bucket ext/choreo.sessions,
// so they share its file, its transactions and its crash safety:
//
//	ext/choreo.sessions/
//	  seq(8, big-endian) -> state(1) ‖ JSON record
//
// seq numbers sessions in the order this device created or joined them, so
// the oldest are first and the history bound trims from the front; the state
// byte lets the trim skip running sessions without decoding them. A record is
// written when the session starts or is joined and when it ends, not at each
// step: a step already costs one durable commit (its charge), and a second
// would double it. Sessions survive nothing across restarts: New marks every
// record still running as aborted with AbortRestarted.

// record is the persisted form of a Session.
type record struct {
	ID        string            `json:"id"`
	Protocol  string            `json:"protocol"`
	Hash      string            `json:"hash"`
	Role      string            `json:"role"`
	Roles     map[string]string `json:"roles"`
	Context   string            `json:"context,omitempty"`
	Choices   []string          `json:"choices,omitempty"`
	Initiator bool              `json:"initiator,omitempty"`
	State     State             `json:"state"`
	Reason    *recordReason     `json:"reason,omitempty"`
	Started   time.Time         `json:"started"`
	Updated   time.Time         `json:"updated"`
	Ended     time.Time         `json:"ended,omitzero"`
	Steps     int               `json:"steps"`
	Log       []recordStep      `json:"log,omitempty"`
}

type recordReason struct {
	Code   AbortCode `json:"code"`
	By     string    `json:"by,omitempty"`
	Remote bool      `json:"remote,omitempty"`
	Detail string    `json:"detail,omitempty"`
}

type recordStep struct {
	At     time.Time `json:"at"`
	Dir    StepDir   `json:"dir"`
	Peer   string    `json:"peer"`
	Label  string    `json:"label"`
	Branch string    `json:"branch,omitempty"`
	Size   int       `json:"size"`
}

func toRecord(s *Session) record {
	r := record{
		ID: s.ID.String(), Protocol: s.Protocol, Hash: s.Hash.String(), Role: s.Role, Roles: map[string]string{},
		Choices: s.Choices, Initiator: s.Initiator, State: s.State,
		Started: s.Started, Updated: s.Updated, Ended: s.Ended, Steps: s.Steps,
	}
	for k, d := range s.Roles {
		r.Roles[k] = d.String()
	}
	if s.Context != (core.ContextID{}) {
		r.Context = s.Context.String()
	}
	if s.Reason != nil {
		r.Reason = &recordReason{Code: s.Reason.Code, By: s.Reason.By, Remote: s.Reason.Remote, Detail: s.Reason.Detail}
	}
	for _, st := range s.Log {
		r.Log = append(r.Log, recordStep{At: st.At, Dir: st.Dir, Peer: st.Peer, Label: st.Label, Branch: st.Branch, Size: st.Size})
	}
	return r
}

func fromRecord(r *record) (Session, error) {
	s := Session{
		Protocol: r.Protocol, Role: r.Role, Roles: map[string]core.DeviceID{}, Choices: r.Choices,
		Initiator: r.Initiator, State: r.State, Started: r.Started, Updated: r.Updated, Ended: r.Ended, Steps: r.Steps,
	}
	var err error
	if s.ID, err = ParseSessionID(r.ID); err != nil {
		return s, err
	}
	if s.Hash, err = core.ParseHash(r.Hash); err != nil {
		return s, err
	}
	if r.Context != "" {
		if s.Context, err = core.ParseContextID(r.Context); err != nil {
			return s, err
		}
	}
	for k, v := range r.Roles {
		d, err := core.ParseDeviceID(v)
		if err != nil {
			return s, err
		}
		s.Roles[k] = d
	}
	if r.Reason != nil {
		s.Reason = &AbortReason{Code: r.Reason.Code, By: r.Reason.By, Remote: r.Reason.Remote, Detail: r.Reason.Detail}
	}
	for _, st := range r.Log {
		s.Log = append(s.Log, StepRecord{At: st.At, Dir: st.Dir, Peer: st.Peer, Label: st.Label, Branch: st.Branch, Size: st.Size})
	}
	return s, nil
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// persist writes a session's current snapshot.
func (rt *Runtime) persist(ctx context.Context, s *session) error {
	rt.mu.Lock()
	snap := s.snap.clone()
	rt.mu.Unlock()
	return rt.write(ctx, s.key, &snap)
}

func (rt *Runtime) write(ctx context.Context, key uint64, snap *Session) error {
	val, err := json.Marshal(toRecord(snap))
	if err != nil {
		return fmt.Errorf("encode session record: %w", err)
	}
	val = append([]byte{byte(snap.State)}, val...)
	history := rt.o.History
	_, err = rt.o.Journal.Commit(ctx, journal.Txn{Ops: []journal.TxOp{func(tx *journal.ExtTx) error {
		b, err := tx.Bucket(bucketSessions)
		if err != nil {
			return err
		}
		if err := b.Put(seqKey(key), val); err != nil {
			return err
		}
		return trim(b, history)
	}}})
	return err
}

// trim deletes the oldest finished records beyond the history bound.
func trim(b *journal.ExtStore, history int) error {
	n := b.KeyN()
	if n <= history {
		return nil
	}
	var old [][]byte
	c := b.Cursor()
	for k, v := c.First(); k != nil && n-len(old) > history; k, v = c.Next() {
		if len(v) > 0 && State(v[0]) != StateRunning {
			old = append(old, append([]byte(nil), k...))
		}
	}
	for _, k := range old {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// load reads the records, aborting the ones a previous run left running.
func (rt *Runtime) load(ctx context.Context) error {
	type loaded struct {
		key  uint64
		snap Session
	}
	var all []loaded
	err := rt.o.Journal.ViewExt(ctx, bucketSessions, func(b *journal.ExtStore) error {
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			if len(k) != 8 || len(v) < 2 {
				return nil
			}
			var r record
			if err := json.Unmarshal(v[1:], &r); err != nil {
				rt.o.Logger.Warn("unreadable session record skipped", zap.Binary("key", k), zap.Error(err))
				return nil
			}
			s, err := fromRecord(&r)
			if err != nil {
				rt.o.Logger.Warn("unreadable session record skipped", zap.Binary("key", k), zap.Error(err))
				return nil
			}
			all = append(all, loaded{key: binary.BigEndian.Uint64(k), snap: s})
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("session records: %w", err)
	}
	now := rt.o.Clock.Now()
	for i := range all {
		l := &all[i]
		rt.seq = max(rt.seq, l.key)
		if l.snap.State == StateRunning {
			l.snap.State = StateAborted
			l.snap.Reason = &AbortReason{Code: AbortRestarted, By: l.snap.Role, Detail: "daemon restarted"}
			l.snap.Updated, l.snap.Ended = now, now
			if err := rt.write(ctx, l.key, &l.snap); err != nil {
				return fmt.Errorf("session records: %w", err)
			}
		}
		s := &session{rt: rt, key: l.key, snap: l.snap, done: make(chan struct{})}
		s.info = Info{ID: l.snap.ID, Protocol: l.snap.Protocol, Role: l.snap.Role, Roles: l.snap.Roles, Context: l.snap.Context}
		s.hdr = &header{Protocol: l.snap.Protocol, Hash: l.snap.Hash, Context: l.snap.Context, Roles: l.snap.Roles, Choices: l.snap.Choices}
		s.ctx, s.cancel = context.WithCancelCause(rt.ctx)
		s.cancel(nil)
		close(s.done)
		rt.sessions[l.snap.ID] = s
		rt.finished = append(rt.finished, l.snap.ID)
	}
	for len(rt.finished) > rt.o.History {
		delete(rt.sessions, rt.finished[0])
		rt.finished = rt.finished[1:]
	}
	return nil
}

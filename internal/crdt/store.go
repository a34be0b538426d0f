package crdt

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"sync"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/journal"
	"github.com/aura-p2p/aura/internal/journal/lattice"
)

// Journal is what objects need from the fact store.
type Journal interface {
	SignLocal(signer journal.Signer, d journal.Draft) (*journal.SignedFact, error)
	NextLamport(ns core.Namespace) uint64
	Commit(ctx context.Context, t journal.Txn) ([]journal.Committed, error)
	State(ctx context.Context, reducer string, ns core.Namespace, key []byte) ([]byte, bool, error)
	ScanState(ctx context.Context, reducer string, ns core.Namespace, after []byte, limit int, fn func(key, state []byte) bool) error
	Watch(ctx context.Context, opts journal.WatchOptions) (*journal.Subscription, error)
}

// Object is an object's current state as clients see it.
type Object struct {
	Namespace core.Namespace
	Name      string
	Kind      Kind
	Counter   int64
	Register  string
	Elements  []string
	Entries   []Entry
	Updates   uint64
}

// Entry is one key of a map object.
type Entry struct{ Key, Value string }

// Store reads and updates objects. Safe for concurrent use.
type Store struct {
	j      Journal
	signer journal.Signer

	mu sync.Mutex
	// inflight holds, per set or map object, the deltas this device has
	// issued that are not yet known to be committed or failed. New deltas are
	// computed against the stored state joined with these, so a dot is never
	// issued twice even while earlier updates are still in the commit queue.
	inflight map[objectID]*objectLock
}

type objectID struct {
	ns   core.Namespace
	name string
	kind Kind
}

type objectLock struct {
	mu      sync.Mutex
	refs    int
	pending map[*journal.SignedFact][]byte
}

// NewStore returns a store that signs updates as signer.
func NewStore(j Journal, signer journal.Signer) *Store {
	return &Store{j: j, signer: signer, inflight: map[objectID]*objectLock{}}
}

// ErrWrongKind: an operation of one kind on an object of another.
var ErrWrongKind = fmt.Errorf("operation does not fit the object's kind: %w", core.ErrFailedPrecondition)

// Update applies op to the named object (creating it on first update) and
// returns once the fact carrying it is durable.
func (s *Store) Update(ctx context.Context, ns core.Namespace, name string, op Op) (core.FactID, Object, error) {
	if err := CheckName(name); err != nil {
		return core.FactID{}, Object{}, err
	}
	if err := op.check(); err != nil {
		return core.FactID{}, Object{}, err
	}
	kind := op.Type.Kind()
	existing, found, err := s.get(ctx, ns, name)
	if err != nil {
		return core.FactID{}, Object{}, err
	}
	if found && existing.Kind != kind {
		return core.FactID{}, Object{}, fmt.Errorf("object %q is a %s, not a %s: %w", name, existing.Kind, kind, ErrWrongKind)
	}
	if !found && (op.Type == OpSetRemove || op.Type == OpMapRemove) {
		return core.FactID{}, Object{}, fmt.Errorf("object %q: %w", name, core.ErrNotFound)
	}
	u := update{op: op.Type, name: name}
	var sf *journal.SignedFact
	switch kind {
	case KindCounter:
		u.amount = op.Amount
		sf, err = s.sign(ns, kind, &u, 0)
	case KindRegister:
		lamport := s.j.NextLamport(ns)
		ts := lattice.Timestamp[device]{Lamport: lamport, Replica: device(s.signer.DeviceID())}
		if u.delta, err = (registerLat{}).Assign(ts, lattice.String(op.Value)).MarshalBinary(); err == nil {
			sf, err = s.sign(ns, kind, &u, lamport)
		}
	default:
		return s.updateCausal(ctx, ns, name, op, &u)
	}
	if err != nil {
		return core.FactID{}, Object{}, err
	}
	if _, err := s.j.Commit(ctx, journal.Txn{Facts: []*journal.SignedFact{sf}}); err != nil {
		return core.FactID{}, Object{}, err
	}
	obj, _, err := s.get(ctx, ns, name)
	return sf.ID, obj, err
}

func (s *Store) sign(ns core.Namespace, k Kind, u *update, lamport uint64) (*journal.SignedFact, error) {
	return s.j.SignLocal(s.signer, journal.Draft{Namespace: ns, TypeID: typeOfKind[k], Payload: u.encode(), Lamport: lamport})
}

// updateCausal handles set and map operations, whose deltas depend on the
// dots this device has already issued.
func (s *Store) updateCausal(ctx context.Context, ns core.Namespace, name string, op Op, u *update) (core.FactID, Object, error) {
	id := objectID{ns: ns, name: name, kind: op.Type.Kind()}
	lk := s.lockObject(id)
	defer s.unrefObject(id)

	lk.mu.Lock()
	sf, err := s.prepareCausal(ctx, lk, id, op, u)
	lk.mu.Unlock()
	if err != nil {
		return core.FactID{}, Object{}, err
	}
	// Wait for the outcome whatever happens to ctx: until it is known, the
	// delta's dots must stay reserved.
	_, err = s.j.Commit(context.WithoutCancel(ctx), journal.Txn{Facts: []*journal.SignedFact{sf}})
	lk.mu.Lock()
	delete(lk.pending, sf)
	lk.mu.Unlock()
	if err != nil {
		return core.FactID{}, Object{}, err
	}
	obj, _, err := s.get(ctx, ns, name)
	return sf.ID, obj, err
}

func (s *Store) prepareCausal(ctx context.Context, lk *objectLock, id objectID, op Op, u *update) (*journal.SignedFact, error) {
	stored, _, err := s.j.State(ctx, ReducerName, id.ns, stateKey(id.name, id.kind))
	if err != nil {
		return nil, err
	}
	var value []byte
	if stored != nil {
		st, err := decodeState(stored)
		if err != nil {
			return nil, err
		}
		value = st.value
	}
	me := device(s.signer.DeviceID())
	elem := lattice.String(op.Element)
	var lamport uint64
	switch id.kind {
	case KindSet:
		cur, err := withPending[setLat](value, lk.pending)
		if err != nil {
			return nil, err
		}
		var d setLat
		if op.Type == OpSetAdd {
			d, err = cur.Add(me, elem)
		} else if !cur.Contains(elem) {
			return nil, fmt.Errorf("set %q has no element %q: %w", id.name, op.Element, core.ErrNotFound)
		} else {
			d = cur.Remove(elem)
		}
		if err != nil {
			return nil, err
		}
		u.delta, err = d.MarshalBinary()
		if err != nil {
			return nil, err
		}
	case KindMap:
		cur, err := withPending[mapLat](value, lk.pending)
		if err != nil {
			return nil, err
		}
		var d mapLat
		if op.Type == OpMapSet {
			lamport = s.j.NextLamport(id.ns)
			ts := lattice.Timestamp[device]{Lamport: lamport, Replica: me}
			d, err = cur.Update(me, elem, func(r registerLat) (registerLat, error) {
				return r.Assign(ts, lattice.String(op.Value)), nil
			})
		} else if !cur.Contains(elem) {
			return nil, fmt.Errorf("map %q has no key %q: %w", id.name, op.Element, core.ErrNotFound)
		} else {
			d = cur.Remove(elem)
		}
		if err != nil {
			return nil, err
		}
		if u.delta, err = d.MarshalBinary(); err != nil {
			return nil, err
		}
	}
	sf, err := s.sign(id.ns, id.kind, u, lamport)
	if err != nil {
		return nil, err
	}
	lk.pending[sf] = u.delta
	return sf, nil
}

func withPending[T codecJoin[T]](stored []byte, pending map[*journal.SignedFact][]byte) (T, error) {
	var zero T
	cur, err := decodeOrBottom[T](stored)
	if err != nil {
		return zero, err
	}
	for _, d := range pending {
		dv, err := zero.DecodeBinary(d)
		if err != nil {
			return zero, err
		}
		cur = cur.Join(dv)
	}
	return cur, nil
}

func (s *Store) lockObject(id objectID) *objectLock {
	s.mu.Lock()
	defer s.mu.Unlock()
	lk := s.inflight[id]
	if lk == nil {
		lk = &objectLock{pending: map[*journal.SignedFact][]byte{}}
		s.inflight[id] = lk
	}
	lk.refs++
	return lk
}

func (s *Store) unrefObject(id objectID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if lk := s.inflight[id]; lk != nil {
		if lk.refs--; lk.refs == 0 {
			delete(s.inflight, id)
		}
	}
}

// Get returns an object's state.
func (s *Store) Get(ctx context.Context, ns core.Namespace, name string) (Object, error) {
	if err := CheckName(name); err != nil {
		return Object{}, err
	}
	obj, found, err := s.get(ctx, ns, name)
	if err == nil && !found {
		err = fmt.Errorf("object %q in %s: %w", name, ns, core.ErrNotFound)
	}
	return obj, err
}

func (s *Store) get(ctx context.Context, ns core.Namespace, name string) (Object, bool, error) {
	prefix := namePrefix(name)
	var states []objectState
	var scanErr error
	err := s.j.ScanState(ctx, ReducerName, ns, prefix, 0, func(key, state []byte) bool {
		if !bytes.HasPrefix(key, prefix) || len(key) != len(prefix)+1 {
			return false
		}
		st, err := decodeState(state)
		if err != nil {
			scanErr = err
			return false
		}
		states = append(states, st)
		return true
	})
	if err == nil {
		err = scanErr
	}
	if err != nil {
		return Object{}, false, err
	}
	st, found := winner(states)
	if !found {
		return Object{}, false, nil
	}
	obj, err := render(ns, name, st)
	return obj, true, err
}

func render(ns core.Namespace, name string, st objectState) (Object, error) {
	o := Object{Namespace: ns, Name: name, Kind: st.kind, Updates: st.updates}
	switch st.kind {
	case KindCounter:
		c, err := decodeOrBottom[counterLat](st.value)
		if err != nil {
			return o, err
		}
		o.Counter = c.Value()
	case KindRegister:
		r, err := decodeOrBottom[registerLat](st.value)
		if err != nil {
			return o, err
		}
		v, _ := r.Value()
		o.Register = string(v)
	case KindSet:
		set, err := decodeOrBottom[setLat](st.value)
		if err != nil {
			return o, err
		}
		for _, e := range set.Elements() {
			o.Elements = append(o.Elements, string(e))
		}
	case KindMap:
		m, err := decodeOrBottom[mapLat](st.value)
		if err != nil {
			return o, err
		}
		for _, k := range m.Keys() {
			r, _ := m.Get(k)
			v, _ := r.Value()
			o.Entries = append(o.Entries, Entry{Key: string(k), Value: string(v)})
		}
	}
	return o, nil
}

// Summary is one line of a listing.
type Summary struct {
	Name    string
	Kind    Kind
	Updates uint64
}

// List returns up to limit objects after the page token, sorted by name.
func (s *Store) List(ctx context.Context, ns core.Namespace, pageToken string, limit int) ([]Summary, string, error) {
	var after []byte
	if pageToken != "" {
		name, err := base64.RawURLEncoding.DecodeString(pageToken)
		if err != nil || CheckName(string(name)) != nil {
			return nil, "", fmt.Errorf("bad page token: %w", core.ErrInvalidArgument)
		}
		// Skip every kind of the last listed name.
		after = append(namePrefix(string(name)), 0xff)
	}
	var out []Summary
	var group []objectState
	var groupName string
	var scanErr error
	more := false
	flush := func() {
		if st, ok := winner(group); ok {
			out = append(out, Summary{Name: groupName, Kind: st.kind, Updates: st.updates})
		}
		group = group[:0]
	}
	err := s.j.ScanState(ctx, ReducerName, ns, after, 0, func(key, state []byte) bool {
		if len(key) < 2 || key[len(key)-2] != 0 {
			scanErr = fmt.Errorf("object key: %w", core.ErrInternal)
			return false
		}
		name := string(key[:len(key)-2])
		if name != groupName && len(group) > 0 {
			flush()
			if len(out) == limit {
				more = true
				return false
			}
		}
		st, err := decodeState(state)
		if err != nil {
			scanErr = err
			return false
		}
		groupName = name
		group = append(group, st)
		return true
	})
	if err == nil {
		err = scanErr
	}
	if err != nil {
		return nil, "", err
	}
	if !more {
		flush()
	}
	next := ""
	if more && len(out) > 0 {
		next = base64.RawURLEncoding.EncodeToString([]byte(out[len(out)-1].Name))
	}
	return out, next, nil
}

// Watch calls send with the object's state now (if it exists) and after every
// update, until ctx ends or send fails.
func (s *Store) Watch(ctx context.Context, ns core.Namespace, name string, send func(Object, core.FactID) error) error {
	if err := CheckName(name); err != nil {
		return err
	}
	// Subscribe before reading so no update falls between the two.
	sub, err := s.j.Watch(ctx, journal.WatchOptions{Namespace: &ns, FromNow: true})
	if err != nil {
		return err
	}
	defer sub.Close()
	if obj, found, err := s.get(ctx, ns, name); err != nil {
		return err
	} else if found {
		if err := send(obj, core.FactID{}); err != nil {
			return err
		}
	}
	for {
		f, err := sub.Next(ctx)
		if err != nil {
			return err
		}
		if _, ok := kindOfType(f.TypeID); !ok {
			continue
		}
		if u, err := decodeUpdate(f.Payload); err != nil || u.name != name {
			continue
		}
		obj, found, err := s.get(ctx, ns, name)
		if err != nil {
			return err
		}
		if found {
			if err := send(obj, f.ID); err != nil {
				return err
			}
		}
	}
}

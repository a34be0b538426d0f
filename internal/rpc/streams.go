package rpc

import (
	"context"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
)

// Default limits on open streams. Each stream holds a goroutine, gRPC's
// per-stream buffers and usually a domain subscription until the client
// leaves; unbounded, a client could open watches until aurad ran out of
// memory (1,000 fact watches took RSS from 36 to 233 MB). A command-line
// client holds one stream; a UI a handful.
const (
	DefaultMaxStreamsPerConn = 32
	DefaultMaxStreams        = 256
)

// streamLimiter counts open streams per connection and in total.
type streamLimiter struct {
	perConn, total int

	mu     sync.Mutex
	open   int
	byConn map[uint64]int
}

func newStreamLimiter(perConn, total int) *streamLimiter {
	return &streamLimiter{perConn: perConn, total: total, byConn: map[uint64]int{}}
}

// acquire takes a slot for a stream on conn, or says which limit is reached.
func (l *streamLimiter) acquire(conn uint64) (release func(), err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byConn[conn] >= l.perConn {
		return nil, status.Errorf(codes.ResourceExhausted,
			"too many open streams on this connection (limit %d per connection): close a watch first", l.perConn)
	}
	if l.open >= l.total {
		return nil, status.Errorf(codes.ResourceExhausted,
			"too many open streams on aurad (limit %d across all connections): close a watch first", l.total)
	}
	l.open++
	l.byConn[conn]++
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.open--
		if l.byConn[conn]--; l.byConn[conn] == 0 {
			delete(l.byConn, conn)
		}
	}, nil
}

// connTagger numbers connections, so streams can be counted per connection:
// every client of the unix socket has the same peer address.
type connTagger struct{ last atomic.Uint64 }

type connIDKey struct{}

func (t *connTagger) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return context.WithValue(ctx, connIDKey{}, t.last.Add(1))
}

func (t *connTagger) HandleConn(context.Context, stats.ConnStats)                     {}
func (t *connTagger) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (t *connTagger) HandleRPC(context.Context, stats.RPCStats)                       {}

func (c *chain) limitStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	// Without a tag (a server built without ServerOptions' stats handler)
	// every stream counts as its own connection: the total still holds.
	conn, ok := ss.Context().Value(connIDKey{}).(uint64)
	if !ok {
		conn = c.untagged.Add(1) | 1<<63
	}
	release, err := c.streams.acquire(conn)
	if err != nil {
		return err
	}
	defer release()
	return h(srv, ss)
}

package rpc

import (
	"context"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Gate lets calls through only while the daemon serves. Draining turns new
// calls away with Unavailable and ends running streams, so a graceful stop does
// not wait on watchers that would never end by themselves.
type Gate struct {
	mu       sync.Mutex
	draining bool
	drained  chan struct{}
}

// NewGate returns an open gate.
func NewGate() *Gate { return &Gate{drained: make(chan struct{})} }

// Drain closes the gate. Safe to call more than once.
func (g *Gate) Drain() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.draining {
		g.draining = true
		close(g.drained)
	}
}

func (g *Gate) open() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return !g.draining
}

// alwaysOpen methods answer even while draining, so supervisors can watch a
// daemon go down.
func alwaysOpen(method string) bool {
	return strings.HasPrefix(method, "/grpc.health.v1.Health/")
}

// Options configure the interceptor chain.
type Options struct {
	Logger      *zap.Logger
	Gate        *Gate
	Permissions Permissions
	// Tokens are the bearer tokens TCP callers may present; each allows the
	// methods up to its level. With none, TCP callers are refused. Unix
	// socket callers are admin: the socket's file mode chose who may connect.
	Tokens []Token
	// SlowCall is the duration above which a unary call is logged at warn.
	SlowCall time.Duration
	// MaxStreamsPerConn and MaxStreams bound the streams (watches, pings)
	// open at once on one connection and in all; 0 means the default.
	MaxStreamsPerConn int
	MaxStreams        int
	// Observe, when set, hears of every call once it ends (unary and
	// stream, refused ones included): the method, the code the client gets
	// and how long the call took. It feeds the metrics, so it runs on the
	// call's goroutine and must not block. A handler that panics is reported
	// as Internal, the code the client then gets.
	Observe func(method string, code codes.Code, took time.Duration)
}

// ServerOptions returns the interceptor chain as grpc.ServerOptions.
func ServerOptions(o Options) []grpc.ServerOption {
	if o.SlowCall == 0 {
		o.SlowCall = time.Second
	}
	if o.MaxStreamsPerConn == 0 {
		o.MaxStreamsPerConn = DefaultMaxStreamsPerConn
	}
	if o.MaxStreams == 0 {
		o.MaxStreams = DefaultMaxStreams
	}
	c := &chain{o: o, streams: newStreamLimiter(o.MaxStreamsPerConn, o.MaxStreams)}
	return []grpc.ServerOption{
		ServerCodec(),
		grpc.StatsHandler(&connTagger{}),
		grpc.ChainUnaryInterceptor(c.recoverUnary, c.logUnary, c.gateUnary, c.authUnary, c.mapUnary),
		// Streams are counted only once the caller is known to be allowed.
		grpc.ChainStreamInterceptor(c.recoverStream, c.logStream, c.gateStream, c.authStream, c.limitStream, c.mapStream),
	}
}

type chain struct {
	o        Options
	streams  *streamLimiter
	untagged atomic.Uint64
}

func (c *chain) panicked(method string, r any) error {
	c.o.Logger.Error("panic in RPC handler", zap.String("method", method), zap.Any("panic", r), zap.ByteString("stack", debug.Stack()))
	return status.Error(codes.Internal, "internal error")
}

func (c *chain) recoverUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = c.panicked(info.FullMethod, r)
		}
	}()
	return h(ctx, req)
}

func (c *chain) recoverStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = c.panicked(info.FullMethod, r)
		}
	}()
	return h(srv, ss)
}

// observePanic reports a call whose handler panicked, which skipped the
// caller's endCall: deferred before the handler runs, it sees ended false
// only then. The recovery interceptor outside turns the panic into Internal.
func (c *chain) observePanic(method string, start time.Time, ended *bool) {
	if !*ended && c.o.Observe != nil {
		c.o.Observe(method, codes.Internal, time.Since(start))
	}
}

// endCall reports a finished call to Observe and, if log, to the log.
func (c *chain) endCall(method string, start time.Time, err error, log bool) {
	code, d := status.Code(err), time.Since(start)
	if c.o.Observe != nil {
		c.o.Observe(method, code, d)
	}
	if log {
		c.logCall(method, code, d, err)
	}
}

func (c *chain) logCall(method string, code codes.Code, d time.Duration, err error) {
	fields := []zap.Field{zap.String("method", method), zap.Stringer("code", code), zap.Duration("took", d)}
	switch {
	case code == codes.Internal || code == codes.Unknown:
		// A bug: the error mapping found no sentinel, or a handler panicked.
		c.o.Logger.Error("RPC failed", append(fields, zap.Error(err))...)
	case d > c.o.SlowCall:
		c.o.Logger.Warn("slow RPC", fields...)
	default:
		c.o.Logger.Debug("RPC", fields...)
	}
}

func (c *chain) logUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	start := time.Now()
	ended := false
	defer c.observePanic(info.FullMethod, start, &ended)
	resp, err := h(ctx, req)
	ended = true
	c.endCall(info.FullMethod, start, err, true)
	return resp, err
}

func (c *chain) logStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	start := time.Now()
	ended := false
	defer c.observePanic(info.FullMethod, start, &ended)
	err := h(srv, ss)
	ended = true
	// A client that hangs up ends its watch that way; counted, not logged.
	c.endCall(info.FullMethod, start, err, status.Code(err) != codes.Canceled)
	return err
}

var errDraining = status.Error(codes.Unavailable, "aurad is shutting down")

func (c *chain) gateUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if !c.o.Gate.open() && !alwaysOpen(info.FullMethod) {
		return nil, errDraining
	}
	return h(ctx, req)
}

func (c *chain) gateStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if !c.o.Gate.open() && !alwaysOpen(info.FullMethod) {
		return errDraining
	}
	ctx, cancel := context.WithCancel(ss.Context())
	defer cancel()
	go func() {
		select {
		case <-c.o.Gate.drained:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := h(srv, &ctxStream{ServerStream: ss, ctx: ctx})
	if ctx.Err() != nil && ss.Context().Err() == nil {
		return errDraining
	}
	return err
}

type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *ctxStream) Context() context.Context { return s.ctx }

// authorize checks the caller's level against the method's permission.
func (c *chain) authorize(ctx context.Context, method string) error {
	need, ok := c.o.Permissions[method]
	if !ok {
		return status.Errorf(codes.PermissionDenied, "method %s is not exposed", method)
	}
	p, ok := peer.FromContext(ctx)
	if !ok {
		return status.Error(codes.Unauthenticated, "no peer")
	}
	if p.Addr.Network() == "unix" {
		// The socket's mode (0600 or 0660) already limited who could connect,
		// and those are the daemon's owners.
		return nil
	}
	if len(c.o.Tokens) == 0 {
		return status.Error(codes.Unauthenticated, "remote control is not configured")
	}
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		presented, ok := strings.CutPrefix(v, "Bearer ")
		if !ok {
			continue
		}
		tok, ok := matchToken(c.o.Tokens, presented)
		if !ok {
			continue
		}
		if tok.Level < need {
			return status.Errorf(codes.PermissionDenied, "%s needs %s; %s is %s", method, need, tok.label(), tok.Level)
		}
		return nil
	}
	return status.Error(codes.Unauthenticated, "missing or wrong bearer token")
}

func (c *chain) authUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err := c.authorize(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func (c *chain) authStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if err := c.authorize(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return h(srv, ss)
}

// mapErr turns err into a status, shortening any long input of req that its
// message repeats.
func (c *chain) mapErr(err error, req any) error {
	if err == nil {
		return nil
	}
	st, _ := ToStatus(shortenEcho(err, longInputs(req)))
	return st.Err()
}

func (c *chain) mapUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err := undecodable(req); err != nil {
		return nil, err
	}
	resp, err := h(ctx, req)
	return resp, c.mapErr(err, req)
}

func (c *chain) mapStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	ds := &decodingStream{ServerStream: ss}
	err := h(srv, ds)
	return c.mapErr(err, ds.first)
}

// CheckPermissions fails if a registered method has no entry or an invalid
// level, or an entry names no registered method.
func CheckPermissions(s *grpc.Server, p Permissions) error {
	seen := map[string]bool{}
	for svc, info := range s.GetServiceInfo() {
		for _, m := range info.Methods {
			full := "/" + svc + "/" + m.Name
			seen[full] = true
			need, ok := p[full]
			if !ok {
				return fmt.Errorf("method %s has no permission entry", full)
			}
			if !need.Valid() {
				return fmt.Errorf("method %s needs %s, which is no level", full, need)
			}
		}
	}
	for m := range p {
		if !seen[m] {
			return fmt.Errorf("permission entry for unregistered method %s", m)
		}
	}
	return nil
}

package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	httppprof "net/http/pprof"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/aura-p2p/aura/internal/core"
)

// shutdownGrace is how long a scrape in flight may finish once ctx ends.
const shutdownGrace = 2 * time.Second

// Serve serves /metrics (Prometheus text format of the registry) and /healthz
// (and, with pprof, Go's profiler under /debug/pprof/)
// on listen ("host:port"; port 0 picks one) until ctx ends, and returns the
// bound address. A listen that is no host:port is refused with
// core.ErrInvalidArgument, one that cannot be bound with the listener's
// error; nothing is left open then. Wait waits for the server to finish.
func (m *Metrics) Serve(ctx context.Context, listen string, pprof bool) (net.Addr, error) {
	_, port, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("metrics listen %q: want host:port (127.0.0.1:9464): %w", listen, core.ErrInvalidArgument)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return nil, fmt.Errorf("metrics listen %q: port %q is no number from 0 to 65535: %w", listen, port, core.ErrInvalidArgument)
	}
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      zap.NewStdLog(m.log),
		ErrorHandling: promhttp.ContinueOnError,
		// Scrapes are cheap but not free; a runaway scraper gets 503s, not
		// a daemon busy encoding.
		MaxRequestsInFlight: 4,
		Timeout:             m.timeout,
	}))
	mux.HandleFunc("/healthz", m.healthz)
	if pprof {
		mux.HandleFunc("/debug/pprof/", httppprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", httppprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", httppprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", httppprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", httppprof.Trace)
	}
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          zap.NewStdLog(m.log),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	served := make(chan struct{})
	m.servers.Add(2)
	go func() {
		defer m.servers.Done()
		defer close(served)
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.log.Warn("metrics server stopped", zap.Error(err))
		}
	}()
	go func() {
		defer m.servers.Done()
		select {
		case <-ctx.Done():
		case <-served:
			return
		}
		sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			_ = srv.Close()
		}
	}()
	m.log.Info("metrics listening", zap.Stringer("addr", l.Addr()))
	return l.Addr(), nil
}

// Wait returns once every server Serve started has stopped and its last
// scrape ended, so the sources may be closed after it.
func (m *Metrics) Wait() { m.servers.Wait() }

func (m *Metrics) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if m.src.Health != nil {
		if err := m.src.Health(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "not serving: %v\n", err)
			return
		}
	}
	fmt.Fprintln(w, "ok")
}

package metrics

import (
	"github.com/libp2p/go-libp2p"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
)

// Libp2pOptions make a libp2p host register its own metrics (resource
// manager, swarm, identify, event bus, …) on this registry. Without a
// registerer libp2p falls back to prometheus.DefaultRegisterer, a process
// global, so a nil *Metrics (metrics off) turns its metrics off instead.
func (m *Metrics) Libp2pOptions() []libp2p.Option {
	if m == nil {
		return []libp2p.Option{libp2p.DisableMetrics()}
	}
	return []libp2p.Option{libp2p.PrometheusRegisterer(m.reg)}
}

// ResourceManagerOptions go to rcmgr.NewResourceManager when the host is
// given a resource manager of its own: its trace reporter feeds the
// libp2p_rcmgr_* series, which are worth their cost only when exported.
func (m *Metrics) ResourceManagerOptions() []rcmgr.Option {
	if m == nil {
		return []rcmgr.Option{rcmgr.WithMetricsDisabled()}
	}
	return nil
}

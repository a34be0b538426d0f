package metrics

import (
	"context"
	"math"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// sourceCollector exports the series of one source, read once per scrape:
// one read serves all its series, so they agree with each other.
type sourceCollector struct {
	m     *Metrics
	name  string
	descs []*prometheus.Desc
	// read reads the source and sends its series. On error it sends
	// nothing: a partial set would look like real values.
	read func(ctx context.Context, ch chan<- prometheus.Metric) error
}

func (c *sourceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c *sourceCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.m.timeout)
	defer cancel()
	if err := c.read(ctx, ch); err != nil {
		c.m.sourceErrors.WithLabelValues(c.name).Inc()
		// Warn, not error: a closing or failed journal is reported by its
		// own health; the scrape goes on without these series.
		c.m.log.Warn("metrics source unreadable", zap.String("source", c.name), zap.Error(err))
	}
}

func desc(subsystem, name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(Namespace, subsystem, name), help, labels, nil)
}

func gauge(d *prometheus.Desc, v float64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func counter(d *prometheus.Desc, v float64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
}

// sourceCollectors builds a collector for each source that is set.
func (m *Metrics) sourceCollectors() []prometheus.Collector {
	var out []prometheus.Collector
	add := func(c *sourceCollector) {
		// The error series exists from the start, so rate() sees the first error.
		m.sourceErrors.WithLabelValues(c.name)
		out = append(out, c)
	}
	s := m.src
	if s.Journal != nil {
		facts := desc("journal", "facts", "Facts stored.")
		namespaces := desc("journal", "namespaces", "Namespaces holding facts.")
		orphans := desc("journal", "orphans", "Received facts waiting in the orphan pool for a prerequisite.")
		orphanBytes := desc("journal", "orphan_bytes", "Bytes held by the orphan pool.")
		evicted := desc("journal", "orphans_evicted_total", "Orphans evicted from the full pool since start.")
		add(&sourceCollector{m: m, name: "journal", descs: []*prometheus.Desc{facts, namespaces, orphans, orphanBytes, evicted},
			read: func(ctx context.Context, ch chan<- prometheus.Metric) error {
				st, err := s.Journal(ctx)
				if err != nil {
					return err
				}
				ch <- gauge(facts, float64(st.Facts))
				ch <- gauge(namespaces, float64(st.Namespaces))
				ch <- gauge(orphans, float64(st.Orphans))
				ch <- gauge(orphanBytes, float64(st.OrphanBytes))
				ch <- counter(evicted, float64(st.OrphansEvicted))
				return nil
			}})
	}
	if s.DBSize != nil {
		size := desc("journal", "db_size_bytes", "Size of the journal's bbolt file.")
		add(&sourceCollector{m: m, name: "journal_file", descs: []*prometheus.Desc{size},
			read: func(_ context.Context, ch chan<- prometheus.Metric) error {
				n, err := s.DBSize()
				if err != nil {
					return err
				}
				ch <- gauge(size, float64(n))
				return nil
			}})
	}
	if s.Transport != nil {
		sent := desc("transport", "messages_sent_total", "Envelopes sent to peers (each passed the guard chain).")
		recv := desc("transport", "messages_received_total", "Envelopes received from peers and handed to a protocol.")
		dropped := desc("transport", "dropped_total", "Inbound frames dropped, by reason.", "reason")
		peers := desc("transport", "connected_peers", "Peers with an open libp2p connection.")
		bytesOut := desc("transport", "sent_bytes_total", "Envelope frame bytes written to peers.")
		bytesIn := desc("transport", "received_bytes_total", "Envelope frame bytes read from peers, refused frames too.")
		add(&sourceCollector{m: m, name: "transport", descs: []*prometheus.Desc{sent, recv, dropped, peers, bytesOut, bytesIn},
			read: func(_ context.Context, ch chan<- prometheus.Metric) error {
				st := s.Transport()
				ch <- counter(sent, float64(st.Sent))
				ch <- counter(recv, float64(st.Received))
				ch <- counter(bytesOut, float64(st.SentBytes))
				ch <- counter(bytesIn, float64(st.ReceivedBytes))
				for reason, n := range st.Dropped {
					ch <- counter(dropped, float64(n), reason)
				}
				ch <- gauge(peers, float64(st.ConnectedPeers))
				return nil
			}})
	}
	if s.Budgets != nil {
		keys := desc("budget", "keys", "(context, peer) flow budgets known, by context class.", "class")
		limit := desc("budget", "limit_units", "Sum of the send limits of this budget period, by class.", "class")
		spent := desc("budget", "spent_units", "Sum of what this device spent this budget period, by class.", "class")
		headroom := desc("budget", "headroom_units", "Sum of what this device may still send this period, by class.", "class")
		minHeadroom := desc("budget", "min_headroom_units", "Headroom of the tightest budget of the class: near 0, sends to that peer are refused.", "class")
		received := desc("budget", "received_units", "Sum of what peers paid this device this budget period, by class.", "class")
		add(&sourceCollector{m: m, name: "budget", descs: []*prometheus.Desc{keys, limit, spent, headroom, minHeadroom, received},
			read: func(ctx context.Context, ch chan<- prometheus.Metric) error {
				list, err := s.Budgets(ctx)
				if err != nil {
					return err
				}
				type sums struct{ n, limit, spent, headroom, minHeadroom, received float64 }
				by := map[string]*sums{}
				for _, k := range list {
					x := by[k.Class]
					if x == nil {
						x = &sums{minHeadroom: math.Inf(1)}
						by[k.Class] = x
					}
					// A lowered limit can leave spent above it: no headroom, not negative.
					h := 0.0
					if k.Limit > k.Spent {
						h = float64(k.Limit - k.Spent)
					}
					x.n++
					x.limit += float64(k.Limit)
					x.spent += float64(k.Spent)
					x.headroom += h
					x.minHeadroom = min(x.minHeadroom, h)
					x.received += float64(k.Received)
				}
				for class, x := range by {
					ch <- gauge(keys, x.n, class)
					ch <- gauge(limit, x.limit, class)
					ch <- gauge(spent, x.spent, class)
					ch <- gauge(headroom, x.headroom, class)
					ch <- gauge(minHeadroom, x.minHeadroom, class)
					ch <- gauge(received, x.received, class)
				}
				return nil
			}})
	}
	if s.BudgetGaps != nil {
		gaps := desc("budget", "receipt_gaps_total", "Accepted receipts that skipped receipts never seen (frames lost with a connection).")
		add(&sourceCollector{m: m, name: "budget_gaps", descs: []*prometheus.Desc{gaps},
			read: func(_ context.Context, ch chan<- prometheus.Metric) error {
				ch <- counter(gaps, float64(s.BudgetGaps()))
				return nil
			}})
	}
	if s.Sessions != nil {
		sessions := desc("", "sessions", "Choreography sessions the runtime holds, by state and abort reason.", "state", "reason")
		add(&sourceCollector{m: m, name: "sessions", descs: []*prometheus.Desc{sessions},
			read: func(_ context.Context, ch chan<- prometheus.Metric) error {
				emitOutcomes(ch, sessions, s.Sessions())
				return nil
			}})
	}
	if s.Ceremonies != nil {
		ceremonies := desc("", "ceremonies", "Ceremonies this device took part in, by state and abort reason.", "state", "reason")
		add(&sourceCollector{m: m, name: "ceremonies", descs: []*prometheus.Desc{ceremonies},
			read: func(ctx context.Context, ch chan<- prometheus.Metric) error {
				list, err := s.Ceremonies(ctx)
				if err != nil {
					return err
				}
				emitOutcomes(ch, ceremonies, list)
				return nil
			}})
	}
	if s.Sync != nil {
		facts := desc("sync", "facts_total", "Facts anti-entropy received from (in) and sent to (out) peers since start.", "direction")
		bytes := desc("sync", "bytes_total", "Bytes of anti-entropy messages received (in) and sent (out) since start.", "direction")
		refused := desc("sync", "refused_facts_total", "Facts received by anti-entropy that failed verification (bad signature, not a member, invalid).")
		add(&sourceCollector{m: m, name: "sync", descs: []*prometheus.Desc{facts, bytes, refused},
			read: func(_ context.Context, ch chan<- prometheus.Metric) error {
				var t SyncPeer
				for _, p := range s.Sync() {
					t.FactsIn += p.FactsIn
					t.FactsOut += p.FactsOut
					t.BytesIn += p.BytesIn
					t.BytesOut += p.BytesOut
					t.Refused += p.Refused
				}
				ch <- counter(facts, float64(t.FactsIn), "in")
				ch <- counter(facts, float64(t.FactsOut), "out")
				ch <- counter(bytes, float64(t.BytesIn), "in")
				ch <- counter(bytes, float64(t.BytesOut), "out")
				ch <- counter(refused, float64(t.Refused))
				return nil
			}})
	}
	return out
}

func emitOutcomes(ch chan<- prometheus.Metric, d *prometheus.Desc, list []Outcome) {
	counts := map[Outcome]int{}
	for _, o := range list {
		counts[o]++
	}
	for o, n := range counts {
		ch <- gauge(d, float64(n), o.State, o.Reason)
	}
}

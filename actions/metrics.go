package actions

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the stage's own Prometheus metrics. A nil *Metrics records
// nothing.
type Metrics struct {
	effects   *prometheus.CounterVec
	holds     *prometheus.CounterVec
	summaries *prometheus.CounterVec
	latencyH  *prometheus.HistogramVec
}

// NewMetrics registers the stage's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		effects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eiamtriage_actions_effects_total",
			Help: "Effects of cases by kind and outcome: done, held (past a cap), discarded, failed.",
		}, []string{"mailbox", "kind", "state"}),
		holds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eiamtriage_actions_holds_total",
			Help: "Caps reached: actions of that kind are held until `eiamtriage actions release`.",
		}, []string{"mailbox", "cap"}),
		summaries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eiamtriage_summaries_total",
			Help: "Summary periods by outcome: sent, empty (nothing to say), failed.",
		}, []string{"mailbox", "outcome"}),
		latencyH: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "eiamtriage_actions_latency_seconds",
			Help:    "Time from a notice's intake to its case's effects handed to the outbox.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}, []string{"mailbox"}),
	}
	reg.MustRegister(m.effects, m.holds, m.summaries, m.latencyH)
	return m
}

func (m *Metrics) effect(mailbox string, kind EffectKind, state EffectState) {
	if m != nil {
		m.effects.WithLabelValues(mailbox, string(kind), string(state)).Inc()
	}
}

func (m *Metrics) held(mailbox, capName string) {
	if m != nil {
		m.holds.WithLabelValues(mailbox, capName).Inc()
	}
}

func (m *Metrics) summary(mailbox, outcome string) {
	if m != nil {
		m.summaries.WithLabelValues(mailbox, outcome).Inc()
	}
}

func (m *Metrics) latency(mailbox string, d time.Duration) {
	if m != nil && d > 0 {
		m.latencyH.WithLabelValues(mailbox).Observe(d.Seconds())
	}
}

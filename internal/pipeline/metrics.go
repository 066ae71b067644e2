package pipeline

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes counted by eiamtriage_messages_total.
const (
	OutcomeAck   = "ack"
	OutcomeRetry = "retry"
	OutcomeDead  = "dead"
)

// Reason kinds counted by eiamtriage_dead_letters_total.
const (
	ReasonPermanent  = "permanent"   // the handler returned a Permanent error
	ReasonPanic      = "panic"       // the handler panicked
	ReasonMaxDeliver = "max_deliver" // temporary failures until MaxDeliver, or more deliveries than MaxDeliver
	ReasonOverrun    = "overrun"     // the handler ignored its deadline and was abandoned
)

// ReasonShutdown, in eiamtriage_handlers_abandoned_total, counts handlers
// still running after the shutdown grace (their messages are handed back).
const ReasonShutdown = "shutdown"

// Metrics are the pipeline's Prometheus metrics, labelled by stage. A nil
// *Metrics is valid and records nothing.
type Metrics struct {
	messages    *prometheus.CounterVec
	deadLetters *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	pending     *prometheus.GaugeVec
	running     *prometheus.GaugeVec
	abandoned   *prometheus.CounterVec
	stuck       *prometheus.GaugeVec
}

// NewMetrics creates the metrics and registers them with reg (when reg is
// not nil). Like promauto, it panics when they are registered already:
// create one Metrics per registry and share it between stages.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eiamtriage_messages_total",
			Help: "Messages settled by a stage, by outcome: ack, retry (nak'ed to come back) or dead (dead-lettered).",
		}, []string{"stage", "outcome"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eiamtriage_dead_letters_total",
			Help: "Dead letters published by a stage, by reason kind: permanent, panic or max_deliver.",
		}, []string{"stage", "reason_kind"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "eiamtriage_stage_duration_seconds",
			Help:    "Time a stage's handler took per message.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"stage"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eiamtriage_consumer_pending",
			Help: "Messages in the stream not yet delivered to the stage's consumer (consumer lag).",
		}, []string{"stage"}),
		running: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eiamtriage_consumer_running",
			Help: "1 while the stage's consumer is consuming, 0 otherwise.",
		}, []string{"stage"}),
		abandoned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eiamtriage_handlers_abandoned_total",
			Help: "Handlers that did not return after their ctx ended, by reason kind: overrun (past their deadline; the message is dead-lettered) or shutdown (past the shutdown grace; the message is handed back).",
		}, []string{"stage", "reason_kind"}),
		stuck: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eiamtriage_handlers_stuck",
			Help: "Abandoned handlers that have not returned yet; each holds a worker.",
		}, []string{"stage"}),
	}
	if reg != nil {
		reg.MustRegister(m.messages, m.deadLetters, m.duration, m.pending, m.running, m.abandoned, m.stuck)
	}
	return m
}

// init makes the stage's series exist at zero before the first message.
func (m *Metrics) init(stage string) {
	if m == nil {
		return
	}
	for _, o := range []string{OutcomeAck, OutcomeRetry, OutcomeDead} {
		m.messages.WithLabelValues(stage, o)
	}
	for _, k := range []string{ReasonPermanent, ReasonPanic, ReasonMaxDeliver, ReasonOverrun} {
		m.deadLetters.WithLabelValues(stage, k)
	}
	for _, k := range []string{ReasonOverrun, ReasonShutdown} {
		m.abandoned.WithLabelValues(stage, k)
	}
	m.stuck.WithLabelValues(stage).Set(0)
	m.running.WithLabelValues(stage).Set(0)
}

func (m *Metrics) outcome(stage, outcome string) {
	if m != nil {
		m.messages.WithLabelValues(stage, outcome).Inc()
	}
}

func (m *Metrics) dead(stage, kind string) {
	if m != nil {
		m.deadLetters.WithLabelValues(stage, kind).Inc()
	}
}

// abandon counts a handler abandoned for reason (d 1) or one that
// returned at last (d -1, reason unused).
func (m *Metrics) abandon(stage, reason string, d float64) {
	if m == nil {
		return
	}
	if d > 0 {
		m.abandoned.WithLabelValues(stage, reason).Inc()
	}
	m.stuck.WithLabelValues(stage).Add(d)
}

func (m *Metrics) observe(stage string, d time.Duration) {
	if m != nil {
		m.duration.WithLabelValues(stage).Observe(d.Seconds())
	}
}

func (m *Metrics) setPending(stage string, n uint64) {
	if m != nil {
		m.pending.WithLabelValues(stage).Set(float64(n))
	}
}

func (m *Metrics) setRunning(stage string, running bool) {
	if m != nil {
		v := 0.0
		if running {
			v = 1
		}
		m.running.WithLabelValues(stage).Set(v)
	}
}

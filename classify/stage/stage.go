// Package stage is the classify stage of the pipeline: it consumes
// mail-received events, which carry each mail with what the ingest read of
// it (the notice and the verdict of sender authentication), classifies each
// trusted notice (package classify), records its case and publishes the
// case event. A mail that is not a notice is recorded on
// eiam.notice.ignored, one that cannot be read at all on
// eiam.dead.unreadable; a notice whose sender is not trusted is quarantined
// on eiam.dead.quarantine. None ever becomes a case.
//
// The stage is a pipeline.Handler: what a failure means (retry, dead
// letter) is decided by pipeline.Run, not here. Errors that can never
// succeed are marked pipeline.Permanent.
package stage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/eiamtriage/eiamtriage/classify"
	"github.com/eiamtriage/eiamtriage/internal/cases"
	"github.com/eiamtriage/eiamtriage/internal/event"
	"github.com/eiamtriage/eiamtriage/internal/pipeline"
)

// Name is the stage's name in consumer names, dead-letter subjects,
// metrics and logs.
const Name = "classify"

// Stage is the classify stage. Build it with New.
type Stage struct {
	js      jetstream.JetStream
	cases   *cases.Store
	cl      *classify.Classifier
	log     *zap.Logger
	now     func() time.Time
	metrics *Metrics
}

// Options are the parts of a Stage. Classifier is required; Now defaults to
// time.Now, Log to a no-op logger, Metrics to none.
type Options struct {
	Classifier *classify.Classifier
	Log        *zap.Logger
	Now        func() time.Time
	Metrics    *Metrics
}

// New returns the stage on the pipeline's case bucket, which must exist
// (pipeline.EnsureStreams).
func New(ctx context.Context, js jetstream.JetStream, opts Options) (*Stage, error) {
	if opts.Classifier == nil {
		return nil, errors.New("stage: a classifier is required")
	}
	kv, err := js.KeyValue(ctx, pipeline.BucketCases)
	if err != nil {
		return nil, fmt.Errorf("stage: open the case bucket %s: %w", pipeline.BucketCases, err)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	return &Stage{
		js: js, cases: cases.NewStore(kv, opts.Now), cl: opts.Classifier,
		log: opts.Log, now: opts.Now, metrics: opts.Metrics,
	}, nil
}

// Consumer returns the consumer configuration of the stage: durable, on the
// mail-received subject of the notices stream. The caller sets the retry
// policy fields (MaxDeliver, Backoff, AckWait, Workers).
func Consumer() pipeline.ConsumerConfig {
	return pipeline.ConsumerConfig{
		Stream:        pipeline.StreamNotices,
		Durable:       Name,
		FilterSubject: event.SubjectNoticeReceived,
		Stage:         Name,
	}
}

// Handle processes one mail-received event. It is idempotent: a redelivered
// event finds its notice already in the case and publishes the case event
// again under the same id.
func (s *Stage) Handle(ctx context.Context, m pipeline.Msg) error {
	var mr event.MailReceived
	ev, err := event.ParseInto(m.Data, &mr)
	if err != nil {
		return pipeline.Permanent(fmt.Errorf("stage: message %d on %s: %w", m.Sequence, m.Subject, err))
	}
	if ev.Type != event.TypeMailReceived {
		return pipeline.Permanent(fmt.Errorf("stage: event %s has type %s, want %s", ev.ID, ev.Type, event.TypeMailReceived))
	}
	log := s.log.With(zap.String("mailbox", mr.Mailbox), zap.String("mail", short(mr.MailID)), zap.String("source", mr.Source))
	rd := mr.Reading
	switch {
	case rd.Notice == nil:
		return s.ignore(ctx, log, mr, m.Sequence)
	case rd.Trust == nil || !rd.Trust.Trusted:
		return s.ignore(ctx, log, mr, m.Sequence)
	}
	n := rd.Notice
	v := s.cl.Classify(n)
	c, change, err := s.cases.Record(ctx, cases.Incoming{
		MailID: mr.MailID, Mailbox: mr.Mailbox, ReceivedSeq: m.Sequence, ReceivedAt: mr.ReceivedAt,
		Notice: n, Trust: *rd.Trust, AddressedTo: rd.AddressedTo,
		Verdict: cases.Verdict{Class: v.Class, Rule: v.Rule, Names: string(v.Names), Reasons: v.Reasons},
	})
	if err != nil {
		return err // temporary: the bucket is unreachable or contended
	}
	log = log.With(zap.String("case", c.ID), zap.String("class", string(c.Class)), zap.String("change", string(change)))
	ref := c.Ref(mr.MailID)
	if ref == nil {
		// The same notice already joined from another mail (delivered
		// directly and forwarded): its event is that mail's.
		log.Info("duplicate notice joined its case")
		s.metrics.mail(mr.Mailbox, "duplicate")
		return nil
	}
	// Publish the event of this mail's notice, also when the mail was
	// already in the case: a redelivery, or a re-submission after the
	// message that recorded it failed before publishing (it may have been
	// dead-lettered), must not leave a case without its event. The event
	// id is fixed (event.CaseEventID): within the stream's duplicate window
	// (pipeline.DuplicateWindow) the copy is dropped; later, consumers
	// recognise it by its id.
	typ := event.TypeCaseClassified
	if ref.Change == cases.Joined {
		typ = event.TypeCaseJoined
	}
	out, err := event.New(typ, "eiamtriage/"+Name, event.CaseEventID(c.ID, mr.MailID), s.now().UTC(),
		event.CaseChanged{Change: ref.Change, MailID: mr.MailID, ReceivedAt: mr.ReceivedAt, Case: c})
	if err != nil {
		return pipeline.Permanent(fmt.Errorf("stage: case %s: %w", c.ID, err))
	}
	out.Subject = c.ID
	if err := pipeline.Publish(ctx, s.js, event.CaseSubject(c.Class), out); err != nil {
		return fmt.Errorf("stage: publish the event of case %s: %w", c.ID, err)
	}
	if change == cases.Duplicate {
		log.Info("mail already in its case; its event published again")
		s.metrics.mail(mr.Mailbox, "duplicate")
		return nil
	}
	s.metrics.mail(mr.Mailbox, "notice")
	s.metrics.caseChanged(mr.Mailbox, string(c.Class), string(ref.Change))
	s.metrics.latency(mr.Mailbox, s.now().Sub(mr.ReceivedAt))
	log.Info("case recorded", zap.Int("rule", v.Rule), zap.Int("notices", len(c.Notices)))
	return nil
}

// ignore records a mail that is not a notice, or quarantines a notice whose
// sender is not trusted.
func (s *Stage) ignore(ctx context.Context, log *zap.Logger, mr event.MailReceived, seq uint64) error {
	rd := mr.Reading
	ig := event.MailIgnored{MailID: mr.MailID, Mailbox: mr.Mailbox, Source: mr.Source, ReceivedSeq: seq, Kind: rd.Kind, Reason: rd.Reason, At: s.now().UTC()}
	switch {
	case rd.Notice != nil && rd.Trust == nil:
		ig.Kind, ig.Reason, ig.Notice = "unauthenticated", "the ingest did not authenticate the sender of this notice", rd.Notice
		ig.Suspicious = true
	case rd.Notice != nil:
		ig.Kind, ig.Notice, ig.Trust, ig.Suspicious = rd.Trust.Kind, rd.Notice, rd.Trust, true
		ig.Reason = strings.Join(rd.Trust.Reasons, "; ")
	case rd.Kind == "untrusted-sender":
		ig.Suspicious = true // the parser saw a notice from a look-alike sender
	case rd.Kind == "":
		ig.Kind, ig.Reason = event.KindUnreadable, "the ingest recorded neither a notice nor why the mail is none"
	}
	typ, subject := event.TypeMailIgnored, event.SubjectNoticeIgnored
	switch {
	case ig.Suspicious:
		typ, subject = event.TypeMailQuarantined, event.SubjectQuarantine
	case ig.Kind == event.KindUnreadable:
		// It may have been a notice: recorded where the dead letters are,
		// for a person to look at.
		subject = event.SubjectUnreadable
	}
	out, err := event.New(typ, "eiamtriage/"+Name, "ignored-"+mr.Mailbox+"-"+mr.MailID, ig.At, ig)
	if err != nil {
		return pipeline.Permanent(err)
	}
	if err := pipeline.Publish(ctx, s.js, subject, out); err != nil {
		return fmt.Errorf("stage: record ignored mail %s: %w", mr.MailID, err)
	}
	s.metrics.mail(mr.Mailbox, "ignored-"+ig.Kind)
	switch {
	case ig.Suspicious:
		log.Warn("a notice whose sender is not trusted: quarantined", zap.String("kind", ig.Kind))
	case subject == event.SubjectUnreadable:
		log.Warn("a mail that cannot be read: recorded on "+subject+" (eiamtriage dead list)", zap.String("kind", ig.Kind))
	default:
		log.Info("not a notice", zap.String("kind", ig.Kind))
	}
	log.Debug("not a notice: reason", zap.String("reason", ig.Reason))
	return nil
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// Metrics are the stage's own Prometheus metrics (the pipeline's
// per-stage metrics are in package pipeline). A nil *Metrics records
// nothing.
type Metrics struct {
	mails    *prometheus.CounterVec
	cases    *prometheus.CounterVec
	latencyH *prometheus.HistogramVec
}

// NewMetrics registers the stage's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		mails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eiamtriage_mails_total",
			Help: "Mails classified, by outcome: notice, duplicate, ignored-<kind>.",
		}, []string{"mailbox", "outcome"}),
		cases: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eiamtriage_cases_total",
			Help: "Case events published, by class and change (created, joined, escalated).",
		}, []string{"mailbox", "class", "change"}),
		latencyH: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "eiamtriage_triage_latency_seconds",
			Help:    "Time from a mail's intake to its case event.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}, []string{"mailbox"}),
	}
	reg.MustRegister(m.mails, m.cases, m.latencyH)
	return m
}

func (m *Metrics) mail(mailbox, outcome string) {
	if m != nil {
		m.mails.WithLabelValues(mailbox, outcome).Inc()
	}
}

func (m *Metrics) caseChanged(mailbox, class, change string) {
	if m != nil {
		m.cases.WithLabelValues(mailbox, class, change).Inc()
	}
}

func (m *Metrics) latency(mailbox string, d time.Duration) {
	if m != nil {
		m.latencyH.WithLabelValues(mailbox).Observe(d.Seconds())
	}
}

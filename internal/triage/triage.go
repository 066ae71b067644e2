// Package triage is the classify stage of the pipeline: it consumes
// mail-received events, takes the mail they carry (or reads it from the
// object store, for a large one), runs the notice parser and
// the classifier, records the case and publishes the case event. Mail that
// is not a notice is recorded on eiam.notice.ignored, or quarantined on
// eiam.dead.quarantine when it looked like a notice from an untrusted
// sender; neither ever becomes a case.
//
// The stage is a pipeline.Handler: what a failure means (retry, dead
// letter) is decided by pipeline.Run, not here. Errors that can never
// succeed are marked pipeline.Permanent.
package triage

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
	"github.com/eiamtriage/eiamtriage/ingest"
	"github.com/eiamtriage/eiamtriage/ingest/notice"
	"github.com/eiamtriage/eiamtriage/internal/cases"
	"github.com/eiamtriage/eiamtriage/internal/event"
	"github.com/eiamtriage/eiamtriage/internal/pipeline"
)

// missingMailTries is how many deliveries a mail the object store does not
// have gets before its event is dead-lettered.
const missingMailTries = 3

// StageName is the stage's name in consumer names, dead-letter subjects,
// metrics and logs.
const StageName = "classify"

// Stage is the classify stage. Build it with New.
type Stage struct {
	js      jetstream.JetStream
	mail    jetstream.ObjectStore
	cases   *cases.Store
	parser  *notice.Parser
	cl      *classify.Classifier
	log     *zap.Logger
	now     func() time.Time
	metrics *Metrics
	// superusers may forward notices (lower case).
	superusers map[string]bool
}

// Options are the parts of a Stage. Parser and Classifier are required;
// Now defaults to time.Now, Log to a no-op logger, Metrics to none.
type Options struct {
	Parser     *notice.Parser
	Classifier *classify.Classifier
	// Superusers are the addresses whose forwards of a notice are acted
	// on; a notice forwarded by anyone else is quarantined. Compared
	// without regard to case.
	Superusers []string
	Log        *zap.Logger
	Now        func() time.Time
	Metrics    *Metrics
}

// New returns the stage on the pipeline's mail object store and case
// bucket, which must exist (pipeline.EnsureStreams).
func New(ctx context.Context, js jetstream.JetStream, opts Options) (*Stage, error) {
	if opts.Parser == nil || opts.Classifier == nil {
		return nil, errors.New("triage: a parser and a classifier are required")
	}
	mail, err := js.ObjectStore(ctx, pipeline.BucketMail)
	if err != nil {
		return nil, fmt.Errorf("triage: open the mail object store %s: %w", pipeline.BucketMail, err)
	}
	kv, err := js.KeyValue(ctx, pipeline.BucketCases)
	if err != nil {
		return nil, fmt.Errorf("triage: open the case bucket %s: %w", pipeline.BucketCases, err)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	su := make(map[string]bool, len(opts.Superusers))
	for _, a := range opts.Superusers {
		su[strings.ToLower(strings.TrimSpace(a))] = true
	}
	return &Stage{
		js: js, mail: mail, cases: cases.NewStore(kv, opts.Now), parser: opts.Parser,
		cl: opts.Classifier, log: opts.Log, now: opts.Now, metrics: opts.Metrics, superusers: su,
	}, nil
}

// Consumer returns the consumer configuration of the stage: durable, on the
// mail-received subject of the notices stream. The caller sets the retry
// policy fields (MaxDeliver, Backoff, AckWait, Workers).
func Consumer() pipeline.ConsumerConfig {
	return pipeline.ConsumerConfig{
		Stream:        pipeline.StreamNotices,
		Durable:       StageName,
		FilterSubject: event.SubjectNoticeReceived,
		Stage:         StageName,
	}
}

// Handle processes one mail-received event. It is idempotent: a redelivered
// event finds its notice already in the case and publishes the case event
// again under the same id.
func (s *Stage) Handle(ctx context.Context, m pipeline.Msg) error {
	var mr event.MailReceived
	ev, err := event.ParseInto(m.Data, &mr)
	if err != nil {
		return pipeline.Permanent(fmt.Errorf("triage: message %d on %s: %w", m.Sequence, m.Subject, err))
	}
	if ev.Type != event.TypeMailReceived {
		return pipeline.Permanent(fmt.Errorf("triage: event %s has type %s, want %s", ev.ID, ev.Type, event.TypeMailReceived))
	}
	log := s.log.With(zap.String("mail", short(mr.MailID)), zap.String("source", mr.Source))

	raw, err := s.raw(ctx, mr)
	if errors.Is(err, jetstream.ErrObjectNotFound) && m.NumDelivered < missingMailTries {
		// The intake stores the mail before it announces it; a
		// replica that lags can still miss it. Try again before
		// giving up.
		return fmt.Errorf("triage: mail %s (%s) not found in %s yet: %w", mr.MailID, mr.Source, pipeline.BucketMail, err)
	}
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return pipeline.Permanent(fmt.Errorf("triage: mail %s (%s) is not in the object store %s: it was deleted or never stored; submit it again", mr.MailID, mr.Source, pipeline.BucketMail))
	}
	if err != nil {
		return fmt.Errorf("triage: read mail %s from %s: %w", mr.MailID, pipeline.BucketMail, err)
	}
	if got := ingest.MailID(raw); got != mr.MailID {
		return pipeline.Permanent(fmt.Errorf("triage: mail %s (%s) has the hash %s: the copy in the event or the object store is corrupt; submit the mail again", mr.MailID, mr.Source, got))
	}

	n, perr := s.parser.Parse(raw)
	if perr == nil && n.Delivery != notice.DeliveryDirect && !s.superusers[n.Forwarder] {
		// Anyone can quote or attach a notice: only a superuser's
		// forward is acted on (docs/NOTICE.md, forwards).
		perr = &notice.NotANoticeError{Kind: "untrusted-forwarder", Reason: fmt.Sprintf(
			"a notice forwarded by %s, who is not a configured superuser (superusers in the configuration): possibly forged, not acted on", orUnknown(n.Forwarder))}
	}
	if perr != nil {
		return s.ignore(ctx, log, mr, perr)
	}
	v := s.cl.Classify(n)
	c, change, err := s.cases.Record(ctx, cases.Incoming{MailID: mr.MailID, ReceivedSeq: m.Sequence, ReceivedAt: mr.ReceivedAt, Notice: n, Verdict: v})
	if err != nil {
		return err // temporary: the bucket is unreachable or contended
	}
	log = log.With(zap.String("case", c.ID), zap.String("class", string(c.Class)), zap.String("change", string(change)))
	ref := c.Ref(mr.MailID)
	if ref == nil {
		// The same notice already joined from another mail (delivered
		// directly and forwarded): its event is that mail's.
		log.Info("duplicate notice joined its case")
		s.metrics.mail("duplicate")
		return nil
	}
	// Publish the event of this mail's notice, also when the mail was
	// already in the case: a redelivery, or a re-submission after the
	// message that recorded it failed before publishing (it may have been
	// dead-lettered), must not leave a case without its event. The event
	// id is fixed (cases.EventID): within the stream's duplicate window
	// (pipeline.DuplicateWindow) the copy is dropped; later, consumers
	// recognise it by its id.
	typ := event.TypeCaseClassified
	if ref.Change == cases.Joined {
		typ = event.TypeCaseJoined
	}
	out, err := event.New(typ, "eiamtriage/"+StageName, cases.EventID(c.ID, mr.MailID), s.now().UTC(),
		cases.Changed{Change: ref.Change, MailID: mr.MailID, ReceivedAt: mr.ReceivedAt, Case: c})
	if err != nil {
		return pipeline.Permanent(fmt.Errorf("triage: case %s: %w", c.ID, err))
	}
	out.Subject = c.ID
	if err := pipeline.Publish(ctx, s.js, event.CaseSubject(string(c.Class)), out); err != nil {
		return fmt.Errorf("triage: publish the event of case %s: %w", c.ID, err)
	}
	if change == cases.Duplicate {
		log.Info("mail already in its case; its event published again")
		s.metrics.mail("duplicate")
		return nil
	}
	s.metrics.mail("notice")
	s.metrics.caseChanged(string(c.Class), string(ref.Change))
	s.metrics.latency(s.now().Sub(mr.ReceivedAt))
	log.Info("case recorded", zap.Int("rule", v.Rule), zap.Int("notices", len(c.Notices)))
	return nil
}

// raw returns the mail of a mail-received event: carried in the event, or
// read from the object store.
func (s *Stage) raw(ctx context.Context, mr event.MailReceived) ([]byte, error) {
	if mr.Object == "" {
		if len(mr.Raw) == 0 {
			return nil, pipeline.Permanent(fmt.Errorf("triage: mail %s (%s): the event carries neither the mail nor an object name", mr.MailID, mr.Source))
		}
		return mr.Raw, nil
	}
	return s.mail.GetBytes(ctx, mr.Object)
}

// ignore records a mail that is not a notice.
func (s *Stage) ignore(ctx context.Context, log *zap.Logger, mr event.MailReceived, perr error) error {
	ig := event.MailIgnored{MailID: mr.MailID, Source: mr.Source, Kind: "unreadable-mail", Reason: perr.Error(), At: s.now().UTC()}
	var nn *notice.NotANoticeError
	if errors.As(perr, &nn) {
		ig.Kind, ig.Reason = nn.Kind, nn.Reason
		ig.Suspicious = nn.Kind == "untrusted-sender" || nn.Kind == "untrusted-forwarder"
	}
	typ, subject := event.TypeMailIgnored, event.SubjectNoticeIgnored
	if ig.Suspicious {
		typ, subject = event.TypeMailQuarantined, event.SubjectQuarantine
	}
	out, err := event.New(typ, "eiamtriage/"+StageName, "ignored-"+mr.MailID, ig.At, ig)
	if err != nil {
		return pipeline.Permanent(err)
	}
	if err := pipeline.Publish(ctx, s.js, subject, out); err != nil {
		return fmt.Errorf("triage: record ignored mail %s: %w", mr.MailID, err)
	}
	s.metrics.mail("ignored-" + ig.Kind)
	if ig.Suspicious {
		log.Warn("mail looks like a notice but its sender is not trusted: quarantined", zap.String("kind", ig.Kind))
	} else {
		log.Info("not a notice", zap.String("kind", ig.Kind))
	}
	log.Debug("not a notice: reason", zap.String("reason", ig.Reason))
	return nil
}

func orUnknown(s string) string {
	if s == "" {
		return "an unknown sender"
	}
	return s
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
	latencyH prometheus.Histogram
}

// NewMetrics registers the stage's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		mails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eiamtriage_mails_total",
			Help: "Mails classified, by outcome: notice, duplicate, ignored-<kind>.",
		}, []string{"outcome"}),
		cases: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eiamtriage_cases_total",
			Help: "Case events published, by class and change (created, joined, escalated).",
		}, []string{"class", "change"}),
		latencyH: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "eiamtriage_triage_latency_seconds",
			Help:    "Time from a mail's intake to its case event.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
	}
	reg.MustRegister(m.mails, m.cases, m.latencyH)
	return m
}

func (m *Metrics) mail(outcome string) {
	if m != nil {
		m.mails.WithLabelValues(outcome).Inc()
	}
}

func (m *Metrics) caseChanged(class, change string) {
	if m != nil {
		m.cases.WithLabelValues(class, change).Inc()
	}
}

func (m *Metrics) latency(d time.Duration) {
	if m != nil {
		m.latencyH.Observe(d.Seconds())
	}
}

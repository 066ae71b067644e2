package outbox_test

import (
	"testing"
	"time"

	"github.com/eiamtriage/eiamtriage/actions/outbox"
	"github.com/eiamtriage/eiamtriage/internal/config"
)

func TestOptionsFromConfig(t *testing.T) {
	t.Setenv(config.EnvSMTPPassword, "pw")
	cfg, err := config.Load([]byte(`
data_dir: /tmp/x
mailboxes: [{name: be, authserv_id: mx.be.ch}]
smtp:
  address: smtp.be.ch:465
  tls: implicit
  username: triage
  from: "Triage BE <triage@be.ch>"
  retry_for: 48h
  backoff: [1m]
  connections: 2
`))
	if err != nil {
		t.Fatal(err)
	}
	o, err := outbox.OptionsFrom(&cfg.SMTP)
	if err != nil {
		t.Fatal(err)
	}
	r := o.Relay
	if o.From != "Triage BE <triage@be.ch>" || r.Address != "smtp.be.ch:465" || r.TLS != outbox.TLSImplicit || r.Username != "triage" ||
		r.Password != "pw" || r.Timeout != 2*time.Minute || r.TLSConfig != nil || o.RetryFor != 48*time.Hour ||
		len(o.Backoff) != 1 || o.Workers != 2 || o.DryRun {
		t.Errorf("options %+v", o)
	}
}

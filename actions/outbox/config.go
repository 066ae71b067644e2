package outbox

import (
	"crypto/tls"
	"fmt"
	"time"

	"github.com/eiamtriage/eiamtriage/internal/config"
)

// OptionsFrom returns the Options the smtp section of the configuration
// gives: sender, relay (with the CA of smtp.ca_file), retry time, backoff
// and connections. DryRun, Now and Log are the caller's to set (dry_run
// belongs to the actions' section).
func OptionsFrom(s *config.SMTP) (Options, error) {
	pool, err := s.CertPool()
	if err != nil {
		return Options{}, fmt.Errorf("outbox: smtp.ca_file: %w", err)
	}
	var tc *tls.Config
	if pool != nil {
		tc = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return Options{
		From: s.From,
		Relay: Relay{
			Address: s.Address, TLS: TLSMode(s.TLS), TLSConfig: tc,
			Username: s.Username, Password: s.Password, HeloName: s.HeloName,
			Timeout: time.Duration(s.Timeout),
		},
		RetryFor: time.Duration(s.RetryFor),
		Backoff:  s.Delays(),
		Workers:  s.Connections,
	}, nil
}

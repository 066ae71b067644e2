package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSMTPDefaults(t *testing.T) {
	noSecretEnv(t)
	c := mustLoad(t, "")
	s := c.SMTP
	if s.Address != "" || s.TLS != "starttls" || s.From != "eiamtriage <triage@be.ch>" || time.Duration(s.RetryFor) != 72*time.Hour ||
		time.Duration(s.Timeout) != 2*time.Minute || len(s.Backoff) != 5 || s.Connections != 4 {
		t.Errorf("defaults %+v", s)
	}
	if s.FromAddress() != "triage@be.ch" {
		t.Errorf("FromAddress() = %q", s.FromAddress())
	}
}

func TestSMTPValid(t *testing.T) {
	noSecretEnv(t)
	dir := t.TempDir()
	pw := filepath.Join(dir, "smtp.pw")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := mustLoad(t, fmt.Sprintf(`
smtp:
  address: smtp.be.ch:587
  tls: starttls
  username: triage
  password_file: %s
  from: triage@be.ch
  retry_for: 96h
  backoff: [1m, 10m]
`, pw))
	if c.SMTP.Password != "s3cret" || c.SMTP.Delays()[1] != 10*time.Minute {
		t.Errorf("smtp %+v", c.SMTP)
	}
	if s := fmt.Sprintf("%v %+v %#v", c.SMTP, c.SMTP, c.SMTP); strings.Contains(s, "s3cret") {
		t.Errorf("printing the smtp section shows the password: %s", s)
	}
	red, err := c.Redacted()
	if err != nil || strings.Contains(string(red), "s3cret") || !strings.Contains(string(red), "smtp password: <redacted> (from "+pw+")") {
		t.Errorf("Redacted:\n%s\n%v", red, err)
	}
	t.Run("password from the environment", func(t *testing.T) {
		t.Setenv(EnvSMTPPassword, "fromenv")
		c := mustLoad(t, "smtp:\n  address: smtp.be.ch:465\n  tls: implicit\n  username: triage\n")
		if c.SMTP.Password != "fromenv" {
			t.Errorf("password %q", c.SMTP.Password)
		}
	})
	t.Run("none on loopback", func(t *testing.T) {
		for _, a := range []string{"127.0.0.1:25", "[::1]:2525", "localhost:25"} {
			mustLoad(t, "smtp:\n  address: \""+a+"\"\n  tls: none\n")
		}
	})
	t.Run("ca_file", func(t *testing.T) {
		// A PEM certificate (any will do for loading).
		caFile := filepath.Join(dir, "ca.pem")
		if err := os.WriteFile(caFile, []byte(testCertPEM(t)), 0o644); err != nil {
			t.Fatal(err)
		}
		c := mustLoad(t, "smtp:\n  ca_file: "+caFile+"\n")
		if pool, err := c.SMTP.CertPool(); err != nil || pool == nil {
			t.Errorf("CertPool = %v, %v", pool, err)
		}
	})
}

func TestSMTPInvalid(t *testing.T) {
	noSecretEnv(t)
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "x.pem")
	os.WriteFile(notPEM, []byte("not a certificate"), 0o644)
	for _, tc := range []struct{ src, want string }{
		{"smtp:\n  address: smtp.be.ch\n", `line 2: smtp.address: "smtp.be.ch" is not host:port`},
		{"smtp:\n  address: smtp.be.ch:0\n", `smtp.address: "smtp.be.ch:0" has port "0"`},
		{"smtp:\n  tls: ssl\n", `line 2: smtp.tls: "ssl" is not allowed: use implicit, starttls or none`},
		{"smtp:\n  address: smtp.be.ch:25\n  tls: none\n", "smtp.tls: none sends mail (and any password) unencrypted to smtp.be.ch:25"},
		{"smtp:\n  username: triage\n", `smtp.username: "triage" has no password: set smtp.password_file or EIAMTRIAGE_SMTP_PASSWORD`},
		{"smtp:\n  password_file: /x\n", "smtp.password_file: is set but smtp.username is empty"},
		{"smtp:\n  from: eiamtriage\n", `smtp.from: "eiamtriage" is not an address`},
		{"smtp:\n  from: triage@localhost\n", `smtp.from: "triage@localhost": the address must be name@domain`},
		{"smtp:\n  retry_for: 1m\n", "smtp.retry_for: 1m is not allowed"},
		{"smtp:\n  timeout: 0s\n", "smtp.timeout: 0s is not allowed"},
		{"smtp:\n  backoff: []\n", "smtp.backoff: is empty"},
		{"smtp:\n  backoff: [1m, -1s]\n", "smtp.backoff[1]: -1s is not allowed"},
		{"smtp:\n  connections: 0\n", "smtp.connections: 0 is not allowed"},
		{"smtp:\n  helo_name: a b\n", `smtp.helo_name: "a b" is not a host name`},
		{"smtp:\n  retry_for: 72\n", `invalid duration "72"`},
		{"smtp:\n  adress: x:25\n", `unknown key "adress" in smtp (did you mean "address"?)`},
		{"smtp:\n  ca_file: " + notPEM + "\n", "smtp.ca_file: " + notPEM + " holds no PEM certificate"},
		{"smtp:\n  ca_file: /nonexistent/ca.pem\n", "smtp.ca_file: cannot read /nonexistent/ca.pem"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			_, err := Load(withRequired(tc.src))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Load(%q) = %v, want an error with %q", tc.src, err, tc.want)
			}
		})
	}
	t.Run("environment password without user", func(t *testing.T) {
		t.Setenv(EnvSMTPPassword, "x")
		if _, err := Load(withRequired("")); err == nil || !strings.Contains(err.Error(), "smtp.username: is empty but EIAMTRIAGE_SMTP_PASSWORD is set") {
			t.Errorf("err = %v", err)
		}
	})
}

// testCertPEM returns a self-signed certificate in PEM.
func testCertPEM(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

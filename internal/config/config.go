// Package config reads the daemon's configuration: one YAML file, decoded
// strictly (an unknown or repeated key is an error naming its line), over
// defaults (an absent key, or a key with no value, keeps its default),
// then validated, then its secrets resolved.
//
// Secrets are never in the file: the NATS password and token come from a
// file named by nats.password_file / nats.token_file, or else from the
// environment variables EIAMTRIAGE_NATS_PASSWORD / EIAMTRIAGE_NATS_TOKEN.
// No error message ever contains a secret.
//
// deploy/eiamtriage.example.yaml shows every key at its default.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// The environment variables that hold secrets when no *_file is given.
const (
	EnvNATSPassword = "EIAMTRIAGE_NATS_PASSWORD"
	EnvNATSToken    = "EIAMTRIAGE_NATS_TOKEN"
)

// ExampleDataDir is where a packaged daemon keeps its state; data_dir has
// no default, the configuration must name it.
const ExampleDataDir = "/var/lib/eiamtriage"

// Config is the daemon's configuration. Build one with Default, Load or
// LoadFile; a Config from Load or LoadFile is valid and its secrets are
// resolved.
type Config struct {
	// DataDir is where the daemon keeps its state (the embedded server's
	// JetStream store among it). Required: there is no default. A relative path is taken
	// relative to the configuration file's directory by LoadFile, and
	// left as it is by Load.
	DataDir  string   `yaml:"data_dir"`
	NATS     NATS     `yaml:"nats"`
	HTTP     HTTP     `yaml:"http"`
	Log      Log      `yaml:"log"`
	Pipeline Pipeline `yaml:"pipeline"`
	// SMTP is the relay the outbox sends every mail through (smtp.go).
	SMTP SMTP `yaml:"smtp"`
	// Wording is decoded over DefaultWording: a key that is absent
	// keeps the default, a key that is present replaces the default's
	// value entirely. In particular, a configuration that sets
	// wording.languages must list every language with every label.
	Wording Wording `yaml:"wording"`
	// Classify adjusts the classifier's free-mail domains.
	Classify Classify `yaml:"classify"`
	// Mailboxes are the cantons' mailboxes the notices arrive in, each
	// with its superusers and sender authentication. At least one.
	Mailboxes []Mailbox `yaml:"mailboxes"`
	// Escalation, Summaries and Actions say what the cases cause
	// (actions.go).
	Escalation Escalation `yaml:"escalation"`
	Summaries  Summaries  `yaml:"summaries"`
	Actions    Actions    `yaml:"actions"`

	// Warnings are things Load found doubtful but not wrong, such as a
	// secret file that every user can read. Logging them is the caller's
	// business.
	Warnings []string `yaml:"-"`
}

// NATS says which NATS server the daemon uses and how it authenticates.
//
// Password and Token hold the resolved secrets. NATS's String and
// GoString methods print them as "<redacted>", so that printing a Config
// with %v or %+v shows no secret.
type NATS struct {
	// URL is the external server or cluster: one or more nats://, tls://,
	// ws:// or wss:// URLs separated by commas, without a password. Empty:
	// the daemon runs an embedded server.
	URL string `yaml:"url"`
	// Listen is the embedded server's client address, host:port. Port 0
	// is a free port the server picks and records in data_dir (see
	// package broker), where the other commands find it.
	Listen string `yaml:"listen"`
	// User is the user name; it needs a password.
	User string `yaml:"user"`
	// PasswordFile holds the password (a trailing newline is dropped);
	// without it EIAMTRIAGE_NATS_PASSWORD is used.
	PasswordFile string `yaml:"password_file"`
	// TokenFile holds the token; without it EIAMTRIAGE_NATS_TOKEN is used.
	TokenFile string `yaml:"token_file"`
	// CredsFile is a NATS credentials file (JWT and NKey seed), for an
	// external server only.
	CredsFile string `yaml:"creds_file"`
	// Replicas of each stream: 1, or 3 or 5 on a cluster. The embedded
	// server is a single node: 1.
	Replicas int `yaml:"replicas"`
	// MaxMemory and MaxStore bound the embedded server's JetStream.
	MaxMemory ByteSize `yaml:"max_memory"`
	MaxStore  ByteSize `yaml:"max_store"`

	// Password and Token are the resolved secrets; never in the file.
	Password string `yaml:"-"`
	Token    string `yaml:"-"`
}

// HTTP is the endpoint for metrics and health.
type HTTP struct {
	// Listen is host:port (port 0: a free port), or "off" for no HTTP
	// endpoint.
	Listen string `yaml:"listen"`
}

// HTTPOff is the http.listen value that disables the endpoint.
const HTTPOff = "off"

// Log says what the daemon logs and how.
type Log struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
	// Format is console, json, or auto: console when standard error is a
	// terminal, json otherwise (deciding is the caller's business).
	Format string `yaml:"format"`
}

// Pipeline tunes the processing of mail.
type Pipeline struct {
	// MaxDeliver is how many times a message is delivered before it is
	// given up (terminated and recorded).
	MaxDeliver int `yaml:"max_deliver"`
	// Backoff is the delay before each redelivery after a temporary
	// failure: the first delay before the second delivery, and so on; the
	// last delay repeats.
	Backoff []Duration `yaml:"backoff"`
	// AckWait is how long a delivery may take before JetStream delivers
	// the message again.
	AckWait Duration `yaml:"ack_wait"`
	// Workers is how many messages are processed at once.
	Workers int `yaml:"workers"`
	// MaxMailSize is the largest mail accepted; larger ones are refused.
	MaxMailSize ByteSize `yaml:"max_mail_size"`
}

// Default returns the configuration used for every absent key (it has no
// data_dir and no mailboxes, which every configuration must give): an
// embedded NATS server on 127.0.0.1:4222, metrics on 127.0.0.1:9464, info
// logs, five deliveries with backoff 1s, 5s, 30s, 2m, and the wording of
// notice.DefaultWording. The value is a fresh copy the caller may change.
func Default() Config {
	return Config{
		NATS:     defaultNATS(),
		HTTP:     HTTP{Listen: "127.0.0.1:9464"},
		Log:      Log{Level: "info", Format: "auto"},
		Pipeline: defaultPipeline(),
		SMTP:     defaultSMTP(),
		Wording:  DefaultWording(),

		Escalation: defaultEscalation(),
		Summaries:  defaultSummaries(),
		Actions:    defaultActions(),
	}
}

func defaultNATS() NATS {
	return NATS{
		Listen:    "127.0.0.1:4222",
		Replicas:  1,
		MaxMemory: 256 * MiB,
		MaxStore:  10 * GiB,
	}
}

func defaultPipeline() Pipeline {
	return Pipeline{
		MaxDeliver: 5,
		Backoff: []Duration{
			Duration(time.Second), Duration(5 * time.Second),
			Duration(30 * time.Second), Duration(2 * time.Minute),
		},
		AckWait:     Duration(30 * time.Second),
		Workers:     32,
		MaxMailSize: 25 * MiB,
	}
}

// Load reads a configuration from YAML. Unknown and repeated keys are
// errors naming their line; absent keys keep their defaults. Secrets from
// the environment are taken (a user needs a password), the result is
// validated, and only then are the secret files read, so an invalid
// configuration reads none. Relative paths (data_dir, the *_file keys) are kept as
// they are, that is relative to the working directory; LoadFile resolves
// them against the file's directory.
//
// Empty input is the default configuration. The error is an *Error or
// several joined; it never contains a secret.
func Load(data []byte) (*Config, error) {
	return load(data, "")
}

// LoadFile reads the configuration file at path as Load does, with
// relative paths in it taken relative to the file's directory. Every
// error names the file.
func LoadFile(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{Err: err} // the *PathError names the file
	}
	dir := filepath.Dir(path)
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	c, err := load(data, dir)
	if err != nil {
		eachError(err, func(e *Error) { e.File = path })
		return nil, err
	}
	return c, nil
}

func load(data []byte, baseDir string) (*Config, error) {
	c := Default()
	chk := newChecker()
	if err := decode(data, &c, chk); err != nil {
		return nil, err
	}
	if baseDir != "" {
		for _, p := range append([]*string{&c.DataDir, &c.NATS.PasswordFile, &c.NATS.TokenFile, &c.NATS.CredsFile, &c.SMTP.PasswordFile, &c.SMTP.CAFile, &c.Actions.Templates}, imapPaths(c.Mailboxes)...) {
			resolvePath(p, baseDir)
		}
	}
	// An empty list is written "[]"; it means the same as none.
	if len(c.Classify.AddFreeMail) == 0 {
		c.Classify.AddFreeMail = nil
	}
	if len(c.Classify.RemoveFreeMail) == 0 {
		c.Classify.RemoveFreeMail = nil
	}
	for i := range c.Mailboxes {
		m := &c.Mailboxes[i]
		if m.Authentication == "" {
			m.Authentication = "on"
		}
		if len(m.Superusers) == 0 {
			m.Superusers = nil
		}
		if len(m.AuthservID) == 0 {
			m.AuthservID = nil
		}
		imapDefaults(m, i, chk)
		mailboxActionDefaults(m)
	}
	c.Warnings = append(c.Warnings, mailboxWarnings(c.Mailboxes)...)
	c.Warnings = append(c.Warnings, classifyWarnings(&c.Classify)...)
	if c.SMTP.Address == "" && !c.Actions.DryRun {
		c.Warnings = append(c.Warnings, noRelayWarning(c.SMTP.RetryFor))
	}
	c.Warnings = append(c.Warnings, c.NATS.secretsFromEnv()...)
	c.Warnings = append(c.Warnings, c.SMTP.secretsFromEnv()...)
	c.Warnings = append(c.Warnings, imapSecretsFromEnv(c.Mailboxes)...)
	if c.NATS.URL != "" {
		for _, k := range []string{"listen", "max_memory", "max_store"} {
			if chk.present("nats." + k) {
				c.Warnings = append(c.Warnings, fmt.Sprintf("nats.%s is ignored: nats.url names an external server", k))
			}
		}
	}
	if err := c.Validate(); err != nil {
		chk.setLines(err)
		return nil, err
	}
	warnings, err := c.NATS.secretsFromFiles()
	if err != nil {
		chk.setLines(err)
		return nil, err
	}
	c.Warnings = append(c.Warnings, warnings...)
	warnings, err = c.SMTP.secretsFromFiles()
	if err != nil {
		chk.setLines(err)
		return nil, err
	}
	c.Warnings = append(c.Warnings, warnings...)
	warnings, err = imapSecretsFromFiles(c.Mailboxes)
	if err != nil {
		chk.setLines(err)
		return nil, err
	}
	c.Warnings = append(c.Warnings, warnings...)
	return &c, nil
}

// decode decodes data over c, strictly.
func decode(data []byte, c *Config, chk *checker) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // empty, or comments only
		}
		return syntaxError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return syntaxError(err)
		}
		return &Error{Line: extra.Line, Msg: `a second YAML document ("---"): the configuration is one document`}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return nil
	}
	if root.Kind != yaml.MappingNode {
		return &Error{Line: root.Line, Msg: fmt.Sprintf("the configuration must be a mapping of keys to values, found %s", kindName(root))}
	}
	chk.walk(root, reflect.TypeFor[Config](), "", 0)
	if len(chk.errs) > 0 {
		return chk.errs.err()
	}
	if err := root.Decode(c); err != nil {
		if te, ok := errors.AsType[*yaml.TypeError](err); ok {
			return chk.decodeErrors(te)
		}
		return &Error{Err: err}
	}
	return nil
}

// syntaxError turns "yaml: line 3: did not find expected key" into an
// *Error with the line.
func syntaxError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{Line: line, Msg: "invalid YAML: " + m[2], Err: err}
	}
	return &Error{Msg: "invalid YAML: " + msg, Err: err}
}

// Validate reports every problem of c, each an *Error naming the key, the
// value and what is allowed, joined with errors.Join; nil if there is
// none. It does no I/O: that the secret files can be read is checked by
// Load. Each part validates itself; Validate adds data_dir and the
// wording.
func (c *Config) Validate() error {
	var p problems
	if c.DataDir == "" {
		p.add("data_dir", "is empty: give the directory where the daemon keeps its state, such as %s", ExampleDataDir)
	}
	p.addErr(c.NATS.Validate())
	p.addErr(c.HTTP.Validate())
	p.addErr(c.Log.Validate())
	p.addErr(c.Pipeline.Validate())
	p.addErr(c.SMTP.Validate())
	if err := c.Wording.Validate(); err != nil {
		p = append(p, &Error{Key: "wording", Msg: strings.TrimPrefix(err.Error(), "config: wording: "), Err: err})
	}
	p.addErr(validateClassify(&c.Classify))
	p.addErr(validateMailboxes(c.Mailboxes))
	p.addErr(validateActions(c))
	return p.err()
}

// Embedded reports whether the daemon runs its own NATS server (no URL).
func (n *NATS) Embedded() bool { return n.URL == "" }

// URLs returns the server URLs of URL, split at the commas; nil when
// embedded.
func (n *NATS) URLs() []string {
	if n.URL == "" {
		return nil
	}
	var urls []string
	for u := range strings.SplitSeq(n.URL, ",") {
		urls = append(urls, strings.TrimSpace(u))
	}
	return urls
}

// Validate reports the problems of the nats section: URLs, listen
// address, replicas, sizes, and a consistent choice of authentication.
// Password and Token count as given when set, as do their files.
func (n *NATS) Validate() error {
	var p problems
	if n.Embedded() {
		if err := checkHostPort(n.Listen, "4222"); err != nil {
			p.add("nats.listen", "%q %v", n.Listen, err)
		}
		if n.Replicas != 1 {
			p.add("nats.replicas", "%d needs a cluster, and the embedded server (no nats.url) is a single node: use 1", n.Replicas)
		}
		if n.CredsFile != "" {
			p.add("nats.creds_file", "needs an external server: set nats.url, or use nats.user or nats.token_file with the embedded server")
		}
	} else {
		for i, u := range n.URLs() {
			key := "nats.url"
			if strings.Contains(n.URL, ",") {
				key = fmt.Sprintf("nats.url[%d]", i)
			}
			if err := checkNATSURL(u); err != nil {
				p.add(key, "%v", err)
			}
		}
		if !slices.Contains([]int{1, 3, 5}, n.Replicas) {
			p.add("nats.replicas", "%d is not allowed: use 1, or 3 or 5 on a cluster", n.Replicas)
		}
	}
	if n.MaxMemory <= 0 {
		p.add("nats.max_memory", "%s is not allowed: give a positive size such as 256MiB", n.MaxMemory)
	}
	if n.MaxStore <= 0 {
		p.add("nats.max_store", "%s is not allowed: give a positive size such as 10GiB", n.MaxStore)
	}
	hasPassword := n.PasswordFile != "" || n.Password != ""
	hasToken := n.TokenFile != "" || n.Token != ""
	switch {
	case n.User != "" && !hasPassword:
		p.add("nats.user", "%q has no password: set nats.password_file or %s", n.User, EnvNATSPassword)
	case n.User == "" && n.PasswordFile != "":
		p.add("nats.password_file", "is set but nats.user is empty: give the user name too")
	case n.User == "" && hasPassword:
		p.add("nats.user", "is empty but %s is set: give the user name too, or unset the variable", EnvNATSPassword)
	}
	if n.Embedded() && n.User == "" && !hasToken && !isLoopback(n.Listen) {
		p.add("nats.listen", "%q reaches beyond this host, and the embedded server then takes any client: "+
			"listen on 127.0.0.1, or set nats.user with a password or a token", n.Listen)
	}
	methods := 0
	for _, m := range []bool{n.User != "", hasToken, n.CredsFile != ""} {
		if m {
			methods++
		}
	}
	if methods > 1 {
		p.add("nats", "use one way to authenticate: nats.user with a password, a token (nats.token_file or %s), or nats.creds_file; several are set", EnvNATSToken)
	}
	return p.err()
}

// checkNATSURL checks one server URL. Its errors never repeat the URL
// whole, which could hold a password.
func checkNATSURL(s string) error {
	if s == "" {
		return fmt.Errorf("an empty URL: give nats://host:port, or leave nats.url empty for the embedded server")
	}
	u, err := url.Parse(s)
	if err != nil {
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err // without the URL itself
		}
		return fmt.Errorf("not a URL: %v", err)
	}
	if u.User != nil {
		// A password, or a token written as the user: a secret in the
		// URL would reach logs and the configuration file.
		u.User = nil
		return fmt.Errorf("%s holds credentials: remove them from the URL and use nats.user with nats.password_file (or %s), or nats.token_file (or %s)",
			u.String(), EnvNATSPassword, EnvNATSToken)
	}
	switch u.Scheme {
	case "nats", "tls", "ws", "wss":
	default:
		return fmt.Errorf("%s: scheme %q is not allowed: use nats://, tls://, ws:// or wss://", u.Redacted(), u.Scheme)
	}
	if u.Host == "" {
		return fmt.Errorf("%s has no host: write %s://host:port", u.Redacted(), u.Scheme)
	}
	return nil
}

// isLoopback reports whether a host:port listen address stays on this
// host (127.0.0.0/8, ::1, localhost).
func isLoopback(hostPort string) bool {
	host, _, err := net.SplitHostPort(hostPort)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkHostPort checks a listen address: host:port, the host possibly
// empty (every interface), the port a number; example is a port for the
// message.
func checkHostPort(s, example string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("is not host:port (such as 127.0.0.1:%s, or :%s for every interface)", example, example)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("has port %q: want a number from 0 to 65535", port)
	}
	return nil
}

// Enabled reports whether the HTTP endpoint is on.
func (h *HTTP) Enabled() bool { return h.Listen != HTTPOff }

// Validate reports a listen value that is neither host:port nor "off".
func (h *HTTP) Validate() error {
	var p problems
	switch {
	case h.Listen == "":
		p.add("http.listen", `is empty: give host:port such as 127.0.0.1:9464, or "off" for no HTTP endpoint`)
	case h.Listen == HTTPOff:
	default:
		if err := checkHostPort(h.Listen, "9464"); err != nil {
			p.add("http.listen", `%q %v, or "off" for no HTTP endpoint`, h.Listen, err)
		}
	}
	return p.err()
}

// Validate reports a level or format outside their lists.
func (l *Log) Validate() error {
	var p problems
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, l.Level) {
		p.add("log.level", "%q is not a level: use debug, info, warn or error", l.Level)
	}
	if !slices.Contains([]string{"auto", "console", "json"}, l.Format) {
		p.add("log.format", "%q is not a format: use auto, console or json", l.Format)
	}
	return p.err()
}

// Delays returns Backoff as time.Durations.
func (pl *Pipeline) Delays() []time.Duration {
	d := make([]time.Duration, len(pl.Backoff))
	for i, b := range pl.Backoff {
		d[i] = time.Duration(b)
	}
	return d
}

// Validate reports counts below one and delays or sizes that are not
// positive.
func (pl *Pipeline) Validate() error {
	var p problems
	if pl.MaxDeliver < 1 {
		p.add("pipeline.max_deliver", "%d is not allowed: a message is delivered at least once; use 1 or more", pl.MaxDeliver)
	}
	if len(pl.Backoff) == 0 {
		p.add("pipeline.backoff", "is empty: list at least one delay, such as [1s, 5s, 30s, 2m]")
	}
	for i, d := range pl.Backoff {
		if d <= 0 {
			p.add(fmt.Sprintf("pipeline.backoff[%d]", i), "%s is not allowed: a delay must be positive", d)
		}
	}
	if pl.AckWait <= 0 {
		p.add("pipeline.ack_wait", "%s is not allowed: give a positive duration such as 1m", pl.AckWait)
	}
	if pl.Workers < 1 {
		p.add("pipeline.workers", "%d is not allowed: use 1 or more", pl.Workers)
	}
	if pl.MaxMailSize <= 0 {
		p.add("pipeline.max_mail_size", "%s is not allowed: give a positive size such as 25MiB", pl.MaxMailSize)
	}
	return p.err()
}

// Classify adjusts the classifier's list of free-mail providers
// (docs/NOTICE.md section 4).
type Classify struct {
	// AddFreeMail lists domains to treat as free mail in addition to the
	// built-in list.
	AddFreeMail []string `yaml:"add_free_mail"`
	// RemoveFreeMail lists domains of the built-in list (or AddFreeMail)
	// not to treat as free mail. Removal wins over addition.
	RemoveFreeMail []string `yaml:"remove_free_mail"`
}

// validateClassify reports entries of the classify section that are not
// domain names.
func validateClassify(o *Classify) error {
	var p problems
	check := func(key string, list []string) {
		for i, d := range list {
			if d == "" || strings.ContainsAny(d, "@ \t/:") || !strings.Contains(strings.Trim(d, "."), ".") {
				p.add(fmt.Sprintf("classify.%s[%d]", key, i), "%q is not a domain name: write it as example.org, without @", d)
			}
		}
	}
	check("add_free_mail", o.AddFreeMail)
	check("remove_free_mail", o.RemoveFreeMail)
	return p.err()
}

// noRelayWarning is the warning of a configuration that sends mail
// without a relay.
func noRelayWarning(retryFor Duration) string {
	return fmt.Sprintf("smtp.address is empty: no mail goes out (no escalation, alert, user mail or summary); "+
		"each is recorded in the outbox, and its attempts fail with \"no SMTP relay configured\" (the log, `eiamtriage outbox list`) "+
		"until smtp.retry_for (%s) has passed, then it is dead-lettered; give the relay as smtp.address, "+
		"or set actions.dry_run: true to try a configuration without sending", retryFor)
}

// classifyWarnings notes domains both added and removed: classify lets
// removal win, which is likely not what was meant.
func classifyWarnings(o *Classify) []string {
	var w []string
	for _, d := range o.RemoveFreeMail {
		if slices.ContainsFunc(o.AddFreeMail, func(a string) bool { return strings.EqualFold(a, d) }) {
			w = append(w, fmt.Sprintf("classify: %q is in both add_free_mail and remove_free_mail: removal wins, it is not free mail", d))
		}
	}
	return w
}

package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/eiamtriage/eiamtriage/internal/pipeline"
)

const exampleFile = "../../deploy/eiamtriage.example.yaml"

// noSecretEnv clears the secret variables for the test, so that the
// caller's environment cannot change its outcome.
func noSecretEnv(t *testing.T) {
	t.Helper()
	t.Setenv(EnvNATSPassword, "")
	t.Setenv(EnvNATSToken, "")
	t.Setenv(EnvSMTPPassword, "")
}

// required are the keys every configuration must give, for tests of
// other keys. withRequired appends them to src unless src gives them, so
// that the lines of src stay where they are.
const required = "data_dir: /srv/eiamtriage\nmailboxes: [{name: be, authserv_id: mx.be.ch}]\n"

func withRequired(src string) []byte {
	if src != "" && !strings.HasSuffix(src, "\n") {
		src += "\n"
	}
	for _, line := range strings.SplitAfter(required, "\n") {
		key, _, _ := strings.Cut(line, ":")
		if key != "" && !strings.HasPrefix(src, key+":") && !strings.Contains(src, "\n"+key+":") {
			src += line
		}
	}
	return []byte(src)
}

// withDefaults is Default with the required keys as withRequired gives
// them.
func withDefaults() Config {
	d := Default()
	d.DataDir = "/srv/eiamtriage"
	d.Mailboxes = []Mailbox{{Name: "be", AuthservID: Strings{"mx.be.ch"}, Authentication: "on", IMAP: DefaultIMAP(), UserMail: UserMailSend, Language: "de"}}
	d.Warnings = []string{noRelayWarning(d.SMTP.RetryFor)} // they name no relay
	return d
}

// mustLoad loads src with the required keys, which must be valid.
func mustLoad(t *testing.T, src string) *Config {
	t.Helper()
	c, err := Load(withRequired(src))
	if err != nil {
		t.Fatalf("Load:\n%s\nerror: %v", src, err)
	}
	return c
}

// firstError returns the first *Error in err, failing the test if there
// is none.
func firstError(t *testing.T, err error) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) holds no *Error", err, err)
	}
	return e
}

// findError returns the *Error in err with the key, or nil.
func findError(err error, key string) *Error {
	var found *Error
	eachError(err, func(e *Error) {
		if found == nil && e.Key == key {
			found = e
		}
	})
	return found
}

// writeFile writes a file in dir with the mode and returns its path.
func writeFile(t *testing.T, dir, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // past the umask
		t.Fatal(err)
	}
	return p
}

func TestDefault(t *testing.T) {
	d := Default()
	if err := d.Validate(); findError(err, "data_dir") == nil || findError(err, "mailboxes") == nil {
		t.Errorf("Default().Validate() = %v, want data_dir and mailboxes required", err)
	}
	if err := withDefaults(); err.Validate() != nil {
		t.Fatalf("Default() with data_dir and a mailbox: Validate() = %v", err.Validate())
	}
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"data_dir", d.DataDir, ""},
		{"mailboxes", d.Mailboxes, []Mailbox(nil)},
		{"nats.url", d.NATS.URL, ""},
		{"nats.listen", d.NATS.Listen, "127.0.0.1:4222"},
		{"nats.replicas", d.NATS.Replicas, 1},
		{"nats.max_memory", d.NATS.MaxMemory, ByteSize(256 << 20)},
		{"nats.max_store", d.NATS.MaxStore, ByteSize(10 << 30)},
		{"http.listen", d.HTTP.Listen, "127.0.0.1:9464"},
		{"log.level", d.Log.Level, "info"},
		{"log.format", d.Log.Format, "auto"},
		{"pipeline.max_deliver", d.Pipeline.MaxDeliver, 5},
		{"pipeline.backoff", d.Pipeline.Delays(), []time.Duration{time.Second, 5 * time.Second, 30 * time.Second, 2 * time.Minute}},
		{"pipeline.ack_wait", time.Duration(d.Pipeline.AckWait), 30 * time.Second},
		{"pipeline.workers", d.Pipeline.Workers, 32},
		{"pipeline.max_mail_size", d.Pipeline.MaxMailSize, ByteSize(25 << 20)},
		{"wording", d.Wording, DefaultWording()},
		{"classify.add_free_mail", d.Classify.AddFreeMail, []string(nil)},
		{"embedded", d.NATS.Embedded(), true},
		{"http enabled", d.HTTP.Enabled(), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !reflect.DeepEqual(tc.got, tc.want) {
				t.Errorf("got %v, want %v", tc.got, tc.want)
			}
		})
	}
	t.Run("fresh copy", func(t *testing.T) {
		a := Default()
		a.Pipeline.Backoff[0] = 0
		a.Wording.Languages[0].Code = "xx"
		b := Default()
		if b.Pipeline.Backoff[0] != Duration(time.Second) || b.Wording.Languages[0].Code != "de" {
			t.Error("Default shares its slices between calls")
		}
	})
}

// TestLoadEmptyIsRefused: a configuration must name its data directory and
// mailboxes; an empty one says so.
func TestLoadEmptyIsRefused(t *testing.T) {
	noSecretEnv(t)
	for _, tc := range []struct{ name, src string }{
		{"empty", ""},
		{"comments only", "# nothing here\n"},
		{"empty document", "---\n"},
		{"empty mapping", "{}\n"},
		{"null document", "~\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load([]byte(tc.src))
			if d, m := findError(err, "data_dir"), findError(err, "mailboxes"); d == nil || m == nil {
				t.Fatalf("Load(%q) = %v, want data_dir and mailboxes required", tc.src, err)
			}
			if !strings.Contains(err.Error(), "data_dir: is empty: give the directory") || !strings.Contains(err.Error(), "mailboxes: is empty: list each canton's mailbox") {
				t.Errorf("error %q does not say what to give", err)
			}
		})
	}
}

// TestLoadKeysWithoutValuesAreDefault: a section or key written without a
// value keeps its default.
func TestLoadKeysWithoutValuesAreDefault(t *testing.T) {
	noSecretEnv(t)
	for _, tc := range []struct{ name, src string }{
		{"required only", ""},
		{"sections without values", "nats:\nhttp:\nlog:\npipeline:\nwording:\nclassify:\n"},
		{"keys without values", "nats:\n  listen:\npipeline:\n  backoff:\n  ack_wait:\nwording:\n  languages:\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustLoad(t, tc.src)
			if want := withDefaults(); !reflect.DeepEqual(*c, want) {
				t.Errorf("Load(%q) =\n%+v\nwant the defaults:\n%+v", tc.src, *c, want)
			}
		})
	}
}

// exampleDefaults is Default with the data directory and the mailbox of
// the example configuration.
func exampleDefaults() Config {
	d := Default()
	d.DataDir = ExampleDataDir
	d.Mailboxes = []Mailbox{{Name: "be", Superusers: []string{"martina.graf@be.ch", "peter.aebi@be.ch"}, AuthservID: Strings{"mx.be.ch"}, Authentication: "on", IMAP: DefaultIMAP(), UserMail: UserMailSend, Language: "de"}}
	d.Warnings = []string{noRelayWarning(d.SMTP.RetryFor)} // the example names no relay
	return d
}

func TestExampleFile(t *testing.T) {
	noSecretEnv(t)
	t.Run("LoadFile equals Default", func(t *testing.T) {
		c, err := LoadFile(exampleFile)
		if err != nil {
			t.Fatal(err)
		}
		if want := exampleDefaults(); !reflect.DeepEqual(*c, want) {
			t.Errorf("example =\n%+v\nwant Default() with its mailbox:\n%+v", *c, want)
		}
	})
	data, err := os.ReadFile(exampleFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("Load equals Default", func(t *testing.T) {
		if c := mustLoad(t, string(data)); !reflect.DeepEqual(*c, exampleDefaults()) {
			t.Errorf("example differs from Default()")
		}
	})
	t.Run("every key is present", func(t *testing.T) {
		var doc yaml.Node
		if err := yaml.Unmarshal(data, &doc); err != nil {
			t.Fatal(err)
		}
		chk := newChecker()
		chk.walk(doc.Content[0], reflect.TypeFor[Config](), "", 0)
		for _, key := range allKeys(reflect.TypeFor[Config](), "") {
			if !chk.present(key) {
				t.Errorf("key %s is missing from %s", key, exampleFile)
			}
		}
	})
	t.Run("commented examples are valid", func(t *testing.T) {
		// The commented-out cluster URL and subject variant.
		src := strings.NewReplacer(
			"  url: \"\"\n", "",
			"  # url: tls://", "  url: tls://",
			"  replicas: 1\n", "  replicas: 3\n",
			"      subjects: [\"eIAM: Abweichende Benutzerdaten\"]\n", "",
			"      #   subjects: [", "      subjects: [",
		).Replace(string(data))
		c := mustLoad(t, src)
		if got := len(c.NATS.URLs()); got != 3 {
			t.Errorf("cluster URLs = %q, want 3", c.NATS.URLs())
		}
		if got := c.Wording.Languages[0].Subjects; len(got) != 2 {
			t.Errorf("de subjects = %q, want 2", got)
		}
	})
}

// allKeys lists the key paths of t, the first item of a list of mappings
// standing for all of them.
func allKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for name, ft := range yamlFields(t) {
		p := join(prefix, name)
		keys = append(keys, p)
		switch {
		case ft.Kind() == reflect.Struct && !reflect.PointerTo(ft).Implements(unmarshalerType):
			keys = append(keys, allKeys(ft, p)...)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			keys = append(keys, allKeys(ft.Elem(), p+"[0]")...)
		}
	}
	return keys
}

func TestUnknownKey(t *testing.T) {
	noSecretEnv(t)
	for _, tc := range []struct {
		name string
		src  string
		line int
		want string
	}{
		{
			name: "top level",
			src:  "data_dir: /x\ndat_dir: /y\n",
			line: 2,
			want: `config: line 2: unknown key "dat_dir" (did you mean "data_dir"?)`,
		},
		{
			name: "nested",
			src:  "# comment\ndata_dir: /x\n\nhttp:\n  listen: off\nnats:\n  listn: 127.0.0.1:4222\n",
			line: 7,
			want: `config: line 7: unknown key "listn" in nats (did you mean "listen"?)`,
		},
		{
			name: "in a list item",
			src:  "wording:\n  languages:\n    - code: de\n      subjects: [a]\n    - code: fr\n      subject: [b]\n",
			line: 6,
			want: `config: line 6: unknown key "subject" in wording.languages[1] (did you mean "subjects"?)`,
		},
		{
			name: "deep",
			src:  "wording:\n  forward:\n    markerz: [x]\n",
			line: 3,
			want: `unknown key "markerz" in wording.forward (did you mean "markers"?)`,
		},
		{
			name: "no likely key",
			src:  "log:\n  colour: true\n",
			line: 2,
			want: `unknown key "colour" in log (known keys: format, level)`,
		},
		{
			name: "secret itself",
			src:  "nats:\n  user: u\n  password: hunter2\n",
			line: 3,
			want: `unknown key "password" in nats (did you mean "password_file"?)`,
		},
		{
			name: "resolved secret is no key",
			src:  "nats:\n  token: hunter2\n",
			line: 2,
			want: `unknown key "token" in nats`,
		},
		{
			name: "key given twice",
			src:  "log:\n  level: info\n  level: debug\n",
			line: 3,
			want: `config: line 3: log.level: key "level" is given twice (first at line 2)`,
		},
		{
			name: "unknown key in a merged mapping",
			src:  "base: &b\n  level: info\nlog:\n  <<: *b\n",
			line: 1,
			want: `unknown key "base"`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(withRequired(tc.src))
			if err == nil {
				t.Fatalf("Load succeeded, want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q\nwant it to contain %q", err, tc.want)
			}
			if e := firstError(t, err); e.Line != tc.line {
				t.Errorf("Line = %d, want %d", e.Line, tc.line)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q holds the secret", err)
			}
		})
	}
	t.Run("all reported", func(t *testing.T) {
		_, err := Load(withRequired("a: 1\nnats:\n  b: 2\nlog:\n  c: 3\n"))
		var n int
		eachError(err, func(*Error) { n++ })
		if n != 3 {
			t.Errorf("got %d errors, want 3: %v", n, err)
		}
	})
}

func TestMailboxes(t *testing.T) {
	noSecretEnv(t)
	c := mustLoad(t, "smtp:\n  address: smtp.be.ch:587\nmailboxes:\n  - name: be\n    superusers: [martina.graf@be.ch]\n    authserv_id: [mx1.be.ch, mx2.be.ch]\n  - name: ti\n    microsoft365: true\n  - name: demo\n    authentication: off\n")
	if len(c.Mailboxes) != 3 || c.Mailboxes[0].AuthservID[1] != "mx2.be.ch" || !c.Mailboxes[1].Microsoft365 || c.Mailboxes[1].Authentication != "on" || !c.Mailboxes[2].AuthenticationIsOff() {
		t.Fatalf("mailboxes %+v", c.Mailboxes)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "SENDER AUTHENTICATION IS OFF for mailbox demo") {
		t.Errorf("warnings %q, want one that says authentication is off for demo", c.Warnings)
	}
	if m, err := c.Mailbox("ti"); err != nil || m.Name != "ti" {
		t.Errorf("Mailbox(ti) = %v, %v", m, err)
	}
	if _, err := c.Mailbox(""); err == nil || !strings.Contains(err.Error(), "say which with --mailbox (be, ti, demo)") {
		t.Errorf("Mailbox(\"\") with three = %v, want the names to choose from", err)
	}
	if _, err := c.Mailbox("zh"); err == nil || !strings.Contains(err.Error(), `no mailbox "zh": the configured mailboxes are be, ti, demo`) {
		t.Errorf("Mailbox(zh) = %v", err)
	}
	one := mustLoad(t, "")
	if m, err := one.Mailbox(""); err != nil || m.Name != "be" {
		t.Errorf("the only mailbox: %v, %v", m, err)
	}
	t.Run("superusers at the top level", func(t *testing.T) {
		_, err := Load(withRequired("superusers: [martina.graf@be.ch]\n"))
		if err == nil || !strings.Contains(err.Error(), `line 1: key "superusers" has moved: each mailbox lists its own superusers now (mailboxes[].superusers`) {
			t.Errorf("error %v, want one that says where superusers went", err)
		}
	})
}

func TestDecodeErrors(t *testing.T) {
	noSecretEnv(t)
	for _, tc := range []struct {
		name string
		src  string
		line int
		want []string
	}{
		{"int", "pipeline:\n  workers: many\n", 2, []string{"line 2: pipeline.workers: ", "many"}},
		{"section is a scalar", "data_dir: /x\nnats: 5\n", 2, []string{"line 2: nats: ", "5"}},
		{"list where a string is", "log:\n  level: [info]\n", 2, []string{"line 2: log.level: "}},
		{"duration", "pipeline:\n  ack_wait: 60\n", 2, []string{"line 2: pipeline.ack_wait: ", `invalid duration "60"`}},
		{"duration in a list", "pipeline:\n  backoff:\n    - 1s\n    - 5 s\n", 4, []string{"line 4: pipeline.backoff[1]: ", `"5 s"`}},
		{"size", "nats:\n  max_store: 10 GB of disk\n", 2, []string{"line 2: nats.max_store: ", `invalid size "10 GB of disk"`}},
		{"size mapping", "pipeline:\n  max_mail_size: {a: 1}\n", 2, []string{"pipeline.max_mail_size", "want a size"}},
		{"syntax", "nats:\n  url: x\n listen: y\n", 2, []string{"line 2: invalid YAML"}}, // the line yaml.v3 reports
		{"top level list", "- a\n- b\n", 1, []string{"line 1: the configuration must be a mapping", "a list"}},
		{"two documents", "data_dir: /x\n---\ndata_dir: /y\n", 2, []string{"line 2: a second YAML document"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := withRequired(tc.src)
			if strings.HasPrefix(tc.src, "- ") {
				src = []byte(tc.src) // a list cannot take the required keys
			}
			_, err := Load(src)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nwant it to contain %q", err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), "config: ") {
				t.Errorf("error %q does not start with the package name", err)
			}
			if e := firstError(t, err); e.Line != tc.line {
				t.Errorf("Line = %d, want %d", e.Line, tc.line)
			}
		})
	}
}

func TestValidationErrors(t *testing.T) {
	noSecretEnv(t)
	for _, tc := range []struct {
		name string
		src  string
		env  string // EIAMTRIAGE_NATS_PASSWORD
		key  string
		want string
	}{
		{"data_dir empty", `data_dir: ""`, "", "data_dir", "is empty"},
		{"url scheme", "nats:\n  url: http://h:4222", "", "nats.url", `scheme "http" is not allowed: use nats://, tls://, ws:// or wss://`},
		{"url without host", "nats:\n  url: nats:///x", "", "nats.url", "has no host"},
		{"url not a URL", "nats:\n  url: \"nats://h:42x\"", "", "nats.url", "not a URL"},
		{"url list entry", "nats:\n  url: nats://a:4222, nats://b:4222,http://c", "", "nats.url[2]", `scheme "http"`},
		{"url list empty entry", "nats:\n  url: nats://a:4222,,nats://c", "", "nats.url[1]", "an empty URL"},
		{"url with password", "nats:\n  url: nats://u:hunter2@h:4222", "", "nats.url", "holds credentials: remove them from the URL"},
		{"replicas 2", "nats:\n  url: nats://h\n  replicas: 2", "", "nats.replicas", "2 is not allowed: use 1, or 3 or 5"},
		{"replicas 0", "nats:\n  url: nats://h\n  replicas: 0", "", "nats.replicas", "0 is not allowed"},
		{"replicas 7", "nats:\n  url: nats://h\n  replicas: 7", "", "nats.replicas", "7 is not allowed"},
		{"replicas embedded", "nats:\n  replicas: 3", "", "nats.replicas", "3 needs a cluster"},
		{"listen not host:port", "nats:\n  listen: localhost", "", "nats.listen", `"localhost" is not host:port`},
		{"listen bad port", "nats:\n  listen: localhost:nats", "", "nats.listen", `has port "nats"`},
		{"listen port too large", "nats:\n  listen: localhost:65536", "", "nats.listen", `has port "65536"`},
		{"max_memory zero", "nats:\n  max_memory: 0", "", "nats.max_memory", "0 is not allowed"},
		{"max_store zero", "nats:\n  max_store: 0B", "", "nats.max_store", "0 is not allowed"},
		{"user without password", "nats:\n  user: triage", "", "nats.user", `"triage" has no password: set nats.password_file or EIAMTRIAGE_NATS_PASSWORD`},
		{"password_file without user", "nats:\n  password_file: /run/secrets/p", "", "nats.password_file", "nats.user is empty"},
		{"password env without user", "nats:\n  url: nats://h", "hunter2", "nats.user", "EIAMTRIAGE_NATS_PASSWORD is set"},
		{"user and token", "nats:\n  user: u\n  password_file: /p\n  token_file: /t", "", "nats", "use one way to authenticate"},
		{"token and creds", "nats:\n  url: nats://h\n  creds_file: /c\n  token_file: /t", "", "nats", "use one way to authenticate"},
		{"creds embedded", "nats:\n  creds_file: /c", "", "nats.creds_file", "needs an external server"},
		{"http empty", "http:\n  listen: \"\"", "", "http.listen", `is empty: give host:port such as 127.0.0.1:9464, or "off"`},
		{"http bad", "http:\n  listen: 9464", "", "http.listen", `"9464" is not host:port`},
		{"log level", "log:\n  level: verbose", "", "log.level", `"verbose" is not a level: use debug, info, warn or error`},
		{"log level case", "log:\n  level: INFO", "", "log.level", `"INFO" is not a level`},
		{"log format", "log:\n  format: text", "", "log.format", `"text" is not a format: use auto, console or json`},
		{"max_deliver", "pipeline:\n  max_deliver: 0", "", "pipeline.max_deliver", "0 is not allowed"},
		{"backoff empty", "pipeline:\n  backoff: []", "", "pipeline.backoff", "is empty: list at least one delay"},
		{"backoff zero", "pipeline:\n  backoff: [1s, 0s]", "", "pipeline.backoff[1]", "0s is not allowed: a delay must be positive"},
		{"backoff negative", "pipeline:\n  backoff:\n    - -5s", "", "pipeline.backoff[0]", "-5s is not allowed"},
		{"ack_wait", "pipeline:\n  ack_wait: 0s", "", "pipeline.ack_wait", "0s is not allowed"},
		{"workers", "pipeline:\n  workers: -1", "", "pipeline.workers", "-1 is not allowed"},
		{"max_mail_size", "pipeline:\n  max_mail_size: 0", "", "pipeline.max_mail_size", "0 is not allowed"},
		{"wording senders", "wording:\n  trusted_senders: []", "", "wording", "trusted_senders is empty"},
		{"wording language incomplete", "wording:\n  languages:\n    - code: de\n      subjects: [x]", "", "wording", `language "de" has no`},
		{"open embedded server", "nats:\n  listen: 0.0.0.0:4222", "", "nats.listen", "reaches beyond this host"},
		{"token in the URL", "nats:\n  url: nats://s3cr3t@nats.example.org:4222", "", "nats.url", "holds credentials"},
		{"superuser without @", "mailboxes:\n  - name: be\n    authserv_id: mx.be.ch\n    superusers: [martina.graf]", "", "mailboxes[0].superusers[0]", `"martina.graf" is not an e-mail address`},
		{"superuser with a name", "mailboxes:\n  - name: be\n    authserv_id: mx.be.ch\n    superusers: [\"Martina <m@be.ch>\"]", "", "mailboxes[0].superusers[0]", `is not an e-mail address`},
		{"superuser not ASCII", "mailboxes:\n  - name: be\n    authserv_id: mx.be.ch\n    superusers: [sara.b\u0130anchi@ti.ch]", "", "mailboxes[0].superusers[0]", `"sara.b\u0130anchi@ti.ch" is not an e-mail address: write it as name@example.ch, in ASCII`},
		{"mailbox without name", "mailboxes:\n  - authserv_id: mx.be.ch", "", "mailboxes[0].name", "is empty: name the mailbox"},
		{"mailbox name upper case", "mailboxes:\n  - name: BE\n    authserv_id: mx.be.ch", "", "mailboxes[0].name", `"BE" is not allowed: use lower-case letters`},
		{"mailbox name twice", "mailboxes:\n  - name: be\n    authserv_id: mx.be.ch\n  - name: be\n    authserv_id: mx.be.ch", "", "mailboxes[1].name", `"be" is already the name of mailboxes[0]`},
		{"mailbox without authentication", "mailboxes:\n  - name: be", "", "mailboxes[0].authserv_id", "is empty: name the authserv-id"},
		{"mailbox authentication value", "mailboxes:\n  - name: be\n    authserv_id: mx.be.ch\n    authentication: maybe", "", "mailboxes[0].authentication", `"maybe" is not allowed: use on (the default) or off`},
		{"authserv-id with a space", "mailboxes:\n  - name: be\n    authserv_id: [\"mx be\"]", "", "mailboxes[0].authserv_id[0]", `"mx be" is not an authserv-id`},
		{"mailboxes empty", "mailboxes: []", "", "mailboxes", "is empty: list each canton's mailbox"},
		{"classify with @", "classify:\n  add_free_mail: [\"@example.org\"]", "", "classify.add_free_mail[0]", `"@example.org" is not a domain name`},
		{"classify no dot", "classify:\n  remove_free_mail: [gmail.com, localhost]", "", "classify.remove_free_mail[1]", `"localhost" is not a domain name`},
		{"escalation empty", "escalation:\n  to: []", "", "escalation.to", "is empty: give the address of federal support"},
		{"escalation not an address", "escalation:\n  to: [\"SpiGes <spiges@bfs.admin.ch>\"]", "", "escalation.to[0]", "is not an e-mail address"},
		{"schedule six fields", "summaries:\n  schedule: \"0 30 7 * * *\"", "", "summaries.schedule", "has 6 fields; write five"},
		{"schedule minute", "summaries:\n  schedule: \"75 7 * * *\"", "", "summaries.schedule", "75 is outside 0-59"},
		{"time zone", "summaries:\n  time_zone: Europe/Zürich", "", "summaries.time_zone", "is not a time zone"},
		{"cap zero", "actions:\n  caps:\n    escalation: 0", "", "actions.caps.escalation", "0 is not allowed"},
		{"templates missing", "actions:\n  templates: /nonexistent/templates", "", "actions.templates", "is not a directory"},
		{"portal not https", "actions:\n  portal_url: http://portal.example", "", "actions.portal_url", "https://"},
		{"actions backoff", "actions:\n  backoff: [0s]", "", "actions.backoff[0]", "0s is not allowed"},
		{"user_mail value", "mailboxes:\n  - name: be\n    authserv_id: mx.be.ch\n    user_mail: never", "", "mailboxes[0].user_mail", `"never" is not allowed: use send`},
		{"language value", "mailboxes:\n  - name: be\n    authserv_id: mx.be.ch\n    language: rm", "", "mailboxes[0].language", `"rm" is not allowed: use de, fr, it or en`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvNATSPassword, tc.env)
			_, err := Load(withRequired(tc.src + "\n"))
			if err == nil {
				t.Fatalf("Load succeeded, want an error on %s", tc.key)
			}
			e := findError(err, tc.key)
			if e == nil {
				t.Fatalf("no error on key %s in:\n%v", tc.key, err)
			}
			if !strings.Contains(e.Error(), tc.want) {
				t.Errorf("error %q\nwant it to contain %q", e, tc.want)
			}
			if e.Line == 0 {
				t.Errorf("error %q has no line", e)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q holds the secret", err)
			}
		})
	}
	t.Run("all problems reported", func(t *testing.T) {
		_, err := Load(withRequired("log:\n  level: loud\n  format: pretty\npipeline:\n  workers: 0\n"))
		for _, key := range []string{"log.level", "log.format", "pipeline.workers"} {
			if findError(err, key) == nil {
				t.Errorf("no error on %s in %v", key, err)
			}
		}
	})
	t.Run("Validate without a file has no line", func(t *testing.T) {
		c := withDefaults()
		c.NATS.Replicas = 3
		e := firstError(t, c.Validate())
		if e.Key != "nats.replicas" || e.Line != 0 {
			t.Errorf("got %+v", e)
		}
		if got, want := e.Error(), "config: nats.replicas: 3 needs a cluster"; !strings.HasPrefix(got, want) {
			t.Errorf("error %q, want it to start with %q", got, want)
		}
	})
	t.Run("valid cluster", func(t *testing.T) {
		c := mustLoad(t, "nats:\n  url: tls://a:4222,tls://b:4222,wss://c\n  replicas: 5\n  user: u\n  password_file: "+
			writeFile(t, t.TempDir(), "p", "pw\n", 0o600)+"\n")
		if want := []string{"tls://a:4222", "tls://b:4222", "wss://c"}; !reflect.DeepEqual(c.NATS.URLs(), want) {
			t.Errorf("URLs() = %q, want %q", c.NATS.URLs(), want)
		}
	})
	t.Run("http off", func(t *testing.T) {
		if c := mustLoad(t, "http:\n  listen: \"off\"\n"); c.HTTP.Enabled() {
			t.Error("http enabled")
		}
	})
}

func TestSecrets(t *testing.T) {
	const secret = "s3cret-Value"
	for _, tc := range []struct {
		name         string
		file         string // content of the secret file; "" for none
		mode         os.FileMode
		key          string // password_file or token_file
		envPassword  string
		envToken     string
		wantPassword string
		wantToken    string
		wantWarning  string
	}{
		{name: "password from file", file: secret + "\n", mode: 0o600, key: "password_file", wantPassword: secret},
		{name: "CRLF trimmed", file: secret + "\r\n", mode: 0o600, key: "password_file", wantPassword: secret},
		{name: "inner spaces kept", file: " a b \n", mode: 0o600, key: "password_file", wantPassword: " a b "},
		{name: "token from file", file: secret, mode: 0o400, key: "token_file", wantToken: secret},
		{name: "password from env", envPassword: secret, wantPassword: secret},
		{name: "token from env", envToken: secret, wantToken: secret},
		{name: "file wins over env", file: secret, mode: 0o600, key: "password_file", envPassword: "other",
			wantPassword: secret, wantWarning: "EIAMTRIAGE_NATS_PASSWORD is set and ignored"},
		{name: "world-readable file", file: secret, mode: 0o644, key: "token_file",
			wantToken: secret, wantWarning: "is readable by every user (mode 0644)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvNATSPassword, tc.envPassword)
			t.Setenv(EnvNATSToken, tc.envToken)
			src := "smtp:\n  address: smtp.be.ch:587\nnats:\n"
			if tc.wantPassword != "" {
				src += "  user: triage\n"
			}
			if tc.file != "" {
				src += fmt.Sprintf("  %s: %s\n", tc.key, writeFile(t, t.TempDir(), "secret", tc.file, tc.mode))
			}
			c := mustLoad(t, src)
			if c.NATS.Password != tc.wantPassword || c.NATS.Token != tc.wantToken {
				t.Errorf("password %q token %q, want %q %q", c.NATS.Password, c.NATS.Token, tc.wantPassword, tc.wantToken)
			}
			warnings := strings.Join(c.Warnings, "\n")
			if tc.wantWarning == "" && warnings != "" || !strings.Contains(warnings, tc.wantWarning) {
				t.Errorf("warnings %q, want %q", c.Warnings, tc.wantWarning)
			}
			if strings.Contains(warnings, secret) {
				t.Errorf("warnings %q hold the secret", warnings)
			}
			for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
				if s := fmt.Sprintf(verb, *c); strings.Contains(s, secret) {
					t.Errorf("Sprintf(%q, config) shows the secret: %s", verb, s)
				}
			}
			if s := fmt.Sprint(c.NATS); !strings.Contains(s, redacted) {
				t.Errorf("NATS prints as %s, want %s in it", s, redacted)
			}
			out, err := c.Redacted()
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(out), secret) {
				t.Errorf("Redacted() shows the secret:\n%s", out)
			}
		})
	}

	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		src  string
		env  string // set to the secret, and ignored for the file
		key  string
		want string
	}{
		{"missing password file", "nats:\n  user: u\n  password_file: " + filepath.Join(dir, "nope") + "\n", EnvNATSPassword,
			"nats.password_file", "cannot read " + filepath.Join(dir, "nope") + ": no such file or directory"},
		{"empty token file", "nats:\n  token_file: " + writeFile(t, dir, "empty", "\n", 0o600) + "\n", EnvNATSToken,
			"nats.token_file", filepath.Join(dir, "empty") + " is empty"},
		{"directory", "nats:\n  token_file: " + dir + "\n", EnvNATSToken,
			"nats.token_file", dir + " is a directory"},
		{"missing creds file", "nats:\n  url: nats://h\n  creds_file: " + filepath.Join(dir, "c.creds") + "\n", "",
			"nats.creds_file", "cannot use " + filepath.Join(dir, "c.creds")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			noSecretEnv(t)
			if tc.env != "" {
				// The secret in the environment must not leak into the error.
				t.Setenv(tc.env, secret)
			}
			_, err := Load(withRequired(tc.src))
			if err == nil {
				t.Fatal("Load succeeded")
			}
			e := findError(err, tc.key)
			if e == nil {
				t.Fatalf("no error on %s in %v", tc.key, err)
			}
			if !strings.Contains(e.Error(), tc.want) {
				t.Errorf("error %q\nwant it to contain %q", e, tc.want)
			}
			if e.Line == 0 {
				t.Errorf("error %q has no line", e)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q holds the secret", err)
			}
		})
	}

	t.Run("relative files against the config's directory", func(t *testing.T) {
		noSecretEnv(t)
		dir := t.TempDir()
		writeFile(t, dir, "nats.pw", secret+"\n", 0o600)
		cfg := writeFile(t, dir, "eiamtriage.yaml", string(withRequired("nats:\n  user: u\n  password_file: nats.pw\n")), 0o600)
		c, err := LoadFile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if c.NATS.PasswordFile != filepath.Join(dir, "nats.pw") || c.NATS.Password != secret {
			t.Errorf("password_file %q password ok %v", c.NATS.PasswordFile, c.NATS.Password == secret)
		}
	})
}

func TestRedacted(t *testing.T) {
	const secret = "s3cret-Value"
	t.Setenv(EnvNATSPassword, secret)
	t.Setenv(EnvNATSToken, "")
	t.Setenv(EnvSMTPPassword, "")
	c := mustLoad(t, "nats:\n  url: nats://a:4222\n  user: triage\n  listen: 127.0.0.1:4223\npipeline:\n  backoff: [90s, 1h30m]\nclassify:\n  add_free_mail: [example.org]\n")
	out, err := c.Redacted()
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, want := range []string{
		"# nats password: <redacted> (from EIAMTRIAGE_NATS_PASSWORD)",
		"# nats token: not set",
		"# warning: nats.listen is ignored",
		"user: triage",
		"- 1m30s",
		"- 1h30m",
		"max_store: 10GiB",
		"- example.org",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("Redacted() lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, secret) {
		t.Errorf("Redacted() shows the secret:\n%s", s)
	}
	back := mustLoad(t, s)
	back.Warnings, c.Warnings = nil, nil
	if !reflect.DeepEqual(back, c) {
		t.Errorf("Load(Redacted()) =\n%+v\nwant\n%+v", back, c)
	}
}

func TestWarnings(t *testing.T) {
	noSecretEnv(t)
	for _, tc := range []struct{ name, src, want string }{
		{"listen with url", "nats:\n  url: nats://h\n  listen: :4222\n", "nats.listen is ignored: nats.url names an external server"},
		{"max_store with url", "nats:\n  url: nats://h\n  max_store: 1GiB\n", "nats.max_store is ignored"},
		{"added and removed", "classify:\n  add_free_mail: [example.org]\n  remove_free_mail: [Example.org]\n", `"Example.org" is in both add_free_mail and remove_free_mail`},
		{"no relay", "nats:\n  url: nats://h\n", "smtp.address is empty: no mail goes out"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustLoad(t, tc.src)
			if got := strings.Join(c.Warnings, "\n"); !strings.Contains(got, tc.want) {
				t.Errorf("warnings %q, want %q", c.Warnings, tc.want)
			}
		})
	}
	t.Run("none by default", func(t *testing.T) {
		if c := mustLoad(t, "nats:\n  url: nats://h\nsmtp:\n  address: smtp.be.ch:587\n"); c.Warnings != nil {
			t.Errorf("warnings %q", c.Warnings)
		}
		if c := mustLoad(t, "nats:\n  url: nats://h\nactions:\n  dry_run: true\n"); c.Warnings != nil {
			t.Errorf("dry run without a relay: warnings %q, want none (nothing is to be sent)", c.Warnings)
		}
	})
}

func TestDuration(t *testing.T) {
	noSecretEnv(t)
	for _, tc := range []struct {
		in   string
		want time.Duration
		str  string
	}{
		{"90s", 90 * time.Second, "1m30s"},
		{"2m", 2 * time.Minute, "2m"},
		{"1h", time.Hour, "1h"},
		{"1h30m", 90 * time.Minute, "1h30m"},
		{"1h0m5s", time.Hour + 5*time.Second, "1h0m5s"},
		{"500ms", 500 * time.Millisecond, "500ms"},
		{"\"45s\"", 45 * time.Second, "45s"},
	} {
		t.Run("good "+tc.in, func(t *testing.T) {
			c := mustLoad(t, "pipeline:\n  ack_wait: "+tc.in+"\n")
			if got := time.Duration(c.Pipeline.AckWait); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			if got := c.Pipeline.AckWait.String(); got != tc.str {
				t.Errorf("String() = %q, want %q", got, tc.str)
			}
		})
	}
	for _, in := range []string{"60", "5x", "1 minute", "s", "true", "[1s]", "{a: 1}"} {
		t.Run("bad "+in, func(t *testing.T) {
			_, err := Load(withRequired("pipeline:\n  ack_wait: " + in + "\n"))
			if err == nil {
				t.Fatal("Load succeeded")
			}
			e := firstError(t, err)
			if e.Line != 2 || e.Key != "pipeline.ack_wait" {
				t.Errorf("error %q: line %d key %q, want line 2 key pipeline.ack_wait", err, e.Line, e.Key)
			}
			if !strings.HasPrefix(in, "[") && !strings.HasPrefix(in, "{") && !strings.Contains(err.Error(), fmt.Sprintf("%q", in)) {
				t.Errorf("error %q does not name the value %q", err, in)
			}
		})
	}
}

func TestByteSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ByteSize
	}{
		{"1024", 1024},
		{"0", 0},
		{"512B", 512},
		{"25MiB", 25 << 20},
		{"25mib", 25 << 20},
		{"10GB", 10e9},
		{"10 GiB", 10 << 30},
		{"1.5GiB", 3 << 29},
		{"2kB", 2000},
		{"4KiB", 4096},
		{"1TiB", 1 << 40},
		{"8000000TiB", 8000000 << 40},
	} {
		t.Run("good "+tc.in, func(t *testing.T) {
			got, err := ParseByteSize(tc.in)
			if err != nil || got != tc.want {
				t.Errorf("ParseByteSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
			}
		})
	}
	for _, tc := range []struct{ in, want string }{
		{"", "want a whole number"},
		{"-1", "want a whole number"},
		{"MiB", "want a whole number"},
		{"10XB", `unknown unit "XB"`},
		{"10M", `unknown unit "M"`},
		{"1.5B", "not a whole number of bytes"},
		{"0.1KiB", "not a whole number of bytes"},
		{"9000000TiB", "too large"},
		{"1e6", "want a whole number"},
		{"1,000", "want a whole number"},
	} {
		t.Run("bad "+tc.in, func(t *testing.T) {
			_, err := ParseByteSize(tc.in)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("%q", tc.in)) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want the value %q and %q", err, tc.in, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		in   ByteSize
		want string
	}{
		{0, "0"}, {1, "1"}, {1000, "1kB"}, {1024, "1KiB"}, {25 << 20, "25MiB"},
		{10 << 30, "10GiB"}, {10e9, "10GB"}, {1000001, "1000001"}, {-5, "-5"},
	} {
		t.Run(fmt.Sprintf("String %d", tc.in), func(t *testing.T) {
			if got := tc.in.String(); got != tc.want {
				t.Errorf("String() = %q, want %q", got, tc.want)
			}
			if back, err := ParseByteSize(tc.want); tc.in >= 0 && (err != nil || back != tc.in) {
				t.Errorf("ParseByteSize(%q) = %d, %v", tc.want, back, err)
			}
		})
	}
	t.Run("YAML error names line, key and value", func(t *testing.T) {
		noSecretEnv(t)
		_, err := Load(withRequired("pipeline:\n  workers: 2\n  max_mail_size: 25 megabytes\n"))
		want := `config: line 3: pipeline.max_mail_size: invalid size "25 megabytes"`
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("error %v, want %q", err, want)
		}
	})
}

func TestDataDir(t *testing.T) {
	noSecretEnv(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		name    string
		dataDir string
		file    bool // LoadFile rather than Load
		want    string
	}{
		{"LoadFile relative", "state", true, filepath.Join(dir, "state")},
		{"LoadFile dot", "./state/../data", true, filepath.Join(dir, "data")},
		{"LoadFile absolute", "/srv/eiamtriage", true, "/srv/eiamtriage"},
		{"Load relative kept", "state", false, "state"},
		{"Load absolute", "/srv/eiamtriage", false, "/srv/eiamtriage"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "data_dir: " + tc.dataDir + "\n"
			var c *Config
			var err error
			if tc.file {
				c, err = LoadFile(writeFile(t, dir, "eiamtriage.yaml", string(withRequired(src)), 0o644))
			} else {
				c, err = Load(withRequired(src))
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.DataDir != tc.want {
				t.Errorf("data_dir = %q, want %q", c.DataDir, tc.want)
			}
		})
	}
	t.Run("relative config path", func(t *testing.T) {
		writeFile(t, dir, "rel.yaml", string(withRequired("data_dir: state\n")), 0o644)
		t.Chdir(dir)
		c, err := LoadFile("rel.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if want := filepath.Join(dir, "state"); c.DataDir != want {
			t.Errorf("data_dir = %q, want %q", c.DataDir, want)
		}
	})
}

func TestLoadFileErrorsNameThePath(t *testing.T) {
	noSecretEnv(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		name, path, want string
	}{
		{"missing", filepath.Join(dir, "missing.yaml"), "config: open " + filepath.Join(dir, "missing.yaml") + ": no such file or directory"},
		{"unknown key", writeFile(t, dir, "a.yaml", "nats:\n  listn: x\n", 0o644), "config: " + filepath.Join(dir, "a.yaml") + `: line 2: unknown key "listn" in nats`},
		{"invalid", writeFile(t, dir, "b.yaml", string(withRequired("\nlog:\n  level: loud\n")), 0o644), "config: " + filepath.Join(dir, "b.yaml") + `: line 3: log.level: "loud" is not a level`},
		{"syntax", writeFile(t, dir, "c.yaml", "log: [\n", 0o644), "config: " + filepath.Join(dir, "c.yaml") + ": line 1: invalid YAML"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadFile(tc.path)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error %v\nwant it to start with %q", err, tc.want)
			}
		})
	}
}

func TestWording(t *testing.T) {
	noSecretEnv(t)
	def := DefaultWording()
	t.Run("one key replaced, the others kept", func(t *testing.T) {
		c := mustLoad(t, "wording:\n  trusted_senders: [noreply@eiam.example.ch]\n")
		want := DefaultWording()
		want.TrustedSenders = []string{"noreply@eiam.example.ch"}
		if !reflect.DeepEqual(c.Wording, want) {
			t.Errorf("wording = %+v\nwant %+v", c.Wording, want)
		}
	})
	t.Run("nested key replaced, its siblings kept", func(t *testing.T) {
		c := mustLoad(t, "wording:\n  forward:\n    markers: [Begin forwarded message]\n")
		if got := c.Wording.Forward.Markers; !reflect.DeepEqual(got, []string{"Begin forwarded message"}) {
			t.Errorf("markers = %q", got)
		}
		if !reflect.DeepEqual(c.Wording.Forward.FromLabels, def.Forward.FromLabels) || !reflect.DeepEqual(c.Wording.Languages, def.Languages) {
			t.Error("the other wording keys lost their defaults")
		}
	})
	t.Run("languages replaced as a whole", func(t *testing.T) {
		c := mustLoad(t, `wording:
  languages:
    - code: rm
      subjects: ["eIAM: Datas d'utilisader divergentas"]
      given_name: [Prenum]
      family_name: [Num]
      email: [E-mail]
      expected_heading: [Registrà en il portal eIAM]
      actual_heading: [Utilisader annunzià]
`)
		if len(c.Wording.Languages) != 1 || c.Wording.Languages[0].Code != "rm" {
			t.Errorf("languages = %+v, want rm alone", c.Wording.Languages)
		}
		if !reflect.DeepEqual(c.Wording.TrustedSenders, def.TrustedSenders) {
			t.Error("trusted_senders lost its default")
		}
	})
}

// TestDefaultsAgreeWithPipeline: the configuration's pipeline defaults are
// the ones pipeline.Run applies to a stage run without a configuration.
func TestDefaultsAgreeWithPipeline(t *testing.T) {
	d := Default().Pipeline
	if d.MaxDeliver != pipeline.DefaultMaxDeliver || time.Duration(d.AckWait) != pipeline.DefaultAckWait ||
		d.Workers != pipeline.DefaultWorkers || !slices.Equal(d.Delays(), pipeline.DefaultBackoff) {
		t.Errorf("config pipeline defaults %+v differ from package pipeline's", d)
	}
}

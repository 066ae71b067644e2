package config

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"strings"

	"go.yaml.in/yaml/v3"
)

const redacted = "<redacted>"

// secretsFromEnv takes the password and token from the environment when
// no file names them. An empty variable counts as unset.
func (n *NATS) secretsFromEnv() (warnings []string) {
	for _, s := range []struct {
		file, env string
		fileKey   string
		dst       *string
	}{
		{n.PasswordFile, EnvNATSPassword, "nats.password_file", &n.Password},
		{n.TokenFile, EnvNATSToken, "nats.token_file", &n.Token},
	} {
		v := os.Getenv(s.env)
		switch {
		case v == "":
		case s.file != "":
			warnings = append(warnings, fmt.Sprintf("%s is set and ignored: %s is given", s.env, s.fileKey))
		default:
			*s.dst = v
		}
	}
	return warnings
}

// secretsFromFiles reads password_file and token_file and checks that
// creds_file is there. Errors name the file, never its content.
func (n *NATS) secretsFromFiles() (warnings []string, err error) {
	var p problems
	for _, s := range []struct {
		key, path string
		dst       *string
	}{
		{"nats.password_file", n.PasswordFile, &n.Password},
		{"nats.token_file", n.TokenFile, &n.Token},
	} {
		if s.path == "" {
			continue
		}
		w, err := readSecret(s.key, s.path, s.dst)
		if w != "" {
			warnings = append(warnings, w)
		}
		p.addErr(err)
	}
	if n.CredsFile != "" {
		fi, err := os.Stat(n.CredsFile)
		switch {
		case err != nil:
			p = append(p, &Error{Key: "nats.creds_file", Msg: fmt.Sprintf("cannot use %s: %v", n.CredsFile, unwrapPath(err)), Err: err})
		case fi.IsDir():
			p.add("nats.creds_file", "%s is a directory, not a credentials file", n.CredsFile)
		default:
			if w := worldReadable("nats.creds_file", n.CredsFile, fi); w != "" {
				warnings = append(warnings, w)
			}
		}
	}
	return warnings, p.err()
}

// readSecret reads the secret in path into dst, without its trailing
// newline.
func readSecret(key, path string, dst *string) (warning string, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", &Error{Key: key, Msg: fmt.Sprintf("cannot read %s: %v", path, unwrapPath(err)), Err: err}
	}
	if fi.IsDir() {
		return "", &Error{Key: key, Msg: fmt.Sprintf("%s is a directory, not a file holding the secret", path)}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", &Error{Key: key, Msg: fmt.Sprintf("cannot read %s: %v", path, unwrapPath(err)), Err: err}
	}
	v := strings.TrimRight(string(data), "\r\n")
	if v == "" {
		return "", &Error{Key: key, Msg: fmt.Sprintf("%s is empty", path)}
	}
	*dst = v
	return worldReadable(key, path, fi), nil
}

// worldReadable warns of a secret file that every user may read.
func worldReadable(key, path string, fi fs.FileInfo) string {
	if runtime.GOOS == "windows" || fi.Mode().Perm()&0o004 == 0 {
		return ""
	}
	return fmt.Sprintf("%s %s is readable by every user (mode %04o): make it readable by the daemon's user only (chmod 600)", key, path, fi.Mode().Perm())
}

// unwrapPath drops the path from an *fs.PathError, which the message
// names already.
func unwrapPath(err error) error {
	if pe, ok := err.(*fs.PathError); ok {
		return pe.Err
	}
	return err
}

// String prints n with its secrets as "<redacted>", so that %v and %+v
// of a Config never show them.
func (n NATS) String() string {
	type plain NATS // without the methods, against recursion
	return fmt.Sprintf("%+v", plain(n.redacted()))
}

// GoString is String for %#v.
func (n NATS) GoString() string {
	type plain NATS
	return fmt.Sprintf("%#v", plain(n.redacted()))
}

func (n NATS) redacted() NATS {
	if n.Password != "" {
		n.Password = redacted
	}
	if n.Token != "" {
		n.Token = redacted
	}
	return n
}

// Redacted returns the effective configuration as YAML, for "eiamtriage
// config check": every key with its value, defaults included (but for
// the classify lists, omitted when empty), in a form Load reads back. Secrets are never in it: the password and token have
// no key of their own; a comment at the top says whether each is set and
// where it comes from. The Warnings follow as comments.
func (c *Config) Redacted() ([]byte, error) {
	var root yaml.Node
	if err := root.Encode(c); err != nil {
		return nil, fmt.Errorf("config: encoding the effective configuration: %w", err)
	}
	comment := []string{
		"Effective configuration (defaults included).",
		"nats password: " + secretSource(c.NATS.Password, c.NATS.PasswordFile, EnvNATSPassword),
		"nats token: " + secretSource(c.NATS.Token, c.NATS.TokenFile, EnvNATSToken),
		"smtp password: " + secretSource(c.SMTP.Password, c.SMTP.PasswordFile, EnvSMTPPassword),
	}
	for _, m := range c.Mailboxes {
		switch {
		case !m.Watched():
		case m.OAuth2.Enabled():
			comment = append(comment, fmt.Sprintf("mailbox %s imap login: oauth2 %s token", m.Name, m.OAuth2.Mechanism))
		default:
			comment = append(comment, fmt.Sprintf("mailbox %s imap password: %s", m.Name, secretSource(m.Password, m.PasswordFile, EnvIMAPPassword(m.Name))))
		}
	}
	for _, w := range c.Warnings {
		comment = append(comment, "warning: "+w)
	}
	if len(root.Content) > 0 {
		root.Content[0].HeadComment = strings.Join(comment, "\n")
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&root); err != nil {
		return nil, fmt.Errorf("config: encoding the effective configuration: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("config: encoding the effective configuration: %w", err)
	}
	return b.Bytes(), nil
}

func secretSource(value, file, env string) string {
	switch {
	case value == "":
		return "not set"
	case file != "":
		return redacted + " (from " + file + ")"
	default:
		return redacted + " (from " + env + ")"
	}
}

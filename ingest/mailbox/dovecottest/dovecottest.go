// Package dovecottest runs a Dovecot IMAP server (Debian's dovecot-imapd
// 2.3) on a free loopback port with its configuration, state and one
// user's Maildir in a directory of its own, for the integration tests and
// the benchmark of the mailbox watcher. It needs root (Dovecot's master
// process) and creates the system user vmail when it is missing.
//
// Tests call Start: with CI=true a missing Dovecot fails the test, without
// CI it skips it.
package dovecottest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// The user every server has.
const (
	User     = "triage"
	Password = "dovecot-test-secret"
)

// Server is a running Dovecot.
type Server struct {
	Dir  string // configuration, state, log and mail
	Addr string // 127.0.0.1:port, plain IMAP (no TLS)
	conf string
}

// Find returns the path of the dovecot binary, or an error saying how to
// install it.
func Find() (string, error) {
	if p, err := exec.LookPath("dovecot"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/dovecot"); err == nil {
		return "/usr/sbin/dovecot", nil
	}
	return "", errors.New("dovecottest: dovecot is not installed: apt-get install dovecot-imapd (Debian)")
}

// Start runs a Dovecot for the test and stops it at cleanup, printing its
// log when the test failed. Without Dovecot the test fails when CI is set
// (CI=true) and is skipped otherwise.
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := Find(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%v; CI must install it (.ci/run does)", err)
		}
		t.Skipf("%v (the test fails instead when CI is set)", err)
	}
	dir, err := os.MkdirTemp("", "eiamtriage-dovecot-")
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(dir)
	if err != nil {
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			if log, err := os.ReadFile(filepath.Join(dir, "dovecot.log")); err == nil {
				t.Logf("dovecot log:\n%s", log)
			}
		}
		if err := s.Stop(); err != nil {
			t.Errorf("%v", err)
		}
		os.RemoveAll(dir)
	})
	return s
}

// New configures and starts a Dovecot in dir (which it makes readable by
// the mail user) on a free loopback port. The caller stops it with Stop.
func New(dir string) (*Server, error) {
	if _, err := Find(); err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("dovecottest: Dovecot's master process needs root")
	}
	if _, err := user.Lookup("vmail"); err != nil {
		if out, err := exec.Command("useradd", "-r", "-M", "-s", "/usr/sbin/nologin", "vmail").CombinedOutput(); err != nil {
			return nil, fmt.Errorf("dovecottest: useradd -r vmail: %v: %s", err, out)
		}
	}
	vmail, err := user.Lookup("vmail")
	if err != nil {
		return nil, fmt.Errorf("dovecottest: user vmail: %w", err)
	}
	uid, _ := strconv.Atoi(vmail.Uid)
	gid, _ := strconv.Atoi(vmail.Gid)
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{dir, filepath.Join(dir, "base"), filepath.Join(dir, "state"), filepath.Join(dir, "home")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
		if err := os.Chmod(d, 0o755); err != nil {
			return nil, err
		}
	}
	if err := os.Chown(filepath.Join(dir, "home"), uid, gid); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s := &Server{Dir: dir, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), conf: filepath.Join(dir, "dovecot.conf")}
	conf := fmt.Sprintf(`# dovecottest: a Dovecot for tests, on loopback only.
protocols = imap
listen = 127.0.0.1
base_dir = %[1]s/base
state_dir = %[1]s/state
log_path = %[1]s/dovecot.log
info_log_path = %[1]s/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
passdb {
  driver = passwd-file
  args = %[1]s/users
}
userdb {
  driver = static
  args = uid=vmail gid=vmail home=%[1]s/home/%%u
}
mail_location = maildir:~/Maildir
namespace inbox {
  inbox = yes
  separator = /
}
service imap-login {
  chroot =
  inet_listener imap {
    address = 127.0.0.1
    port = %[2]d
  }
  inet_listener imaps {
    port = 0
  }
}
service pop3-login {
  inet_listener pop3 {
    port = 0
  }
}
mail_max_userip_connections = 50
`, dir, port)
	if err := os.WriteFile(s.conf, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "users"), []byte(User+":{PLAIN}"+Password+"::::::\n"), 0o644); err != nil {
		return nil, err
	}
	if err := s.Restart(); err != nil {
		_ = s.Stop() // it may run, unusable
		return nil, err
	}
	return s, nil
}

// Restart starts the server again after Stop, on the same port and mail.
func (s *Server) Restart() error {
	bin, err := Find()
	if err != nil {
		return err
	}
	// dovecot daemonises, and its children keep its standard output and
	// error: a file, not a pipe, which would never be closed.
	outPath := filepath.Join(s.Dir, "start.out")
	out, err := os.Create(outPath)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, "-c", s.conf)
	cmd.Stdout, cmd.Stderr = out, out
	err = cmd.Run()
	out.Close()
	if err != nil {
		msg, _ := os.ReadFile(outPath)
		return fmt.Errorf("dovecottest: %s -c %s: %v: %s%s", bin, s.conf, err, msg, s.logTail())
	}
	// Listening is not enough: its auth process answers "[UNAVAILABLE]
	// Temporary authentication failure" for a moment. Ready is a login.
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := s.Dial()
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("dovecottest: no login to Dovecot on %s within 15s: %v%s", s.Addr, err, s.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop stops the server and waits until its port is free. The user's
// connections are cut at once (doveadm kick), as a crash or a restart
// would; doveadm stop alone lets them run on for seconds.
func (s *Server) Stop() error {
	_, _ = s.doveadm("kick", User)
	if out, err := s.doveadm("stop"); err != nil {
		if _, serr := os.Stat(filepath.Join(s.Dir, "base", "master.pid")); serr != nil {
			return nil // not running
		}
		return fmt.Errorf("dovecottest: doveadm stop: %v: %s", err, out)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr, 200*time.Millisecond)
		if err != nil {
			return nil
		}
		c.Close()
		if time.Now().After(deadline) {
			return fmt.Errorf("dovecottest: Dovecot still listens on %s 15s after doveadm stop", s.Addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill ends the server at once, as a crash would: SIGKILL to its master
// process and every process of its group (the imap sessions among them).
// Restart starts it again.
func (s *Server) Kill() error {
	data, err := os.ReadFile(filepath.Join(s.Dir, "base", "master.pid"))
	if err != nil {
		return fmt.Errorf("dovecottest: kill: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 1 {
		return fmt.Errorf("dovecottest: kill: master.pid holds %q", data)
	}
	pgid, err := syscall.Getpgid(pid)
	if err != nil {
		return fmt.Errorf("dovecottest: kill: process group of %d: %w", pid, err)
	}
	if pgid != pid {
		return fmt.Errorf("dovecottest: kill: the master %d does not lead its process group (%d)", pid, pgid)
	}
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("dovecottest: kill: %w", err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for syscall.Kill(pid, 0) == nil || isListening(s.Addr) {
		if time.Now().After(deadline) {
			return fmt.Errorf("dovecottest: Dovecot %d still there 15s after SIGKILL", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

func isListening(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func (s *Server) doveadm(args ...string) ([]byte, error) {
	return exec.Command("doveadm", append([]string{"-c", s.conf}, args...)...).CombinedOutput()
}

func (s *Server) logTail() string {
	b, err := os.ReadFile(filepath.Join(s.Dir, "dovecot.log"))
	if err != nil || len(b) == 0 {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return "\ndovecot log:\n" + string(b)
}

// SetUIDValidity gives folder a new UIDVALIDITY (doveadm mailbox update),
// as a server does when it rebuilds a folder's index.
func (s *Server) SetUIDValidity(folder string, v uint32) error {
	if out, err := s.doveadm("mailbox", "update", "-u", User, "--uid-validity", strconv.FormatUint(uint64(v), 10), folder); err != nil {
		return fmt.Errorf("dovecottest: doveadm mailbox update --uid-validity: %v: %s", err, out)
	}
	return nil
}

// Dial logs in as the user.
func (s *Server) Dial() (*imapclient.Client, error) {
	c, err := imapclient.DialInsecure(s.Addr, nil)
	if err != nil {
		return nil, err
	}
	if err := c.Login(User, Password).Wait(); err != nil {
		c.Close()
		return nil, fmt.Errorf("dovecottest: login: %w", err)
	}
	return c, nil
}

// Client logs in as the user; the connection is closed at cleanup.
func (s *Server) Client(t testing.TB) *imapclient.Client {
	t.Helper()
	c, err := s.Dial()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Append puts raw into folder (creating the folder when it is missing)
// over IMAP and returns its UID.
func Append(c *imapclient.Client, folder string, raw []byte) (uint32, error) {
	cmd := c.Append(folder, int64(len(raw)), nil)
	if _, err := cmd.Write(raw); err != nil {
		return 0, err
	}
	if err := cmd.Close(); err != nil {
		return 0, err
	}
	data, err := cmd.Wait()
	var ie *imap.Error
	if errors.As(err, &ie) && ie.Code == imap.ResponseCodeTryCreate {
		if err := c.Create(folder, nil).Wait(); err != nil {
			return 0, err
		}
		return Append(c, folder, raw)
	}
	if err != nil {
		return 0, err
	}
	return uint32(data.UID), nil
}

// FillMaildir writes mails straight into the user's INBOX (Maildir new/),
// which is far faster than APPEND for many; Dovecot gives them UIDs in
// this order when the folder is next opened.
func (s *Server) FillMaildir(mails [][]byte) error {
	vmail, err := user.Lookup("vmail")
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(vmail.Uid)
	gid, _ := strconv.Atoi(vmail.Gid)
	md := filepath.Join(s.Dir, "home", User, "Maildir")
	for _, d := range []string{md, filepath.Join(md, "new"), filepath.Join(md, "cur"), filepath.Join(md, "tmp")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	base := time.Now().Unix()
	for i, m := range mails {
		// Maildir names sort by time, then by the sequence in the name.
		name := fmt.Sprintf("%d.M%06dP1.dovecottest", base, i)
		if err := os.WriteFile(filepath.Join(md, "new", name), bytes.ReplaceAll(m, []byte("\r\n"), []byte("\n")), 0o600); err != nil {
			return err
		}
	}
	return filepath.Walk(filepath.Join(s.Dir, "home", User), func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

// String names the server for messages.
func (s *Server) String() string {
	return "dovecot at " + s.Addr + " (" + strings.TrimSuffix(s.conf, "/dovecot.conf") + ")"
}

package broker

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// The files the embedded server keeps in its state directory
// (Options.StateDir, the configuration's data_dir).
const (
	// LockFile is locked (flock) by the process that runs the embedded
	// server and holds its PID. The kernel releases the lock when the
	// process ends, however it ends: a killed server leaves no stale lock.
	LockFile = "eiamtriage.lock"
	// ClientURLFile holds the client URL the embedded server listens on,
	// written once it accepts connections and removed when it stops: with
	// a listen port of 0 it is how the other commands find the port.
	ClientURLFile = "nats-client-url"
)

// ErrStoreInUse is returned by Open when another process runs an embedded
// server on the same state directory.
var ErrStoreInUse = errors.New("broker: the data directory is in use by another eiamtriage serve")

// lockStateDir takes the lock of dir (creating dir and the lock file when
// they do not exist) and writes this process's PID into it. The lock lasts
// until the returned file is closed or the process ends.
func lockStateDir(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("broker: create the data directory %s: %w", dir, err)
	}
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("broker: open the lock file %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, inUseError(dir, path)
		}
		return nil, fmt.Errorf("broker: lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("broker: write the PID into the lock file %s: %w", path, err)
	}
	return f, nil
}

// inUseError names the process that holds the lock of dir, as far as the
// lock file tells.
func inUseError(dir, path string) error {
	holder := "a process whose PID the lock file does not hold yet"
	find := "fuser -v " + path
	if b, err := os.ReadFile(path); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
			holder = "PID " + strconv.Itoa(pid)
			find = fmt.Sprintf("ps -fp %d, or fuser -v %s", pid, path)
		}
	}
	return fmt.Errorf("%w: %s is locked by %s (see: %s); two servers on one JetStream store corrupt it: "+
		"stop that one, or give this one its own data_dir", ErrStoreInUse, dir, holder, find)
}

// writeClientURL records the embedded server's client URL in dir,
// replacing the file atomically so a reader never sees half of it.
func writeClientURL(dir, url string) error {
	path := filepath.Join(dir, ClientURLFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(url+"\n"), 0o644); err != nil {
		return fmt.Errorf("broker: record the client URL in %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("broker: record the client URL in %s: %w", path, err)
	}
	return nil
}

// readClientURL returns the client URL an embedded server recorded in dir.
func readClientURL(dir string) (string, error) {
	path := filepath.Join(dir, ClientURLFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%s does not exist: no `eiamtriage serve` with this data_dir is running (it writes the file once it listens)", path)
	}
	if err != nil {
		return "", err
	}
	u := strings.TrimSpace(string(b))
	if !strings.HasPrefix(u, "nats://") && !strings.HasPrefix(u, "tls://") {
		return "", fmt.Errorf("%s holds %q, not a nats:// URL", path, u)
	}
	return u, nil
}

// Package deploy_test checks what can be checked here of the files that
// operators run eiamtriage with: every YAML file parses, every
// configuration in them passes `eiamtriage config check`, and the systemd
// unit passes `systemd-analyze verify`.
package deploy_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// buildBinary builds eiamtriage into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "eiamtriage")
	cmd := exec.Command("go", "build", "-o", bin, "../cmd/eiamtriage")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// yamlFiles lists every YAML file under deploy/.
func yamlFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(".", func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			files = append(files, p)
		}
		return err
	})
	if err != nil || len(files) == 0 {
		t.Fatalf("no YAML files under deploy/ (%v)", err)
	}
	return files
}

// configs returns the eiamtriage configurations a YAML file holds: the file
// itself when it is one, and the eiamtriage.yaml of each ConfigMap in it.
func configs(t *testing.T, path string) map[string][]byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	for i := 0; ; i++ {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: document %d does not parse: %v", path, i, err)
		}
		if _, ok := doc["mailboxes"]; ok && i == 0 {
			out[path] = raw
		}
		if doc["kind"] == "ConfigMap" {
			data, _ := doc["data"].(map[string]any)
			if c, ok := data["eiamtriage.yaml"].(string); ok {
				out[path+" (ConfigMap eiamtriage.yaml)"] = []byte(c)
			}
		}
	}
	return out
}

// TestYAMLAndConfigurations: every YAML file parses, and every
// configuration among them passes `config check`.
func TestYAMLAndConfigurations(t *testing.T) {
	bin := buildBinary(t)
	checked := 0
	for _, f := range yamlFiles(t) {
		for name, cfg := range configs(t, f) {
			t.Run(name, func(t *testing.T) {
				dir := t.TempDir()
				p := filepath.Join(dir, "eiamtriage.yaml")
				cmd := exec.Command(bin, "config", "check", p)
				if strings.Contains(name, "ConfigMap") {
					// What the Deployment hands over: the passwords in
					// the environment, the other secrets as files on
					// the secret volume (here a temporary directory).
					cmd.Env = append(os.Environ(), "EIAMTRIAGE_NATS_PASSWORD=test", "EIAMTRIAGE_SMTP_PASSWORD=test")
					secrets := filepath.Join(dir, "secrets")
					for _, f := range []string{"imap-be-token"} {
						if err := os.MkdirAll(secrets, 0o700); err != nil {
							t.Fatal(err)
						}
						if err := os.WriteFile(filepath.Join(secrets, f), []byte("test\n"), 0o600); err != nil {
							t.Fatal(err)
						}
					}
					cfg = bytes.ReplaceAll(cfg, []byte("/run/secrets/eiamtriage/"), []byte(secrets+"/"))
				}
				if err := os.WriteFile(p, cfg, 0o600); err != nil {
					t.Fatal(err)
				}
				out, err := cmd.CombinedOutput()
				if err != nil || !strings.Contains(string(out), "configuration is valid") {
					t.Errorf("config check %s: %v\n%s", name, err, out)
				}
			})
			checked++
		}
	}
	if checked == 0 {
		t.Error("no configuration found under deploy/")
	}
}

// TestSystemdUnit: the unit passes `systemd-analyze verify`, with the
// binary where the unit expects it (a copy of the unit pointing at the
// built binary).
func TestSystemdUnit(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("systemd-analyze is not installed (Debian package systemd; .ci/run installs it): %v", err)
		}
		t.Skip("systemd-analyze is not installed; CI installs it")
	}
	bin := buildBinary(t)
	unit, err := os.ReadFile("eiamtriage.service")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(unit, []byte("/usr/local/bin/eiamtriage")) {
		t.Fatal("the unit does not run /usr/local/bin/eiamtriage")
	}
	for _, want := range []string{"DynamicUser=yes", "ProtectSystem=strict", "StateDirectory=eiamtriage", "NoNewPrivileges=yes", "LoadCredential="} {
		if !bytes.Contains(unit, []byte(want)) {
			t.Errorf("the unit lacks %s", want)
		}
	}
	p := filepath.Join(t.TempDir(), "eiamtriage.service")
	if err := os.WriteFile(p, bytes.ReplaceAll(unit, []byte("/usr/local/bin/eiamtriage"), []byte(bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", p).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

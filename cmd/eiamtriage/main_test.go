package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// binPath is the eiamtriage binary TestMain builds for the tests that run
// it as a subprocess, the way a person or systemd runs it.
var binPath string

// TestMain builds the binary once into a temporary directory, runs the
// tests and removes the directory.
func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "eiamtriage-e2e-bin-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "TestMain: create a directory for the binary: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binPath = filepath.Join(dir, "eiamtriage")
	// "go test" puts $GOROOT/bin first on the PATH of the test process, so
	// this is the go command that runs the tests.
	// With the test hooks (testhooks.go), inert unless a test sets their
	// environment variables.
	build := exec.Command("go", "build", "-tags", "testhooks", "-o", binPath, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "TestMain: go build -o %s .: %v\n", binPath, err)
		return 1
	}
	return m.Run()
}

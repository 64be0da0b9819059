package main

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"boxoffice/testenv"
)

// buildBinary builds cmd/boxoffice into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "boxoffice")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestBinary runs the built binary as an operator would: a bad setting exits 1 naming
// the variable, a role without its URLs exits 1 naming them, -h exits 0, and SIGTERM
// stops a running server cleanly with exit 0.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)
	dir := t.TempDir()

	cmd := exec.Command(bin, "run")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SYNC_INTERVAL_SECONDS=5m")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(stderr.String(), `SYNC_INTERVAL_SECONDS: not a number: "5m"`) {
		t.Errorf("run with SYNC_INTERVAL_SECONDS=5m: %v, stderr %q; want exit 1 naming the variable", err, stderr.String())
	}

	// A distributed role without its URLs exits 1 naming each, before opening anything.
	cmd = exec.Command(bin, "worker", "--env-file", filepath.Join(dir, "absent.env"))
	cmd.Dir = dir
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		return slices.Contains([]string{"DATABASE_WRITE_URL", "DATABASE_READ_URL", "BROKER_URL", "REDIS_URL"}, name)
	})
	stderr.Reset()
	cmd.Stderr = &stderr
	err = cmd.Run()
	if want := "worker: DATABASE_WRITE_URL, BROKER_URL and REDIS_URL are required"; !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(stderr.String(), want) {
		t.Errorf("worker without URLs: %v, stderr %q; want exit 1 and %q", err, stderr.String(), want)
	}

	// -h lists a command's flags and succeeds.
	out, err := exec.Command(bin, "run", "-h").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "-sim-mode") {
		t.Errorf("run -h: %v, output %q; want exit 0 and the flags", err, out)
	}

	addr := freeAddr(t)
	cmd = exec.Command(bin, "run", "--http-addr", addr, "--data-dir", filepath.Join(dir, "data"))
	cmd.Dir = dir
	cmd.Env = os.Environ()
	stderr.Reset()
	cmd.Stderr = &stderr
	dieWithTest(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	testenv.Poll(t, "the binary's /search to show the simulator's plans", func() bool {
		resp, err := http.Get("http://" + addr + year2021)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp.StatusCode == http.StatusOK && strings.Contains(b.String(), "Camela en concierto")
	})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("after SIGTERM: %v, want exit 0; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("still running 30s after SIGTERM; stderr:\n%s", stderr.String())
	}
}

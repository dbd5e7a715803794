package run

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Ctrl-C reaches a command as SIGINT, the signal buildx stops its build
// cleanly on: a child that traps SIGINT records it and exits. Sending
// SIGKILL (or SIGTERM) instead leaves no record, and the test fails.
func TestCtrlCReachesTheCommandAsSIGINT(t *testing.T) {
	dir := t.TempDir()
	ready := filepath.Join(dir, "ready")
	got := filepath.Join(dir, "signal")
	script := `trap 'echo INT > ` + got + `; exit 0' INT
trap 'echo TERM > ` + got + `; exit 0' TERM
echo up > ` + ready + `
while :; do sleep 0.05; done`
	r := &Runner{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}, Grace: 5 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, []string{"sh", "-c", script}) }()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the child never started")
		}
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	b, err := os.ReadFile(got)
	if err != nil {
		t.Fatalf("the child recorded no signal (killed without SIGINT?): %v", err)
	}
	if s := strings.TrimSpace(string(b)); s != "INT" {
		t.Errorf("the child got SIG%s, want SIGINT", s)
	}
}

package run

// Tests written to kill the mutants `go run magefile.go mutants` found
// alive in this package (docs/mutants.md).

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// waitFile polls for path until it has content, failing the test after 5s.
func waitFile(t *testing.T, path string) string {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if b, err := os.ReadFile(path); err == nil && len(bytes.TrimSpace(b)) > 0 {
			return strings.TrimSpace(string(b))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never appeared", filepath.Base(path))
		}
	}
}

// cancelWhenReady runs argv with r, cancels once ready exists, and returns
// Run's error.
func cancelWhenReady(t *testing.T, r *Runner, argv []string, ready string) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, argv) }()
	waitFile(t, ready)
	cancel()
	select {
	case err := <-done:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after cancel")
		return nil
	}
}

func TestNewGivesMageTimeToCleanUp(t *testing.T) {
	r := New(true, true)
	// mage waits 5 s after Ctrl-C: interrupt, then kill, within that.
	if r.Grace != 3*time.Second || !r.DryRun || !r.Verbose || r.Out != os.Stdout || r.Err != os.Stderr {
		t.Errorf("New(true, true) = grace %s, dry run %v, verbose %v, out stdout %v, err stderr %v",
			r.Grace, r.DryRun, r.Verbose, r.Out == os.Stdout, r.Err == os.Stderr)
	}
	if r := New(false, false); r.DryRun || r.Verbose {
		t.Errorf("New(false, false) is dry run %v, verbose %v", r.DryRun, r.Verbose)
	}
}

func TestVerboseNotesGoToStderrOnly(t *testing.T) {
	var out, errb bytes.Buffer
	r := &Runner{Out: &out, Err: &errb, Verbose: true}
	r.Note("verify %s", "repo:tag")
	if out.String() != "" || errb.String() != "# verify repo:tag\n" {
		t.Errorf("verbose note: out %q, err %q", out.String(), errb.String())
	}
	errb.Reset()
	(&Runner{Out: &out, Err: &errb}).Note("verify %s", "repo:tag")
	if out.String()+errb.String() != "" {
		t.Errorf("a quiet runner printed a note: %q %q", out.String(), errb.String())
	}
}

func TestExitErrorNamesShortCommandsWhole(t *testing.T) {
	r := &Runner{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}}
	err := r.Run(context.Background(), []string{"sh", "-c", "exit 3"})
	if err == nil || err.Error() != "sh -c exit 3: exit status 3" {
		t.Errorf("three words: %v, want the whole command", err)
	}
	err = r.Run(context.Background(), []string{"sh", "-c", "exit 4", "arg0", "--secret-ish-long-tail"})
	if err == nil || err.Error() != "sh -c exit 4 …: exit status 4" {
		t.Errorf("five words: %v, want the first three and an ellipsis", err)
	}
}

func TestOutputReturnsStdoutAndExplainsFailures(t *testing.T) {
	var errb bytes.Buffer
	r := &Runner{Out: &bytes.Buffer{}, Err: &errb, Verbose: true}
	out, err := r.Output(context.Background(), "sh", "-c", "echo ' v1.2 '; echo noise >&2")
	if err != nil || out != "v1.2" {
		t.Errorf("Output = %q, %v; want the trimmed stdout alone", out, err)
	}
	if !strings.HasPrefix(errb.String(), "exec: sh -c ") {
		t.Errorf("verbose Output did not print the command first: %q", errb.String())
	}
	_, err = r.Output(context.Background(), "sh", "-c", "echo 'no such builder' >&2; exit 2")
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 2 || !strings.HasSuffix(err.Error(), "exit status 2: no such builder") {
		t.Errorf("failed query: %v, want exit code 2 and the command's own message", err)
	}
	_, err = r.Output(context.Background(), "sh", "-c", "exit 5")
	if err == nil || !strings.HasSuffix(err.Error(), "exit status 5") {
		t.Errorf("silent failure: %v, want no dangling message", err)
	}
}

// buildx runs under docker: Ctrl-C must reach the whole group, not only
// the process the runner started, or the plugin never stops cleanly.
func TestCancelInterruptsEveryProcessOfTheGroup(t *testing.T) {
	dir := t.TempDir()
	ready, got := filepath.Join(dir, "ready"), filepath.Join(dir, "got")
	inner := `trap "echo INT > ` + got + `; exit 0" INT; echo up > ` + ready + `; while :; do sleep 0.05; done`
	// The outer shell waits for the inner one (`; :` keeps it from exec'ing).
	r := &Runner{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}, Grace: 5 * time.Second}
	err := cancelWhenReady(t, r, []string{"sh", "-c", "sh -c '" + inner + "'; :"}, ready)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
	if b, err := os.ReadFile(got); err != nil || strings.TrimSpace(string(b)) != "INT" {
		t.Errorf("the grandchild got no SIGINT (%v): the interrupt went to one process, not the group", err)
	}
}

// A zero Grace is the default grace, not "kill at once": a command that
// needs a moment to stop cleanly after SIGINT gets it.
func TestZeroGraceStillLetsTheCommandStopCleanly(t *testing.T) {
	dir := t.TempDir()
	ready, cleaned := filepath.Join(dir, "ready"), filepath.Join(dir, "cleaned")
	script := `trap 'sleep 0.5; echo yes > ` + cleaned + `; exit 0' INT; echo up > ` + ready + `; while :; do sleep 0.05; done`
	r := &Runner{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}}
	if err := cancelWhenReady(t, r, []string{"sh", "-c", script}, ready); !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
	if _, err := os.Stat(cleaned); err != nil {
		t.Errorf("the command was killed before its 0.5 s clean-up: %v", err)
	}
}

// A command that stops on SIGINT at once can leave a child behind that
// ignores it (a background job); the runner kills what is left of the group.
func TestWhatACancelledCommandLeavesBehindIsKilled(t *testing.T) {
	dir := t.TempDir()
	pidfile := filepath.Join(dir, "pid")
	// Background jobs of a non-interactive shell ignore SIGINT; the shell
	// itself dies on it, and the job holds no pipe of the runner.
	script := `sleep 300 >/dev/null 2>&1 & echo $! > ` + pidfile + `; wait`
	r := &Runner{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}, Grace: 10 * time.Second}
	start := time.Now()
	if err := cancelWhenReady(t, r, []string{"sh", "-c", script}, pidfile); !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
	child, err := strconv.Atoi(waitFile(t, pidfile))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(child, syscall.SIGKILL) })
	if time.Since(start) > 8*time.Second {
		t.Fatalf("the shell did not stop on SIGINT; the test cannot tell who killed the job")
	}
	for deadline := time.Now().Add(3 * time.Second); alive(child) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if alive(child) {
		t.Error("the background job outlived the cancelled command")
	}
}

// A command that exits but leaves a child holding its output is not a
// success: the runner stops waiting after the grace and says the command
// did not finish, with no exit code of its own.
func TestACommandThatNeverClosesItsOutputFails(t *testing.T) {
	dir := t.TempDir()
	pidfile := filepath.Join(dir, "pid")
	r := &Runner{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}, Grace: 300 * time.Millisecond}
	err := r.Run(context.Background(), []string{"sh", "-c", "sleep 30 & echo $! > " + pidfile + "; echo started"})
	if b, rerr := os.ReadFile(pidfile); rerr == nil {
		if pid, aerr := strconv.Atoi(strings.TrimSpace(string(b))); aerr == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != -1 || !errors.Is(err, exec.ErrWaitDelay) {
		t.Errorf("error %v, want an ExitError with code -1 wrapping exec.ErrWaitDelay", err)
	}
}

func TestQuoteLeavesLettersAndDigitsAtTheEdgesBare(t *testing.T) {
	in := []string{"a", "z", "A", "Z", "0", "9", "az09AZ"}
	if got := Quote(in); got != strings.Join(in, " ") {
		t.Errorf("Quote(%q) = %s", in, got)
	}
	for _, c := range []string{"`", "{", "[", "^", "/x y"} {
		if got := Quote([]string{c}); got == c {
			t.Errorf("Quote(%q) left it bare", c)
		}
	}
}

func TestDumbTerminalsGetNoColour(t *testing.T) {
	tty, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("no pseudo-terminal to test with: %v", err)
	}
	defer tty.Close()
	t.Setenv("NO_COLOR", "")
	if err := os.Unsetenv("NO_COLOR"); err != nil { // restored by t.Setenv
		t.Fatal(err)
	}
	t.Setenv("TERM", "xterm")
	if !colorFor(tty) {
		t.Fatal("no colour on a terminal with TERM=xterm: the test cannot see the dumb case")
	}
	t.Setenv("TERM", "dumb")
	if colorFor(tty) {
		t.Error("colour on with TERM=dumb")
	}
}

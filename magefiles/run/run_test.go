package run

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

func TestQuotedLinesRunAsIsInAShell(t *testing.T) {
	// Each argument must come back unchanged after a real shell parses the
	// quoted line: spaces, quotes, $, globs, backslashes, empty strings.
	args := []string{"printf", `%s\n`, "plain", "with space", `it's`, `"dq"`, "$HOME", "${X:-y}", "*", "a\\b", "", "semi;colon", "new\nline", "torch==1.12.0+cpu -f https://x/y.html"}
	out, err := exec.Command("sh", "-c", Quote(args)).Output()
	if err != nil {
		t.Fatalf("sh -c %s: %v", Quote(args), err)
	}
	want := strings.Join(args[2:], "\n") + "\n"
	if string(out) != want {
		t.Errorf("shell saw\n%q\nwant\n%q", out, want)
	}
	if got := Quote([]string{"docker", "--build-arg", "A=b"}); got != "docker --build-arg A=b" {
		t.Errorf("safe words were quoted: %s", got)
	}
}

func TestDryRunPrintsAndRunsNothing(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	var out, errb bytes.Buffer
	r := &Runner{Out: &out, Err: &errb, DryRun: true}
	if err := r.Run(context.Background(), []string{"touch", marker}); err != nil {
		t.Fatal(err)
	}
	r.Note("verify %s", "repo:tag")
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Error("dry run ran the command")
	}
	if want := "touch " + marker + "\n# verify repo:tag\n"; out.String() != want {
		t.Errorf("dry run printed %q, want %q", out.String(), want)
	}
}

func TestVerbosePrintsCommandFirstAndStreamsOutput(t *testing.T) {
	var out, errb bytes.Buffer
	r := &Runner{Out: &out, Err: &errb, Verbose: true}
	if err := r.Run(context.Background(), []string{"sh", "-c", "echo out; echo err >&2"}); err != nil {
		t.Fatal(err)
	}
	if out.String() != "out\n" || errb.String() != "exec: sh -c 'echo out; echo err >&2'\nerr\n" {
		t.Errorf("out %q err %q", out.String(), errb.String())
	}
}

func TestSecretsAreNeverPrinted(t *testing.T) {
	var out, errb bytes.Buffer
	r := &Runner{Out: &out, Err: &errb, DryRun: true, Verbose: true}
	r.AddSecret("s3://internal/bucket")
	_ = r.Run(context.Background(), []string{"echo", "--x=s3://internal/bucket"})
	r.Note("copy from s3://internal/bucket")
	if strings.Contains(out.String()+errb.String(), "internal/bucket") {
		t.Errorf("secret printed: %q %q", out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "<redacted>") {
		t.Errorf("no redaction marker in %q", out.String())
	}
}

func TestFailureNamesTheCommandAndExitCode(t *testing.T) {
	r := &Runner{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}}
	err := r.Run(context.Background(), []string{"sh", "-c", "exit 3"})
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 3 {
		t.Fatalf("error %v, want exit code 3", err)
	}
	if err := r.Run(context.Background(), []string{"/nonexistent/tool"}); err == nil || !strings.Contains(err.Error(), "/nonexistent/tool") {
		t.Errorf("missing binary error %v", err)
	}
}

func alive(pid int) bool {
	// A zombie is not alive; read /proc state.
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	fields := strings.Fields(string(b))
	return len(fields) > 2 && fields[2] != "Z"
}

func TestCancellationStopsTheWholeProcessGroup(t *testing.T) {
	dir := t.TempDir()
	pidfile := filepath.Join(dir, "child.pid")
	r := &Runner{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}, Grace: 2 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	// A shell that ignores SIGINT and starts a grandchild, like docker
	// running its buildx plugin: both must be gone after cancel.
	script := `trap '' INT; sleep 300 & echo $! > ` + pidfile + `; wait`
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- r.Run(ctx, []string{"sh", "-c", script}) }()
	var child int
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if b, err := os.ReadFile(pidfile); err == nil && len(bytes.TrimSpace(b)) > 0 {
			child, _ = strconv.Atoi(strings.TrimSpace(string(b)))
			break
		}
	}
	if child == 0 {
		t.Fatal("grandchild never started")
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
	if el := time.Since(start); el > 8*time.Second {
		t.Errorf("took %s to stop", el)
	}
	for deadline := time.Now().Add(3 * time.Second); alive(child) && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	if alive(child) {
		_ = syscall.Kill(child, syscall.SIGKILL)
		t.Error("grandchild survived cancellation")
	}
}

func TestInterruptIsSentFirst(t *testing.T) {
	// A command that exits cleanly on SIGINT stops at once, well within the grace.
	r := &Runner{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}, Grace: 30 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := r.Run(ctx, []string{"sleep", "60"})
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("SIGINT not sent first: took %s", el)
	}
}

func TestACancelledContextStartsNothing(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := &Runner{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}}
	if err := r.Run(ctx, []string{"touch", marker}); err == nil {
		t.Error("no error")
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("command ran with a cancelled context")
	}
}

func TestArgumentsReachTheCommandVerbatimWithoutAShell(t *testing.T) {
	args := []string{"with space", `it's "quoted"`, "$HOME", "$(touch /tmp/envs-pwned)", "`id`", "*", "a;b|c&d", "torch==1.12.0+cpu -f https://x/y.html"}
	var out bytes.Buffer
	r := &Runner{Out: &out, Err: &bytes.Buffer{}}
	if err := r.Run(context.Background(), append([]string{"printf", `%s\n`}, args...)); err != nil {
		t.Fatal(err)
	}
	if want := strings.Join(args, "\n") + "\n"; out.String() != want {
		t.Errorf("command saw\n%q\nwant\n%q", out.String(), want)
	}
	if _, err := os.Stat("/tmp/envs-pwned"); err == nil {
		os.Remove("/tmp/envs-pwned")
		t.Error("an argument was interpreted by a shell")
	}
}

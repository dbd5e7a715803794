// Package run executes external commands: one exec.CommandContext wrapper
// that streams output live, prints commands in dry runs (shell-quoted so a
// pasted line runs as is), and stops the whole process group of a command
// when the context is cancelled (Ctrl-C, `mage -t`).
package run

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Runner runs commands. The zero value is not usable; see New.
type Runner struct {
	// Out receives dry-run lines and command output, Err status lines and
	// command error output.
	Out, Err io.Writer
	// DryRun prints what would run instead of running it.
	DryRun bool
	// Verbose prints every command before it runs (mage -v).
	Verbose bool
	// Env is added to the environment of every command.
	Env []string
	// Dir is the working directory of commands ("" = current).
	Dir string
	// Grace is how long a cancelled command gets between SIGINT and SIGKILL.
	Grace time.Duration
	// secrets are masked wherever the runner prints.
	mu      sync.Mutex
	secrets []string
}

// New returns a runner writing to stdout and stderr.
func New(dryRun, verbose bool) *Runner {
	// mage waits 5 seconds for cleanup after Ctrl-C: interrupt, then kill
	// within that window.
	return &Runner{Out: os.Stdout, Err: os.Stderr, DryRun: dryRun, Verbose: verbose, Grace: 3 * time.Second}
}

// AddSecret registers a value that must never be printed.
func (r *Runner) AddSecret(v string) {
	if v == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.secrets = append(r.secrets, v)
}

// Redact masks every registered secret in s.
func (r *Runner) Redact(s string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, v := range r.secrets {
		s = strings.ReplaceAll(s, v, "<redacted>")
	}
	return s
}

// Note reports an operation done in Go (a registry check, a copy, an
// artifact file). In a dry run it is printed as a line starting with "# ",
// so that the dry run lists everything the tool would do.
func (r *Runner) Note(format string, args ...any) {
	line := r.Redact(fmt.Sprintf(format, args...))
	if r.DryRun {
		r.println(r.Out, "# "+line)
		return
	}
	if r.Verbose {
		r.println(r.Err, "# "+line)
	}
}

func (r *Runner) println(w io.Writer, line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintln(w, line)
}

// ExitError is a command that ran and failed.
type ExitError struct {
	Argv []string
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("%s: %v", shorten(e.Argv), e.Err)
}
func (e *ExitError) Unwrap() error { return e.Err }

func shorten(argv []string) string {
	if len(argv) > 3 {
		return strings.Join(argv[:3], " ") + " …"
	}
	return strings.Join(argv, " ")
}

// Run runs argv with its output streamed to the runner's writers. In a dry
// run it only prints the quoted command.
func (r *Runner) Run(ctx context.Context, argv []string) error {
	return r.RunTo(ctx, argv, r.Out, r.Err)
}

// RunTo is Run with explicit writers for the command's output.
func (r *Runner) RunTo(ctx context.Context, argv []string, stdout, stderr io.Writer) error {
	if len(argv) == 0 {
		return errors.New("run: empty command")
	}
	line := r.Redact(Quote(argv))
	if r.DryRun {
		r.println(r.Out, line)
		return nil
	}
	if r.Verbose {
		r.println(r.Err, "exec: "+line)
	}
	return r.exec(ctx, argv, nil, stdout, stderr)
}

// Output runs a read-only query (git rev-parse, docker version) and returns
// its standard output. Queries run in dry runs too: the plan depends on them.
func (r *Runner) Output(ctx context.Context, argv ...string) (string, error) {
	var out, errb bytes.Buffer
	if r.Verbose {
		r.println(r.Err, "exec: "+r.Redact(Quote(argv)))
	}
	if err := r.exec(ctx, argv, nil, &out, &errb); err != nil {
		msg := strings.TrimSpace(errb.String())
		if msg != "" {
			return "", fmt.Errorf("%w: %s", err, msg)
		}
		return "", err
	}
	return strings.TrimSpace(out.String()), nil
}

func (r *Runner) exec(ctx context.Context, argv []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("not running %s: %w", shorten(argv), err)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = r.Dir
	cmd.Env = append(os.Environ(), r.Env...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	// Own process group, so a cancel reaches buildx and its helpers; and a
	// signal when this process dies, so `mage -t` (which exits without
	// waiting) leaves nothing behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	cmd.Cancel = func() error {
		// Interrupt the group first: buildx stops its build cleanly.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
	}
	grace := r.Grace
	if grace <= 0 {
		grace = 3 * time.Second
	}
	cmd.WaitDelay = grace
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", shorten(argv), err)
	}
	// After the grace period the whole group is killed.
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			select {
			case <-done:
			case <-time.After(grace):
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			}
		case <-done:
		}
	}()
	err := cmd.Wait()
	close(done)
	if ctx.Err() != nil {
		// Make sure nothing of the group survives.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		return fmt.Errorf("%s: stopped: %w", shorten(argv), ctx.Err())
	}
	if err != nil {
		code := -1
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		return &ExitError{Argv: argv, Code: code, Err: err}
	}
	return nil
}

// Quote renders argv as one POSIX shell line that runs exactly argv.
func Quote(argv []string) string {
	parts := make([]string, len(argv))
	for i, a := range argv {
		parts[i] = quoteArg(a)
	}
	return strings.Join(parts, " ")
}

func quoteArg(a string) string {
	if a == "" {
		return "''"
	}
	safe := true
	for _, c := range a {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("@%+=:,./-_", c)) {
			safe = false
			break
		}
	}
	if safe {
		return a
	}
	return "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
}

// Package gotest runs `go test -json` and renders its event stream: package
// results as go test prints them, the output of failed tests, a count of
// top-level tests, and the tally lines tests log about bad inputs and faults.
package gotest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Summary counts top-level tests.
type Summary struct {
	Passed, Failed, Skipped int
	// Tallies are log lines of the form "<what> tried: N ..." or
	// "faults injected: N, survived: M", in the order seen.
	Tallies []string
	// FailedTests names the failed tests as package.Test.
	FailedTests []string
}

type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

var tallyRE = regexp.MustCompile(`(tried|injected|survived)[^\n]*\d`)

// Run runs `go test -json args...` in dir and renders to out.
func Run(ctx context.Context, dir string, env []string, out io.Writer, args ...string) (Summary, error) {
	argv := append([]string{"test", "-json"}, args...)
	cmd := exec.CommandContext(ctx, "go", argv...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = out // build errors
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGINT) }
	cmd.WaitDelay = 15 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return Summary{}, err
	}
	if err := cmd.Start(); err != nil {
		return Summary{}, fmt.Errorf("starting go test: %w", err)
	}
	sum := Render(stdout, out)
	werr := cmd.Wait()
	if werr != nil && sum.Failed == 0 {
		return sum, fmt.Errorf("go test %s: %w", strings.Join(args, " "), werr)
	}
	return sum, nil
}

// Render reads a test2json stream and writes a readable log.
func Render(r io.Reader, out io.Writer) Summary {
	var sum Summary
	buffered := map[string][]string{} // test output kept until the result is known
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := sc.Bytes()
		var ev event
		if err := json.Unmarshal(line, &ev); err != nil || ev.Action == "" {
			fmt.Fprintln(out, string(line))
			continue
		}
		key := ev.Package + "." + ev.Test
		switch ev.Action {
		case "output":
			if ev.Test == "" {
				// Package-level lines: ok/FAIL/coverage/build output.
				o := strings.TrimRight(ev.Output, "\n")
				if strings.HasPrefix(o, "ok ") || strings.HasPrefix(o, "FAIL") || strings.HasPrefix(o, "?") || strings.HasPrefix(o, "---") || strings.HasPrefix(o, "panic") {
					fmt.Fprintln(out, o)
				}
				continue
			}
			buffered[key] = append(buffered[key], ev.Output)
			if m := tallyRE.FindString(ev.Output); m != "" && !strings.HasPrefix(strings.TrimSpace(ev.Output), "=== ") {
				sum.Tallies = append(sum.Tallies, ev.Package+": "+strings.TrimSpace(trimLogPrefix(ev.Output)))
			}
		case "pass", "fail", "skip":
			if ev.Test == "" {
				continue
			}
			top := !strings.Contains(ev.Test, "/")
			switch ev.Action {
			case "pass":
				if top {
					sum.Passed++
				}
			case "skip":
				if top {
					sum.Skipped++
				}
			case "fail":
				if top {
					sum.Failed++
					sum.FailedTests = append(sum.FailedTests, key)
				}
				fmt.Fprintf(out, "--- FAIL: %s (%s, %.2fs)\n", ev.Test, ev.Package, ev.Elapsed)
				for _, o := range buffered[key] {
					fmt.Fprint(out, "    "+o)
				}
			}
			delete(buffered, key)
		}
	}
	sort.Strings(sum.FailedTests)
	return sum
}

// trimLogPrefix drops the "    file_test.go:12: " of a t.Log line.
func trimLogPrefix(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.Index(s, ".go:"); i >= 0 {
		if j := strings.Index(s[i:], ": "); j >= 0 {
			return s[i+j+2:]
		}
	}
	return s
}

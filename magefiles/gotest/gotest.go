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

// Summary counts top-level tests. A top-level test whose subtests all
// skipped counts as skipped, not passed (go test reports it as passed).
type Summary struct {
	Passed, Failed, Skipped int
	// Tallies are log lines of the form "<what> tried: N ..." or
	// "faults injected: N, survived: M", in the order seen.
	Tallies []string
	// FailedTests names the failed tests as package.Test.
	FailedTests []string
	// Skips are every skipped test, top-level or subtest, in the order seen.
	Skips []Skip
}

// Add counts o's tests in s too.
func (s *Summary) Add(o Summary) {
	s.Passed += o.Passed
	s.Failed += o.Failed
	s.Skipped += o.Skipped
	s.Tallies = append(s.Tallies, o.Tallies...)
	s.FailedTests = append(s.FailedTests, o.FailedTests...)
	s.Skips = append(s.Skips, o.Skips...)
}

// Skip is a skipped test: its package import path, its name (Test or
// Test/sub) and the reason it logged last (t.Skip's message).
type Skip struct {
	Package, Test, Reason string
}

func (s Skip) String() string { return s.Package + "." + s.Test + ": " + s.Reason }

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
	subs := map[string]*subResults{}  // per top-level test (package.Test)
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
			topName, _, isSub := strings.Cut(ev.Test, "/")
			top := !isSub
			topKey := ev.Package + "." + topName
			if isSub {
				if subs[topKey] == nil {
					subs[topKey] = &subResults{}
				}
				subs[topKey].add(ev.Test, ev.Action)
			}
			switch ev.Action {
			case "pass":
				if !top {
					break
				}
				if subs[topKey].allSkipped() { // its subtests are in Skips
					sum.Skipped++
				} else {
					sum.Passed++
				}
			case "skip":
				if top {
					sum.Skipped++
				}
				sum.Skips = append(sum.Skips, Skip{ev.Package, ev.Test, skipReason(buffered[key])})
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
			if top {
				delete(subs, topKey)
			}
		}
	}
	sort.Strings(sum.FailedTests)
	return sum
}

// subResults are the results of a top-level test's subtests, at any depth.
type subResults struct {
	results map[string]string // name -> pass, fail or skip
}

func (r *subResults) add(name, action string) {
	if r.results == nil {
		r.results = map[string]string{}
	}
	r.results[name] = action
}

// allSkipped reports whether the test had subtests and every leaf among
// them (a subtest with no subtests of its own) skipped. A subtest whose
// subtests all skipped passes in go test's eyes; its leaves decide.
func (r *subResults) allSkipped() bool {
	if r == nil || len(r.results) == 0 {
		return false
	}
	leaves := 0
	for name, action := range r.results {
		parent := false
		for other := range r.results {
			if strings.HasPrefix(other, name+"/") {
				parent = true
				break
			}
		}
		if parent {
			continue
		}
		leaves++
		if action != "skip" {
			return false
		}
	}
	return leaves > 0
}

// skipReason is the last line a skipped test logged (its t.Skip message),
// without the file:line prefix.
func skipReason(lines []string) string {
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l == "" || strings.HasPrefix(l, "=== ") || strings.HasPrefix(l, "--- ") {
			continue
		}
		return trimLogPrefix(l)
	}
	return "no reason given"
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

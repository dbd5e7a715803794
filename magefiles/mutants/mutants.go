package mutants

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/determined-ai/environments/magefiles/run"
)

// Packages are the library packages mutation testing covers, as directories
// under magefiles/.
func Packages() []string {
	return []string{"plan", "variant", "catalog", "publish", "registry", "run", "builder", "build", "schedule", "ci"}
}

// flakyTests are the tests left out of every mutation run, with the
// reason: each mutant runs its package's tests once more, so a test that is
// flaky under `-cover` and a busy machine would mark survivors as killed.
func flakyTests(pkg string) []string {
	switch pkg {
	case "registry":
		// The first fails when no write race happened ("the test proves
		// nothing"), which is what a slowed-down, instrumented run tends to
		// do. The second measures the default retry schedule on a clock
		// scaled 100 times down: on a loaded machine a few milliseconds of
		// round trip reorder its waits.
		return []string{"TestParallelCopiesSurviveWriteRaces", "TestTheDefaultRetriesGiveUpAfterAboutTwoMinutes"}
	}
	return nil
}

// slowTests are left out unless Options.SlowTests: every surviving mutant
// runs the whole package, and these take most of its time (registry's
// outage tests wait out the default retry policy, about 15 s; publish's
// release scenarios play whole CI workflows, about 70 s). Leaving a test
// out can only let mutants live, so the figures without them are a lower
// bound.
func slowTests(pkg string) []string {
	switch pkg {
	case "registry":
		return []string{"TestRegistryDown", "TestDefaultRetriesOutlastAnOutage"}
	case "publish":
		return []string{"TestReleaseJobsStartedAtOnce", "TestReleaseToolingOnTheGeneratedWorkflows",
			"TestReleaseToolingAFailedJobAbortsTheBump", "TestReleaseToolingRefusesAnythingButTheExactSets"}
	}
	return nil
}

// excludedFiles are the files of a package directory (a regular expression
// on paths relative to it) gremlins leaves alone, with the reason.
func excludedFiles(pkg string) string {
	switch pkg {
	case "ci":
		// ci/citest is test infrastructure (the CircleCI API stand-in of
		// ci's tests) with no tests of its own: each of its mutants would
		// run citest's (absent) tests and count as not covered.
		return "^citest/"
	}
	return ""
}

// Options say what to run and how.
type Options struct {
	// Root is the repository root (magefiles/ and tools/mutants/ under it).
	Root string
	// Packages are directories under magefiles/; empty means Packages().
	Packages []string
	// Workers is how many mutants are tested at once (gremlins --workers).
	Workers int
	// TimeoutCoefficient multiplies the time of the package's plain test
	// run to give each mutant's limit; a mutant past it is TIMED OUT.
	TimeoutCoefficient int
	Goal               Goal
	// Enforce makes Run fail when a package is below the goal.
	Enforce bool
	// SlowTests keeps the slow tests (slowTests) in the mutation runs.
	SlowTests bool
	// CacheDir holds the built tester; WorkDir the reports and logs.
	CacheDir, WorkDir string
	// Out receives the report; Verbose also streams gremlins' own output.
	Out     io.Writer
	Verbose bool
}

// Argv is the gremlins command that tests the mutants of package directory
// pkg and writes its JSON report to report.
func Argv(tool, root, pkg, report string, o Options) []string {
	argv := []string{tool, "unleash",
		"--workers", strconv.Itoa(o.Workers),
		"--timeout-coefficient", strconv.Itoa(o.TimeoutCoefficient),
		"--output", report}
	if x := excludedFiles(pkg); x != "" {
		argv = append(argv, "--exclude-files", x)
	}
	return append(argv, filepath.Join(root, "magefiles", pkg))
}

// Env is the environment gremlins runs with for pkg: GOFLAGS (appended to
// goflags, the caller's) turns off go test's result cache, whose instant
// replay would otherwise set the time limit of every mutant, and leaves out
// the package's flaky tests and, unless slow, its slow ones.
func Env(pkg, goflags string, slow bool) []string {
	flags := strings.Fields(goflags)
	flags = append(flags, "-count=1")
	s := flakyTests(pkg)
	if !slow {
		s = append(s, slowTests(pkg)...)
	}
	if len(s) > 0 {
		flags = append(flags, "-skip=^("+strings.Join(s, "|")+")$")
	}
	return []string{"GOFLAGS=" + strings.Join(flags, " ")}
}

// Result is the outcome of a run: one score a package, in order.
type Result struct {
	Scores []Score
}

// Below lists the packages under the goal.
func (r Result) Below(g Goal) []string {
	var out []string
	for _, s := range r.Scores {
		if !s.Meets(g) {
			out = append(out, s.Package)
		}
	}
	return out
}

// Run builds the pinned tester, runs it on each package in turn, and prints
// each package's score, its surviving mutants and its stale equivalent
// entries. With o.Enforce it fails when a package is below the goal.
func Run(ctx context.Context, o Options) (Result, error) {
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if len(o.Packages) == 0 {
		o.Packages = Packages()
	}
	if o.Workers < 1 {
		return Result{}, fmt.Errorf("mutants: workers is %d, want 1 or more", o.Workers)
	}
	if o.TimeoutCoefficient < 1 {
		return Result{}, fmt.Errorf("mutants: timeout coefficient is %d, want 1 or more", o.TimeoutCoefficient)
	}
	known := map[string]bool{}
	for _, p := range Packages() {
		known[p] = true
	}
	for _, p := range o.Packages {
		if !known[p] {
			return Result{}, fmt.Errorf("mutants: unknown package %q (known: %s)", p, strings.Join(Packages(), ", "))
		}
	}
	eq, err := ReadEquivalents(filepath.Join(o.Root, "magefiles", "mutants", "equivalent.txt"))
	if err != nil {
		return Result{}, err
	}
	status := run.NewStatus(o.Out)
	r := run.New(false, o.Verbose)
	r.Out, r.Err = o.Out, o.Out
	status.Step("building the pinned mutation tester (tools/mutants/go.mod)")
	tool, err := BuildTool(ctx, r, filepath.Join(o.Root, "tools", "mutants"), o.CacheDir)
	if err != nil {
		return Result{}, err
	}
	if err := os.MkdirAll(o.WorkDir, 0o755); err != nil {
		return Result{}, fmt.Errorf("mutants: %w", err)
	}
	src := FileLines(filepath.Join(o.Root, "magefiles"))
	var res Result
	var failed []error
	for i, pkg := range o.Packages {
		status.Step("mutants %s (%d of %d), log in %s", pkg, i+1, len(o.Packages), filepath.Join(o.WorkDir, pkg+".log"))
		s, err := runPackage(ctx, r, tool, pkg, o, eq, src)
		if ctx.Err() != nil {
			return res, fmt.Errorf("mutants: stopped at %s: %w", pkg, ctx.Err())
		}
		if err != nil {
			// An hour-long run goes on with the other packages.
			status.Fail("%v", err)
			failed = append(failed, err)
			continue
		}
		res.Scores = append(res.Scores, s)
		printScore(status, s, o.Goal, src)
	}
	fmt.Fprintln(o.Out, "mutation testing: efficacy (killed of covered) and mutator coverage (covered of all), goal", goalText(o.Goal))
	for _, s := range res.Scores {
		fmt.Fprintln(o.Out, "  "+s.Summary())
	}
	if len(failed) > 0 {
		return res, fmt.Errorf("mutants: %d of %d packages could not be scored: %w", len(failed), len(o.Packages), errors.Join(failed...))
	}
	if below := res.Below(o.Goal); len(below) > 0 && o.Enforce {
		return res, fmt.Errorf("mutants: below the goal (%s): %s; kill the survivors listed above with tests or list them in magefiles/mutants/equivalent.txt with a reason",
			goalText(o.Goal), strings.Join(below, ", "))
	}
	return res, nil
}

func goalText(g Goal) string {
	return fmt.Sprintf("efficacy >= %g %%, coverage >= %g %%", g.Efficacy, g.Coverage)
}

func runPackage(ctx context.Context, r *run.Runner, tool, pkg string, o Options, eq Equivalents, src SourceLines) (Score, error) {
	report := filepath.Join(o.WorkDir, pkg+".json")
	logPath := filepath.Join(o.WorkDir, pkg+".log")
	_ = os.Remove(report)
	logf, err := os.Create(logPath)
	if err != nil {
		return Score{}, fmt.Errorf("mutants %s: %w", pkg, err)
	}
	defer logf.Close()
	var w io.Writer = logf
	if o.Verbose {
		w = io.MultiWriter(logf, o.Out)
	}
	g := &run.Runner{Out: w, Err: w, Verbose: o.Verbose, Grace: r.Grace, Dir: o.Root,
		Env: Env(pkg, os.Getenv("GOFLAGS"), o.SlowTests)}
	if err := g.RunTo(ctx, Argv(tool, o.Root, pkg, report, o), w, w); err != nil {
		return Score{}, fmt.Errorf("mutants %s: gremlins failed (its output is in %s; a failing or flaky test of the package stops it): %w%s",
			pkg, logPath, err, logTail(logPath))
	}
	f, err := os.Open(report)
	if errors.Is(err, os.ErrNotExist) {
		return Score{}, fmt.Errorf("mutants %s: gremlins wrote no report (its output is in %s)%s", pkg, logPath, logTail(logPath))
	}
	if err != nil {
		return Score{}, fmt.Errorf("mutants %s: %w", pkg, err)
	}
	defer f.Close()
	ms, err := ParseReport(f, pkg)
	if err != nil {
		return Score{}, err
	}
	read := func(file string) (string, error) {
		b, err := os.ReadFile(filepath.Join(o.Root, "magefiles", file))
		return string(b), err
	}
	confirmed, staleConfirmed, err := Confirm(ctx, pkg, ms, eq, src, read, GoTests(o.Root, o.WorkDir, r))
	if err != nil {
		return Score{}, fmt.Errorf("mutants %s: %w", pkg, err)
	}
	s, err := Tally(pkg, confirmed, eq, src)
	s.Stale = append(s.Stale, staleConfirmed...)
	s.Confirmed = confirmedCount(ms, confirmed)
	return s, err
}

// logTail returns the end of a log file, indented, for an error message.
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return "\n" + strings.TrimRight(string(b), "\n")
}

func printScore(status *run.Status, s Score, g Goal, src SourceLines) {
	if s.Meets(g) {
		status.OK("%s", s.Summary())
	} else {
		status.Fail("%s", s.Summary())
	}
	for _, m := range s.Survivors {
		text, err := src(m.File, m.Line)
		if err != nil {
			text = err.Error()
		}
		status.Info("survivor %s   %s", m, strings.TrimSpace(text))
	}
	for _, e := range s.Stale {
		status.Warn("equivalent.txt entry %s matches no surviving mutant: remove it or fix its line/fragment", e)
	}
}

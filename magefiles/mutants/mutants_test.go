package mutants

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// report is a gremlins --output report as v0.6.0 writes it (abridged).
const report = `{"go_module":"github.com/determined-ai/environments","files":[
 {"file_name":"run.go","mutations":[
  {"type":"CONDITIONALS_BOUNDARY","status":"LIVED","line":12,"column":10},
  {"type":"CONDITIONALS_NEGATION","status":"KILLED","line":12,"column":10},
  {"type":"ARITHMETIC_BASE","status":"NOT COVERED","line":3,"column":5},
  {"type":"INCREMENT_DECREMENT","status":"TIMED OUT","line":20,"column":3},
  {"type":"INVERT_NEGATIVES","status":"NOT VIABLE","line":21,"column":3}]},
 {"file_name":"status.go","mutations":[
  {"type":"CONDITIONALS_NEGATION","status":"KILLED","line":7,"column":2},
  {"type":"CONDITIONALS_NEGATION","status":"KILLED","line":8,"column":2},
  {"type":"CONDITIONALS_NEGATION","status":"LIVED","line":9,"column":2}]}],
 "test_efficacy":60,"mutations_coverage":83.3,"mutants_total":7,"mutants_killed":3,"mutants_lived":2,
 "mutants_not_viable":1,"mutants_not_covered":1,"elapsed_time":3.2}`

// sources stands in for the package's files: line n of each file.
func sources(files map[string][]string) SourceLines {
	return func(file string, line int) (string, error) {
		l, ok := files[file]
		if !ok || line < 1 || line > len(l) {
			return "", fmt.Errorf("no line %d in %s", line, file)
		}
		return l[line-1], nil
	}
}

func numbered(n int, at map[int]string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("x%d := %d", i+1, i+1)
	}
	for l, s := range at {
		out[l-1] = s
	}
	return out
}

var src = sources(map[string][]string{
	"run/run.go":    numbered(25, map[int]string{3: "n := a + b", 12: "if grace <= 0 {"}),
	"run/status.go": numbered(10, map[int]string{9: "if ok {"}),
})

func TestParseReportReadsEveryMutantWithItsPackagePath(t *testing.T) {
	ms, err := ParseReport(strings.NewReader(report), "run")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 8 {
		t.Fatalf("%d mutants, want 8: %v", len(ms), ms)
	}
	first := Mutant{File: "run/run.go", Line: 3, Column: 5, Type: "ARITHMETIC_BASE", Status: NotCovered}
	if ms[0] != first {
		t.Errorf("first (sorted) mutant %v, want %v", ms[0], first)
	}
	if last := ms[7]; last.File != "run/status.go" || last.Line != 9 || last.Status != Lived {
		t.Errorf("last mutant %v, want run/status.go:9 LIVED", last)
	}
}

func TestParseReportRefusesWhatItCannotScore(t *testing.T) {
	for name, tc := range map[string]struct{ json, want string }{
		"not json":       {`gremlins: error`, "reading the gremlins report of run"},
		"unknown status": {`{"files":[{"file_name":"a.go","mutations":[{"type":"ARITHMETIC_BASE","status":"SURVIVED","line":1}]}]}`, `unknown status "SURVIVED" at a.go:1`},
		"nameless file":  {`{"files":[{"mutations":[]}]}`, "a file without a name"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseReport(strings.NewReader(tc.json), "run")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestTallyMatchesGremlinsFigures(t *testing.T) {
	ms, err := ParseReport(strings.NewReader(report), "run")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Tally("run", ms, nil, src)
	if err != nil {
		t.Fatal(err)
	}
	// gremlins: efficacy = killed/(killed+lived), coverage =
	// (killed+lived)/(killed+lived+not covered); timed out and not viable
	// count in neither.
	if s.Killed != 3 || s.Lived != 2 || s.NotCovered != 1 || s.TimedOut != 1 || s.NotViable != 1 {
		t.Errorf("counts %+v", s)
	}
	if e, c := s.Efficacy(), s.Coverage(); fmt.Sprintf("%.1f %.1f", e, c) != "60.0 83.3" {
		t.Errorf("efficacy %.1f coverage %.1f, want 60.0 83.3 (as gremlins reports)", e, c)
	}
	if len(s.Survivors) != 3 {
		t.Errorf("survivors %v, want the 2 lived and the not-covered mutant", s.Survivors)
	}
	if s.Meets(DefaultGoal()) {
		t.Error("60 % efficacy meets the goal")
	}
}

func TestEquivalentEntriesDiscountTheirMutantsOnly(t *testing.T) {
	ms, err := ParseReport(strings.NewReader(report), "run")
	if err != nil {
		t.Fatal(err)
	}
	eq, err := ParseEquivalents(strings.NewReader(`
# comment
run/run.go:12:CONDITIONALS_BOUNDARY | grace <= 0 | 0 and the default are the same grace
run/run.go:3:ARITHMETIC_BASE | a + b | never reached
run/status.go:9:CONDITIONALS_NEGATION | if ok { | both branches print the same
plan/plan.go:9:CONDITIONALS_NEGATION | if ok { | another package's entry
`))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Tally("run", ms, eq, src)
	if err != nil {
		t.Fatal(err)
	}
	if s.Equivalent != 3 || s.Lived != 0 || s.NotCovered != 0 || s.Killed != 3 {
		t.Errorf("after discounting: %+v", s)
	}
	if s.Efficacy() != 100 || s.Coverage() != 100 || !s.Meets(DefaultGoal()) {
		t.Errorf("efficacy %v coverage %v", s.Efficacy(), s.Coverage())
	}
	if len(s.Stale) != 0 {
		t.Errorf("stale %v: plan's entry must not be judged in run", s.Stale)
	}
}

func TestEquivalentEntryFollowsItsCodeAndGoesStaleWithoutIt(t *testing.T) {
	ms := []Mutant{
		{File: "run/run.go", Line: 15, Type: "CONDITIONALS_BOUNDARY", Status: Lived},    // the code moved 3 lines down
		{File: "run/run.go", Line: 15, Type: "CONDITIONALS_NEGATION", Status: Lived},    // another mutator: not listed
		{File: "run/run.go", Line: 22, Type: "CONDITIONALS_BOUNDARY", Status: Lived},    // same code further away
		{File: "run/run.go", Line: 5, Type: "ARITHMETIC_BASE", Status: Killed},          // killed: nothing to discount
		{File: "run/status.go", Line: 2, Type: "CONDITIONALS_NEGATION", Status: Lived},  // fragment not on the line
		{File: "run/status.go", Line: 4, Type: "CONDITIONALS_NEGATION", Status: Killed}, // fragment here, but killed
	}
	lines := sources(map[string][]string{
		"run/run.go":    numbered(25, map[int]string{15: "if grace <= 0 {", 22: "if grace <= 0 {", 5: "n := a + b"}),
		"run/status.go": numbered(10, map[int]string{4: "if ok {"}),
	})
	eq := Equivalents{
		{File: "run/run.go", Line: 12, Type: "CONDITIONALS_BOUNDARY", Fragment: "grace <= 0", Reason: "r"},
		{File: "run/run.go", Line: 5, Type: "ARITHMETIC_BASE", Fragment: "a + b", Reason: "r"},
		{File: "run/status.go", Line: 2, Type: "CONDITIONALS_NEGATION", Fragment: "if ok {", Reason: "r"},
	}
	got, stale, err := eq.Match(ms, lines)
	if err != nil {
		t.Fatal(err)
	}
	if want := []bool{true, false, false, false, false, false}; !reflect.DeepEqual(got, want) {
		t.Errorf("discounted %v, want %v", got, want)
	}
	if len(stale) != 2 || stale[0].Line != 5 || stale[1].File != "run/status.go" {
		t.Errorf("stale %v, want the killed arithmetic entry and the status.go entry", stale)
	}
}

func TestAColumnPicksOneMutantOfTheLine(t *testing.T) {
	eq, err := ParseEquivalents(strings.NewReader("run/run.go:3:12:ARITHMETIC_BASE | a + b + c | capacity hint"))
	if err != nil {
		t.Fatal(err)
	}
	ms := []Mutant{
		{File: "run/run.go", Line: 3, Column: 8, Type: "ARITHMETIC_BASE", Status: Lived},
		{File: "run/run.go", Line: 3, Column: 12, Type: "ARITHMETIC_BASE", Status: Lived},
	}
	lines := sources(map[string][]string{"run/run.go": {"", "", "\tn := a + b + c"}})
	got, stale, err := eq.Match(ms, lines)
	if err != nil || len(stale) != 0 || !reflect.DeepEqual(got, []bool{false, true}) {
		t.Errorf("discounted %v, stale %v, err %v; want only column 12", got, stale, err)
	}
}

func TestParseEquivalentsNamesTheBadLine(t *testing.T) {
	for name, tc := range map[string]struct{ in, want string }{
		"no reason":       {"run/run.go:3:ARITHMETIC_BASE | a + b", "line 1"},
		"empty reason":    {"run/run.go:3:ARITHMETIC_BASE | a + b | ", "needs both a code fragment and a reason"},
		"bad line number": {"\nrun/run.go:x:ARITHMETIC_BASE | a + b | r", `line 2: line number "x"`},
		"unknown mutator": {"run/run.go:3:ARITHMETIC | a + b | r", `unknown mutator "ARITHMETIC"`},
		"no mutator":      {"run/run.go:3 | a + b | r", "is not file:line:MUTATOR"},
		"bad column":      {"run/run.go:3:c:ARITHMETIC_BASE | a + b | r", `column "c"`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseEquivalents(strings.NewReader(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// The checked-in list must parse, and each entry must still point at its
// code: a fragment that is on no line of its file is a stale entry.
func TestCheckedInEquivalentsParseAndPointAtTheirCode(t *testing.T) {
	eq, err := ReadEquivalents("equivalent.txt")
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, p := range Packages() {
		known[p] = true
	}
	for _, e := range eq {
		if !known[filepath.Dir(e.File)] {
			t.Errorf("%s: %s is not one of the mutation-tested packages", e, filepath.Dir(e.File))
			continue
		}
		b, err := os.ReadFile(filepath.Join("..", e.File))
		if err != nil {
			t.Errorf("%s: %v", e, err)
			continue
		}
		if !strings.Contains(string(b), e.Fragment) {
			t.Errorf("%s: the fragment %q is no longer in %s", e, e.Fragment, e.File)
		}
	}
}

func TestFileLinesReadsTheRealLine(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "run"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "run", "a.go"), []byte("package run\n\nfunc f() {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	lines := FileLines(dir)
	if l, err := lines("run/a.go", 3); err != nil || l != "func f() {}" {
		t.Errorf("line 3 = %q, %v", l, err)
	}
	if _, err := lines("run/a.go", 9); err == nil || !strings.Contains(err.Error(), "no line 9") {
		t.Errorf("line 9: %v", err)
	}
	if _, err := lines("run/b.go", 1); err == nil {
		t.Error("a missing file read without error")
	}
}

func TestArgvAndEnv(t *testing.T) {
	o := Options{Workers: 2, TimeoutCoefficient: 10}
	got := Argv("/c/gremlins", "/repo", "run", "/w/run.json", o)
	want := []string{"/c/gremlins", "unleash", "--workers", "2", "--timeout-coefficient", "10", "--output", "/w/run.json", "/repo/magefiles/run"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("argv\n%q\nwant\n%q", got, want)
	}
	// go test's result cache must be off, or the coverage run replays in
	// milliseconds and every mutant times out.
	if got := Argv("g", "/repo", "ci", "r.json", o); !reflect.DeepEqual(got[len(got)-3:], []string{"--exclude-files", "^citest/", "/repo/magefiles/ci"}) {
		t.Errorf("ci argv %q: its test stand-in ci/citest must be left out", got)
	}
	if env := Env("run", "", false); !reflect.DeepEqual(env, []string{"GOFLAGS=-count=1"}) {
		t.Errorf("run env %q", env)
	}
	if env := Env("registry", "-mod=mod", true); !reflect.DeepEqual(env, []string{"GOFLAGS=-mod=mod -count=1 -skip=^(TestParallelCopiesSurviveWriteRaces|TestTheDefaultRetriesGiveUpAfterAboutTwoMinutes)$"}) {
		t.Errorf("registry env with the slow tests %q", env)
	}
	if env := Env("registry", "", false); !reflect.DeepEqual(env, []string{"GOFLAGS=-count=1 -skip=^(TestParallelCopiesSurviveWriteRaces|TestTheDefaultRetriesGiveUpAfterAboutTwoMinutes|TestRegistryDown|TestDefaultRetriesOutlastAnOutage)$"}) {
		t.Errorf("registry env %q", env)
	}
}

func TestSettings(t *testing.T) {
	env := func(kv ...string) func(string) (string, bool) {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	o, err := Settings(env())
	if err != nil {
		t.Fatal(err)
	}
	if o.Workers != 1 || o.TimeoutCoefficient != 10 || !o.Enforce || o.SlowTests || o.Packages != nil || o.Goal != (Goal{95, 90}) {
		t.Errorf("defaults %+v", o)
	}
	o, err = Settings(env(PackagesEnv, "run, schedule", WorkersEnv, "2", TimeoutEnv, "20", EnforceEnv, "0", SlowEnv, "1"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(o.Packages, []string{"run", "schedule"}) || o.Workers != 2 || o.TimeoutCoefficient != 20 || o.Enforce || !o.SlowTests {
		t.Errorf("settings %+v", o)
	}
	for _, kv := range [][2]string{
		{PackagesEnv, "run,stack"}, {WorkersEnv, "0"}, {WorkersEnv, "5"}, {WorkersEnv, "two"},
		{TimeoutEnv, "0"}, {EnforceEnv, "no"}, {SlowEnv, "yes"},
	} {
		_, err := Settings(env(kv[0], kv[1]))
		if err == nil || !strings.HasPrefix(err.Error(), kv[0]+"=") {
			t.Errorf("%s=%s: err = %v, want one naming the variable", kv[0], kv[1], err)
		}
	}
}

func TestStringJoinsAreNotViableEvenWhereNotCovered(t *testing.T) {
	for _, tc := range []struct {
		line string
		col  int
		want bool
	}{
		{`	torch110 = "torch==1.10.2 -f " + cu113`, 33, true},
		{"	return msg + \" (`mage images`\"", 13, true},
		{"	x := `a`+GoVersion", 10, true},
		{`	out = append(out, k+"="+v)`, 21, true},
		{`	n := a + b`, 9, false},               // numbers: a real mutant
		{`	grace = 3 * time.Second`, 12, false}, // not a +
		{`	s := "a" + b`, 3, false},             // the column is not the operator
	} {
		if got := joinsAString(tc.line, tc.col); got != tc.want {
			t.Errorf("joinsAString(%q, %d) = %v, want %v", tc.line, tc.col, got, tc.want)
		}
	}
	ms := []Mutant{
		{File: "run/run.go", Line: 1, Column: 33, Type: "ARITHMETIC_BASE", Status: NotCovered},
		{File: "run/run.go", Line: 2, Column: 9, Type: "ARITHMETIC_BASE", Status: NotCovered},
	}
	lines := sources(map[string][]string{"run/run.go": {`	torch110 = "torch==1.10.2 -f " + cu113`, `	n := a + b`}})
	s, err := Tally("run", ms, nil, lines)
	if err != nil {
		t.Fatal(err)
	}
	if s.NotViable != 1 || s.NotCovered != 1 || len(s.Survivors) != 1 || s.Survivors[0].Line != 2 {
		t.Errorf("tally %+v: want the string join not viable and the sum not covered", s)
	}
}

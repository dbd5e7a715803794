package mutants

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/determined-ai/environments/magefiles/run"
)

func TestMutateChangesTheOperatorAtTheColumnAsGremlinsDoes(t *testing.T) {
	for _, tc := range []struct {
		line string
		col  int
		typ  string
		want string
	}{
		{"\tdefaultTimeout  = 5 * time.Minute", 22, "ARITHMETIC_BASE", "\tdefaultTimeout  = 5 / time.Minute"},
		{"x := a/2 + b", 7, "ARITHMETIC_BASE", "x := a*2 + b"},
		{"x := a/2 + b", 10, "ARITHMETIC_BASE", "x := a/2 - b"},
		{"x := a % b", 8, "ARITHMETIC_BASE", "x := a * b"},
		{"if a <= b {", 6, "CONDITIONALS_BOUNDARY", "if a < b {"},
		{"if a <= b {", 6, "CONDITIONALS_NEGATION", "if a > b {"},
		{"if a < b {", 6, "CONDITIONALS_BOUNDARY", "if a <= b {"},
		{"if a < b {", 6, "CONDITIONALS_NEGATION", "if a >= b {"},
		{"if a > b {", 6, "CONDITIONALS_NEGATION", "if a <= b {"},
		{"if a >= b {", 6, "CONDITIONALS_BOUNDARY", "if a > b {"},
		{"case err != nil:", 10, "CONDITIONALS_NEGATION", "case err == nil:"},
		{"case err == nil:", 10, "CONDITIONALS_NEGATION", "case err != nil:"},
		{"i++", 2, "INCREMENT_DECREMENT", "i--"},
		{"if a && b {", 6, "INVERT_LOGICAL", "if a || b {"},
		{"n := -1", 6, "INVERT_NEGATIVES", "n := +1"},
	} {
		got, err := Mutate(tc.line, tc.col, tc.typ)
		if err != nil || got != tc.want {
			t.Errorf("Mutate(%q, %d, %s) = %q, %v; want %q", tc.line, tc.col, tc.typ, got, err, tc.want)
		}
	}
}

func TestMutateRefusesWhatItCannotChange(t *testing.T) {
	for _, tc := range []struct {
		line string
		col  int
		typ  string
		want string
	}{
		{"x -= 1", 3, "ARITHMETIC_BASE", "no operator"}, // -= is INVERT_ASSIGNMENTS' business
		{"if a <= b {", 6, "ARITHMETIC_BASE", "no operator"},
		{"x := a", 3, "CONDITIONALS_NEGATION", "no operator"},
		{"x := a", 40, "ARITHMETIC_BASE", "outside the line"},
		{"x += a", 3, "INVERT_ASSIGNMENTS", "cannot be applied"},
	} {
		_, err := Mutate(tc.line, tc.col, tc.typ)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Mutate(%q, %d, %s): %v, want an error saying %q", tc.line, tc.col, tc.typ, err, tc.want)
		}
	}
}

func TestKilledByNamesTheTests(t *testing.T) {
	for reason, want := range map[string][]string{
		"no cover block for a case expression; killed by TestA (checked by hand)": {"TestA"},
		"killed by TestA and TestB":                       {"TestA", "TestB"},
		"both negations killed by TestA, TestB and TestC": {"TestA", "TestB", "TestC"},
		"a capacity hint: the same slice whatever":        nil,
		"killed by the contract test":                     nil,
	} {
		if got := (Entry{Reason: reason}).KilledBy(); !reflect.DeepEqual(got, want) {
			t.Errorf("KilledBy(%q) = %v, want %v", reason, got, want)
		}
	}
}

// Confirm runs the mutants the "killed by" entries match against the named
// tests and counts them by the outcome; entries that say "equivalent" are
// left to Tally.
func TestConfirmCountsTheNamedTestsOutcome(t *testing.T) {
	file := []string{"package run", "const a = 5 * x", "const b = 6 * x", "const c = 7 * x", "func f() bool { return a != b }"}
	src := sources(map[string][]string{"run/run.go": file})
	read := func(string) (string, error) { return strings.Join(file, "\n"), nil }
	eq := Equivalents{
		{File: "run/run.go", Line: 2, Type: "ARITHMETIC_BASE", Fragment: "5 * x", Reason: "killed by TestA"},
		{File: "run/run.go", Line: 3, Type: "ARITHMETIC_BASE", Fragment: "6 * x", Reason: "killed by TestB and TestC"},
		{File: "run/run.go", Line: 4, Type: "ARITHMETIC_BASE", Fragment: "7 * x", Reason: "killed by TestD"},
		{File: "run/run.go", Line: 5, Type: "CONDITIONALS_NEGATION", Fragment: "a != b", Reason: "the same either way"},
		{File: "run/run.go", Line: 9, Type: "CONDITIONALS_NEGATION", Fragment: "gone()", Reason: "killed by TestE"},
	}
	ms := []Mutant{
		{File: "run/run.go", Line: 2, Column: 13, Type: "ARITHMETIC_BASE", Status: NotCovered},
		{File: "run/run.go", Line: 3, Column: 13, Type: "ARITHMETIC_BASE", Status: NotCovered},
		{File: "run/run.go", Line: 4, Column: 13, Type: "ARITHMETIC_BASE", Status: NotCovered},
		{File: "run/run.go", Line: 5, Column: 26, Type: "CONDITIONALS_NEGATION", Status: Lived},
	}
	var ran []string
	tests := func(_ context.Context, pkg, f, mutated string, names []string) (bool, error) {
		if pkg != "run" || f != "run/run.go" {
			t.Errorf("ran %s %s", pkg, f)
		}
		lines := strings.Split(mutated, "\n")
		ran = append(ran, strings.Join(names, ","))
		switch strings.Join(names, ",") {
		case "TestA":
			if lines[1] != "const a = 5 / x" || lines[2] != file[2] {
				t.Errorf("TestA ran against %q", mutated)
			}
			return false, nil // a test failed: killed
		case "TestB,TestC":
			return true, nil // all passed: the entry is wrong
		default:
			return false, errNotViable
		}
	}
	got, stale, err := Confirm(context.Background(), "run", ms, eq, src, read, tests)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"TestA", "TestB,TestC", "TestD"}; !reflect.DeepEqual(ran, want) {
		t.Errorf("ran %v, want %v", ran, want)
	}
	if got[0].Status != Killed || got[1].Status != Lived || !strings.Contains(got[1].Note, "TestB, TestC") ||
		got[2].Status != NotViable || got[3].Status != Lived || got[3].Note != "" {
		t.Errorf("statuses %v", got)
	}
	if len(stale) != 1 || stale[0].Fragment != "gone()" {
		t.Errorf("stale %v, want the TestE entry", stale)
	}
	s, err := Tally("run", got, eq, src)
	if err != nil {
		t.Fatal(err)
	}
	if s.Killed != 1 || s.Lived != 1 || s.Equivalent != 1 || s.NotViable != 1 || s.NotCovered != 0 {
		t.Errorf("tally %+v: want killed 1, lived 1 (the wrong entry), equivalent 1, not viable 1", s)
	}
}

// GoTests runs the real go test against the mutated file through an
// overlay: a mutant a test catches fails, one no test catches passes, one
// that does not compile is not viable, and the tree is never touched.
func TestGoTestsRunsTheMutantThroughAnOverlay(t *testing.T) {
	root := t.TempDir()
	write := func(p, s string) {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/m\n\ngo 1.22\n")
	orig := "package p\n\nconst limit = 2 * 60\n\nfunc Big(n int) bool { return n > limit }\n"
	write("magefiles/p/p.go", orig)
	write("magefiles/p/p_test.go", "package p\n\nimport \"testing\"\n\n"+
		"func TestLimit(t *testing.T) {\n\tif Big(120) || !Big(121) {\n\t\tt.Error(\"limit is not 120\")\n\t}\n}\n\n"+
		"func TestNothing(t *testing.T) {}\n")
	tests := GoTests(root, t.TempDir(), &run.Runner{})
	ctx := context.Background()
	mutated := strings.Replace(orig, "2 * 60", "2 / 60", 1)
	if passed, err := tests(ctx, "p", "p/p.go", mutated, []string{"TestLimit"}); err != nil || passed {
		t.Errorf("TestLimit against limit = 2 / 60: passed %v, %v; want it to fail", passed, err)
	}
	if passed, err := tests(ctx, "p", "p/p.go", mutated, []string{"TestNothing"}); err != nil || !passed {
		t.Errorf("TestNothing against the mutant: passed %v, %v; want it to pass", passed, err)
	}
	bad := strings.Replace(orig, "2 * 60", `"2" - 60`, 1)
	if _, err := tests(ctx, "p", "p/p.go", bad, []string{"TestLimit"}); !errors.Is(err, errNotViable) {
		t.Errorf("a mutant that does not compile: %v, want errNotViable", err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "magefiles/p/p.go")); string(b) != orig {
		t.Errorf("the tree's file changed: %q", b)
	}
}

func TestConfirmedCountsTheMutantsConfirmChanged(t *testing.T) {
	before := []Mutant{{Status: NotCovered}, {Status: NotCovered}, {Status: Lived}, {Status: Killed}}
	after := []Mutant{{Status: Killed}, {Status: NotCovered}, {Status: Lived, Note: "the named tests passed"}, {Status: Killed}}
	if n := confirmedCount(before, after); n != 2 {
		t.Errorf("confirmedCount = %d, want 2", n)
	}
}

package mutants

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/determined-ai/environments/magefiles/run"
)

// Some mutants gremlins never runs although a test would kill them: Go's
// cover has no block for a case expression or a package-level constant or
// initializer, so gremlins reports every mutant there NOT COVERED. An entry
// of equivalent.txt whose reason says "killed by TestA, TestB" names the
// tests that kill such a mutant; the target then runs those tests against
// the mutant itself (go test -overlay, the package's other files untouched)
// and counts it by the outcome, KILLED, LIVED or NOT VIABLE, instead of
// taking the entry's word for it.

// killedByRE finds the tests a reason names: "killed by TestA", "killed by
// TestA and TestB", "killed by TestA, TestB".
var killedByRE = regexp.MustCompile(`killed by ((?:Test\w+)(?:(?:,\s*|\s+and\s+)Test\w+)*)`)

var testNameRE = regexp.MustCompile(`Test\w+`)

// KilledBy returns the tests the entry's reason names after "killed by", or
// nil: then the entry says the mutant behaves like the original.
func (e Entry) KilledBy() []string {
	m := killedByRE.FindStringSubmatch(e.Reason)
	if m == nil {
		return nil
	}
	return testNameRE.FindAllString(m[1], -1)
}

// Confirmed returns the entries that name the tests killing their mutants.
func (eq Equivalents) Confirmed() Equivalents {
	var out Equivalents
	for _, e := range eq {
		if e.KilledBy() != nil {
			out = append(out, e)
		}
	}
	return out
}

// Equivalent returns the entries of mutants that behave like the original.
func (eq Equivalents) Equivalent() Equivalents {
	var out Equivalents
	for _, e := range eq {
		if e.KilledBy() == nil {
			out = append(out, e)
		}
	}
	return out
}

// mutations are gremlins' (v0.6.0) changes of an operator token, by mutator.
var mutations = map[string]map[string]string{
	"ARITHMETIC_BASE":       {"+": "-", "-": "+", "*": "/", "/": "*", "%": "*"},
	"CONDITIONALS_BOUNDARY": {">": ">=", ">=": ">", "<": "<=", "<=": "<"},
	"CONDITIONALS_NEGATION": {"==": "!=", "!=": "==", ">": "<=", ">=": "<", "<": ">=", "<=": ">"},
	"INCREMENT_DECREMENT":   {"++": "--", "--": "++"},
	"INVERT_LOGICAL":        {"&&": "||", "||": "&&"},
	"INVERT_NEGATIVES":      {"-": "+"},
}

// Mutate returns line with the operator at the 1-based byte column col
// changed as mutator typ changes it. Two-character operators are read
// whole ("<=" is not "<" followed by "=").
func Mutate(line string, col int, typ string) (string, error) {
	ops, ok := mutations[typ]
	if !ok {
		return "", fmt.Errorf("mutator %s cannot be applied here (known: %s)", typ, strings.Join(slices.Sorted(maps.Keys(mutations)), ", "))
	}
	i := col - 1
	if i < 0 || i >= len(line) {
		return "", fmt.Errorf("column %d is outside the line %q", col, line)
	}
	op := line[i : i+1]
	if i+2 <= len(line) && isOperator(line[i:i+2]) {
		op = line[i : i+2]
	}
	if to, ok := ops[op]; ok {
		return line[:i] + to + line[i+len(op):], nil
	}
	return "", fmt.Errorf("%s finds no operator it changes at column %d of %q", typ, col, line)
}

// isOperator reports whether s is a Go operator of two characters.
func isOperator(s string) bool {
	switch s {
	case "==", "!=", "<=", ">=", "&&", "||", "++", "--", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "<<", ">>", "&^", "<-", ":=":
		return true
	}
	return false
}

// Tests runs the tests named in a package against the module with one file
// replaced, and reports whether they passed; a mutant that does not compile
// is errNotViable. It is how Confirm runs a mutant.
type Tests func(ctx context.Context, pkg, file, mutated string, tests []string) (passed bool, err error)

var errNotViable = errors.New("the mutant does not compile")

// GoTests runs `go test -overlay` in root: file (relative to magefiles/) is
// read from a copy holding mutated, everything else from the tree.
func GoTests(root, workDir string, r *run.Runner) Tests {
	return func(ctx context.Context, pkg, file, mutated string, tests []string) (bool, error) {
		dir, err := os.MkdirTemp(workDir, "confirm-")
		if err != nil {
			return false, err
		}
		defer os.RemoveAll(dir)
		repl := filepath.Join(dir, filepath.Base(file))
		if err := os.WriteFile(repl, []byte(mutated), 0o644); err != nil {
			return false, err
		}
		ov, err := json.Marshal(map[string]map[string]string{"Replace": {filepath.Join(root, "magefiles", file): repl}})
		if err != nil {
			return false, err
		}
		overlay := filepath.Join(dir, "overlay.json")
		if err := os.WriteFile(overlay, ov, 0o644); err != nil {
			return false, err
		}
		var out strings.Builder
		g := &run.Runner{Out: &out, Err: &out, Grace: r.Grace, Dir: root, Env: []string{"GOFLAGS="}}
		err = g.RunTo(ctx, []string{"go", "test", "-count=1", "-overlay=" + overlay,
			"-run=^(" + strings.Join(tests, "|") + ")$", "./magefiles/" + pkg}, &out, &out)
		switch {
		case err == nil:
			return true, nil
		case ctx.Err() != nil:
			return false, ctx.Err()
		case strings.Contains(out.String(), "[build failed]") || strings.Contains(out.String(), "[setup failed]"):
			return false, errNotViable
		case strings.Contains(out.String(), "--- FAIL") || strings.Contains(out.String(), "panic:"):
			return false, nil
		}
		return false, fmt.Errorf("go test of the mutant neither passed nor failed a test: %w\n%s", err, tail(out.String(), 1500))
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// confirmedCount is how many of ms Confirm changed.
func confirmedCount(before, after []Mutant) int {
	n := 0
	for i := range before {
		if before[i].Status != after[i].Status || after[i].Note != "" {
			n++
		}
	}
	return n
}

// Confirm runs each not-covered or lived mutant of pkg that an entry naming
// its killing tests matches (Confirmed) against those tests, and returns ms
// with the outcome as its status: KILLED when a named test failed, LIVED
// when all passed (the entry is wrong), NOT VIABLE when the mutant does not
// compile. It also returns the confirming entries that matched nothing.
func Confirm(ctx context.Context, pkg string, ms []Mutant, eq Equivalents, src SourceLines, read func(file string) (string, error), t Tests) ([]Mutant, Equivalents, error) {
	entries := eq.ForPackage(pkg).Confirmed()
	owner, stale, err := entries.assign(ms, src)
	if err != nil {
		return nil, nil, err
	}
	out := append([]Mutant(nil), ms...)
	for i, m := range ms {
		if owner[i] < 0 {
			continue
		}
		e := entries[owner[i]]
		text, err := read(m.File)
		if err != nil {
			return nil, nil, err
		}
		lines := strings.Split(text, "\n")
		if m.Line < 1 || m.Line > len(lines) {
			return nil, nil, fmt.Errorf("%s has no line %d", m.File, m.Line)
		}
		mutated, err := Mutate(lines[m.Line-1], m.Column, m.Type)
		if err != nil {
			return nil, nil, fmt.Errorf("confirming %s (equivalent.txt %s): %w", m, e, err)
		}
		lines[m.Line-1] = mutated
		passed, err := t(ctx, pkg, m.File, strings.Join(lines, "\n"), e.KilledBy())
		switch {
		case errors.Is(err, errNotViable):
			out[i].Status = NotViable
		case err != nil:
			return nil, nil, fmt.Errorf("confirming %s: %w", m, err)
		case passed:
			out[i].Status = Lived
			out[i].Note = fmt.Sprintf("equivalent.txt says %s kill it; they passed", strings.Join(e.KilledBy(), ", "))
		default:
			out[i].Status = Killed
		}
	}
	return out, stale, nil
}

package mutants

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// Entry is one line of equivalent.txt: a mutant no test can tell apart from
// the original code, and why.
//
//	run/run.go:170:CONDITIONALS_BOUNDARY | grace <= 0 | Grace 0 and 3s are ...
//
// The fragment is code that must be on the mutated line; it keeps the entry
// attached to its code when the lines above it change: the entry matches the
// surviving mutants of that mutator on the line holding the fragment nearest
// to the recorded line.
type Entry struct {
	File string // relative to magefiles/, e.g. "run/run.go"
	Line int
	// Column, when not 0, picks one mutant of the line (file:line:col:MUTATOR).
	Column   int
	Type     string // the mutator, e.g. CONDITIONALS_BOUNDARY
	Fragment string
	Reason   string
}

func (e Entry) String() string {
	if e.Column > 0 {
		return fmt.Sprintf("%s:%d:%d:%s | %s", e.File, e.Line, e.Column, e.Type, e.Fragment)
	}
	return fmt.Sprintf("%s:%d:%s | %s", e.File, e.Line, e.Type, e.Fragment)
}

// Equivalents is the list of mutants known to be equivalent.
type Equivalents []Entry

// ParseEquivalents reads equivalent.txt: one entry a line,
// "file:line:MUTATOR | code fragment | reason" (or file:line:col:MUTATOR to
// pick one mutant of the line); blank lines and lines starting with # are
// ignored.
func ParseEquivalents(r io.Reader) (Equivalents, error) {
	var out Equivalents
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		parts := strings.SplitN(line, "|", 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("equivalent.txt line %d: %q: want \"file:line:MUTATOR | code fragment | reason\"", n, line)
		}
		where := strings.Split(strings.TrimSpace(parts[0]), ":")
		e := Entry{Fragment: strings.TrimSpace(parts[1]), Reason: strings.TrimSpace(parts[2])}
		if len(where) != 3 && len(where) != 4 {
			return nil, fmt.Errorf("equivalent.txt line %d: %q is not file:line:MUTATOR or file:line:col:MUTATOR", n, strings.TrimSpace(parts[0]))
		}
		l, err := strconv.Atoi(where[1])
		if err != nil || l < 1 {
			return nil, fmt.Errorf("equivalent.txt line %d: line number %q is not a positive number", n, where[1])
		}
		e.File, e.Line, e.Type = where[0], l, where[len(where)-1]
		if len(where) == 4 {
			if e.Column, err = strconv.Atoi(where[2]); err != nil || e.Column < 1 {
				return nil, fmt.Errorf("equivalent.txt line %d: column %q is not a positive number", n, where[2])
			}
		}
		if !knownMutator(e.Type) {
			return nil, fmt.Errorf("equivalent.txt line %d: unknown mutator %q (known: %s)", n, e.Type, strings.Join(mutatorTypes, ", "))
		}
		if e.Fragment == "" || e.Reason == "" {
			return nil, fmt.Errorf("equivalent.txt line %d: %s needs both a code fragment and a reason", n, parts[0])
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading equivalent.txt: %w", err)
	}
	return out, nil
}

// ReadEquivalents parses the file at path.
func ReadEquivalents(path string) (Equivalents, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("the list of equivalent mutants: %w", err)
	}
	defer f.Close()
	return ParseEquivalents(f)
}

// mutatorTypes are gremlins' mutator names.
var mutatorTypes = []string{
	"ARITHMETIC_BASE", "CONDITIONALS_BOUNDARY", "CONDITIONALS_NEGATION", "INCREMENT_DECREMENT",
	"INVERT_ASSIGNMENTS", "INVERT_BITWISE", "INVERT_BWASSIGN", "INVERT_LOGICAL", "INVERT_LOOPCTRL",
	"INVERT_NEGATIVES", "REMOVE_SELF_ASSIGNMENTS",
}

func knownMutator(t string) bool {
	for _, m := range mutatorTypes {
		if m == t {
			return true
		}
	}
	return false
}

// ForPackage returns the entries of the files of package directory pkg.
func (eq Equivalents) ForPackage(pkg string) Equivalents {
	var out Equivalents
	for _, e := range eq {
		if filepath.Dir(e.File) == pkg {
			out = append(out, e)
		}
	}
	return out
}

// SourceLines returns the text of a line of a file (relative to magefiles/).
type SourceLines func(file string, line int) (string, error)

// FileLines reads source lines from the files under dir (magefiles/).
func FileLines(dir string) SourceLines {
	var mu sync.Mutex
	cache := map[string][]string{}
	return func(file string, line int) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		lines, ok := cache[file]
		if !ok {
			b, err := os.ReadFile(filepath.Join(dir, file))
			if err != nil {
				return "", fmt.Errorf("reading the mutated source: %w", err)
			}
			lines = strings.Split(string(b), "\n")
			cache[file] = lines
		}
		if line < 1 || line > len(lines) {
			return "", fmt.Errorf("%s has %d lines, no line %d", file, len(lines), line)
		}
		return lines[line-1], nil
	}
}

// Match marks the mutants the entries discount: for each entry, among the
// lived or not-covered mutants of its file and mutator whose line holds its
// fragment, those on the line nearest to the entry's line. It also returns
// the entries that matched nothing (stale: the code changed or a test now
// kills the mutant).
func (eq Equivalents) Match(ms []Mutant, src SourceLines) (discounted []bool, stale Equivalents, err error) {
	owner, stale, err := eq.assign(ms, src)
	if err != nil {
		return nil, nil, err
	}
	discounted = make([]bool, len(ms))
	for i, o := range owner {
		discounted[i] = o >= 0
	}
	return discounted, stale, nil
}

// assign is Match that also says which entry took each mutant: owner[i] is
// the index in eq of the entry that matches ms[i], or -1.
func (eq Equivalents) assign(ms []Mutant, src SourceLines) (owner []int, stale Equivalents, err error) {
	owner = make([]int, len(ms))
	for i := range owner {
		owner[i] = -1
	}
	for k, e := range eq {
		best := -1
		for _, m := range ms {
			if !e.covers(m) {
				continue
			}
			text, err := src(m.File, m.Line)
			if err != nil {
				return nil, nil, err
			}
			if !strings.Contains(text, e.Fragment) {
				continue
			}
			if best < 0 || distance(m.Line, e.Line) < distance(best, e.Line) {
				best = m.Line
			}
		}
		if best < 0 {
			stale = append(stale, e)
			continue
		}
		for i, m := range ms {
			if m.Line == best && e.covers(m) {
				owner[i] = k
			}
		}
	}
	return owner, stale, nil
}

// covers reports whether m is a survivor of e's file, mutator and column.
func (e Entry) covers(m Mutant) bool {
	return m.File == e.File && m.Type == e.Type && (e.Column == 0 || m.Column == e.Column) &&
		(m.Status == Lived || m.Status == NotCovered)
}

func distance(a, b int) int {
	if a > b {
		return a - b
	}
	return b - a
}

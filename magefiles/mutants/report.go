// Package mutants runs mutation testing on the library packages: it builds
// the mutation tester pinned in tools/mutants/go.mod (gremlins), runs it on
// one package at a time against that package's unit tests, reads its JSON
// report, discounts the mutants listed as equivalent in equivalent.txt, and
// scores each package against the goal (test efficacy and mutator coverage).
package mutants

import (
	"encoding/json"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
)

// The statuses gremlins gives a mutant.
const (
	Killed     = "KILLED"      // a test failed: the mutant was caught
	Lived      = "LIVED"       // every test passed with the mutant in place
	NotCovered = "NOT COVERED" // no test runs the mutated line
	TimedOut   = "TIMED OUT"   // the tests ran past the time limit
	NotViable  = "NOT VIABLE"  // the mutant does not compile
	Skipped    = "SKIPPED"
	Runnable   = "RUNNABLE" // dry runs only
)

// Mutant is one change the tester made to the code and what the tests did.
type Mutant struct {
	// File is the path of the source file under magefiles/, e.g. "run/run.go".
	File   string
	Line   int
	Column int
	// Type is the mutator, e.g. CONDITIONALS_BOUNDARY.
	Type   string
	Status string
	// Note says why the status is not gremlins' own (see Confirm).
	Note string
}

func (m Mutant) String() string {
	if m.Note != "" {
		return fmt.Sprintf("%s:%d:%d %s %s (%s)", m.File, m.Line, m.Column, m.Type, m.Status, m.Note)
	}
	return fmt.Sprintf("%s:%d:%d %s %s", m.File, m.Line, m.Column, m.Type, m.Status)
}

// gremlinsReport is the part of gremlins' --output JSON the score needs.
type gremlinsReport struct {
	Files []struct {
		Name      string `json:"file_name"`
		Mutations []struct {
			Type   string `json:"type"`
			Status string `json:"status"`
			Line   int    `json:"line"`
			Column int    `json:"column"`
		} `json:"mutations"`
	} `json:"files"`
}

// ParseReport reads gremlins' JSON report of the package in directory pkg
// (relative to magefiles/, e.g. "run"); its file names are relative to the
// package directory. Mutants come back sorted by file, line and column.
func ParseReport(r io.Reader, pkg string) ([]Mutant, error) {
	var rep gremlinsReport
	if err := json.NewDecoder(r).Decode(&rep); err != nil {
		return nil, fmt.Errorf("reading the gremlins report of %s: %w", pkg, err)
	}
	var out []Mutant
	for _, f := range rep.Files {
		if f.Name == "" {
			return nil, fmt.Errorf("the gremlins report of %s has a file without a name", pkg)
		}
		for _, m := range f.Mutations {
			switch m.Status {
			case Killed, Lived, NotCovered, TimedOut, NotViable, Skipped, Runnable:
			default:
				return nil, fmt.Errorf("the gremlins report of %s: unknown status %q at %s:%d (known: %s, %s, %s, %s, %s, %s, %s)",
					pkg, m.Status, f.Name, m.Line, Killed, Lived, NotCovered, TimedOut, NotViable, Skipped, Runnable)
			}
			out = append(out, Mutant{File: path.Join(pkg, f.Name), Line: m.Line, Column: m.Column, Type: m.Type, Status: m.Status})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Column != b.Column {
			return a.Column < b.Column
		}
		return a.Type < b.Type
	})
	return out, nil
}

// Goal is the least test efficacy and mutator coverage, in percent, each
// package must reach.
type Goal struct {
	Efficacy, Coverage float64
}

// DefaultGoal is issue 23's goal: efficacy >= 95 % and coverage >= 90 %.
func DefaultGoal() Goal { return Goal{Efficacy: 95, Coverage: 90} }

// Score is one package's result after the equivalent mutants are taken out.
type Score struct {
	Package                                                 string
	Killed, Lived, NotCovered, TimedOut, NotViable, Skipped int
	// Equivalent counts the mutants (lived or not covered) discounted
	// because equivalent.txt lists them.
	Equivalent int
	// Confirmed counts the mutants gremlins could not run that the target
	// ran against the tests equivalent.txt names (Confirm), whatever the
	// outcome; they are in Killed, Lived or NotViable.
	Confirmed int
	// Survivors are the lived and not-covered mutants that are not listed
	// as equivalent: each needs a test or an entry in equivalent.txt.
	Survivors []Mutant
	// Stale are the package's entries in equivalent.txt that matched no
	// surviving mutant.
	Stale Equivalents
}

// Efficacy is the percentage of the covered mutants that a test killed
// (gremlins' "test efficacy"); 100 when no mutant was covered.
func (s Score) Efficacy() float64 {
	if s.Killed+s.Lived == 0 {
		return 100
	}
	return 100 * float64(s.Killed) / float64(s.Killed+s.Lived)
}

// Coverage is the percentage of the mutants that some test runs
// (gremlins' "mutator coverage"); 100 when there are none.
func (s Score) Coverage() float64 {
	n := s.Killed + s.Lived + s.NotCovered
	if n == 0 {
		return 100
	}
	return 100 * float64(s.Killed+s.Lived) / float64(n)
}

// Meets reports whether the score reaches the goal.
func (s Score) Meets(g Goal) bool {
	return s.Efficacy() >= g.Efficacy && s.Coverage() >= g.Coverage
}

// Summary is the one-line result of a package.
func (s Score) Summary() string {
	return fmt.Sprintf("%-9s efficacy %5.1f %%  coverage %5.1f %%  (killed %d, lived %d, not covered %d, equivalent %d, timed out %d, not viable %d; run by the target %d)",
		s.Package, s.Efficacy(), s.Coverage(), s.Killed, s.Lived, s.NotCovered, s.Equivalent, s.TimedOut, s.NotViable, s.Confirmed)
}

// Tally scores the mutants of one package, discounting those the
// entries of equivalent.txt for pkg that say "equivalent" match (see
// Equivalents.Match); the entries that name the tests killing their mutant
// count through Confirm, which runs before.
func Tally(pkg string, ms []Mutant, eq Equivalents, src SourceLines) (Score, error) {
	discounted, stale, err := eq.ForPackage(pkg).Equivalent().Match(ms, src)
	if err != nil {
		return Score{}, err
	}
	s := Score{Package: pkg, Stale: stale}
	for i, m := range ms {
		if discounted[i] {
			s.Equivalent++
			continue
		}
		switch m.Status {
		case Killed:
			s.Killed++
		case Lived:
			s.Lived++
			s.Survivors = append(s.Survivors, m)
		case NotCovered:
			if m.Type == "ARITHMETIC_BASE" {
				text, err := src(m.File, m.Line)
				if err != nil {
					return Score{}, err
				}
				if joinsAString(text, m.Column) {
					// Package-level initializers have no cover block;
					// once run, the mutant would not compile.
					s.NotViable++
					continue
				}
			}
			s.NotCovered++
			s.Survivors = append(s.Survivors, m)
		case TimedOut:
			s.TimedOut++
		case NotViable:
			s.NotViable++
		case Skipped:
			s.Skipped++
		case Runnable:
			return Score{}, fmt.Errorf("%s: mutant %s was never run (a dry-run report?)", pkg, m)
		}
	}
	return s, nil
}

// joinsAString reports whether the operator at the 1-based byte column col
// of line is a + with a string literal on either side: changing it to -, *,
// / or % does not compile, so the mutant is not viable.
func joinsAString(line string, col int) bool {
	i := col - 1
	if i < 0 || i >= len(line) || line[i] != '+' {
		return false
	}
	before := strings.TrimRight(line[:i], " \t")
	after := strings.TrimLeft(line[i+1:], " \t")
	quote := func(c byte) bool { return c == '"' || c == '`' }
	return (before != "" && quote(before[len(before)-1])) || (after != "" && quote(after[0]))
}

package gotest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// SkipsFile is the allow-list of skipped tests, relative to the repository
// root: a skipped test not listed there fails the test command.
const SkipsFile = "magefiles/gotest/skips.txt"

// Allowed are the entries of the allow-list: one test a line,
//
//	<package> <Test or Test/sub> <reason ...>
//
// package being the directory in the module (magefiles/recipes). Blank
// lines and lines starting with # are ignored. An entry for a test covers
// its subtests.
type Allowed []allowEntry

type allowEntry struct {
	pkg, test, reason string
}

// LoadAllowed reads the allow-list at path.
func LoadAllowed(path string) (Allowed, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading the allow-list of skipped tests: %w", err)
	}
	defer f.Close()
	return ParseAllowed(f, path)
}

// ParseAllowed parses an allow-list; name is used in errors.
func ParseAllowed(r io.Reader, name string) (Allowed, error) {
	var out Allowed
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 3 || !strings.HasPrefix(f[1], "Test") {
			return nil, fmt.Errorf("%s:%d: %q: want <package> <TestName> <reason>; every skipped test is listed with why it may skip", name, n, line)
		}
		out = append(out, allowEntry{pkg: strings.Trim(f[0], "./"), test: f[1], reason: strings.Join(f[2:], " ")})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	return out, nil
}

// reasonFor is the listed reason for a skip, and whether it is listed.
func (a Allowed) reasonFor(s Skip) (string, bool) {
	for _, e := range a {
		if (s.Package == e.pkg || strings.HasSuffix(s.Package, "/"+e.pkg)) &&
			(s.Test == e.test || strings.HasPrefix(s.Test, e.test+"/")) {
			return e.reason, true
		}
	}
	return "", false
}

// CheckSkips prints every skipped test with its reason and fails when one
// is not in the allow-list: a skip must never pass unseen.
func CheckSkips(w io.Writer, what string, skips []Skip, allowed Allowed) error {
	var unlisted []string
	for _, s := range skips {
		if reason, ok := allowed.reasonFor(s); ok {
			fmt.Fprintf(w, "  skipped: %s (allowed: %s)\n", s, reason)
			continue
		}
		fmt.Fprintf(w, "  skipped: %s (NOT in %s)\n", s, SkipsFile)
		unlisted = append(unlisted, s.Package+"."+s.Test)
	}
	if len(unlisted) > 0 {
		return errors.New(what + ": skipped tests not in " + SkipsFile + " (make them run, or list each with its reason): " + strings.Join(unlisted, ", "))
	}
	return nil
}

package gotest

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A stream with a plain skip, a test whose subtests all skip (go test says
// it passed), one with nested subtests that all skip, and a test with one
// skipped and one passing subtest.
const skipStream = `{"Action":"run","Package":"m/magefiles/p","Test":"TestPlain"}
{"Action":"output","Package":"m/magefiles/p","Test":"TestPlain","Output":"=== RUN   TestPlain\n"}
{"Action":"output","Package":"m/magefiles/p","Test":"TestPlain","Output":"--- SKIP: TestPlain (0.00s)\n"}
{"Action":"output","Package":"m/magefiles/p","Test":"TestPlain","Output":"    p_test.go:9: needs a GPU\n"}
{"Action":"skip","Package":"m/magefiles/p","Test":"TestPlain","Elapsed":0}
{"Action":"run","Package":"m/magefiles/p","Test":"TestAllSubs"}
{"Action":"run","Package":"m/magefiles/p","Test":"TestAllSubs/a"}
{"Action":"output","Package":"m/magefiles/p","Test":"TestAllSubs/a","Output":"    p_test.go:20: no a here\n"}
{"Action":"skip","Package":"m/magefiles/p","Test":"TestAllSubs/a","Elapsed":0}
{"Action":"run","Package":"m/magefiles/p","Test":"TestAllSubs/b"}
{"Action":"skip","Package":"m/magefiles/p","Test":"TestAllSubs/b","Elapsed":0}
{"Action":"pass","Package":"m/magefiles/p","Test":"TestAllSubs","Elapsed":0}
{"Action":"run","Package":"m/magefiles/p","Test":"TestNested/x/y"}
{"Action":"skip","Package":"m/magefiles/p","Test":"TestNested/x/y","Elapsed":0}
{"Action":"pass","Package":"m/magefiles/p","Test":"TestNested/x","Elapsed":0}
{"Action":"pass","Package":"m/magefiles/p","Test":"TestNested","Elapsed":0}
{"Action":"run","Package":"m/magefiles/p","Test":"TestSome/x"}
{"Action":"skip","Package":"m/magefiles/p","Test":"TestSome/x","Elapsed":0}
{"Action":"pass","Package":"m/magefiles/p","Test":"TestSome/y","Elapsed":0}
{"Action":"pass","Package":"m/magefiles/p","Test":"TestSome","Elapsed":0}
{"Action":"pass","Package":"m/magefiles/p","Test":"TestFine","Elapsed":0}
{"Action":"output","Package":"m/magefiles/p","Output":"ok  \tm/magefiles/p\t0.01s\n"}
{"Action":"pass","Package":"m/magefiles/p","Elapsed":0.01}
`

func TestSkipsAreCountedIncludingTestsWhoseSubtestsAllSkip(t *testing.T) {
	var out bytes.Buffer
	s := Render(strings.NewReader(skipStream), &out)
	// TestPlain, TestAllSubs and TestNested skipped; TestSome and TestFine passed.
	if s.Passed != 2 || s.Failed != 0 || s.Skipped != 3 {
		t.Errorf("passed %d, failed %d, skipped %d; want 2, 0, 3", s.Passed, s.Failed, s.Skipped)
	}
	var got []string
	for _, sk := range s.Skips {
		got = append(got, sk.String())
	}
	want := []string{
		"m/magefiles/p.TestPlain: needs a GPU",
		"m/magefiles/p.TestAllSubs/a: no a here",
		"m/magefiles/p.TestAllSubs/b: no reason given",
		"m/magefiles/p.TestNested/x/y: no reason given",
		"m/magefiles/p.TestSome/x: no reason given",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("skips:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestASkipFailsUnlessListedWithItsReason(t *testing.T) {
	skips := []Skip{
		{"m/magefiles/p", "TestPlain", "needs a GPU"},
		{"m/magefiles/p", "TestAllSubs/a", "no a here"},
		{"m/magefiles/q", "TestOther", "flaky"},
	}
	allowed, err := ParseAllowed(strings.NewReader("# comment\n\nmagefiles/p TestPlain GPU tests run on the GPU machines\nmagefiles/p TestAllSubs the subtests need X\n"), "skips.txt")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = CheckSkips(&out, "unit", skips, allowed)
	if err == nil || !strings.Contains(err.Error(), "m/magefiles/q.TestOther") || strings.Contains(err.Error(), "TestPlain") || strings.Contains(err.Error(), "TestAllSubs") {
		t.Errorf("error %v, want one naming only m/magefiles/q.TestOther", err)
	}
	for _, want := range []string{
		"skipped: m/magefiles/p.TestPlain: needs a GPU (allowed: GPU tests run on the GPU machines)",
		"skipped: m/magefiles/p.TestAllSubs/a: no a here (allowed: the subtests need X)",
		"skipped: m/magefiles/q.TestOther: flaky (NOT in " + SkipsFile + ")",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if err := CheckSkips(&out, "unit", skips[:2], allowed); err != nil {
		t.Errorf("listed skips refused: %v", err)
	}
	// Another package's test of the same name is not covered.
	if err := CheckSkips(&out, "unit", []Skip{{"m/magefiles/pq", "TestPlain", "x"}}, allowed); err == nil {
		t.Error("an entry for magefiles/p allowed a skip in magefiles/pq")
	}
}

func TestAnEntryWithoutAReasonIsRefused(t *testing.T) {
	for _, bad := range []string{"magefiles/p TestPlain\n", "magefiles/p\n", "magefiles/p NotATest because\n"} {
		if _, err := ParseAllowed(strings.NewReader(bad), "skips.txt"); err == nil || !strings.Contains(err.Error(), "skips.txt:1") {
			t.Errorf("%q: error %v, want one naming skips.txt:1", bad, err)
		}
	}
}

// The allow-list in the repository parses, and each entry names a test
// that exists in its package.
func TestTheRepositorysAllowListIsValid(t *testing.T) {
	root := filepath.Join("..", "..")
	allowed, err := LoadAllowed(filepath.Join(root, SkipsFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range allowed {
		top, _, _ := strings.Cut(e.test, "/")
		files, _ := filepath.Glob(filepath.Join(root, e.pkg, "*_test.go"))
		found := false
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(b), "func "+top+"(t *testing.T)") {
				found = true
			}
		}
		if !found {
			t.Errorf("%s lists %s %s, which does not exist", SkipsFile, e.pkg, e.test)
		}
	}
}

func TestAddCountsBothRuns(t *testing.T) {
	s := Summary{Passed: 2, Failed: 1, FailedTests: []string{"p.TestA"}}
	s.Add(Summary{Passed: 1, Skipped: 1, Skips: []Skip{{"q", "TestB", "why"}}, Tallies: []string{"q: x tried: 1"}})
	if s.Passed != 3 || s.Failed != 1 || s.Skipped != 1 || len(s.Skips) != 1 || len(s.Tallies) != 1 || len(s.FailedTests) != 1 {
		t.Errorf("%+v", s)
	}
}

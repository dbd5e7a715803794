package gotest

import (
	"bytes"
	"strings"
	"testing"
)

const stream = `{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestA","Output":"=== RUN   TestA\n"}
{"Action":"output","Package":"p","Test":"TestA","Output":"    a_test.go:9: bad inputs tried: 20, all rejected\n"}
{"Action":"pass","Package":"p","Test":"TestA","Elapsed":0.01}
{"Action":"run","Package":"p","Test":"TestB"}
{"Action":"output","Package":"p","Test":"TestB/sub","Output":"    b_test.go:3: boom\n"}
{"Action":"fail","Package":"p","Test":"TestB/sub","Elapsed":0}
{"Action":"fail","Package":"p","Test":"TestB","Elapsed":0.02}
{"Action":"skip","Package":"p","Test":"TestC","Elapsed":0}
{"Action":"output","Package":"p","Output":"FAIL\tp\t0.03s\n"}
{"Action":"fail","Package":"p","Elapsed":0.03}
`

func TestRenderCountsTopLevelTestsAndShowsFailures(t *testing.T) {
	var out bytes.Buffer
	s := Render(strings.NewReader(stream), &out)
	if s.Passed != 1 || s.Failed != 1 || s.Skipped != 1 {
		t.Errorf("summary %+v", s)
	}
	if len(s.Tallies) != 1 || s.Tallies[0] != "p: bad inputs tried: 20, all rejected" {
		t.Errorf("tallies %q", s.Tallies)
	}
	for _, want := range []string{"--- FAIL: TestB/sub (p", "boom", "FAIL\tp\t0.03s"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "bad inputs tried") {
		t.Error("output of a passing test was printed")
	}
}

package bench

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/determined-ai/environments/magefiles/build"
	"github.com/determined-ai/environments/magefiles/catalog"
	"github.com/determined-ai/environments/magefiles/plan"
	"github.com/determined-ai/environments/magefiles/recipe"
	"github.com/determined-ai/environments/magefiles/variant"
)

var figureLine = regexp.MustCompile(`^bench [a-z0-9-]+: -?[0-9]+(\.[0-9]+)?$`)

func TestLine(t *testing.T) {
	for _, c := range []struct {
		name string
		v    float64
		prec int
		want string
	}{
		{FigPlanMatrix, 1.23456, 3, "bench plan-matrix-ms: 1.235"},
		{FigNGCCopyBytes, 0, 0, "bench ngc-copy-uploaded-bytes: 0"},
		{FigScheduler, 0.2, 3, "bench scheduler-ratio: 0.200"},
		{FigCacheRebuild, 12.25, 2, "bench cache-rebuild-s: 12.25"},
		{FigNoCacheRebuild, 7, 2, "bench nocache-rebuild-s: 7.00"},
	} {
		got := Line(c.name, c.v, c.prec)
		if got != c.want {
			t.Errorf("Line(%q, %v, %d) = %q, want %q", c.name, c.v, c.prec, got, c.want)
		}
		if !figureLine.MatchString(got) {
			t.Errorf("%q does not match %s", got, figureLine)
		}
	}
}

func TestReporterLines(t *testing.T) {
	var buf bytes.Buffer
	r := &reporter{w: &buf}
	r.figure(FigRepublish, 0.05, 3, &Goal{Max: 0.10, Say: "<= 0.10"})
	r.figure(FigDryRunPublish, 400, 1, &Goal{Max: 300, Say: "<= 300"})
	r.figure(FigCriticalPath, 0.2, 3, nil)
	r.note("bench notes never start like a figure")
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	want := []string{
		"bench republish-ratio: 0.050",
		"  goal <= 0.10: met",
		"bench dryrun-publish-ms: 400.0",
		"  goal <= 300: MISSED",
		"bench critical-path-ratio: 0.200",
		"  bench notes never start like a figure",
	}
	if !slices.Equal(lines, want) {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "bench ") && !figureLine.MatchString(l) {
			t.Errorf("figure line %q is malformed", l)
		}
	}
}

func TestGoalMet(t *testing.T) {
	limit := 0.35
	g := Goal{Met: func(v float64) bool { return v <= limit }, Say: "<= 0.35"}
	if got := goalNote(g, 0.3); got != "  goal <= 0.35: met" {
		t.Error(got)
	}
	if got := goalNote(g, 0.4); got != "  goal <= 0.35: MISSED" {
		t.Error(got)
	}
	if got := goalNote(Goal{Max: 0, Say: "0"}, 0); got != "  goal 0: met" {
		t.Error(got)
	}
	if got := goalNote(Goal{Max: 10, Say: "<= 10"}, math.NaN()); !strings.HasSuffix(got, "MISSED") {
		t.Error(got)
	}
}

func sec(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }

func TestCriticalPath(t *testing.T) {
	durs := map[string]time.Duration{
		"base-a": sec(3), "base-b": sec(5),
		"fw-a1": sec(4), "fw-a2": sec(1),
		"fw-b1": sec(1),
		"solo":  sec(7),
	}
	deps := map[string][]string{"fw-a1": {"base-a"}, "fw-a2": {"base-a"}, "fw-b1": {"base-b"}}
	cp, chain, err := CriticalPath(durs, deps)
	if err != nil {
		t.Fatal(err)
	}
	if cp != sec(7) {
		t.Errorf("critical path %s, want 7s", cp)
	}
	// base-a -> fw-a1 and solo are both 7s; ties go to the first name.
	if !slices.Equal(chain, []string{"base-a", "fw-a1"}) {
		t.Errorf("chain %v", chain)
	}
	durs["fw-b1"] = sec(3)
	cp, chain, err = CriticalPath(durs, deps)
	if err != nil {
		t.Fatal(err)
	}
	if cp != sec(8) || !slices.Equal(chain, []string{"base-b", "fw-b1"}) {
		t.Errorf("got %s %v, want 8s [base-b fw-b1]", cp, chain)
	}
	if got := Sum(durs); got != sec(23) {
		t.Errorf("sum %s, want 23s", got)
	}
	r, err := Ratio(cp, Sum(durs))
	if err != nil || math.Abs(r-8.0/23) > 1e-9 {
		t.Errorf("ratio %v %v", r, err)
	}
}

func TestCriticalPathChains(t *testing.T) {
	// A three-long chain beats a heavier single job only when it is longer.
	durs := map[string]time.Duration{"a": sec(1), "b": sec(1), "c": sec(1), "d": sec(2.5)}
	deps := map[string][]string{"b": {"a"}, "c": {"b"}}
	cp, chain, err := CriticalPath(durs, deps)
	if err != nil || cp != sec(3) || !slices.Equal(chain, []string{"a", "b", "c"}) {
		t.Errorf("got %s %v %v", cp, chain, err)
	}
	// A job with two deps takes the longer one.
	durs = map[string]time.Duration{"x": sec(1), "y": sec(2), "z": sec(1)}
	deps = map[string][]string{"z": {"x", "y"}}
	cp, chain, err = CriticalPath(durs, deps)
	if err != nil || cp != sec(3) || !slices.Equal(chain, []string{"y", "z"}) {
		t.Errorf("got %s %v %v", cp, chain, err)
	}
}

func TestCriticalPathErrors(t *testing.T) {
	if _, _, err := CriticalPath(map[string]time.Duration{"a": 1}, map[string][]string{"a": {"b"}}); err == nil {
		t.Error("missing dependency duration: no error")
	}
	if _, _, err := CriticalPath(map[string]time.Duration{"a": 1}, map[string][]string{"c": nil}); err == nil {
		t.Error("missing image duration: no error")
	}
	if _, _, err := CriticalPath(map[string]time.Duration{"a": 1, "b": 1}, map[string][]string{"a": {"b"}, "b": {"a"}}); err == nil {
		t.Error("cycle: no error")
	}
}

func TestCriticalPathCatalog(t *testing.T) {
	// With every base 3s and every other image 3s, the path is base+framework
	// (6s) out of 17 images (51s).
	durs := map[string]time.Duration{}
	for _, img := range catalog.All() {
		durs[img.Name] = sec(3)
	}
	cp, chain, err := CriticalPath(durs, catalogDeps())
	if err != nil {
		t.Fatal(err)
	}
	if cp != sec(6) || len(chain) != 2 {
		t.Errorf("got %s %v", cp, chain)
	}
	if base, err := catalog.Lookup(chain[0]); err != nil || !base.IsBase() {
		t.Errorf("chain %v does not start at a base", chain)
	}
	r, err := Ratio(cp, Sum(durs))
	if err != nil || math.Abs(r-6.0/51) > 1e-9 {
		t.Errorf("ratio %v %v", r, err)
	}
}

func TestRatioAndMedian(t *testing.T) {
	if _, err := Ratio(sec(1), 0); err == nil {
		t.Error("zero denominator: no error")
	}
	if _, err := Ratio(-1, sec(1)); err == nil {
		t.Error("negative numerator: no error")
	}
	if r, err := Ratio(sec(1), sec(4)); err != nil || r != 0.25 {
		t.Errorf("Ratio(1s, 4s) = %v, %v", r, err)
	}
	if m, err := Median([]time.Duration{5, 1, 3}); err != nil || m != 3 {
		t.Errorf("median %v %v", m, err)
	}
	if m, err := Median([]time.Duration{4, 1, 3, 2}); err != nil || m != 2 { // (2+3)/2 truncated
		t.Errorf("median %v %v", m, err)
	}
	if _, err := Median(nil); err == nil {
		t.Error("median of nothing: no error")
	}
	if Ms(1500*time.Microsecond) != 1.5 || Sec(1500*time.Millisecond) != 1.5 {
		t.Error("unit conversion")
	}
}

func TestValidCombos(t *testing.T) {
	// MPI off: 1; MPI on: OFI x NCCL (4), plus AWS trace with OFI and NCCL (1).
	if n := len(ValidCombos()); n != 6 {
		t.Errorf("%d valid combinations, want 6", n)
	}
	cases := matrixCases()
	if len(cases) != 6*2*2 {
		t.Errorf("%d matrix cases, want 24", len(cases))
	}
	specs, err := planAll(cases, catalog.Names(), filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if want := len(cases) * len(catalog.All()); specs != want {
		t.Errorf("%d specs, want %d", specs, want)
	}
}

func TestPlanMatrixFigure(t *testing.T) {
	defer func(d time.Duration) { matrixBudget = d }(matrixBudget)
	matrixBudget = 0
	var buf bytes.Buffer
	if err := planMatrix(&reporter{w: &buf}, filepath.Join("..", "..")); err != nil {
		t.Fatal(err)
	}
	first := strings.SplitN(buf.String(), "\n", 2)[0]
	if !figureLine.MatchString(first) || !strings.HasPrefix(first, "bench "+FigPlanMatrix+": ") {
		t.Errorf("first line %q", first)
	}
}

// TestStandInRecipesMatchRealOnes keeps the stand-in recipes in step with the
// real ones: the same stages, and per stage the same visible ARGs.
func TestStandInRecipesMatchRealOnes(t *testing.T) {
	root := filepath.Join("..", "..")
	for _, file := range []string{catalog.RecipeCPU, catalog.RecipeGPU} {
		real := parse(t, filepath.Join(root, file))
		stand := parse(t, filepath.Join(standInDir, file))
		diffs, err := recipe.Differences(real, stand)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range diffs {
			t.Errorf("%s; update %s", d, filepath.Join(standInDir, file))
		}
	}
}

// TestStandInsAcceptEveryPlan runs the tool's own ARG check on the stand-ins
// for every image of every matrix case.
func TestStandInsAcceptEveryPlan(t *testing.T) {
	for _, c := range matrixCases() {
		s, err := variant.Parse(variant.MapLookup(c.env), "0.1.0", "abc1234")
		if err != nil {
			t.Fatal(err)
		}
		specs, err := plan.Plan(s, plan.Request{Images: catalog.Names(), Mode: c.mode})
		if err != nil {
			t.Fatal(err)
		}
		if err := build.CheckArgs(standInDir, specs); err != nil {
			t.Errorf("%v: %v", c.env, err)
		}
	}
}

func TestCacheEdit(t *testing.T) {
	img, err := catalog.Lookup(cacheImage)
	if err != nil {
		t.Fatal(err)
	}
	if img.Base == "" {
		t.Fatalf("%s has no base", cacheImage)
	}
	b, err := os.ReadFile(filepath.Join(standInDir, img.Recipe))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	if n := strings.Count(text, cacheEditOld); n != 1 {
		t.Fatalf("%q occurs %d times in %s, want once", cacheEditOld, n, img.Recipe)
	}
	// The edited step is the last RUN of the image's stage.
	stage := text[strings.Index(text, "AS "+img.Stage):]
	if next := strings.Index(stage[3:], "\nFROM "); next >= 0 {
		stage = stage[:next+3]
	}
	runs := regexp.MustCompile(`(?m)^RUN .*$`).FindAllString(stage, -1)
	if len(runs) < 2 || !strings.Contains(runs[len(runs)-1], cacheEditOld) {
		t.Errorf("stage %s: RUN steps %q; the edit must hit the last of at least two", img.Stage, runs)
	}
}

func TestToolEnvDropsSettings(t *testing.T) {
	t.Setenv("JOBS", "3")
	t.Setenv("WITH_MPI", "1")
	t.Setenv("BUILDX_BUILDER", "other")
	env := toolEnv(map[string]string{"JOBS": "17"})
	var jobs []string
	for _, kv := range env {
		if strings.HasPrefix(kv, "WITH_MPI=") || strings.HasPrefix(kv, "BUILDX_BUILDER=") {
			t.Errorf("%s inherited", kv)
		}
		if strings.HasPrefix(kv, "JOBS=") {
			jobs = append(jobs, kv)
		}
	}
	if !slices.Equal(jobs, []string{"JOBS=17"}) {
		t.Errorf("JOBS entries %v", jobs)
	}
}

func parse(t *testing.T, path string) *recipe.Recipe {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := recipe.Parse(path, b)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

package recipe

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sample = `ARG BASE_IMAGE
ARG FRAMEWORK_BASE=${BASE_IMAGE}
FROM ${BASE_IMAGE} AS base
ARG PYTHON_VERSION
RUN echo $PYTHON_VERSION

FROM busybox AS tools
ARG TOOLS_VERSION

FROM ${FRAMEWORK_BASE} AS framework
ARG TORCH_PIP
COPY --from=tools /x /x

FROM base AS other
ARG OTHER
RUN --mount=type=cache,target=/c --mount=type=bind,from=tools,target=/t true
`

func parse(t *testing.T) *Recipe {
	t.Helper()
	r, err := Parse("Dockerfile.test", []byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestMissingArgIsNamedWithImageAndRecipe(t *testing.T) {
	err := parse(t).CheckArgs("tf2-cpu", "base", map[string]string{"BASE_IMAGE": "u", "PYTHON_VERSION": "3", "TORCH_PIP": "torch"})
	var ue *UndeclaredError
	if !errors.As(err, &ue) {
		t.Fatalf("error %v, want UndeclaredError", err)
	}
	for _, want := range []string{"tf2-cpu", "TORCH_PIP", "Dockerfile.test", `"base"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not name %s", err, want)
		}
	}
	if len(ue.Args) != 1 || ue.Args[0] != "TORCH_PIP" {
		t.Errorf("missing %v, want [TORCH_PIP]", ue.Args)
	}
}

func TestStageSeesItsOwnAndCopiedFromStagesArgs(t *testing.T) {
	r := parse(t)
	// framework from the published image: sees globals, its args and the
	// tools stage it copies from, but not the base stage's.
	ok := map[string]string{"BASE_IMAGE": "img", "TORCH_PIP": "t", "TOOLS_VERSION": "1", "TARGETARCH": "arm64", "HTTP_PROXY": "p"}
	if err := r.CheckArgs("x", "framework", ok); err != nil {
		t.Errorf("unexpected: %v", err)
	}
	if err := r.CheckArgs("x", "framework", map[string]string{"BASE_IMAGE": "img", "PYTHON_VERSION": "3"}); err == nil {
		t.Error("PYTHON_VERSION accepted although framework does not build on the base stage")
	}
	// FRAMEWORK_BASE=base folds the base stage in: now PYTHON_VERSION is visible.
	if err := r.CheckArgs("x", "framework", map[string]string{"FRAMEWORK_BASE": "base", "BASE_IMAGE": "ubuntu", "PYTHON_VERSION": "3"}); err != nil {
		t.Errorf("FRAMEWORK_BASE=base: %v", err)
	}
	// FROM base + RUN --mount from=tools.
	if err := r.CheckArgs("x", "other", map[string]string{"OTHER": "1", "PYTHON_VERSION": "3", "TOOLS_VERSION": "2"}); err != nil {
		t.Errorf("other: %v", err)
	}
}

func TestUnknownStageIsAnError(t *testing.T) {
	err := parse(t).CheckArgs("x", "nope", nil)
	if err == nil || !strings.Contains(err.Error(), `no stage "nope"`) || !strings.Contains(err.Error(), "base, tools, framework, other") {
		t.Errorf("error %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	if _, err := Parse("empty", []byte("# nothing\n")); err == nil {
		t.Error("a recipe without FROM was accepted")
	}
}

// The real recipes must accept every argument the planner passes; that is
// checked where plans are built (build.CheckArgs tests). Here: they parse and
// have the stages the catalog names.
func TestRealRecipesHaveTheCatalogStages(t *testing.T) {
	for file, stages := range map[string][]string{"Dockerfile.cpu": {"base", "framework"}, "Dockerfile.gpu": {"base", "framework", "rocm"}} {
		b, err := os.ReadFile(filepath.Join("..", "..", file))
		if err != nil {
			t.Fatal(err)
		}
		r, err := Parse(file, b)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range stages {
			if r.stageIndex(s) < 0 {
				t.Errorf("%s has no stage %s (has %v)", file, s, r.Stages())
			}
		}
	}
}

func TestDifferencesFindsADriftedStandIn(t *testing.T) {
	real := parse(t)
	same, _ := Parse("stand-in", []byte(sample))
	if d, err := Differences(real, same); err != nil || len(d) != 0 {
		t.Errorf("identical recipes differ: %v %v", d, err)
	}
	drifted, _ := Parse("stand-in", []byte(strings.Replace(sample, "ARG TORCH_PIP\n", "ARG TORCH_PIPS\n", 1)))
	d, err := Differences(real, drifted)
	if err != nil || len(d) == 0 || !strings.Contains(strings.Join(d, "\n"), "[TORCH_PIP]") || !strings.Contains(strings.Join(d, "\n"), "[TORCH_PIPS]") {
		t.Errorf("drift not reported: %v %v", d, err)
	}
	fewer, _ := Parse("stand-in", []byte("FROM a AS base\nFROM b AS framework\n"))
	if d, _ := Differences(real, fewer); len(d) != 1 || !strings.Contains(d[0], "stages differ") {
		t.Errorf("stage drift: %v", d)
	}
}

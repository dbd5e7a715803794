package ci

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

// schemaPath is CircleCI's own JSON schema for config.yml (draft-07), the
// one SchemaStore's CircleCI entry points to (testdata/circleci/README.md).
const schemaPath = "testdata/circleci/schema.json"

// validateConfig checks a config's YAML text against CircleCI's schema.
func validateConfig(t *testing.T, text string) error {
	t.Helper()
	f, err := os.Open(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatalf("%s: %v", schemaPath, err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft7)
	if err := c.AddResource("circleci.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("circleci.json")
	if err != nil {
		t.Fatalf("compiling %s: %v", schemaPath, err)
	}
	// The YAML as JSON values: maps with string keys, []any, strings,
	// numbers as the JSON decoder would give them.
	var v any
	if err := yaml.Unmarshal([]byte(text), &v); err != nil {
		t.Fatalf("config is not YAML: %v", err)
	}
	return sch.Validate(jsonValue(v))
}

// jsonValue turns yaml.v3's values into the JSON data model the validator
// expects (float64 or json.Number are not needed: ints become float64).
func jsonValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonValue(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonValue(e)
		}
		return out
	case int:
		return float64(x)
	default:
		return v
	}
}

func TestConfigPassesCircleCISchema(t *testing.T) {
	text, err := Config()
	if err != nil {
		t.Fatal(err)
	}
	if err := validateConfig(t, text); err != nil {
		t.Fatalf("the generated config fails CircleCI's schema:\n%v", err)
	}
	// The validator can fail: a run step without its command, a resource
	// class outside the schema's list and a bad version are each refused.
	for _, bad := range []struct{ from, to string }{
		{"          command: /tmp/envs builder", "          comand: /tmp/envs builder"},
		{"    resource_class: xlarge", "    resource_class: huge"},
		{"version: 2.1", "version: two"},
	} {
		broken := strings.Replace(text, bad.from, bad.to, 1)
		if broken == text {
			t.Fatalf("%q not in the config", bad.from)
		}
		if err := validateConfig(t, broken); err == nil {
			t.Errorf("the schema accepts the config with %q", bad.to)
		}
	}
}

func TestEveryMachineIsOneCircleCIAccepts(t *testing.T) {
	c := parseConfig(t)
	if len(c.Executors) == 0 {
		t.Fatal("no executors")
	}
	for name, e := range c.Executors {
		if why := CheckMachine(e.Machine["image"], e.ResourceClass); why != "" {
			t.Errorf("executor %s: %s", name, why)
		}
	}
	for name, j := range c.Jobs {
		if _, ok := c.Executors[j.Executor]; !ok {
			t.Errorf("job %s runs on undefined executor %q", name, j.Executor)
		}
	}
	// The check refuses what CircleCI's validator refuses: the 2023 names,
	// a moving tag, an image newer than the validator knows, a GPU class on
	// a CPU image and the reverse.
	for _, bad := range [][2]string{
		{"ubuntu-2004-cuda-11.4:202110-01", "gpu.nvidia.small"},
		{"linux-cuda-12:default", "gpu.nvidia.small"},
		{"ubuntu-2004:2025.01.1", "xlarge"},
		{"ubuntu-2404:current", "xlarge"},
		{"ubuntu-2404:2026.06.1", "xlarge"},
		{"ubuntu-2404:2026.05.1", "gpu.nvidia.medium"},
		{"linux-cuda-12:default", "xlarge"},
	} {
		if CheckMachine(bad[0], bad[1]) == "" {
			t.Errorf("CheckMachine accepts %s with %s", bad[0], bad[1])
		}
	}
	for _, good := range [][2]string{
		{"ubuntu-2004:2024.11.1", "large"},
		{"ubuntu-2204:2026.05.1", "2xlarge"},
		{"linux-cuda-12:default", "gpu.nvidia.small.multi"},
	} {
		if why := CheckMachine(good[0], good[1]); why != "" {
			t.Errorf("CheckMachine refuses %s with %s: %s", good[0], good[1], why)
		}
	}
}

// The Go the jobs install is go.mod's.
func TestJobsInstallTheGoOfGoMod(t *testing.T) {
	b, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	var goLine, toolchain string
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "go "); ok {
			goLine = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(l, "toolchain go"); ok {
			toolchain = strings.TrimSpace(v)
		}
	}
	want := goLine
	if toolchain != "" {
		want = toolchain
	}
	if GoVersion != want {
		t.Errorf("the jobs install Go %s, go.mod says %s", GoVersion, want)
	}
}

// A release pushes <name>-<VERSION> tags: VERSION continues the previous
// images' line (their last tags were -0.22.1), so a release never pushes
// tags that sort below the ones Determined's bumpenvs.yaml holds.
func TestVersionContinuesTheImagesLine(t *testing.T) {
	b, err := os.ReadFile("../../VERSION")
	if err != nil {
		t.Fatal(err)
	}
	v := strings.TrimSpace(string(b))
	var got [3]int
	if n, err := fmt.Sscanf(v, "%d.%d.%d", &got[0], &got[1], &got[2]); n != 3 || err != nil {
		t.Fatalf("VERSION %q is not x.y.z: %v", v, err)
	}
	if slices.Compare(got[:], []int{0, 22, 1}) <= 0 {
		t.Errorf("VERSION %s is not above the previous images' 0.22.1", v)
	}
}

package plan

import (
	"slices"
	"strings"
	"testing"

	"github.com/determined-ai/environments/magefiles/catalog"
)

var drivers = []string{DriverDocker, DriverDockerContainer, DriverRemote, DriverKubernetes, ""}

// wantLoad is how each driver's local build reaches the Docker Engine,
// written out here rather than taken from LoadArgs.
func wantLoad(driver string) []string {
	if driver == "docker" {
		return []string{"--output", "type=image,push=false"}
	}
	return []string{"--load"}
}

// localArgv is the exact argv of a local build of name on platform: a
// derived image gets FRAMEWORK_BASE=base, then its base's arguments (so
// BASE_IMAGE is the base's external image), then its own that the base does
// not set.
func localArgv(t *testing.T, sp Spec, name, platform, driver string) []string {
	t.Helper()
	s := settings(t, nil)
	img, err := catalog.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	own, err := BuildArgs(img, s)
	if err != nil {
		t.Fatal(err)
	}
	var args []catalog.Arg
	if img.Base != "" {
		base, _ := catalog.Lookup(img.Base)
		baseArgs, err := BuildArgs(base, s)
		if err != nil {
			t.Fatal(err)
		}
		args = append([]catalog.Arg{{Name: "FRAMEWORK_BASE", Value: "base"}}, baseArgs...)
		for _, a := range own {
			if !slices.ContainsFunc(baseArgs, func(b catalog.Arg) bool { return b.Name == a.Name }) {
				args = append(args, a)
			}
		}
	} else {
		args = own
	}
	tags, _ := DockerhubTags(img, s)
	a := []string{"docker", "buildx", "build", "--builder", "determined-environments", "--progress", "plain",
		"--file", img.Recipe, "--target", img.Stage, "--platform", platform}
	for _, x := range args {
		a = append(a, "--build-arg", x.Name+"="+x.Value)
	}
	a = append(a, "--label", InputsLabel+"="+sp.InputsDigest, "--tag", tags.Hashed, "--tag", tags.Versioned)
	a = append(a, wantLoad(driver)...)
	return append(a, ".")
}

func TestLocalBuildArgvForEachDriver(t *testing.T) {
	for _, platform := range []string{"linux/amd64", "linux/arm64"} {
		for _, driver := range drivers {
			s := settings(t, map[string]string{"PLATFORM": platform})
			specs, err := Plan(s, Request{Images: []string{"pt-cpu"}, Mode: Build, Driver: driver})
			if err != nil {
				t.Fatal(err)
			}
			if got := names(specs); !slices.Equal(got, []string{"cpu-py-38-base", "pt-cpu"}) {
				t.Fatalf("%s/%s: planned %v, want the base, then pt-cpu", platform, driver, got)
			}
			for _, sp := range specs {
				if want := localArgv(t, sp, sp.Image.Name, platform, driver); !slices.Equal(sp.Argv, want) {
					t.Errorf("%s driver %q:\n got %q\nwant %q", sp.Image.Name, driver, sp.Argv, want)
				}
				if sp.Push || !sp.Load || !slices.Equal(sp.Platforms, []string{platform}) {
					t.Errorf("%s: push=%v load=%v platforms %v", sp.Image.Name, sp.Push, sp.Load, sp.Platforms)
				}
			}
			// pt-cpu still waits for its base: the base is loaded too, and
			// the base stage of pt-cpu's build then comes from the cache.
			if specs[1].Base != "cpu-py-38-base" {
				t.Errorf("pt-cpu's base dependency %q", specs[1].Base)
			}
		}
	}
}

func TestLocalBuildNeverNamesTheBaseTag(t *testing.T) {
	s := settings(t, map[string]string{"CACHE": "registry"})
	specs, err := Plan(s, Request{Images: catalog.Names(), Mode: Build, Driver: DriverDockerContainer})
	if err != nil {
		t.Fatal(err)
	}
	baseTags := map[string]bool{}
	for _, sp := range specs {
		if sp.Image.IsBase() {
			baseTags[sp.Tags.Hashed] = true
		}
	}
	for _, sp := range specs {
		line := strings.Join(sp.Argv, " ")
		if sp.Push || strings.Contains(line, "--push") || strings.Contains(line, "--cache-to") || !strings.Contains(line, "--load") {
			t.Errorf("%s is not a local build: %s", sp.Image.Name, line)
		}
		if len(sp.Platforms) != 1 {
			t.Errorf("%s: platforms %v, want one", sp.Image.Name, sp.Platforms)
		}
		for tag := range baseTags {
			if strings.Contains(line, "BASE_IMAGE="+tag) {
				t.Errorf("%s builds FROM the base tag %s: %s", sp.Image.Name, tag, line)
			}
		}
		if sp.Image.Base != "" && !slices.Contains(sp.Argv, "FRAMEWORK_BASE=base") {
			t.Errorf("%s does not build its base stage: %s", sp.Image.Name, line)
		}
		if sp.BaseTag != "" || len(Unpinned(sp)) != 0 {
			t.Errorf("%s starts from a base image %q (unpinned %v); a local build starts from the base stage", sp.Image.Name, sp.BaseTag, Unpinned(sp))
		}
	}
}

func TestPushBuildArgvIsTheSameForEveryDriver(t *testing.T) {
	var first []string
	for _, driver := range drivers {
		s := settings(t, map[string]string{"PUSH": "1"})
		specs, err := Plan(s, Request{Images: []string{"pt-cpu"}, Mode: Build, Driver: driver})
		if err != nil {
			t.Fatal(err)
		}
		sp := specs[1]
		base, _ := DockerhubTags(specs[0].Image, s)
		if !sp.Push || sp.Load || !slices.Equal(sp.Platforms, []string{"linux/amd64", "linux/arm64"}) ||
			!containsPair(sp.Argv, "--build-arg", "BASE_IMAGE="+base.Hashed) || slices.Contains(sp.Argv, "FRAMEWORK_BASE=base") ||
			sp.Argv[len(sp.Argv)-2] != "--push" || slices.Contains(sp.Argv, "--load") || slices.Contains(sp.Argv, "--output") {
			t.Errorf("driver %q: PUSH=1 build of pt-cpu: %q", driver, sp.Argv)
		}
		if first == nil {
			first = sp.Argv
		} else if !slices.Equal(first, sp.Argv) {
			t.Errorf("driver %q changes the pushed argv:\n%q\n%q", driver, first, sp.Argv)
		}
	}
}

func TestPublishArgvIgnoresTheDriver(t *testing.T) {
	s := settings(t, nil)
	a, _ := Plan(s, Request{Images: []string{"tf2-cpu"}, Mode: Publish, Driver: DriverDocker})
	b, _ := Plan(s, Request{Images: []string{"tf2-cpu"}, Mode: Publish, Driver: DriverRemote})
	for i := range a {
		if !slices.Equal(a[i].Argv, b[i].Argv) || !slices.Contains(a[i].Argv, "--push") || slices.Contains(a[i].Argv, "--output") {
			t.Errorf("publish %s:\n%q\n%q", a[i].Image.Name, a[i].Argv, b[i].Argv)
		}
	}
}

func TestLocalArm64ArgvForEachDriver(t *testing.T) {
	for _, env := range []map[string]string{nil, {"PLATFORM": "linux/arm64"}} {
		for _, driver := range drivers {
			s := settings(t, env)
			specs, err := Plan(s, Request{Images: []string{"tf2-cpu"}, Mode: LocalArm64, Driver: driver})
			if err != nil {
				t.Fatal(err)
			}
			if len(specs) != 1 || specs[0].Base != "" {
				t.Fatalf("driver %q: %d specs (base %q), want tf2-cpu alone", driver, len(specs), specs[0].Base)
			}
			if want := localArgv(t, specs[0], "tf2-cpu", "linux/arm64", driver); !slices.Equal(specs[0].Argv, want) {
				t.Errorf("driver %q:\n got %q\nwant %q", driver, specs[0].Argv, want)
			}
		}
	}
}

func TestLocalPlatformIsTheHostsWhenTheImageHasIt(t *testing.T) {
	// An arm64 host (a Mac): CPU images build for arm64, CUDA images (amd64
	// only) for amd64.
	s := settings(t, nil)
	s.Platform, s.PlatformExplicit = "linux/arm64", false
	specs, err := Plan(s, Request{Images: []string{"pt-cpu", "pt-gpu"}, Mode: Build})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"cpu-py-38-base": "linux/arm64", "pt-cpu": "linux/arm64", "gpu-cuda-113-base": "linux/amd64", "pt-gpu": "linux/amd64"}
	for _, sp := range specs {
		if !slices.Equal(sp.Platforms, []string{want[sp.Image.Name]}) {
			t.Errorf("%s: %v, want %s", sp.Image.Name, sp.Platforms, want[sp.Image.Name])
		}
	}
}

func TestAPlatformTheModeCannotHonourIsRefused(t *testing.T) {
	cases := []struct {
		env    map[string]string
		mode   Mode
		images []string
		want   []string
	}{
		{map[string]string{"PLATFORM": "linux/arm64"}, Build, []string{"pt-gpu"},
			[]string{"PLATFORM=linux/arm64", "gpu-cuda-113-base is built for linux/amd64 only", "cpu-py-38-base, tf2-cpu, tf28-cpu, pt-cpu"}},
		{map[string]string{"PLATFORM": "linux/arm64", "WITH_MPI": "1"}, Build, []string{"pt-cpu"},
			[]string{"PLATFORM=linux/arm64", "cpu-py-38-base is built for linux/amd64 only"}},
		{map[string]string{"PLATFORM": "linux/amd64", "PUSH": "1"}, Build, []string{"pt-cpu"},
			[]string{"PLATFORM=linux/amd64", "PUSH=1 builds and pushes every platform"}},
		{map[string]string{"PLATFORM": "linux/amd64"}, Publish, []string{"pt-cpu"},
			[]string{"PLATFORM=linux/amd64", "publish builds every platform"}},
		{map[string]string{"PLATFORM": "linux/amd64"}, LocalArm64, []string{"pt-cpu"},
			[]string{"PLATFORM=linux/amd64", "localArm64 builds linux/arm64 only"}},
		{nil, LocalArm64, []string{"pt-gpu"},
			[]string{"pt-gpu is built for linux/amd64 only, not linux/arm64", "cpu-py-38-base, tf2-cpu, tf28-cpu, pt-cpu"}},
	}
	for _, c := range cases {
		_, err := Plan(settings(t, c.env), Request{Images: c.images, Mode: c.mode})
		if err == nil {
			t.Errorf("%v mode %d %v: accepted", c.env, c.mode, c.images)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v mode %d %v: error %q does not say %q", c.env, c.mode, c.images, err, w)
			}
		}
	}
}

func TestLocal(t *testing.T) {
	if !Local(Build, settings(t, nil)) || Local(Build, settings(t, map[string]string{"PUSH": "1"})) ||
		!Local(LocalArm64, settings(t, nil)) || Local(Publish, settings(t, nil)) {
		t.Error("Local: build without PUSH and localArm64 are local, PUSH=1 build and publish are not")
	}
}

// TestLocalBuildOnTheEnginesBuilderNamesIt: a local build on the engine's own
// builder (Request.Builder, the docker context's) names that builder and
// writes to the engine's image store; without Request.Builder the settings'
// builder stays.
func TestLocalBuildOnTheEnginesBuilderNamesIt(t *testing.T) {
	s := settings(t, map[string]string{"PLATFORM": "linux/amd64"})
	specs, err := Plan(s, Request{Images: []string{"tf2-cpu"}, Mode: Build, Driver: DriverDocker, Builder: "desktop-linux"})
	if err != nil {
		t.Fatal(err)
	}
	for _, sp := range specs {
		line := strings.Join(sp.Argv, " ")
		if !strings.HasPrefix(line, "docker buildx build --builder desktop-linux --progress plain ") ||
			!strings.HasSuffix(line, " --output type=image,push=false .") || slices.Contains(sp.Argv, "--load") {
			t.Errorf("%s: %s", sp.Image.Name, line)
		}
	}
	specs, err = Plan(s, Request{Images: []string{"tf2-cpu"}, Mode: Build, Driver: DriverDockerContainer})
	if err != nil {
		t.Fatal(err)
	}
	if line := strings.Join(specs[0].Argv, " "); !strings.HasPrefix(line, "docker buildx build --builder determined-environments ") || !strings.HasSuffix(line, " --load .") {
		t.Errorf("without Request.Builder: %s", line)
	}
}

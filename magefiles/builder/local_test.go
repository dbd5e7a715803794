package builder

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestChooseLocal(t *testing.T) {
	engine := Info{Driver: "docker", Platforms: []string{"linux/amd64", "linux/386"}}
	withArm := Info{Driver: "docker", Platforms: []string{"linux/amd64", "linux/arm64"}}
	base := LocalFacts{Engine: "default", Fallback: "determined-environments"}
	cases := []struct {
		name string
		edit func(*LocalFacts)
		want LocalChoice
		why  string // start of Why after the common prefix
	}{
		{"the engine builds the platform", func(f *LocalFacts) { f.EngineIs, f.Want = engine, []string{"linux/amd64"} },
			LocalChoice{Builder: "default", Engine: true}, ""},
		{"Docker Desktop on Apple silicon, arm64", func(f *LocalFacts) {
			f.Engine, f.EngineIs, f.Want = "desktop-linux", Info{Driver: "docker", Platforms: []string{"linux/arm64", "linux/amd64"}}, []string{"linux/arm64"}
		}, LocalChoice{Builder: "desktop-linux", Engine: true}, ""},
		{"an engine with arm64 emulation", func(f *LocalFacts) { f.EngineIs, f.Want = withArm, []string{"linux/arm64"} },
			LocalChoice{Builder: "default", Engine: true}, ""},
		{"BUILDX_BUILDER wins", func(f *LocalFacts) { f.Named, f.EngineIs, f.Want = "k8s", withArm, []string{"linux/amd64"} },
			LocalChoice{Builder: "k8s", Named: true}, ""},
		{"BUILDX_BUILDER naming the engine's builder", func(f *LocalFacts) { f.Named, f.Want = "default", []string{"linux/amd64"} },
			LocalChoice{Builder: "default", Named: true}, ""},
		{"no arm64 on the engine", func(f *LocalFacts) { f.EngineIs, f.Want = engine, []string{"linux/arm64"} },
			LocalChoice{Builder: "determined-environments"},
			`the Docker Engine's own builder "default" cannot build linux/arm64 (it lists linux/amd64, linux/386; with emulation of that platform it could)`},
		{"a builder listing no platforms", func(f *LocalFacts) { f.EngineIs, f.Want = Info{Driver: "docker"}, []string{"linux/amd64"} },
			LocalChoice{Builder: "determined-environments"}, `the Docker Engine's own builder "default" cannot build linux/amd64 (it lists none;`},
		{"the engine's builder cannot be inspected", func(f *LocalFacts) {
			f.EngineErr, f.Want = errors.New("docker buildx inspect …: exit status 1: ERROR: no builder \"default\" found\nmore"), []string{"linux/amd64"}
		}, LocalChoice{Builder: "determined-environments"},
			`the Docker Engine's own builder "default" could not be inspected (docker buildx inspect …: exit status 1: ERROR: no builder "default" found …)`},
		{"not a docker-driver builder", func(f *LocalFacts) {
			f.EngineIs, f.Want = Info{Driver: "docker-container", Platforms: []string{"linux/amd64"}}, []string{"linux/amd64"}
		}, LocalChoice{Builder: "determined-environments"}, `builder "default" of the docker context has driver "docker-container", not the engine's own (docker)`},
	}
	const prefix = "building on builder determined-environments with --load (each image exported from it and loaded into the engine, slower): "
	for _, c := range cases {
		f := base
		c.edit(&f)
		got := ChooseLocal(f)
		why := got.Why
		got.Why = ""
		if got != c.want {
			t.Errorf("%s: chose %+v, want %+v", c.name, got, c.want)
		}
		switch {
		case c.why == "" && why != "":
			t.Errorf("%s: says %q", c.name, why)
		case c.why != "" && (!strings.HasPrefix(why, prefix+c.why) || strings.Contains(why, "\n")):
			t.Errorf("%s: says\n%q\nwant one line starting\n%q", c.name, why, prefix+c.why)
		}
	}
}

func TestContextName(t *testing.T) {
	for _, c := range []struct{ host, ctx, current, want string }{
		{"", "", "", "default"},
		{"", "", "desktop-linux", "desktop-linux"},
		{"", "colima", "desktop-linux", "colima"},
		{"tcp://h:2375", "colima", "desktop-linux", "default"},
	} {
		if got := ContextName(c.host, c.ctx, c.current); got != c.want {
			t.Errorf("ContextName(%q, %q, %q) = %q, want %q", c.host, c.ctx, c.current, got, c.want)
		}
	}
}

func TestEngineBuilderReadsTheCLIsConfig(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"DOCKER_CONFIG": dir}
	getenv := func(k string) string { return env[k] }
	if got, err := EngineBuilder(getenv); err != nil || got != "default" {
		t.Errorf("no config.json: %q %v", got, err)
	}
	write := func(s string) {
		if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"auths": {}, "currentContext": "desktop-linux"}`)
	if got, err := EngineBuilder(getenv); err != nil || got != "desktop-linux" {
		t.Errorf("currentContext desktop-linux: %q %v", got, err)
	}
	env["DOCKER_HOST"] = "unix:///x.sock"
	if got, err := EngineBuilder(getenv); err != nil || got != "default" {
		t.Errorf("DOCKER_HOST set: %q %v", got, err)
	}
	delete(env, "DOCKER_HOST")
	write(`{"auths": `)
	if _, err := EngineBuilder(getenv); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "config.json")) {
		t.Errorf("a broken config.json: %v", err)
	}
}

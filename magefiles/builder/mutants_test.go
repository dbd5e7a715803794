package builder

// Tests written to kill the mutants `go run magefile.go mutants` found
// alive in this package (docs/mutants.md). A stand-in `docker` on PATH
// behaves like the CLI where these functions depend on it: versions, a
// builder that exists only once created, the engine's answer, and the
// CLI's error messages on stderr with a non-zero exit.

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/determined-ai/environments/magefiles/run"
)

// standIn is the stand-in's state directory: files named after what the
// CLI should print (docker-version, buildx-version, engine) or do.
type standIn string

func (s standIn) set(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(string(s), name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (s standIn) calls(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(string(s), "calls"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return string(b)
}

// newStandIn puts a stand-in docker first on PATH. A missing state file
// makes the matching command fail the way the CLI does.
func newStandIn(t *testing.T) standIn {
	t.Helper()
	dir := t.TempDir()
	script := `#!/bin/sh
d=` + dir + `
echo "$*" >> "$d/calls"
case "$*" in
"--version")
	[ -f "$d/docker-version" ] || { echo "docker: not found" >&2; exit 127; }
	cat "$d/docker-version" ;;
"buildx version")
	[ -f "$d/buildx-version" ] || { echo "docker: 'buildx' is not a docker command." >&2; exit 1; }
	cat "$d/buildx-version" ;;
"buildx inspect --bootstrap "*)
	name=$4
	[ -f "$d/inspect-error" ] && { cat "$d/inspect-error" >&2; exit 1; }
	[ -f "$d/builder-$name" ] || { echo "ERROR: no builder \"$name\" found" >&2; exit 1; }
	printf 'Name:   %s\nDriver: docker-container\n\nNodes:\nName:      %s0\nPlatforms: linux/amd64*, linux/arm64\n' "$name" "$name"
	# buildx prints the config file the builder was created with, each line after " > ".
	if [ -s "$d/builder-$name" ]; then echo "File#buildkitd.toml:"; sed 's/^/ > /' "$d/builder-$name"; fi ;;
"buildx create --name "*)
	[ -f "$d/create-error" ] && { cat "$d/create-error" >&2; exit 1; }
	# buildx reads --buildkitd-config FILE at create time and keeps a copy.
	conf=; prev=; for a in "$@"; do [ "$prev" = --buildkitd-config ] && conf=$a; prev=$a; done
	if [ -n "$conf" ]; then cp "$conf" "$d/builder-$4"; else : > "$d/builder-$4"; fi ;;
"version --format "*)
	[ -f "$d/engine" ] || { echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock." >&2; exit 1; }
	cat "$d/engine" ;;
*) echo "stand-in docker: unexpected $*" >&2; exit 2 ;;
esac
`
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "docker"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	return standIn(dir)
}

func quiet() *run.Runner { return &run.Runner{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}} }

func TestCheckToolsNamesWhatIsMissingOrOld(t *testing.T) {
	for _, tc := range []struct {
		name           string
		docker, buildx string // "" = missing
		want           string // "" = accepted
	}{
		{"current", "Docker version 28.2.2, build e6534b4", "github.com/docker/buildx v0.38.2 1c1b8b1", ""},
		{"two words of buildx", "Docker version 20.10.0, build 1", "github.com/docker/buildx v0.15.0", ""},
		{"no docker", "", "github.com/docker/buildx v0.38.2 x", "the docker CLI is missing or broken"},
		{"old docker", "Docker version 19.03.15, build 1", "github.com/docker/buildx v0.38.2 x", `docker CLI "Docker version 19.03.15, build 1" is older than 20.10.0`},
		{"no buildx", "Docker version 28.2.2, build 1", "", "the docker buildx plugin is missing"},
		{"unreadable buildx", "Docker version 28.2.2, build 1", "buildx", `cannot read the buildx version from "buildx"`},
		{"old buildx", "Docker version 28.2.2, build 1", "github.com/docker/buildx v0.14.1 x", "buildx v0.14.1 is older than 0.15.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStandIn(t)
			if tc.docker != "" {
				s.set(t, "docker-version", tc.docker+"\n")
			}
			if tc.buildx != "" {
				s.set(t, "buildx-version", tc.buildx+"\n")
			}
			err := CheckTools(context.Background(), quiet())
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)):
				t.Errorf("err = %v, want it to start with %q", err, tc.want)
			}
		})
	}
}

func TestEnsureCreatesOnlyTheDefaultBuilder(t *testing.T) {
	s := newStandIn(t)
	info, err := Ensure(context.Background(), quiet(), "determined-environments", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if info.Driver != "docker-container" || strings.Join(info.Platforms, ",") != "linux/amd64,linux/arm64" {
		t.Errorf("info %+v", info)
	}
	want := "buildx inspect --bootstrap determined-environments\n" +
		"buildx create --name determined-environments --driver docker-container --bootstrap\n" +
		"buildx inspect --bootstrap determined-environments\n"
	if got := s.calls(t); got != want {
		t.Errorf("calls\n%s\nwant\n%s", got, want)
	}

	// A named builder that does not exist is an error, never created.
	s = newStandIn(t)
	_, err = Ensure(context.Background(), quiet(), "ci-remote", true, nil)
	if !errors.Is(err, ErrNoBuilder) || !strings.Contains(err.Error(), "BUILDX_BUILDER=ci-remote") {
		t.Errorf("explicit missing builder: %v", err)
	}
	if strings.Contains(s.calls(t), "create") {
		t.Errorf("an explicit builder was created: %s", s.calls(t))
	}

	// Other inspect failures are not "missing": nothing is created.
	s = newStandIn(t)
	s.set(t, "inspect-error", "ERROR: permission denied while trying to connect to the Docker daemon socket\n")
	_, err = Ensure(context.Background(), quiet(), "determined-environments", false, nil)
	if err == nil || errors.Is(err, ErrNoBuilder) || !strings.HasPrefix(err.Error(), `inspecting builder "determined-environments"`) || strings.Contains(s.calls(t), "create") {
		t.Errorf("inspect failure: %v; calls %s", err, s.calls(t))
	}

	// A failed create says so.
	s = newStandIn(t)
	s.set(t, "create-error", "ERROR: failed to find driver \"docker-container\"\n")
	_, err = Ensure(context.Background(), quiet(), "determined-environments", false, nil)
	if err == nil || !strings.HasPrefix(err.Error(), `creating builder "determined-environments"`) {
		t.Errorf("create failure: %v", err)
	}
}

func TestCheckEngineSaysWhereItLooked(t *testing.T) {
	s := newStandIn(t)
	t.Setenv("DOCKER_HOST", "")
	if err := os.Unsetenv("DOCKER_HOST"); err != nil { // restored by t.Setenv
		t.Fatal(err)
	}
	_, err := CheckEngine(context.Background(), quiet())
	if err == nil || !strings.HasPrefix(err.Error(), "no Docker Engine is reachable at the current docker context") || !strings.Contains(err.Error(), "Cannot connect to the Docker daemon") {
		t.Errorf("no engine, no DOCKER_HOST: %v", err)
	}
	t.Setenv("DOCKER_HOST", "tcp://10.0.0.9:2375")
	_, err = CheckEngine(context.Background(), quiet())
	if err == nil || !strings.HasPrefix(err.Error(), "no Docker Engine is reachable at DOCKER_HOST=tcp://10.0.0.9:2375 (") {
		t.Errorf("no engine at DOCKER_HOST: %v", err)
	}
	s.set(t, "engine", "\n")
	_, err = CheckEngine(context.Background(), quiet())
	if err == nil || !strings.Contains(err.Error(), "(`docker version` printed \"\")") {
		t.Errorf("an engine that gives no platform: %v", err)
	}
	s.set(t, "engine", "linux/arm64\n")
	if p, err := CheckEngine(context.Background(), quiet()); err != nil || p != "linux/arm64" {
		t.Errorf("CheckEngine = %q, %v; want linux/arm64", p, err)
	}
}

// Without DOCKER_CONFIG the CLI's configuration is ~/.docker; without a
// home directory there is none, and the CLI uses the default context.
func TestTheConfigUnderHomeNamesTheContext(t *testing.T) {
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".docker"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".docker", "config.json"), []byte(`{"currentContext": "colima"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	none := func(string) string { return "" }
	t.Setenv("HOME", home)
	if got, err := EngineBuilder(none); err != nil || got != "colima" {
		t.Errorf("EngineBuilder with ~/.docker/config.json = %q, %v; want colima", got, err)
	}
	t.Setenv("HOME", "")
	if got, err := EngineBuilder(none); err != nil || got != DefaultContext {
		t.Errorf("EngineBuilder without HOME = %q, %v; want %q", got, err, DefaultContext)
	}
}

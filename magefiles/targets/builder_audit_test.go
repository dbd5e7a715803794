package targets

import (
	"io"
	stdlog "log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// creatingDocker is a docker with no buildx builder until `docker buildx
// create` makes one: `buildx inspect NAME` fails like the real one for a
// name that was never created, and lists amd64 and arm64 afterwards.
const creatingDocker = `#!/bin/sh
echo "$*" >> "$FAKE_DOCKER_LOG"
case "$1 $2" in
  "--version "*) echo "Docker version 28.2.2"; exit 0;;
  "buildx version") echo "github.com/docker/buildx v0.38.2 x"; exit 0;;
  "buildx create")
    [ "$3 $4" = "--name determined-environments" ] || { echo "unexpected create: $*" >&2; exit 1; }
    touch "$FAKE_BUILDERS/$4"; exit 0;;
  "buildx inspect")
    if [ ! -e "$FAKE_BUILDERS/$4" ]; then echo "ERROR: no builder \"$4\" found" >&2; exit 1; fi
    printf 'Name: %s\nDriver: docker-container\nPlatforms: linux/amd64, linux/arm64\n' "$4"; exit 0;;
  "version --format") echo "linux/amd64"; exit 0;;
  "buildx build") echo "stopping here: this test is about the builder" >&2; exit 1;;
esac
exit 0
`

// With BUILDX_BUILDER unset, `mage builder` and the pushing builds create
// the docker-container builder determined-environments when it does not
// exist, and the builds run on it.
func TestTheDefaultBuilderIsCreatedWhenNoneIsNamed(t *testing.T) {
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	tool := compiledTool(t)
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "docker"), []byte(creatingDocker), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
		env  []string
		// build: the target goes on to a build, which must use the builder.
		build bool
	}{
		{"mage builder", []string{"builder"}, nil, false},
		{"PUSH=1 build", []string{"build", "cpu-py-37-base"}, []string{"PUSH=1"}, true},
		{"publishImage", []string{"publishImage", "cpu-py-37-base"}, []string{"NGC_PUBLISH=0", "SIGNING_KEY=" + signingKey(t),
			"DOCKERHUB_REGISTRY=" + newOpenRegistry(t) + "/determinedai", "REGISTRY_MIRRORS=docker.io=" + ubuntuMirror(t)}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			log := filepath.Join(t.TempDir(), "docker.log")
			cmd := exec.Command(tool, c.args...)
			cmd.Dir = gitRepo(t, "0.26.4\n")
			cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "RECIPES_DIR="+root, "NO_COLOR=1",
				"FAKE_DOCKER_LOG="+log, "FAKE_BUILDERS="+t.TempDir(), "ARTIFACTS_DIR="+t.TempDir(), "BUILDX_BUILDER=")
			cmd.Env = append(cmd.Env, c.env...)
			out, err := cmd.CombinedOutput()
			b, _ := os.ReadFile(log)
			calls := strings.Split(strings.TrimSpace(string(b)), "\n")
			created, built := -1, -1
			for i, l := range calls {
				if strings.HasPrefix(l, "buildx create --name determined-environments --driver docker-container") && created < 0 {
					created = i
				}
				if strings.HasPrefix(l, "buildx build") && built < 0 {
					built = i
					if !strings.Contains(l, "--builder determined-environments ") {
						t.Errorf("the build does not run on determined-environments: %s", l)
					}
				}
			}
			if created < 0 {
				t.Fatalf("determined-environments was never created (err %v); docker calls:\n%s\noutput:\n%s", err, b, out)
			}
			if !c.build {
				if err != nil || !strings.Contains(string(out), "builder determined-environments (driver docker-container) builds linux/amd64, linux/arm64") {
					t.Errorf("mage builder: %v\n%s", err, out)
				}
				return
			}
			if built < created {
				t.Errorf("no build after the builder was created (create at call %d, build at %d):\n%s\n%s", created, built, b, out)
			}
		})
	}
}

// newOpenRegistry is go-containerregistry's in-memory registry, which takes
// anonymous pushes.
func newOpenRegistry(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(stdlog.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// ubuntuMirror is a registry mirror holding library/ubuntu:20.04 (a random
// image), so that publish can resolve its external base without Docker Hub.
func ubuntuMirror(t *testing.T) string {
	t.Helper()
	host := newOpenRegistry(t)
	img, err := random.Image(100, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(host+"/library/ubuntu:20.04", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	return host
}

package targets

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"

	"github.com/determined-ai/environments/magefiles/sign"
)

// recordingDocker is a docker on PATH that logs every call and answers the
// preflight queries like a healthy docker with buildx and an amd64+arm64
// builder, unless told otherwise by the variables the cases set.
const recordingDocker = `#!/bin/sh
echo "$*" >> "$FAKE_DOCKER_LOG"
case "$1 $2" in
  "--version "*) echo "Docker version 28.2.2"; exit 0;;
  "buildx version") echo "github.com/docker/buildx ${FAKE_BUILDX_VERSION:-v0.38.2} x"; exit 0;;
  "buildx inspect")
    if [ -n "$FAKE_NO_BUILDER" ]; then echo "ERROR: no builder \"$4\" found" >&2; exit 1; fi
    echo "Platforms: ${FAKE_PLATFORMS:-linux/amd64, linux/arm64}"; exit 0;;
  "version --format")
    if [ -n "$FAKE_NO_ENGINE" ]; then echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?" >&2; exit 1; fi
    echo "linux/amd64"; exit 0;;
esac
exit 0
`

// Every bad input stops the tool with a clear error before any build, push
// or artifact file.
func TestBadInputStopsTheToolBeforeAnythingRuns(t *testing.T) {
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	tool := compiledTool(t)
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "docker"), []byte(recordingDocker), 0o755); err != nil {
		t.Fatal(err)
	}
	refusing := refusingRegistry(t) // takes no pushes from anyone
	key := signingKey(t)
	noLogin := t.TempDir()  // a DOCKER_CONFIG without credentials
	noDocker := t.TempDir() // a PATH with git and go but no docker
	for _, b := range []string{"git"} {
		p, err := exec.LookPath(b)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(p, filepath.Join(noDocker, b)); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name  string
		args  []string
		env   []string
		setup func(t *testing.T, repo string) // may change the repo
		want  []string
	}{
		{"unknown image", []string{"build", "tf2-cpux"}, nil, nil, []string{`unknown image "tf2-cpux"`, "did you mean tf2-cpu"}},
		{"unknown image to publish", []string{"publishImage", "pt-gpuu"}, nil, nil, []string{`unknown image "pt-gpuu"`, "pt-gpu"}},
		{"flag not 0/1", []string{"publish"}, []string{"WITH_MPI=yes"}, nil, []string{`WITH_MPI="yes": must be 0 or 1`}},
		{"OFI without MPI", []string{"publish"}, []string{"WITH_OFI=1"}, nil, []string{"WITH_OFI=1 needs WITH_MPI=1"}},
		{"NCCL without MPI", []string{"build", "tf2-gpu"}, []string{"WITH_NCCL=1"}, nil, []string{"WITH_NCCL=1 needs WITH_MPI=1"}},
		{"trace without NCCL", []string{"publish"}, []string{"WITH_MPI=1", "WITH_AWS_TRACE=1"}, nil, []string{"WITH_AWS_TRACE=1 needs WITH_MPI=1, WITH_OFI=1 and WITH_NCCL=1"}},
		{"upper-case repository", []string{"publish"}, []string{"REGISTRY_REPO=Environments"}, nil, []string{`REGISTRY_REPO="Environments"`, "lower-case"}},
		{"repository with a space", []string{"publish"}, []string{"REGISTRY_REPO=env iron"}, nil, []string{`REGISTRY_REPO="env iron"`}},
		{"registry with a scheme", []string{"publish"}, []string{"DOCKERHUB_REGISTRY=https://docker.io/determinedai"}, nil, []string{"no URL scheme"}},
		{"NGC registry with a space", []string{"publishNGC"}, []string{"NGC_REGISTRY=nvcr.io/my team"}, nil, []string{`NGC_REGISTRY="nvcr.io/my team"`}},
		{"empty VERSION", []string{"publish"}, nil, func(t *testing.T, repo string) { commitFile(t, repo, "VERSION", "") }, []string{"VERSION is missing or empty"}},
		{"VERSION not a version", []string{"publish"}, nil, func(t *testing.T, repo string) { commitFile(t, repo, "VERSION", "latest\n") }, []string{`VERSION "latest" is not a version`}},
		{"VERSION missing", []string{"build", "tf2-cpu"}, nil, func(t *testing.T, repo string) {
			gitIn(t, repo, "git", "rm", "-q", "VERSION")
			gitIn(t, repo, "git", "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "-m", "rm")
		}, []string{"VERSION is missing or empty"}},
		{"not a git checkout", []string{"publish"}, []string{"GIT_DIR=/nonexistent"}, nil, []string{"not a git checkout"}},
		{"dirty worktree", []string{"publish"}, nil, func(t *testing.T, repo string) {
			if err := os.WriteFile(filepath.Join(repo, "notes.txt"), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, []string{"notes.txt", "ALLOW_DIRTY=1"}},
		{"artifacts dir not writable", []string{"publish"}, []string{"ARTIFACTS_DIR=/proc/envs-artifacts"}, nil, []string{"/proc/envs-artifacts"}},
		{"artifacts dir is a file", []string{"publish"}, []string{"ARTIFACTS_DIR=/etc/hostname"}, nil, []string{"/etc/hostname"}},
		{"bad JOBS", []string{"publish"}, []string{"JOBS=0"}, nil, []string{`JOBS="0"`}},
		{"bad CACHE", []string{"buildCPU"}, []string{"CACHE=s3"}, nil, []string{`CACHE="s3"`}},
		{"docker missing", []string{"publish"}, []string{"PATH=" + noDocker + ":" + filepath.Dir(mustLook(t, "go"))}, nil, []string{"docker CLI is missing"}},
		{"buildx too old", []string{"publish"}, []string{"FAKE_BUILDX_VERSION=v0.9.1"}, nil, []string{"buildx v0.9.1 is older than 0.15.0"}},
		{"builder without arm64", []string{"publish"}, []string{"FAKE_PLATFORMS=linux/amd64"}, nil, []string{"cannot build linux/arm64", "emulation"}},
		{"named builder missing", []string{"publish"}, []string{"BUILDX_BUILDER=nope", "FAKE_NO_BUILDER=1"}, nil, []string{`builder "nope"`, "docker buildx ls"}},
		{"arm64 of an amd64 image", []string{"localArm64", "-image=tf2-gpu"}, nil, nil, []string{"tf2-gpu is built for linux/amd64 only", "cpu-py-38-base"}},
		{"arm64 under MPI", []string{"localArm64"}, []string{"WITH_MPI=1"}, nil, []string{"cpu-py-38-base is built for linux/amd64 only"}},
		{"bad PLATFORM", []string{"build", "tf2-cpu"}, []string{"PLATFORM=linux/arm"}, nil, []string{`PLATFORM="linux/arm"`, "linux/amd64, linux/arm64"}},
		{"PLATFORM an image lacks", []string{"buildGPUTorch"}, []string{"PLATFORM=linux/arm64"}, nil, []string{"PLATFORM=linux/arm64", "built for linux/amd64 only", "pt-cpu"}},
		{"PLATFORM with PUSH=1", []string{"build", "tf2-cpu"}, []string{"PLATFORM=linux/amd64", "PUSH=1"}, nil, []string{"PUSH=1 builds and pushes every platform"}},
		{"no Docker Engine", []string{"buildGPUTorch"}, []string{"FAKE_NO_ENGINE=1"}, nil, []string{"no Docker Engine is reachable", "PUSH=1"}},
		{"no Docker Engine for localArm64", []string{"localArm64"}, []string{"FAKE_NO_ENGINE=1"}, nil, []string{"no Docker Engine is reachable"}},
		{"PUSH=1 from a dirty worktree", []string{"build", "tf2-cpu"}, []string{"PUSH=1"}, func(t *testing.T, repo string) {
			if err := os.WriteFile(filepath.Join(repo, "Dockerfile.cpu"), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, []string{"Dockerfile.cpu", "ALLOW_DIRTY=1"}},
		{"artifacts dir inside the checkout", []string{"publishImage", "tf1-cpu"}, []string{"ARTIFACTS_DIR=artifacts"}, nil, []string{`ARTIFACTS_DIR="artifacts" is inside the checkout`, ".gitignore"}},
		{"report inside the artifacts dir", []string{"publish"}, []string{"ARTIFACTS_DIR=/tmp/envs-arts", "PUBLISH_REPORT=/tmp/envs-arts/publish-report.json"}, nil, []string{`PUBLISH_REPORT="/tmp/envs-arts/publish-report.json" is inside ARTIFACTS_DIR`}},
		{"own namespace, Determined's NGC", []string{"publish"}, []string{"DOCKERHUB_REGISTRY=myorg"}, nil, []string{`DOCKERHUB_REGISTRY="myorg" is not Determined's namespace`, "NGC_PUBLISH=0"}},
		{"bad INPUT_MIRRORS with CHECK_INPUTS=1", []string{"publish"}, []string{"CHECK_INPUTS=1", "INPUT_MIRRORS=github.com=mirror"}, nil, []string{`INPUT_MIRRORS="github.com=mirror": "github.com=mirror" is not PREFIX=MIRROR with two http(s) URLs`}},
		{"bad PIP_INDEX_URL for inputs -check", []string{"inputs", "-check"}, []string{"PIP_INDEX_URL=pypi.mirror"}, nil, []string{`PIP_INDEX_URL="pypi.mirror": must be the http(s) URL of a PEP 503 simple index`}},
		{"no signing key", []string{"publishImage", "tf1-cpu"}, []string{"SIGNING_KEY="}, nil, []string{"publish: SIGNING_KEY is not set"}},
		{"signing key not a key", []string{"publishImage", "tf1-cpu"}, []string{"SIGNING_KEY=/etc/hostname"}, nil, []string{"SIGNING_KEY=/etc/hostname: no PEM block"}},
		{"SBOM generator not pinned", []string{"publish"}, []string{"SBOM_GENERATOR=docker/buildkit-syft-scanner:stable-1"}, nil, []string{`SBOM_GENERATOR="docker/buildkit-syft-scanner:stable-1": must be an image pinned by digest`}},
		{"no push permission", []string{"publishImage", "tf1-cpu"}, []string{"DOCKERHUB_REGISTRY=" + refusing + "/determinedai", "DOCKER_CONFIG=" + noLogin}, nil, []string{"no permission to push to " + refusing + "/determinedai/environments", "docker login " + refusing}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			repo := gitRepo(t, "0.26.4\n")
			if c.setup != nil {
				c.setup(t, repo)
			}
			log := filepath.Join(t.TempDir(), "docker.log")
			artifacts := filepath.Join(t.TempDir(), "artifacts")
			cmd := exec.Command(tool, c.args...)
			cmd.Dir = repo
			cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "RECIPES_DIR="+root, "NO_COLOR=1",
				"FAKE_DOCKER_LOG="+log, "ARTIFACTS_DIR="+artifacts, "SIGNING_KEY="+key)
			cmd.Env = append(cmd.Env, c.env...)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("accepted:\n%s", out)
			}
			for _, w := range c.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output does not say %q:\n%s", w, out)
				}
			}
			calls, _ := os.ReadFile(log)
			if strings.Contains(string(calls), "buildx build") || strings.Contains(string(calls), "buildx create") {
				t.Errorf("docker was asked to build:\n%s", calls)
			}
			if entries, _ := os.ReadDir(artifacts); len(entries) > 0 {
				t.Errorf("artifact files written: %v", entries)
			}
		})
	}
	t.Logf("bad inputs tried: %d, all stopped before any build, push or artifact", len(cases))
}

// refusingRegistry is go-containerregistry's in-memory registry behind a
// gate that refuses every write without credentials, as Docker Hub does.
func refusingRegistry(t *testing.T) string {
	t.Helper()
	inner := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, _, ok := r.BasicAuth(); !ok && r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
			return
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func mustLook(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func gitIn(t *testing.T, dir string, argv ...string) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", argv, err, out)
	}
}

func commitFile(t *testing.T, repo, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(repo, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	gitIn(t, repo, "git", "add", name)
	gitIn(t, repo, "git", "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "-m", "change "+name)
}

func TestPublishNGCWithNGCOffDoesNothing(t *testing.T) {
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	tool := compiledTool(t)
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "docker"), []byte(recordingDocker), 0o755); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(t.TempDir(), "docker.log")
	cmd := exec.Command(tool, "publishNGC")
	cmd.Dir = gitRepo(t, "0.26.4\n")
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "RECIPES_DIR="+root, "NO_COLOR=1",
		"FAKE_DOCKER_LOG="+log, "NGC_PUBLISH=", "ARTIFACTS_DIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "NGC publishing is off") {
		t.Fatalf("err %v:\n%s", err, out)
	}
	if calls, _ := os.ReadFile(log); len(calls) > 0 {
		t.Errorf("docker was called:\n%s", calls)
	}
}

// `mage builder` on a builder without arm64 succeeds without an ERR line
// (nothing failed): it names the images that need arm64 under the settings,
// and none under WITH_MPI=1.
func TestBuilderWithoutArm64IsNoError(t *testing.T) {
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	tool := compiledTool(t)
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "docker"), []byte(recordingDocker), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ mpi, want string }{
		{"0", "cannot build linux/arm64, which cpu-py-38-base, tf2-cpu, tf28-cpu, pt-cpu need"},
		{"1", "cannot build linux/arm64; no image needs it"},
	} {
		cmd := exec.Command(tool, "builder")
		cmd.Dir = gitRepo(t, "0.26.4\n")
		cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "RECIPES_DIR="+root, "NO_COLOR=1",
			"FAKE_DOCKER_LOG="+filepath.Join(t.TempDir(), "docker.log"), "FAKE_PLATFORMS=linux/amd64", "WITH_MPI="+c.mpi)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("WITH_MPI=%s: %v\n%s", c.mpi, err, out)
		}
		if strings.Contains(string(out), "ERR") || !strings.Contains(string(out), c.want) {
			t.Errorf("WITH_MPI=%s: output\n%s\nwant no ERR line and %q", c.mpi, out, c.want)
		}
	}
}

// signingKey writes a new signing key (SIGNING_KEY) into a temporary file.
func signingKey(t *testing.T) string {
	t.Helper()
	key := filepath.Join(t.TempDir(), "signing.pem")
	pem, err := sign.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem, 0o600); err != nil {
		t.Fatal(err)
	}
	return key
}

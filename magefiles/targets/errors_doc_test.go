package targets

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/determined-ai/environments/magefiles/inputs"
)

// errorsDocker is a docker on PATH for the errors table: healthy by
// default (docker 28, buildx 0.38, an amd64+arm64 docker-container builder,
// an amd64 engine, builds that succeed, images in the engine), broken in
// one way by each FAKE_* variable a case sets.
const errorsDocker = `#!/bin/sh
case "$1 $2" in
  "--version "*) echo "Docker version 28.2.2"; exit 0;;
  "buildx version")
    if [ -n "$FAKE_NO_BUILDX" ]; then echo "docker: 'buildx' is not a docker command." >&2; exit 1; fi
    echo "github.com/docker/buildx ${FAKE_BUILDX_VERSION:-v0.38.2} x"; exit 0;;
  "buildx inspect")
    if [ -n "$FAKE_NO_BUILDER" ]; then echo "ERROR: no builder \"$4\" found" >&2; exit 1; fi
    printf 'Name: %s\nDriver: docker-container\nPlatforms: %s\n' "$4" "${FAKE_PLATFORMS:-linux/amd64, linux/arm64}"; exit 0;;
  "version --format")
    if [ -n "$FAKE_NO_ENGINE" ]; then echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?" >&2; exit 1; fi
    echo "linux/amd64"; exit 0;;
  "image inspect")
    if [ -n "$FAKE_NO_IMAGE" ]; then echo "Error: No such image: $6" >&2; exit 1; fi
    echo "linux/amd64"; exit 0;;
esac
exit 0
`

// errorRow is how the tool is made to print one message of the table.
type errorRow struct {
	args  []string
	env   []string
	setup func(t *testing.T, repo string) []string // more environment, after the repo exists
	// subst replaces placeholders of the documented message (whole words:
	// X, REF, or literal text such as a registry name) with this run's values.
	subst map[string]string
	// coveredBy, instead of a run here, names the test that makes the tool
	// print the message and checks its start ("magefiles/<pkg> TestName"):
	// that test must exist and hold the message's text up to its first "…"
	// or placeholder.
	coveredBy string
}

// errorsTable is the table of docs/errors.md (README.md before it moved):
// for each row, the messages of its first column outside parentheses.
func errorsTable(t *testing.T, root string) (file string, rows [][]string) {
	t.Helper()
	file = filepath.Join(root, "docs", "errors.md")
	b, err := os.ReadFile(file)
	if os.IsNotExist(err) {
		file = filepath.Join(root, "README.md")
		b, err = os.ReadFile(file)
	}
	if err != nil {
		t.Fatal(err)
	}
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "| error (start of the message)") {
			in = true
			continue
		}
		if !in || strings.HasPrefix(line, "|---") {
			continue
		}
		if !strings.HasPrefix(line, "|") {
			break
		}
		cells := strings.Split(line, " | ")
		rows = append(rows, documentedMessages(strings.TrimPrefix(cells[0], "| ")))
	}
	if len(rows) < 20 {
		t.Fatalf("%s: found %d rows in the errors table, want its 20 or more", file, len(rows))
	}
	return file, rows
}

// documentedMessages are the back-quoted parts of a cell that are not
// inside parentheses (those say what else the row covers).
func documentedMessages(cell string) []string {
	var out []string
	depth, quoted := 0, false
	var cur strings.Builder
	for _, r := range cell {
		switch {
		case r == '`':
			if quoted && depth == 0 {
				out = append(out, cur.String())
			}
			cur.Reset()
			quoted = !quoted
		case quoted:
			cur.WriteRune(r)
		case r == '(':
			depth++
		case r == ')':
			depth--
		}
	}
	return out
}

// messageRE matches a line of the tool's output that starts (after mage's
// "Error: " or the indent of a list of errors) with the documented message,
// "…" standing for any text and <word> for one word. The output's back
// quotes are dropped before matching (see stripQuotes): a Markdown code
// span cannot show them.
func messageRE(doc string, subst map[string]string) *regexp.Regexp {
	for from, to := range subst {
		doc = regexp.MustCompile(`\b`+regexp.QuoteMeta(from)+`\b`).ReplaceAllLiteralString(doc, to)
	}
	parts := strings.Split(doc, "…")
	for i, p := range parts {
		parts[i] = placeholderRE.ReplaceAllLiteralString(regexp.QuoteMeta(p), `\S+`)
	}
	return regexp.MustCompile(`(?m)^(Error: |\s+)?` + strings.Join(parts, ".*"))
}

var placeholderRE = regexp.MustCompile(`<[a-z]+>`)

func stripQuotes(out []byte) []byte { return []byte(strings.ReplaceAll(string(out), "`", "")) }

// recipesWith copies the recipes (Dockerfiles and dockerfile_scripts) to a
// new directory and lets edit change the copy; it returns RECIPES_DIR=copy.
func recipesWith(t *testing.T, root string, edit func(dir string)) []string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("cp", "-r", filepath.Join(root, "Dockerfile.cpu"), filepath.Join(root, "Dockerfile.gpu"), filepath.Join(root, "dockerfile_scripts"), dir).CombinedOutput(); err != nil {
		t.Fatalf("copying the recipes: %v\n%s", err, out)
	}
	edit(dir)
	return []string{"RECIPES_DIR=" + dir}
}

// Every message of the errors table is printed by the tool, as documented:
// each is produced here, by the compiled tool, and the real message must
// start the way the table says. A drifted row, or a row without a case
// here, fails.
func TestEveryRowOfTheErrorsTableIsProduced(t *testing.T) {
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	tool := compiledTool(t)
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "docker"), []byte(errorsDocker), 0o755); err != nil {
		t.Fatal(err)
	}
	noDocker := t.TempDir() // git, but no docker
	if err := os.Symlink(mustLook(t, "git"), filepath.Join(noDocker, "git")); err != nil {
		t.Fatal(err)
	}
	refusing := refusingRegistry(t)
	noLogin := t.TempDir()
	dirty := func(name string) func(*testing.T, string) []string {
		return func(t *testing.T, repo string) []string {
			if err := os.WriteFile(filepath.Join(repo, name), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			return nil
		}
	}
	rows := map[string]errorRow{
		`unknown image "tf2-gpux"; did you mean tf2-gpu, …`:                                                                      {args: []string{"build", "tf2-gpux"}},
		`WITH_MPI="yes": must be 0 or 1 (or unset)`:                                                                              {args: []string{"publish"}, env: []string{"WITH_MPI=yes"}},
		`WITH_OFI=1 needs WITH_MPI=1`:                                                                                            {args: []string{"publish"}, env: []string{"WITH_OFI=1"}},
		`REGISTRY_REPO="Environments": must be a lower-case repository name`:                                                     {args: []string{"publish"}, env: []string{"REGISTRY_REPO=Environments"}},
		`DOCKERHUB_REGISTRY="https://…": no URL scheme allowed`:                                                                  {args: []string{"publish"}, env: []string{"DOCKERHUB_REGISTRY=https://docker.io/determinedai"}},
		`VERSION is missing or empty`:                                                                                            {args: []string{"publish"}, setup: func(t *testing.T, repo string) []string { commitFile(t, repo, "VERSION", ""); return nil }},
		`VERSION "latest" is not a version`:                                                                                      {args: []string{"publish"}, setup: func(t *testing.T, repo string) []string { commitFile(t, repo, "VERSION", "latest\n"); return nil }},
		`not a git checkout: git rev-parse --short HEAD … failed`:                                                                {args: []string{"publish"}, env: []string{"GIT_DIR=/nonexistent"}},
		`the worktree has changes (…): the <hash> tag would not describe these images`:                                           {args: []string{"publish"}, setup: dirty("notes.txt")},
		`PLATFORM="linux/arm": must be one of linux/amd64, linux/arm64`:                                                          {args: []string{"build", "tf2-cpu"}, env: []string{"PLATFORM=linux/arm"}},
		`PLATFORM=linux/arm64: image gpu-cuda-113-base is built for linux/amd64 only; with PLATFORM=linux/arm64 build one of: …`: {args: []string{"build", "gpu-cuda-113-base"}, env: []string{"PLATFORM=linux/arm64"}},
		`PLATFORM=linux/amd64: PUSH=1 builds and pushes every platform …`:                                                        {args: []string{"build", "tf2-cpu"}, env: []string{"PLATFORM=linux/amd64", "PUSH=1"}},
		`no Docker Engine is reachable at …: a local build loads its images into the engine`:                                     {args: []string{"build", "tf2-cpu"}, env: []string{"FAKE_NO_ENGINE=1"}},
		`ARTIFACTS_DIR="…" cannot receive the artifact files`:                                                                    {args: []string{"publish"}, env: []string{"ARTIFACTS_DIR=/proc/envs-artifacts"}},
		`ARTIFACTS_DIR="artifacts" is inside the checkout … and git does not ignore it`:                                          {args: []string{"publishImage", "tf1-cpu"}, env: []string{"ARTIFACTS_DIR=artifacts"}},
		`PUBLISH_REPORT="…": the directory … cannot receive the file`:                                                            {args: []string{"publish"}, env: []string{"PUBLISH_REPORT=/proc/envs-report/publish-report.json"}},
		`PUBLISH_REPORT="…" is inside ARTIFACTS_DIR`:                                                                             {args: []string{"publish"}, env: []string{"ARTIFACTS_DIR=/tmp/envs-arts", "PUBLISH_REPORT=/tmp/envs-arts/publish-report.json"}},
		`DOCKERHUB_REGISTRY="myorg" is not Determined's namespace …, but NGC_REGISTRY is Determined's NGC organisation`:          {args: []string{"publish"}, env: []string{"DOCKERHUB_REGISTRY=myorg"}},
		`publish: no permission to push to determinedai/environments (registry index.docker.io: …)`: {
			args:  []string{"publishImage", "tf1-cpu"},
			env:   []string{"DOCKERHUB_REGISTRY=" + refusing + "/determinedai", "DOCKER_CONFIG=" + noLogin},
			subst: map[string]string{"determinedai/environments": refusing + "/determinedai/environments", "index.docker.io": refusing},
		},
		`JOBS="0": must be a whole number from 1 to 64`: {args: []string{"publish"}, env: []string{"JOBS=0"}},
		`CACHE="s3": …`:        {args: []string{"buildCPU"}, env: []string{"CACHE=s3"}},
		`NGC_PUBLISH="yes": …`: {args: []string{"publish"}, env: []string{"NGC_PUBLISH=yes"}},
		`image tf2-cpu: build argument(s) TORCH_PIP not declared by any ARG that stage "framework" of Dockerfile.cpu can see`: {
			args: []string{"build", "tf2-cpu"}, subst: map[string]string{"Dockerfile.cpu": "…Dockerfile.cpu"}, // RECIPES_DIR is a copy
			setup: func(t *testing.T, _ string) []string {
				return recipesWith(t, root, func(dir string) { dropLines(t, filepath.Join(dir, "Dockerfile.cpu"), "ARG TORCH_PIP") })
			},
		},
		`the docker CLI is missing`:                                  {args: []string{"publish"}, env: []string{"PATH=" + noDocker + ":" + filepath.Dir(mustLook(t, "go"))}},
		`the docker buildx plugin is missing`:                        {args: []string{"publish"}, env: []string{"FAKE_NO_BUILDX=1"}},
		`buildx v0.9.1 is older than 0.15.0`:                         {args: []string{"publish"}, env: []string{"FAKE_BUILDX_VERSION=v0.9.1"}},
		`builder "…" cannot build linux/arm64 … add arm64 emulation`: {args: []string{"publish"}, env: []string{"FAKE_PLATFORMS=linux/amd64"}},
		`builder "…": no such buildx builder (BUILDX_BUILDER=…)`:     {args: []string{"publish"}, env: []string{"BUILDX_BUILDER=nope", "FAKE_NO_BUILDER=1"}},
		`reading the docker CLI's configuration …/config.json: …`: {
			args: []string{"build", "tf2-cpu"},
			setup: func(t *testing.T, _ string) []string {
				dir := t.TempDir()
				if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"currentContext": `), 0o600); err != nil {
					t.Fatal(err)
				}
				return []string{"DOCKER_CONFIG=" + dir, "DOCKER_HOST=", "DOCKER_CONTEXT=", "BUILDX_BUILDER="}
			},
		},
		`image X is built for linux/amd64 only, not linux/arm64`: {args: []string{"localArm64", "-image=tf2-gpu"}, subst: map[string]string{"X": "tf2-gpu"}},
		`X was built but REF is not in the Docker Engine`: {
			args: []string{"build", "cpu-py-38-base"}, env: []string{"FAKE_NO_IMAGE=1"},
			subst: map[string]string{"X": "cpu-py-38-base", "REF": "determinedai/environments:py-3.8-base-cpu-…"},
		},
		`REGISTRY_MIRRORS="…": "…" is not REGISTRY=MIRROR`: {args: []string{"publish"}, env: []string{"REGISTRY_MIRRORS=docker.io"}},
		`image X: stage "…" of Dockerfile.cpu: COPY/ADD … does not exist in the build context`: {
			args: []string{"build", "cpu-py-38-base"}, subst: map[string]string{"X": "cpu-py-38-base", "Dockerfile.cpu": "…Dockerfile.cpu"},
			setup: func(t *testing.T, _ string) []string {
				return recipesWith(t, root, func(dir string) {
					insertAfter(t, filepath.Join(dir, "Dockerfile.cpu"), "FROM ${BASE_IMAGE} AS base", "COPY dockerfile_scripts/no-such-file /tmp/")
				})
			},
		},
		`N of M external inputs are missing or unreachable: …`: {
			args: []string{"inputs", "-check"}, env: inputsGone(t), subst: map[string]string{"N": "…", "M": "…"},
		},
		`INPUT_MIRRORS="…": "…" is not PREFIX=MIRROR with two http(s) URLs`:                                                                      {args: []string{"inputs", "-check"}, env: []string{"INPUT_MIRRORS=github.com=mirror"}},
		`publish: SIGNING_KEY is not set: every published image is signed`:                                                                       {args: []string{"publishImage", "tf1-cpu"}, env: []string{"SIGNING_KEY="}},
		`publish: SIGNING_KEY=…: no PEM block`:                                                                                                   {args: []string{"publishImage", "tf1-cpu"}, env: []string{"SIGNING_KEY=/etc/hostname"}},
		"verify: no key: set VERIFY_KEY to the publisher's public key file (PEM), or SIGNING_KEY to the private key":                             {args: []string{"verify", "tf2-cpu"}, env: []string{"SIGNING_KEY=", "VERIFY_KEY="}},
		`SBOM_GENERATOR="…": must be an image pinned by digest`:                                                                                  {args: []string{"publish"}, env: []string{"SBOM_GENERATOR=docker/buildkit-syft-scanner:stable-1"}},
		`gpu-cuda-102-base failed: gpu-cuda-102-base cannot be built: its base image nvidia/cuda:10.2-cudnn7-devel-ubuntu18.04 does not exist …`: {args: []string{"build", "gpu-cuda-102-base"}},
		`publish: resolving the external image ubuntu:20.04 (of …) to a digest: …`:                                                               {args: []string{"publishImage", "cpu-py-38-base"}, env: []string{"NGC_PUBLISH=0", "DOCKERHUB_REGISTRY=" + newOpenRegistry(t) + "/determinedai", "REGISTRY_MIRRORS=docker.io=" + newOpenRegistry(t)}},
	}

	file, table := errorsTable(t, root)
	seen := map[string]bool{}
	for _, msgs := range table {
		if len(msgs) == 0 {
			t.Errorf("%s: a row of the errors table names no message", file)
		}
		for _, msg := range msgs {
			seen[msg] = true
			row, ok := rows[msg]
			if !ok {
				t.Errorf("%s documents %q, but no case of this test produces it: add one (how to make the tool print it)", file, msg)
				continue
			}
			t.Run(msg, func(t *testing.T) {
				if row.coveredBy != "" {
					checkCoveredBy(t, root, msg, row.coveredBy)
					return
				}
				repo := gitRepo(t, "0.26.4\n")
				env := append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "RECIPES_DIR="+root, "NO_COLOR=1", "ARTIFACTS_DIR="+filepath.Join(t.TempDir(), "artifacts"))
				if row.setup != nil {
					env = append(env, row.setup(t, repo)...)
				}
				cmd := exec.Command(tool, row.args...)
				cmd.Dir = repo
				cmd.Env = append(env, row.env...)
				out, err := cmd.CombinedOutput()
				if err == nil {
					t.Fatalf("the tool succeeded:\n%s", out)
				}
				if re := messageRE(msg, row.subst); !re.Match(stripQuotes(out)) {
					t.Errorf("no message starts like the documented %q (%s):\n%s", msg, re, out)
				}
			})
		}
	}
	for msg := range rows {
		if !seen[msg] {
			t.Errorf("case %q is not in %s's errors table any more: remove it, or document the message", msg, file)
		}
	}
}

// dropLines removes from file every line that starts with prefix.
func dropLines(t *testing.T, file, prefix string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), prefix) {
			kept = append(kept, l)
		}
	}
	if len(kept) == strings.Count(string(b), "\n")+1 {
		t.Fatalf("%s has no line starting with %q", file, prefix)
	}
	if err := os.WriteFile(file, []byte(strings.Join(kept, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
}

// insertAfter adds line after the first line of file equal to after.
func insertAfter(t *testing.T, file, after, line string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, after+"\n")
	if i < 0 {
		t.Fatalf("%s has no line %q", file, after)
	}
	i += len(after) + 1
	if err := os.WriteFile(file, []byte(s[:i]+line+"\n"+s[i:]), 0o644); err != nil {
		t.Fatal(err)
	}
}

// inputsGone is the environment of an inputs check whose base images are on
// a registry mirror and whose every other source is a server that has none
// of the files (INPUT_MIRRORS sends each declared host there).
func inputsGone(t *testing.T) []string {
	t.Helper()
	imgs, err := inputs.All()
	if err != nil {
		t.Fatal(err)
	}
	gone := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(gone.Close)
	mirror := newOpenRegistry(t)
	hosts := map[string]bool{}
	for _, ii := range imgs {
		for _, in := range ii.Inputs {
			if in.Kind == inputs.Image {
				seedMirror(t, mirror, in.Name)
				continue
			}
			for _, u := range append([]string{in.Name, in.Source}, in.FindLinks...) {
				if p, err := url.Parse(u); err == nil && p.Host != "" {
					hosts[p.Scheme+"://"+p.Host] = true
				}
			}
		}
	}
	var pairs []string
	for h := range hosts {
		pairs = append(pairs, h+"="+gone.URL)
	}
	return []string{"INPUT_MIRRORS=" + strings.Join(pairs, ","), "REGISTRY_MIRRORS=docker.io=" + mirror}
}

// seedMirror pushes a random image to the mirror host under ref (a Docker
// Hub reference).
func seedMirror(t *testing.T, host, ref string) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := name.ParseReference(host+"/"+r.Context().RepositoryStr()+":"+r.Identifier(), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(dst, img); err != nil {
		t.Fatal(err)
	}
}

// checkCoveredBy checks that the test named by coveredBy ("magefiles/<pkg>
// TestName") exists and that its file holds msg's literal start.
func checkCoveredBy(t *testing.T, root, msg, coveredBy string) {
	t.Helper()
	pkg, test, ok := strings.Cut(coveredBy, " ")
	if !ok {
		t.Fatalf("coveredBy %q: want \"magefiles/<pkg> TestName\"", coveredBy)
	}
	literal := msg
	if i := strings.IndexAny(literal, "…<"); i >= 0 {
		literal = literal[:i]
	}
	files, _ := filepath.Glob(filepath.Join(root, pkg, "*_test.go"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "func "+test+"(t *testing.T)") {
			if !strings.Contains(string(b), strings.TrimSpace(literal)) && !strings.Contains(string(b), strconvQuote(strings.TrimSpace(literal))) {
				t.Errorf("%s (%s) does not check the start of %q", test, f, msg)
			}
			return
		}
	}
	t.Errorf("%q is said to be covered by %s, which does not exist", msg, coveredBy)
}

// strconvQuote is s as it appears inside a Go string literal.
func strconvQuote(s string) string {
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

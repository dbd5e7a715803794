package publish

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/determined-ai/environments/magefiles/build"
	"github.com/determined-ai/environments/magefiles/catalog"
	"github.com/determined-ai/environments/magefiles/plan"
	"github.com/determined-ai/environments/magefiles/registry"
	"github.com/determined-ai/environments/magefiles/run"
	"github.com/determined-ai/environments/magefiles/sign"
	"github.com/determined-ai/environments/magefiles/supplytest"
	"github.com/determined-ai/environments/magefiles/variant"
)

// syncBuffer is a bytes.Buffer safe for the concurrent writes of parallel jobs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// harness is a publish run against two in-memory registries on loopback
// standing in for Docker Hub and NGC, with the buildx step replaced by a push
// of a random multi-platform index.
type harness struct {
	t        *testing.T
	hub, ngc string // host:port
	// mirror stands in for docker.io (REGISTRY_MIRRORS): it holds every
	// external base image of the catalog.
	mirror   string
	hash     string // the commit ("" = abc1234)
	root     string // clean git checkout
	env      map[string]string
	out, err *syncBuffer

	mu     sync.Mutex
	builds map[string]int
	// Per image: make the build fail, push only the hashed tag, or push
	// the wrong platforms.
	fail, moved, wrongPlatforms map[string]bool
	// onBuild runs at the start of every stand-in build.
	onBuild func(ctx context.Context, sp plan.Spec) error
	// attestFaults, per image, spoil the attestations the stand-in build
	// pushes (supplytest.Options.Faults); otherBase makes its provenance
	// name another base digest.
	attestFaults map[string]map[string]string
	otherBase    map[string]bool
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	hub := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(discardLogger())))
	t.Cleanup(hub.Close)
	ngc := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(discardLogger())))
	t.Cleanup(ngc.Close)
	mirror := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(discardLogger())))
	t.Cleanup(mirror.Close)
	h := &harness{
		t:      t,
		mirror: strings.TrimPrefix(mirror.URL, "http://"),
		hub:    strings.TrimPrefix(hub.URL, "http://"), ngc: strings.TrimPrefix(ngc.URL, "http://"),
		root: gitRepo(t),
		out:  &syncBuffer{}, err: &syncBuffer{},
		builds: map[string]int{}, fail: map[string]bool{}, moved: map[string]bool{}, wrongPlatforms: map[string]bool{},
		attestFaults: map[string]map[string]string{}, otherBase: map[string]bool{},
	}
	recipes, err := filepath.Abs("testdata/recipes")
	if err != nil {
		t.Fatal(err)
	}
	h.env = map[string]string{
		"DOCKERHUB_REGISTRY": h.hub + "/determinedai",
		"NGC_REGISTRY":       h.ngc + "/ngc",
		"ARTIFACTS_DIR":      filepath.Join(t.TempDir(), "artifacts"),
		"RECIPES_DIR":        recipes,
		"JOBS":               "4",
		"REGISTRY_MIRRORS":   "docker.io=" + h.mirror,
		"SIGNING_KEY":        writeKey(t),
	}
	for _, img := range catalog.All() {
		if img.From != "" {
			h.seedExternal(img.From)
		}
	}
	return h
}

// seedExternal pushes a random image to the mirror under ref (a Docker Hub
// reference) and returns its digest.
func (h *harness) seedExternal(ref string) string {
	h.t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		h.t.Fatal(err)
	}
	dst, err := name.ParseReference(h.mirror+"/"+r.Context().RepositoryStr()+":"+r.Identifier(), name.Insecure)
	if err != nil {
		h.t.Fatal(err)
	}
	img, err := random.Image(256, 1)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := remote.Write(dst, img); err != nil {
		h.t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		h.t.Fatal(err)
	}
	return d.String()
}

func (h *harness) artifactsDir() string { return h.env["ARTIFACTS_DIR"] }

// reportPath is where the report goes: beside ARTIFACTS_DIR by default.
func (h *harness) reportPath() string {
	return filepath.Join(filepath.Dir(h.artifactsDir()), ReportName)
}

// buildEnv makes the build.Env the way build.Load does, from h.env.
func (h *harness) buildEnv() *build.Env {
	h.t.Helper()
	return h.buildEnvFrom(h.env)
}

// buildEnvFrom makes the build.Env from the settings env.
func (h *harness) buildEnvFrom(env map[string]string) *build.Env {
	h.t.Helper()
	hash := h.hash
	if hash == "" {
		hash = "abc1234"
	}
	s, err := variant.Parse(variant.MapLookup(env), "0.26.4", hash)
	if err != nil {
		h.t.Fatal(err)
	}
	r := run.New(s.DryRun, false)
	r.Out, r.Err, r.Dir = h.out, h.err, h.root
	return &build.Env{Settings: s, Runner: r, Status: run.NewStatus(h.err), Root: h.root}
}

func (h *harness) client() *registry.Client {
	return registry.New(registry.WithMirrors(map[string]string{"docker.io": h.mirror}))
}

// run publishes with the stand-in build and no Docker preflight.
func (h *harness) run(ctx context.Context, reg Registry, o Options) (*Report, error) {
	h.t.Helper()
	return publishWith(ctx, h.buildEnv(), reg, o, hooks{
		build:     h.build,
		preflight: func(context.Context, []plan.Spec) error { return nil },
	})
}

func (h *harness) buildCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, c := range h.builds {
		n += c
	}
	return n
}

// build stands in for `docker buildx build --push`: it pushes a random
// index for the spec's platforms, labelled with the inputs digest, to the
// spec's Docker Hub tags and returns its digest.
func (h *harness) build(ctx context.Context, sp plan.Spec) (string, error) {
	image := sp.Image.Name
	h.mu.Lock()
	h.builds[image]++
	fail, moved, wrong, hook := h.fail[image], h.moved[image], h.wrongPlatforms[image], h.onBuild
	faults, otherBase := h.attestFaults[image], h.otherBase[image]
	h.mu.Unlock()
	if hook != nil {
		if err := hook(ctx, sp); err != nil {
			return "", err
		}
	}
	if fail {
		return "", fmt.Errorf("building %s: exit status 1", image)
	}
	platforms := sp.Platforms
	if wrong {
		platforms = []string{"linux/arm64"}
		if len(sp.Platforms) == 1 && sp.Platforms[0] == "linux/arm64" {
			platforms = []string{"linux/amd64"}
		}
	}
	idx, err := standInIndex(sp, platforms, faults, otherBase)
	if err != nil {
		return "", err
	}
	// The tags the real build pushes (in Publish mode the hashed one only).
	for _, t := range sp.BuildTags() {
		ref, err := name.NewTag(t, name.Insecure)
		if err != nil {
			return "", err
		}
		if err := remote.WriteIndex(ref, idx, remote.WithContext(ctx)); err != nil {
			return "", err
		}
	}
	d, err := idx.Digest()
	if err != nil {
		return "", err
	}
	if moved {
		// Something else pushes other content to the hashed tag right after
		// the build. (Content with the same inputs is a concurrent twin,
		// which verification accepts: twin_test.go.)
		other, err := randomIndex(sp.Platforms, map[string]string{plan.InputsLabel: "sha256:moved-by-someone-else"})
		if err != nil {
			return "", err
		}
		ref, err := name.NewTag(sp.Tags.Hashed, name.Insecure)
		if err != nil {
			return "", err
		}
		if err := remote.WriteIndex(ref, other, remote.WithContext(ctx)); err != nil {
			return "", err
		}
	}
	return d.String(), nil
}

// standInIndex is what a publish build of sp pushes: an index for
// platforms, labelled with the inputs digest, with BuildKit's attestations
// (provenance naming the pinned bases, SBOM listing the framework pins),
// spoilt as faults and otherBase say.
func standInIndex(sp plan.Spec, platforms []string, faults map[string]string, otherBase bool) (v1.ImageIndex, error) {
	materials := maps.Clone(sp.Pinned)
	if otherBase {
		for ref := range materials {
			materials[ref] = "sha256:" + strings.Repeat("0", 64)
		}
	}
	var pkgs []supplytest.Package
	for _, p := range frameworkPins(sp.Image) {
		pkgs = append(pkgs, supplytest.Package{Name: p.Name, Version: p.Version})
	}
	return supplytest.Index(supplytest.Options{
		Platforms: platforms, Labels: map[string]string{plan.InputsLabel: sp.InputsDigest},
		Materials: materials, Packages: pkgs, Faults: faults,
	})
}

func randomIndex(platforms []string, labels map[string]string) (v1.ImageIndex, error) {
	// An index without attestations, as a build without them pushes.
	none := map[string]string{}
	for _, p := range platforms {
		none[p] = "none"
	}
	return supplytest.Index(supplytest.Options{Platforms: platforms, Labels: labels, Faults: none})
}

// digestOf reads a tag's digest from the in-memory registries directly.
func digestOf(t *testing.T, ref string) (string, bool) {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	d, err := remote.Head(r)
	if err != nil {
		return "", false
	}
	return d.Digest.String(), true
}

// gitRepo makes a clean checkout with one commit.
func gitRepo(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	dir := t.TempDir()
	for _, args := range [][]string{
		{"init", "-q"},
		{"-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-q", "--allow-empty", "-m", "init"},
	} {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	return dir
}

// parseArtifact parses an artifact file strictly: exactly two "key: value"
// lines, each ended by "\n", keys unique, values plain scalars.
func parseArtifact(t *testing.T, content string) map[string]string {
	t.Helper()
	line := regexp.MustCompile(`^([a-z0-9_]+): ([A-Za-z0-9._:/-]+)$`)
	if !strings.HasSuffix(content, "\n") {
		t.Fatalf("artifact %q does not end with a newline", content)
	}
	lines := strings.Split(strings.TrimSuffix(content, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("artifact %q has %d lines, want 2", content, len(lines))
	}
	out := map[string]string{}
	for _, l := range lines {
		m := line.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("artifact line %q is not a plain `key: value` YAML line", l)
		}
		if _, dup := out[m[1]]; dup {
			t.Fatalf("artifact key %s twice", m[1])
		}
		out[m[1]] = m[2]
	}
	return out
}

func readDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// noRegistry fails the test on any registry call (dry runs contact none).
type noRegistry struct{ t *testing.T }

func (n noRegistry) Lookup(context.Context, []string) (registry.Found, error) {
	n.t.Error("dry run called Lookup")
	return registry.Found{}, errors.New("no registry")
}
func (n noRegistry) Tag(context.Context, string, []string) error {
	n.t.Error("dry run called Tag")
	return errors.New("no registry")
}
func (n noRegistry) Resolve(context.Context, string) (string, error) {
	n.t.Error("dry run called Resolve")
	return "", errors.New("no registry")
}
func (n noRegistry) Verify(context.Context, []string, string, []string) (registry.Image, error) {
	n.t.Error("dry run called Verify")
	return registry.Image{}, errors.New("no registry")
}
func (n noRegistry) Copy(context.Context, string, []string) (registry.CopyStats, error) {
	n.t.Error("dry run called Copy")
	return registry.CopyStats{}, errors.New("no registry")
}
func (n noRegistry) ReadSupply(context.Context, string) (registry.Supply, error) {
	n.t.Error("dry run called ReadSupply")
	return registry.Supply{}, errors.New("no registry")
}
func (n noRegistry) Signatures(context.Context, string, string) ([]registry.Signature, error) {
	n.t.Error("dry run called Signatures")
	return nil, errors.New("no registry")
}
func (n noRegistry) AddSignatures(context.Context, string, string, []registry.Signature) error {
	n.t.Error("dry run called AddSignatures")
	return errors.New("no registry")
}
func (n noRegistry) CopySignatures(context.Context, string, string, string) error {
	n.t.Error("dry run called CopySignatures")
	return errors.New("no registry")
}

// writeKey writes a new signing key into a temporary file and returns its
// path.
func writeKey(t *testing.T) string {
	t.Helper()
	pem, err := sign.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "signing.pem")
	if err := os.WriteFile(path, pem, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func discardLogger() *log.Logger { return log.New(io.Discard, "", 0) }

package publish

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"

	"github.com/determined-ai/environments/magefiles/registry"
)

// writeGate is an in-memory registry that lets anyone read and nobody write:
// a registry the user has not logged in to.
func writeGate(t *testing.T) string {
	t.Helper()
	inner := ggcrregistry.New(ggcrregistry.Logger(discardLogger()))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`))
			return
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// anonClient is the harness's client with no credentials.
func (h *harness) anonClient() *registry.Client {
	return registry.New(registry.WithKeychain(authn.NewMultiKeychain()), registry.WithMirrors(map[string]string{"docker.io": h.mirror}))
}

// seed writes files an earlier run left behind.
func seed(t *testing.T, files map[string]string) {
	t.Helper()
	for path, content := range files {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func TestMissingDockerHubLoginFailsBeforeAnyBuild(t *testing.T) {
	h := newHarness(t)
	gate := writeGate(t)
	h.env["DOCKERHUB_REGISTRY"] = gate + "/determinedai"
	stale := filepath.Join(h.artifactsDir(), "publish-tf1-cpu-0")
	seed(t, map[string]string{stale: "tf1_cpu_0_hashed: old\n", h.reportPath(): `{"ok": true}`})
	_, err := h.run(context.Background(), h.anonClient(), Options{Images: []string{"tf1-cpu"}, Dockerhub: true, NGC: true})
	if err == nil {
		t.Fatal("publish without a Docker Hub login succeeded")
	}
	for _, want := range []string{"no permission to push to " + gate + "/determinedai/environments", "docker login " + gate} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if n := h.buildCount(); n != 0 {
		t.Errorf("%d builds before the permission check", n)
	}
	if exists(stale) || exists(h.reportPath()) {
		t.Error("the earlier run's artifact or report is still there")
	}
}

func TestMissingNGCLoginFailsBeforeAnyBuild(t *testing.T) {
	h := newHarness(t)
	gate := writeGate(t)
	h.env["NGC_REGISTRY"] = gate + "/ngc"
	_, err := h.run(context.Background(), h.anonClient(), Options{Images: []string{"tf2-cpu"}, Dockerhub: true, NGC: true})
	if err == nil || !strings.Contains(err.Error(), "no permission to push to "+gate+"/ngc/environments") {
		t.Fatalf("publish without an NGC login: %v", err)
	}
	if strings.Contains(err.Error(), h.hub) {
		t.Errorf("Docker Hub, which takes pushes, is blamed too: %v", err)
	}
	if n := h.buildCount(); n != 0 {
		t.Errorf("%d builds before the permission check", n)
	}
	// NGC is not checked when nothing goes there.
	h.env["NGC_PUBLISH"] = "0"
	if _, err := h.run(context.Background(), h.anonClient(), Options{Images: []string{"tf2-cpu"}, Dockerhub: true, NGC: true}); err != nil {
		t.Fatalf("publish with NGC_PUBLISH=0: %v", err)
	}
}

func TestOwnNamespaceWithDeterminedsNGCIsRefusedUpFront(t *testing.T) {
	h := newHarness(t)
	h.env["DOCKERHUB_REGISTRY"] = h.hub + "/myorg"
	delete(h.env, "NGC_REGISTRY") // Determined's NGC organisation
	_, err := h.run(context.Background(), h.client(), Options{Images: []string{"tf2-cpu"}, Dockerhub: true, NGC: true})
	if err == nil {
		t.Fatal("publishing myorg's images to Determined's NGC was not refused")
	}
	for _, want := range []string{`DOCKERHUB_REGISTRY="` + h.hub + `/myorg"`, "nvcr.io/isv-ngc-partner/determined", "NGC_PUBLISH=0", "NGC_REGISTRY"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if n := h.buildCount(); n != 0 {
		t.Errorf("%d builds before the refusal", n)
	}
	// An image that does not go to NGC is fine, and so is the fix.
	if _, err := h.run(context.Background(), h.client(), Options{Images: []string{"tf1-cpu"}, Dockerhub: true, NGC: true}); err != nil {
		t.Errorf("tf1-cpu (not an NGC image) to myorg: %v", err)
	}
	h.env["NGC_PUBLISH"] = "0"
	if _, err := h.run(context.Background(), h.client(), Options{Images: []string{"tf2-cpu"}, Dockerhub: true, NGC: true}); err != nil {
		t.Errorf("with NGC_PUBLISH=0: %v", err)
	}
}

func TestStaleFilesGoEvenWhenThePreflightFails(t *testing.T) {
	h := newHarness(t)
	mine := filepath.Join(h.artifactsDir(), "publish-tf1-cpu-0")
	other := filepath.Join(h.artifactsDir(), "publish-pt-cpu-0")
	legacy := filepath.Join(h.artifactsDir(), ReportName)
	seed(t, map[string]string{
		mine: "tf1_cpu_0_hashed: old\n", other: "pt_cpu_0_hashed: old\n",
		legacy: `{"ok": true}`, h.reportPath(): `{"ok": true}`,
		filepath.Join(h.root, "uncommitted.txt"): "x\n",
	})
	_, err := h.run(context.Background(), h.client(), Options{Images: []string{"tf1-cpu"}, Dockerhub: true, NGC: true})
	if err == nil || !strings.Contains(err.Error(), "worktree has changes") {
		t.Fatalf("dirty worktree: %v", err)
	}
	if exists(mine) || exists(legacy) || exists(h.reportPath()) {
		t.Errorf("files of an earlier run are left: %v (report there: %v)", readDir(t, h.artifactsDir()), exists(h.reportPath()))
	}
	if !exists(other) {
		t.Error("the artifact of an image this run does not publish was removed")
	}
}

func TestForeignFilesInArtifactsDirAreNamed(t *testing.T) {
	h := newHarness(t)
	notes := filepath.Join(h.artifactsDir(), "notes.txt")
	seed(t, map[string]string{notes: "mine\n", filepath.Join(h.artifactsDir(), "publish-pt-cpu-1"): "pt_cpu_1_hashed: x\n"})
	if _, err := h.run(context.Background(), h.client(), Options{Images: []string{"tf1-cpu"}, Dockerhub: true, NGC: true}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(h.err.String(), "should hold only publish-<image>-<M> files; it also holds notes.txt\n") {
		t.Errorf("no note about notes.txt (and only it):\n%s", h.err.String())
	}
	if !exists(notes) {
		t.Error("a file the tool did not write was removed")
	}
}

func TestArtifactsDirInsideTheCheckout(t *testing.T) {
	h := newHarness(t)
	h.env["ARTIFACTS_DIR"] = filepath.Join(h.root, "artifacts")
	_, err := h.run(context.Background(), h.client(), Options{Images: []string{"tf1-cpu"}, Dockerhub: true, NGC: true})
	if err == nil {
		t.Fatal("an ARTIFACTS_DIR inside the checkout that git does not ignore was accepted")
	}
	for _, want := range []string{`ARTIFACTS_DIR="` + h.artifactsDir() + `" is inside the checkout`, `PUBLISH_REPORT="` + h.reportPath() + `" is inside the checkout`, ".gitignore"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if n := h.buildCount(); n != 0 {
		t.Errorf("%d builds before the refusal", n)
	}

	// Ignored by git: publishing twice works (the files do not make the
	// worktree dirty).
	seed(t, map[string]string{filepath.Join(h.root, ".gitignore"): "/artifacts/\n/publish-report.json\n"})
	for _, args := range [][]string{{"add", ".gitignore"}, {"-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-q", "-m", "ignore"}} {
		cmd := exec.Command("git", args...)
		cmd.Dir = h.root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	for i := range 2 {
		if _, err := h.run(context.Background(), h.client(), Options{Images: []string{"tf1-cpu"}, Dockerhub: true, NGC: true}); err != nil {
			t.Fatalf("run %d with an ignored ARTIFACTS_DIR: %v", i+1, err)
		}
	}
	if got := readDir(t, h.artifactsDir()); !slices.Equal(got, []string{"publish-tf1-cpu-0"}) {
		t.Errorf("ARTIFACTS_DIR holds %v", got)
	}
}

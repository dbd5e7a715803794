package bench

import (
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/determined-ai/environments/magefiles/catalog"
)

// Content-addressed publishing figures (docs/publishing.md, "Reuse"): what a
// publish rebuilds after a commit that changes no image input, one
// framework image's pin, or a script only framework stages run; and how many
// registry requests an up-to-date image costs.
const (
	FigNewCommitBuilds     = "newcommit-builds"
	FigNewCommitUploaded   = "newcommit-uploaded-bytes"
	FigNewCommitRatio      = "newcommit-republish-ratio"
	FigOnePinBuilds        = "one-pin-builds"
	FigFrameworkEditBuilds = "framework-edit-builds"
	FigUpToDateRequests    = "uptodate-requests-per-image"
)

// contentFigureNames lists them for messages.
var contentFigureNames = strings.Join([]string{FigNewCommitBuilds, FigNewCommitUploaded, FigNewCommitRatio,
	FigOnePinBuilds, FigFrameworkEditBuilds, FigUpToDateRequests}, ", ")

const (
	// newCommitRuns is how many README-only commits are published (the
	// ratio is the median's).
	newCommitRuns = 3
	// pinImage is the framework image whose pin one-pin-builds changes
	// (HOROVOD_PIP, in a copy of the tool's catalog).
	pinImage = "pt-cpu"
	pinOld   = `"horovod==0.24.2"`
	pinNew   = `"horovod==0.24.3"`
	// frameworkScript is the script only the framework stage of
	// Dockerfile.gpu runs (added to the stand-ins for these figures).
	frameworkScript = "dockerfile_scripts/gpu-framework.sh"
)

// withScripts gives the stand-in recipes of repo what the real ones have: a
// dockerfile_scripts/ directory bind-mounted by RUN steps, one script only
// the GPU framework stage runs and one only the base stages run.
func withScripts(ctx context.Context, repo *benchRepo) error {
	files := map[string]string{
		frameworkScript:                   "# run by the framework stage of Dockerfile.gpu\n",
		"dockerfile_scripts/base-step.sh": "# run by the base stages\n",
	}
	for f, c := range files {
		p := filepath.Join(repo.dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			return err
		}
	}
	const mount = "RUN --mount=type=bind,source=dockerfile_scripts,target=/s /bin/busybox cat /s/"
	edits := []struct{ file, old, new string }{
		{"Dockerfile.gpu", `> /bench-framework-last`, "> /bench-framework-last\n" + mount + "gpu-framework.sh > /bench-framework-script"},
		{"Dockerfile.gpu", `> /bench-base`, "> /bench-base\n" + mount + "base-step.sh > /bench-base-script"},
		{"Dockerfile.cpu", `> /bench-base`, "> /bench-base\n" + mount + "base-step.sh > /bench-base-script"},
	}
	for _, e := range edits {
		if err := repo.replace(e.file, e.old, e.new); err != nil {
			return err
		}
	}
	return repo.commit(ctx, "bench: scripts")
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(10 * time.Millisecond)
	}
	return out
}

func equals(n int) func(float64) bool { return func(v float64) bool { return v == float64(n) } }

// replace replaces old by new in file (once; old must occur), no commit.
func (r *benchRepo) replace(file, old, new string) error {
	path := filepath.Join(r.dir, file)
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if !strings.Contains(string(b), old) {
		return fmt.Errorf("%s has no %q", path, old)
	}
	return os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o644)
}

// gpuFrameworkImages are the images built from the framework stage of
// Dockerfile.gpu: what editing frameworkScript must rebuild.
func gpuFrameworkImages() int {
	n := 0
	for _, img := range catalog.All() {
		if img.Recipe == catalog.RecipeGPU && img.Stage == "framework" {
			n++
		}
	}
	return n
}

// built counts the images a publish built.
func (p *publishReport) built() (n int, names []string) {
	for _, im := range p.Images {
		if im.Result == "built" {
			n++
			names = append(names, im.Name)
		}
	}
	return n, names
}

// contentFigures measures the content-addressed publishing figures in a
// repository of their own.
func (b *stackBench) contentFigures(ctx context.Context, fail func(string, error)) error {
	repo, err := newRepo(ctx, filepath.Join(b.work, "repo-content"), "content")
	if err != nil {
		return err
	}
	if err := withScripts(ctx, repo); err != nil {
		return err
	}
	set := b.baseSettings("bench-content")
	// The default JOBS, as CI publishes: every publish below is an ordinary
	// `publish` (JOBS=17 is for the scheduler figures, whose stand-in steps
	// only sleep).
	if err := b.prune(ctx); err != nil {
		return err
	}
	full, err := b.exec(ctx, "content-full", repo, set, "publish")
	if err != nil {
		return err
	}
	if err := full.report.expect("built", len(catalog.All())); err != nil {
		return fmt.Errorf("full publish: %w", err)
	}

	// Commits that change no image input: the median of three.
	var walls []time.Duration
	var builtNames []string
	builds, uploaded := 0, int64(0)
	for i := 1; i <= newCommitRuns; i++ {
		if err := os.WriteFile(filepath.Join(repo.dir, "README.md"), []byte(strings.Repeat("Only the README changes.\n", i)), 0o644); err != nil {
			return err
		}
		if err := repo.commit(ctx, "bench: README only"); err != nil {
			return err
		}
		before, err := b.blobBytes()
		if err != nil {
			return err
		}
		again, err := b.exec(ctx, fmt.Sprintf("content-newcommit-%d", i), repo, set, "publish")
		if err != nil {
			return err
		}
		after, err := b.blobBytes()
		if err != nil {
			return err
		}
		n, names := again.report.built()
		builds = max(builds, n)
		builtNames = append(builtNames, names...)
		uploaded += after - before
		walls = append(walls, again.wall)
	}
	wall, err := Median(walls)
	if err != nil {
		return err
	}
	b.r.figure(FigNewCommitBuilds, float64(builds), 0, &Goal{Max: 0, Say: "0"})
	b.r.figure(FigNewCommitUploaded, float64(uploaded), 0, &Goal{Max: 0, Say: "0"})
	ratio, err := Ratio(wall, full.wall)
	if err != nil {
		return err
	}
	b.r.figure(FigNewCommitRatio, ratio, 3, &Goal{Max: 0.05, Say: "<= 0.05"})
	b.r.note("README-only commits: `publish` (default JOBS) %v wall (median %s) over the full publish's %s; built %v; blob storage of Hub and NGC grew by %d bytes",
		roundAll(walls), wall.Round(10*time.Millisecond), full.wall.Round(10*time.Millisecond), builtNames, uploaded)

	// Up-to-date requests: the same commit again, through a counting proxy
	// in front of Hub, without NGC, so every registry request is counted.
	if err := b.upToDateRequests(ctx, repo, set); err != nil {
		fail(FigUpToDateRequests, err)
	}

	// A script only the GPU framework stage runs.
	if err := repo.edit(ctx, frameworkScript, "# run by", "# edited; run by"); err != nil {
		return err
	}
	edited, err := b.exec(ctx, "content-framework-edit", repo, set, "publish")
	if err != nil {
		return err
	}
	n, names := edited.report.built()
	want := gpuFrameworkImages()
	b.r.figure(FigFrameworkEditBuilds, float64(n), 0, &Goal{Met: equals(want), Say: fmt.Sprintf("%d (the framework images of Dockerfile.gpu, no base)", want)})
	b.r.note("after editing %s (run only by the framework stage of Dockerfile.gpu): built %v", frameworkScript, names)

	// One framework image's pin, in a copy of the tool.
	if err := b.onePin(ctx, repo, set); err != nil {
		fail(FigOnePinBuilds, err)
	}
	return nil
}

// onePin compiles the tool with pinImage's HOROVOD_PIP changed and
// publishes with it. The copy is made from the checkout now: an edit of the
// checkout while the bench runs (one that changes how inputs are computed)
// would show here as more builds.
func (b *stackBench) onePin(ctx context.Context, repo *benchRepo, set map[string]string) error {
	src := filepath.Join(b.work, "tool-one-pin")
	if err := copyToolSource(b.root, src); err != nil {
		return err
	}
	cat := filepath.Join(src, "magefiles", "catalog", "catalog.go")
	c, err := os.ReadFile(cat)
	if err != nil {
		return err
	}
	at := strings.Index(string(c), `Name: "`+pinImage+`"`)
	i := strings.Index(string(c)[max(at, 0):], pinOld)
	if at < 0 || i < 0 {
		return fmt.Errorf("%s has no %s pin %s to change", cat, pinImage, pinOld)
	}
	i += at
	if err := os.WriteFile(cat, []byte(string(c)[:i]+pinNew+string(c)[i+len(pinOld):]), 0o644); err != nil {
		return err
	}
	start := time.Now()
	tool, err := compileTool(ctx, src, src)
	if err != nil {
		return err
	}
	b.r.note("compiled a copy of the tool with %s's %s changed to %s in %s", pinImage, pinOld, pinNew, time.Since(start).Round(100*time.Millisecond))
	saved := b.tool
	b.tool = tool
	rn, err := b.exec(ctx, "content-one-pin", repo, set, "publish")
	b.tool = saved
	if err != nil {
		return err
	}
	n, names := rn.report.built()
	b.r.figure(FigOnePinBuilds, float64(n), 0, &Goal{Met: equals(1), Say: "1 (" + pinImage + ")"})
	b.r.note("after changing %s's pin: built %v", pinImage, names)
	if n == 1 && names[0] != pinImage {
		return fmt.Errorf("rebuilt %s, not %s", names[0], pinImage)
	}
	return nil
}

// copyToolSource copies what `go run magefile.go -compile` needs.
func copyToolSource(root, dst string) error {
	for _, f := range []string{"go.mod", "go.sum", "magefile.go"} {
		c, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			return err
		}
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, f), c, 0o644); err != nil {
			return err
		}
	}
	return os.CopyFS(filepath.Join(dst, "magefiles"), os.DirFS(filepath.Join(root, "magefiles")))
}

// blobBytes is the size of every blob Hub and NGC store.
func (b *stackBench) blobBytes() (int64, error) {
	var total int64
	for _, reg := range []string{"hub", "ngc"} {
		dir := filepath.Join(b.work, "stack", "registry-"+reg, "storage", "docker", "registry", "v2", "blobs")
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && d.Name() == "data" {
				fi, err := d.Info()
				if err != nil {
					return err
				}
				total += fi.Size()
			}
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("reading the %s registry's storage: %w", reg, err)
		}
	}
	return total, nil
}

// countingProxy forwards to a registry and records every request.
type countingProxy struct {
	host string
	mu   sync.Mutex
	reqs []string // "METHOD /path"
}

func newCountingProxy(target string) (*countingProxy, func(), error) {
	u, err := url.Parse("http://" + target)
	if err != nil {
		return nil, nil, err
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	p := &countingProxy{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.reqs = append(p.reqs, r.Method+" "+r.URL.Path)
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	p.host = strings.TrimPrefix(srv.URL, "http://")
	return p, srv.Close, nil
}

// upToDateRequests publishes repo's commit again (every image up to date)
// with Docker Hub behind a counting proxy and NGC off, and reports the
// requests per image after the run's one push-permission check, against the
// minimum the design needs: per image one GET of the hashed tag's manifest, one HEAD of the versioned tag, and the read-back of
// the content (a GET of each child manifest and of its config, a HEAD of
// each layer), and one registry ping for the whole run.
func (b *stackBench) upToDateRequests(ctx context.Context, repo *benchRepo, set map[string]string) error {
	p, stop, err := newCountingProxy(b.st.Hub)
	if err != nil {
		return err
	}
	defer stop()
	s := map[string]string{}
	for k, v := range set {
		s[k] = v
	}
	s["DOCKERHUB_REGISTRY"] = p.host + "/determinedai"
	s["NGC_PUBLISH"] = ""
	rn, err := b.exec(ctx, "content-uptodate", repo, s, "publish")
	if err != nil {
		return err
	}
	if err := rn.report.expect("up-to-date", len(catalog.All())); err != nil {
		return err
	}
	p.mu.Lock()
	reqs := append([]string(nil), p.reqs...)
	p.mu.Unlock()
	// The push-permission check (its own ping, an upload started and
	// cancelled) runs while the images are looked up; its requests are the
	// upload ones and one ping.
	check := 1
	for _, r := range reqs {
		if strings.Contains(r, "/blobs/uploads/") {
			check++
		}
	}
	_ = os.WriteFile(filepath.Join(b.work, "uptodate-requests.txt"), []byte(strings.Join(reqs, "\n")+"\n"), 0o644)
	images := reqs[:len(reqs)-check]
	minimum := 0
	for _, im := range rn.report.Images {
		n, err := readBackRequests(ctx, b.st.Hub, im.Tags.Dockerhub[0])
		if err != nil {
			return err
		}
		minimum += 2 + n
	}
	minimum++ // the one ping of the client
	per := float64(len(images)) / float64(len(rn.report.Images))
	minPer := float64(minimum) / float64(len(rn.report.Images))
	b.r.figure(FigUpToDateRequests, per, 2, &Goal{Max: minPer, Say: fmt.Sprintf("<= %.2f, the minimum of the design", minPer)})
	b.r.note("republish of an unchanged commit with NGC off, Hub behind a counting proxy: %d requests for %d up-to-date images after the %d of the push-permission check; the minimum (per image a GET of the hashed tag, a HEAD of the versioned tag, per child manifest a GET of it and of its config unless inline, a HEAD per distinct layer; one ping) is %d",
		len(images), len(rn.report.Images), check, minimum)
	return nil
}

// readBackRequests is how many requests reading tag's content back takes
// at the least: a GET of each child manifest of an index (attestations
// included) and of its config blob unless the config is inline, and a HEAD
// of each distinct layer; the tag's own manifest comes with its GET. tag is read at
// target (the registry behind the proxy host).
func readBackRequests(ctx context.Context, target, tag string) (int, error) {
	repoTag := tag[strings.Index(tag, "/"):]
	ref, err := name.ParseReference(target+repoTag, name.Insecure)
	if err != nil {
		return 0, err
	}
	desc, err := remote.Get(ref, remote.WithContext(ctx))
	if err != nil {
		return 0, err
	}
	seen := map[string]bool{} // layers
	count := func(img v1.Image) (int, error) {
		m, err := img.Manifest()
		if err != nil {
			return 0, err
		}
		n := 0
		if len(m.Config.Data) == 0 { // an inline config needs no GET
			n++
		}
		for _, l := range m.Layers {
			if !seen[l.Digest.String()] {
				seen[l.Digest.String()] = true
				n++
			}
		}
		return n, nil
	}
	if !desc.MediaType.IsIndex() {
		img, err := desc.Image()
		if err != nil {
			return 0, err
		}
		return count(img)
	}
	idx, err := desc.ImageIndex()
	if err != nil {
		return 0, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return 0, err
	}
	total := 0
	for _, d := range im.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			return 0, err
		}
		n, err := count(img)
		if err != nil {
			return 0, err
		}
		total += 1 + n
	}
	return total, nil
}

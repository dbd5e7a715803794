package inputs

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	memreg "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Stand-ins for each kind of source. Each answers as the real one does
// where the check depends on it: 404 for what is gone, PEP 503 pages with
// PEP 592 yanked marks, gzip'd Packages indexes per suite and component,
// git's own smart-HTTP server.

// registryStandin is go-containerregistry's in-memory registry on 127.0.0.1.
type registryStandin struct{ host string }

func newRegistryStandin(t testing.TB) *registryStandin {
	t.Helper()
	srv := httptest.NewServer(memreg.New(memreg.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return &registryStandin{host: strings.TrimPrefix(srv.URL, "http://")}
}

// push writes a small random image under repo:tag.
func (r *registryStandin) push(t testing.TB, repoTag string) {
	t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(r.host+"/"+repoTag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
}

// remove deletes the manifest repo:tag points at, as a registry operator
// deleting a tag does.
func (r *registryStandin) remove(t testing.TB, repoTag string) {
	t.Helper()
	ref, err := name.ParseReference(r.host+"/"+repoTag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Delete(ref); err != nil {
		t.Fatal(err)
	}
}

// fileStandin serves files by path; HEAD can be refused (405) as some
// object stores do, and it counts requests in flight.
type fileStandin struct {
	mu          sync.Mutex
	files       map[string][]byte
	refuseHEAD  bool
	delay       time.Duration
	inFlight    atomic.Int32
	maxInFlight atomic.Int32
	url         string
}

func newFileStandin(t testing.TB) *fileStandin {
	t.Helper()
	f := &fileStandin{files: map[string][]byte{}}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

func (f *fileStandin) put(path string, data []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.files[path] = data
}

func (f *fileStandin) drop(path string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.files, path)
}

func (f *fileStandin) serve(w http.ResponseWriter, r *http.Request) {
	n := f.inFlight.Add(1)
	defer f.inFlight.Add(-1)
	for {
		m := f.maxInFlight.Load()
		if n <= m || f.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	time.Sleep(f.delay)
	f.mu.Lock()
	data, ok := f.files[r.URL.Path]
	refuse := f.refuseHEAD
	f.mu.Unlock()
	switch {
	case r.Method == http.MethodHead && refuse:
		http.Error(w, "HEAD not allowed", http.StatusMethodNotAllowed)
	case !ok:
		http.NotFound(w, r)
	default:
		http.ServeContent(w, r, filepath.Base(r.URL.Path), time.Time{}, bytes.NewReader(data))
	}
}

// pipStandin is a PEP 503 simple index (plus find-links pages): a page per
// normalised project name, a redirect from other spellings, 404 for
// unknown projects, data-yanked on yanked files.
type pipStandin struct {
	mu       sync.Mutex
	projects map[string][]pipFile // by normalised name
	links    map[string][]pipFile // find-links pages by path
	url      string
}

type pipFile struct {
	name   string
	yanked bool
}

func newPipStandin(t testing.TB) *pipStandin {
	t.Helper()
	p := &pipStandin{projects: map[string][]pipFile{}, links: map[string][]pipFile{}}
	srv := httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(srv.Close)
	p.url = srv.URL
	return p
}

func (p *pipStandin) add(project string, files ...pipFile) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := normalizeProject(project)
	p.projects[n] = append(p.projects[n], files...)
}

func (p *pipStandin) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if files, ok := p.links[r.URL.Path]; ok {
		writeAnchors(w, "", files)
		return
	}
	proj, ok := strings.CutPrefix(r.URL.Path, "/simple/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	proj = strings.TrimSuffix(proj, "/")
	if n := normalizeProject(proj); n != proj {
		http.Redirect(w, r, "/simple/"+n+"/", http.StatusMovedPermanently)
		return
	}
	files, ok := p.projects[proj]
	if !ok {
		http.NotFound(w, r)
		return
	}
	writeAnchors(w, "../../packages/", files)
}

func writeAnchors(w io.Writer, prefix string, files []pipFile) {
	fmt.Fprintln(w, "<!DOCTYPE html><html><body>")
	for _, f := range files {
		yank := ""
		if f.yanked {
			yank = ` data-yanked="broken build"`
		}
		fmt.Fprintf(w, "<a href=\"%s%s#sha256=00\"%s>%s</a><br/>\n", prefix, url.PathEscape(f.name), yank, f.name)
	}
	fmt.Fprintln(w, "</body></html>")
}

// aptStandin is an apt repository: dists/SUITE/COMPONENT/binary-ARCH/Packages.gz
// for each suite, component and architecture it has, 404 otherwise.
type aptStandin struct {
	mu       sync.Mutex
	packages map[string]map[string]string // "suite/component/arch" -> package -> version
	gets     map[string]int
	url      string
}

func newAptStandin(t testing.TB) *aptStandin {
	t.Helper()
	a := &aptStandin{packages: map[string]map[string]string{}, gets: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(srv.Close)
	a.url = srv.URL
	return a
}

func (a *aptStandin) add(suite, comp, arch, pkg, version string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	k := suite + "/" + comp + "/" + arch
	if a.packages[k] == nil {
		a.packages[k] = map[string]string{}
	}
	a.packages[k][pkg] = version
}

func (a *aptStandin) serve(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.gets[r.URL.Path]++
	rest, ok := strings.CutPrefix(r.URL.Path, "/dists/")
	parts := strings.Split(rest, "/")
	if !ok || len(parts) != 4 || parts[3] != "Packages.gz" || !strings.HasPrefix(parts[2], "binary-") {
		http.NotFound(w, r)
		return
	}
	pkgs, ok := a.packages[parts[0]+"/"+parts[1]+"/"+strings.TrimPrefix(parts[2], "binary-")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	gz := gzip.NewWriter(w)
	for _, p := range slices.Sorted(mapKeys(pkgs)) {
		fmt.Fprintf(gz, "Package: %s\nArchitecture: %s\nVersion: %s\nFilename: pool/%s/%s.deb\nDescription: stand-in\n\n",
			p, strings.TrimPrefix(parts[2], "binary-"), pkgs[p], parts[1], p)
	}
	gz.Close()
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// gitStandin is git's own smart-HTTP server (git http-backend, run as CGI)
// over real bare repositories, plus a GitHub-style commit page
// (/OWNER/REPO/commit/SHA) for commits in them.
type gitStandin struct {
	root string
	url  string
	// commits are commits the commit pages know besides those in the
	// repositories (a declared commit cannot be recreated with its hash).
	mu      sync.Mutex
	commits map[string]bool
}

func newGitStandin(t testing.TB) *gitStandin {
	t.Helper()
	execPath, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Fatalf("git --exec-path: %v (the git stand-in needs git)", err)
	}
	g := &gitStandin{root: t.TempDir(), commits: map[string]bool{}}
	backend := &cgi.Handler{
		Path:   filepath.Join(strings.TrimSpace(string(execPath)), "git-http-backend"),
		Env:    []string{"GIT_PROJECT_ROOT=" + g.root, "GIT_HTTP_EXPORT_ALL=1"},
		Stderr: io.Discard,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if repo, sha, ok := strings.Cut(r.URL.Path, "/commit/"); ok {
			g.mu.Lock()
			known := g.commits[strings.TrimPrefix(repo, "/")+"@"+sha]
			g.mu.Unlock()
			if out, err := g.git("--git-dir", filepath.Join(g.root, repo+".git"), "cat-file", "-t", sha); known || err == nil && out == "commit\n" {
				w.WriteHeader(http.StatusOK)
				return
			}
			http.NotFound(w, r)
			return
		}
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	g.url = srv.URL
	return g
}

// git runs git and returns its output.
func (g *gitStandin) git(args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com", "GIT_CONFIG_NOSYSTEM=1", "HOME="+g.root)
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
	}
	return string(out), nil
}

// repo creates a bare repository OWNER/NAME.git with three commits on
// main: the first tagged, the second named by no ref, the third also on
// branch. It returns the first two.
func (g *gitStandin) repo(t testing.TB, path, tag, branch string) (first, middle string) {
	t.Helper()
	return g.repoRefs(t, path, []string{tag}, []string{branch})
}

// repoRefs is repo with any number of tags (on the first commit) and
// branches (on the third).
func (g *gitStandin) repoRefs(t testing.TB, path string, tags, branches []string) (first, middle string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(g.root, path+".git")); err == nil {
		t.Fatalf("repository %s exists already", path)
	}
	work := t.TempDir()
	must := func(args ...string) string {
		out, err := g.git(append([]string{"-C", work}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out)
	}
	must("init", "-q", "-b", "main")
	must("commit", "-q", "--allow-empty", "-m", "one")
	first = must("rev-parse", "HEAD")
	for _, tag := range tags {
		must("tag", "-a", "-m", "release "+tag, tag) // annotated, as releases are: the advertisement peels it
	}
	must("commit", "-q", "--allow-empty", "-m", "two")
	middle = must("rev-parse", "HEAD")
	must("commit", "-q", "--allow-empty", "-m", "three")
	for _, branch := range branches {
		must("branch", branch)
	}
	bare := filepath.Join(g.root, path+".git")
	if err := os.MkdirAll(filepath.Dir(bare), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := g.git("clone", "-q", "--bare", work, bare); err != nil {
		t.Fatal(err)
	}
	return first, middle
}

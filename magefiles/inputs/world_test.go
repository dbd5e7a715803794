package inputs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/determined-ai/environments/magefiles/registry"
)

// toHub sends every registry request to the Docker Hub stand-in (the
// reference stays index.docker.io/...).
type toHub struct{ host string }

func (h toHub) RoundTrip(r *http.Request) (*http.Response, error) {
	out := r.Clone(r.Context())
	out.URL.Scheme, out.URL.Host = "http", h.host
	resp, err := http.DefaultTransport.RoundTrip(out)
	if resp != nil {
		resp.Request = r // the client goes on speaking https to index.docker.io
	}
	return resp, err
}

// world is a stand-in for every source the declared inputs come from,
// filled with exactly the declared inputs: Docker Hub, the download hosts,
// GitHub's git and commit pages, PyPI and PyTorch's find-links pages,
// Ubuntu's archive and ports, Google's apt repository, the conda channels.
type world struct {
	hub   *registryStandin
	files *fileStandin
	pip   *pipStandin
	git   *gitStandin
	apt   map[string]*aptStandin // by declared repository URL
	conda map[string][]string    // channel URL -> package files
	src   Sources
}

func newWorld(t testing.TB, imgs []ImageInputs) *world {
	t.Helper()
	w := &world{
		hub: newRegistryStandin(t), files: newFileStandin(t), pip: newPipStandin(t), git: newGitStandin(t),
		apt: map[string]*aptStandin{}, conda: map[string][]string{},
	}
	w.src.Mirrors = append(w.src.Mirrors, Mirror{From: PyPI, To: w.pip.url + "/simple"}, Mirror{From: "https://github.com", To: w.git.url})
	gitRefs := map[string][2][]string{} // repo path -> tags, branches
	var commits []string
	seen := map[string]bool{}
	for _, ii := range imgs {
		for _, in := range ii.Inputs {
			if seen[in.Key()] {
				continue
			}
			seen[in.Key()] = true
			switch in.Kind {
			case Image:
				r, err := name.ParseReference(in.Name)
				if err != nil {
					t.Fatal(err)
				}
				w.hub.push(t, r.Context().RepositoryStr()+":"+r.Identifier())
			case File:
				u := mustURL(t, in.Name)
				w.files.put("/"+u.Host+u.Path, []byte("contents of "+in.Name))
				w.src.Mirrors = append(w.src.Mirrors, Mirror{From: in.Name, To: w.files.url + "/" + u.Host + u.Path})
			case Git:
				path := strings.TrimSuffix(strings.TrimPrefix(in.Name, "https://github.com/"), ".git")
				refs := gitRefs[path]
				switch {
				case commitRE.MatchString(in.Version):
					commits = append(commits, path+"@"+in.Version)
				case strings.HasPrefix(in.Version, "v"):
					refs[0] = append(refs[0], in.Version)
				default:
					refs[1] = append(refs[1], in.Version)
				}
				gitRefs[path] = refs
			case Pip:
				w.addPip(t, in)
			case Apt:
				a, ok := w.apt[in.Source]
				if !ok {
					a = newAptStandin(t)
					w.apt[in.Source] = a
					w.src.Mirrors = append(w.src.Mirrors, Mirror{From: in.Source, To: a.url})
				}
				a.add(in.Suite, in.Components[0], in.Arch, in.Name, "1.0-1")
			case Conda:
				if _, ok := w.conda[in.Source]; !ok {
					u := mustURL(t, in.Source)
					w.src.Mirrors = append(w.src.Mirrors, Mirror{From: in.Source, To: w.files.url + "/" + u.Host + u.Path})
				}
				w.conda[in.Source] = append(w.conda[in.Source], in.Name+"-"+in.Version+"-h12345_0.tar.bz2")
			default:
				t.Fatalf("no stand-in for %s inputs", in.Kind)
			}
		}
	}
	for path, refs := range gitRefs {
		w.git.repoRefs(t, path, refs[0], refs[1])
	}
	for _, c := range commits {
		path, _, _ := strings.Cut(c, "@")
		if _, ok := gitRefs[path]; !ok {
			w.git.repoRefs(t, path, nil, nil)
			gitRefs[path] = [2][]string{}
		}
		w.git.mu.Lock()
		w.git.commits[c] = true // OWNER/REPO@COMMIT
		w.git.mu.Unlock()
	}
	w.writeRepodata(t)
	// Longest prefix first, as ParseSources orders them.
	slices.SortStableFunc(w.src.Mirrors, func(a, b Mirror) int { return len(b.From) - len(a.From) })
	return w
}

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// addPip puts a file of a version the requirement allows on the index, or
// on its find-links page when the version is local ("+cpu").
func (w *world) addPip(t testing.TB, in Input) {
	t.Helper()
	project, _, _ := strings.Cut(in.Name, "[")
	version := "1.0"
	if in.Version != "" {
		var op string
		op, version = splitOp(strings.Split(in.Version, ",")[0])
		if op == "<" || op == "!=" {
			version = "0.1"
		}
	}
	if !satisfies(version, in.Version) {
		t.Fatalf("the world's %s %s does not satisfy %q", project, version, in.Version)
	}
	file := pipFile{name: strings.ReplaceAll(project, "-", "_") + "-" + version + "-py3-none-any.whl"}
	if strings.Contains(version, "+") && len(in.FindLinks) > 0 {
		u := mustURL(t, in.FindLinks[0])
		w.pip.mu.Lock()
		w.pip.links[u.Path] = append(w.pip.links[u.Path], file)
		w.pip.mu.Unlock()
		m := Mirror{From: u.Scheme + "://" + u.Host, To: w.pip.url}
		if !slices.Contains(w.src.Mirrors, m) {
			w.src.Mirrors = append(w.src.Mirrors, m)
		}
		return
	}
	w.pip.add(project, file)
}

func (w *world) writeRepodata(t testing.TB) {
	t.Helper()
	for channel, pkgs := range w.conda {
		idx := map[string]map[string]string{}
		for _, p := range pkgs {
			parts := strings.Split(p, "-")
			idx[p] = map[string]string{"name": parts[0], "version": parts[1]}
		}
		data, err := json.Marshal(map[string]any{"info": map[string]string{}, "packages": idx})
		if err != nil {
			t.Fatal(err)
		}
		u := mustURL(t, channel)
		w.files.put("/"+u.Host+u.Path+"/repodata.json", data)
	}
}

func (w *world) checker() *Checker {
	return &Checker{
		Registry: registry.New(registry.WithTransport(toHub{w.hub.host}), registry.WithRetry(1, 0)),
		NotFound: registry.ErrNotFound,
		Sources:  w.src,
	}
}

func (w *world) check(t testing.TB, imgs []ImageInputs) []Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return w.checker().Check(ctx, imgs)
}

// TestCheckEveryDeclaredInput runs the check over the real declarations
// (every image of the catalog) against a world of stand-ins that has them
// all: every one is found. Then one input of each kind vanishes from its
// source, and the check names exactly those, with their images.
func TestCheckEveryDeclaredInput(t *testing.T) {
	imgs, err := All()
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, imgs)
	rs := w.check(t, imgs)
	kinds := map[Kind]int{}
	for _, r := range rs {
		kinds[r.Input.Kind]++
		if r.Status != OK {
			t.Errorf("%s: %s (%s) from %s, want ok", r.Input, r.Status, r.Detail, r.Asked)
		}
	}
	for _, k := range Kinds {
		if kinds[k] == 0 {
			t.Errorf("no %s input checked", k)
		}
	}
	if t.Failed() {
		return
	}

	// One input of each kind vanishes from its source (the first the
	// catalog declares, so the test follows the declarations), and a pip
	// release is yanked.
	vanished := map[string]Status{}
	images := map[string][]string{}
	pipProjects := map[string]int{}
	for _, r := range rs {
		if r.Input.Kind == Pip {
			pipProjects[normalizeProject(strings.Split(r.Input.Name, "[")[0])]++
		}
	}
	for _, r := range rs {
		in := r.Input
		if _, done := vanished[string(in.Kind)]; done && in.Kind != Pip {
			continue
		}
		switch in.Kind {
		case Image:
			ref, err := name.ParseReference(in.Name)
			if err != nil {
				t.Fatal(err)
			}
			w.hub.remove(t, ref.Context().RepositoryStr()+":"+ref.Identifier())
		case File:
			u := mustURL(t, in.Name)
			w.files.drop("/" + u.Host + u.Path)
		case Git:
			if commitRE.MatchString(in.Version) {
				continue // a commit cannot be deleted from GitHub's commit page; refs can
			}
			path := strings.TrimSuffix(strings.TrimPrefix(in.Name, "https://github.com/"), ".git")
			kind := "tag"
			if !strings.HasPrefix(in.Version, "v") {
				kind = "branch"
			}
			if _, err := w.git.git("--git-dir", w.git.root+"/"+path+".git", kind, "-D", in.Version); err != nil && kind == "branch" {
				t.Fatal(err)
			} else if kind == "tag" {
				if _, err := w.git.git("--git-dir", w.git.root+"/"+path+".git", "tag", "-d", in.Version); err != nil {
					t.Fatal(err)
				}
			}
		case Pip:
			project := normalizeProject(strings.Split(in.Name, "[")[0])
			if pipProjects[project] != 1 || len(in.FindLinks) > 0 {
				continue // the only requirement of its project, on the index
			}
			yank := vanished["pip-yanked"] == ""
			if !yank && vanished["pip"] != "" {
				continue
			}
			w.pip.mu.Lock()
			files := w.pip.projects[project]
			if yank {
				for i := range files {
					files[i].yanked = true
				}
			} else {
				delete(w.pip.projects, project)
			}
			w.pip.mu.Unlock()
			status, key := Missing, "pip"
			if yank {
				key = "pip-yanked"
				if strings.HasPrefix(in.Version, "==") {
					status = Warn // pip installs an exact pin of a yanked release (PEP 592)
				}
			}
			vanished[key] = status
			vanished[in.Key()] = status
			images[in.Key()] = r.Images
			continue
		case Apt:
			a := w.apt[in.Source]
			a.mu.Lock()
			delete(a.packages[in.Suite+"/"+in.Components[0]+"/"+in.Arch], in.Name)
			a.mu.Unlock()
		case Conda:
			w.conda[in.Source] = slices.DeleteFunc(w.conda[in.Source], func(p string) bool { return strings.HasPrefix(p, in.Name+"-"+in.Version+"-") })
			w.writeRepodata(t)
		}
		vanished[string(in.Kind)] = Missing
		vanished[in.Key()] = Missing
		images[in.Key()] = r.Images
	}
	for _, k := range append(slices.Clone(Kinds), "pip-yanked") {
		if _, ok := vanished[string(k)]; !ok {
			t.Fatalf("no %s input was made to vanish", k)
		}
	}

	rs = w.check(t, imgs)
	failed := 0
	for _, r := range rs {
		want, gone := vanished[r.Input.Key()]
		switch {
		case !gone && r.Status != OK:
			t.Errorf("%s: %s (%s), but it did not vanish", r.Input, r.Status, r.Detail)
		case gone && (r.Status != want || !slices.Equal(r.Images, images[r.Input.Key()])):
			t.Errorf("%s vanished: %s for %v, want %s for %v", r.Input, r.Status, r.Images, want, images[r.Input.Key()])
		case gone:
			t.Logf("found: %s %s for %v: %s", r.Status, r.Input, r.Images, r.Detail)
		}
		if r.Failed() {
			failed++
		}
	}
	t.Logf("vanished inputs tried: %d (one of each of the %d kinds, and a yanked release) among %d declared, each named with its images",
		len(images), len(Kinds), len(rs))
	var ce *CheckError
	if err := Verdict(rs); err == nil || !strings.HasPrefix(err.Error(), fmt.Sprintf("%d of %d external inputs are missing", failed, len(rs))) {
		t.Errorf("verdict: %v", err)
	} else if !errors.As(err, &ce) || len(ce.Failed) < len(Kinds) {
		t.Errorf("verdict %v names fewer than one input of each kind", err)
	}
}

// BenchmarkCheckEveryDeclaredInput: the check of every declared input
// against the world of stand-ins on loopback, each run with a new Checker
// (no index read before): the tool's own cost, without the internet's
// latency.
func BenchmarkCheckEveryDeclaredInput(b *testing.B) {
	imgs, err := All()
	if err != nil {
		b.Fatal(err)
	}
	w := newWorld(b, imgs)
	for b.Loop() {
		for _, r := range w.check(b, imgs) {
			if r.Status != OK {
				b.Fatalf("%s: %s (%s)", r.Input, r.Status, r.Detail)
			}
		}
	}
}

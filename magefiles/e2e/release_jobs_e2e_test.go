//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"go.yaml.in/yaml/v3"

	"github.com/determined-ai/environments/magefiles/ci"
	"github.com/determined-ai/environments/magefiles/ci/citest"
	"github.com/determined-ai/environments/magefiles/stack"
)

// ciCheckout is the repository the jobs check out: this commit's tool
// (magefile.go, magefiles/, tools/, go.mod) with the stand-in recipes in
// place of the real ones, one commit. It returns the path and the short hash.
func ciCheckout(t *testing.T, dir string) (string, string) {
	t.Helper()
	repo := filepath.Join(dir, "checkout")
	out, err := exec.Command("git", "-C", rootDir, "ls-files", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		top, _, _ := strings.Cut(f, "/")
		if !slices.Contains([]string{"magefile.go", "go.mod", "go.sum", ".gitignore", "magefiles", "tools"}, top) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(rootDir, f))
		if os.IsNotExist(err) {
			continue // deleted in the worktree
		}
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(repo, f), string(b))
	}
	if err := os.CopyFS(repo, os.DirFS(filepath.Join(rootDir, "magefiles", "e2e", standInRecipes))); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(repo, "VERSION"), testVersion+"\n")
	writeFile(t, filepath.Join(repo, "dockerfile_scripts", "e2e-scenario"), fmt.Sprintf("ci-jobs-%d\n", time.Now().UnixNano()))
	git := func(args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=e2e", "GIT_AUTHOR_EMAIL=e2e@example.invalid",
			"GIT_COMMITTER_NAME=e2e", "GIT_COMMITTER_EMAIL=e2e@example.invalid", "GIT_CONFIG_NOSYSTEM=1", "HOME="+repo)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q")
	git("add", "-A")
	git("commit", "-q", "-m", "the commit CI builds")
	return repo, git("rev-parse", "--short", "HEAD")
}

// TestCIJobsOnLoginOnlyRegistries runs the generated jobs step by step (job
// runner) against registries that want a login, as Docker Hub and NGC do:
// a token service grants per repository, the Docker Hub stand-in takes
// pushes from the context's DOCKER_USER only, the NGC stand-in from
// `$oauthtoken` with the API key. First a job whose login may only pull is
// refused before any build. Then every job of the release workflow, all at
// once, and every job of the development workflow, all at once: each must
// succeed and store exactly its artifact, and Determined's release tooling
// (the model of update-bumpenvs-yaml.py, against a stand-in of CircleCI's
// API serving these jobs) must bump every key to this commit's tags; a
// failed job makes it refuse. Prints release-base-builds.
func TestCIJobsOnLoginOnlyRegistries(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	dir := t.TempDir()
	ts := newTokenServer(t, dir)
	loginRegistry := func(name, service string) string {
		f := ts.newFront(t)
		addr, err := stk.StartTokenRegistry(ctx, name, stack.TokenAuth{Realm: f.realm(), Service: service, Issuer: ts.issuer, RootCertBundle: ts.certPath})
		if err != nil {
			t.Fatal(err)
		}
		f.route(addr)
		return f.host()
	}
	hub, ngc := loginRegistry("hub-login", "e2e-hub"), loginRegistry("ngc-login", "e2e-ngc")
	for _, repo := range []string{"determinedai/environments", "determinedai/environments-dev"} {
		ts.allow("ci-bot", "hub-secret", "e2e-hub", repo, "pull", "push")
		ts.allow("reader", "reader-secret", "e2e-hub", repo, "pull")
	}
	ts.allow("$oauthtoken", "ngc-api-key", "e2e-ngc", "ngc/environments", "pull", "push")

	checkout, hash := ciCheckout(t, dir)
	cictx := map[string]string{
		"DOCKER_USER": "ci-bot", "DOCKER_PASS": "hub-secret",
		"NGC_API_USERNAME": "$oauthtoken", "NGC_API_KEY": "ngc-api-key",
		// Where Docker Hub, nvcr.io and docker.io's library images are here.
		"DOCKERHUB_REGISTRY": hub + "/determinedai", "NGC_REGISTRY": ngc + "/ngc",
		"REGISTRY_MIRRORS": "docker.io=" + stk.Mirror,
		// The signing key as the context holds it (the PEM text; the
		// signing-key step writes it to a file), and the suite's SBOM
		// generator stand-in.
		"ENVIRONMENTS_SIGNING_KEY": readSigningKey(t), "SBOM_GENERATOR": sbomGenerator,
	}
	m := machineSpec{checkout: checkout, context: cictx, cacheDir: filepath.Join(dir, "ci-cache"), builder: stk.BuildkitdAddr}
	f := parseCI(t)
	release, dev := f.workflowJobs(ci.ReleaseWorkflow), f.workflowJobs(ci.DevWorkflow)
	if len(release) != 19 || len(dev) != 19 {
		t.Fatalf("%d release and %d development jobs, want 19 each", len(release), len(dev))
	}

	// Warm-up: one job's steps up to its publish fill the caches (Go
	// modules, the toolchain, buildx, mage's compiled tool), as the first
	// job of a cache key does in CircleCI.
	start := time.Now()
	warm := m
	warm.warmUp = true
	if r := runJob(ctx, t, f, release[0], warm, filepath.Join(dir, "warm-up")); !r.ok {
		t.Fatalf("warm-up of %s failed at %s:\n%s", release[0], r.failed, r.out)
	}
	t.Logf("warm-up (steps before publish, cold caches): %s", time.Since(start).Round(time.Millisecond))

	// A login that may only pull: refused before any build.
	readOnly := m
	readOnly.context = maps.Clone(cictx)
	readOnly.context["DOCKER_USER"], readOnly.context["DOCKER_PASS"] = "reader", "reader-secret"
	r := runJob(ctx, t, f, "build-and-publish-docker-tf1-cpu-0", readOnly, filepath.Join(dir, "read-only"))
	if r.ok || !strings.Contains(r.failed, "Publish tf1-cpu") || !strings.Contains(r.out, "no permission to push to "+hub+"/determinedai/environments") ||
		strings.Contains(r.out, "docker buildx build ") || len(r.artifacts) != 0 {
		t.Errorf("a pull-only login: ok=%v failed at %q, artifacts %v:\n%s", r.ok, r.failed, r.artifacts, r.out)
	}
	if got := ts.grantsTo("reader", "e2e-hub", "push"); len(got) != 0 {
		t.Errorf("the token service granted push to the reader: %v", got)
	}

	for _, wf := range []struct {
		name string
		jobs []string
		dev  bool
	}{{ci.ReleaseWorkflow, release, false}, {ci.DevWorkflow, dev, true}} {
		start := time.Now()
		results := runJobs(ctx, t, f, wf.jobs, m, filepath.Join(dir, wf.name))
		t.Logf("%s: 19 jobs (their publish steps at once) in %s", wf.name, time.Since(start).Round(time.Millisecond))
		var builds []citest.Build
		baseBuilds := 0
		for _, job := range slices.Sorted(maps.Keys(results)) {
			r := results[job]
			if !r.ok {
				t.Errorf("job %s failed at %s:\n%s", job, r.failed, r.out)
			}
			image := strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(job, "build-and-publish-docker-"), "-dev"), "-0")
			image = strings.TrimSuffix(image, "-1")
			mpi := strings.TrimSuffix(job, "-dev")
			mpi = mpi[len(mpi)-1:]
			if want := []string{"tmp/artifacts/publish-" + image + "-" + mpi}; !slices.Equal(slices.Sorted(maps.Keys(r.artifacts)), want) && r.ok {
				t.Errorf("job %s stored %v, want %v", job, slices.Sorted(maps.Keys(r.artifacts)), want)
			}
			if rep, ok := readReport(t, filepath.Join(dir, wf.name, job, "tmp", "artifacts")); ok {
				for _, ir := range rep.Images {
					if strings.HasSuffix(ir.Name, "-base") && ir.Result == "built" {
						baseBuilds++
					}
					if len(ir.Tags.NGC) > 0 && !wf.dev && ir.Verified {
						for _, tag := range ir.Tags.NGC {
							if !loginHas(t, tag, "$oauthtoken", "ngc-api-key") {
								t.Errorf("job %s: %s not on the NGC stand-in", job, tag)
							}
						}
					}
				}
			}
			status := "success"
			if !r.ok {
				status = "failed"
			}
			builds = append(builds, citest.Build{Job: job, Revision: hash, Status: status, Artifacts: r.artifacts})
		}
		t.Logf("release-base-builds (%s): %d base builds in the 19 jobs started at once (10 distinct bases)", wf.name, baseBuilds)
		after, err := bumpWith(t, builds, hash, wf.dev)
		if err != nil {
			t.Errorf("%s: the release tooling refused the run: %v", wf.name, err)
		}
		repo := "environments"
		if wf.dev {
			repo = "environments-dev"
		}
		for k, v := range after {
			if !strings.HasPrefix(v, hub+"/determinedai/"+repo+":") || !(strings.HasSuffix(v, "-"+hash) || strings.HasSuffix(v, "-"+testVersion)) {
				t.Errorf("%s: key %s bumped to %s, not this commit's tag", wf.name, k, v)
			}
			if !loginHas(t, v, "ci-bot", "hub-secret") {
				t.Errorf("%s: key %s: %s is not in the registry", wf.name, k, v)
			}
		}
		if len(after) != 38 {
			t.Errorf("%s: %d keys bumped, want 38", wf.name, len(after))
		}
		// One failed job: the bump is refused.
		failed := slices.Clone(builds)
		failed[0].Status, failed[0].Artifacts = "failed", nil
		if _, err := bumpWith(t, failed, hash, wf.dev); err == nil || !strings.Contains(err.Error(), failed[0].Job) {
			t.Errorf("%s: a failed %s did not abort the bump: %v", wf.name, failed[0].Job, err)
		}
	}
	if got := ts.grantsTo("ci-bot", "e2e-hub", "push"); len(got) == 0 {
		t.Error("no push was authorised on the Docker Hub stand-in")
	}
	if got := ts.grantsTo("$oauthtoken", "e2e-ngc", "push"); len(got) == 0 {
		t.Error("no push was authorised on the NGC stand-in: the copy to NGC did not log in")
	}
}

// bumpWith runs the release engineer's command on a bumpenvs.yaml holding
// the 38 keys and returns the new values.
func bumpWith(t *testing.T, builds []citest.Build, commit string, dev bool) (map[string]string, error) {
	t.Helper()
	api := citest.Serve(builds)
	defer api.Close()
	conf := map[string]map[string]string{}
	for _, k := range citest.ContractKeys() {
		conf[k] = map[string]string{"old": "a", "new": "b"}
	}
	path := filepath.Join(t.TempDir(), "bumpenvs.yaml")
	text, err := yaml.Marshal(conf)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, string(text))
	if _, err := citest.Bump(context.Background(), api.URL, path, commit, dev); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var after map[string]map[string]string
	if err := yaml.Unmarshal(b, &after); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for k, v := range after {
		if v["old"] != "b" {
			t.Errorf("key %s: old %q, want the previous new", k, v["old"])
		}
		out[k] = v["new"]
	}
	return out, nil
}

// loginHas reports whether tag exists in its registry, asked with a login.
func loginHas(t *testing.T, tag, user, pass string) bool {
	t.Helper()
	r, err := name.ParseReference(tag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	_, err = remote.Head(r, remote.WithAuth(&authn.Basic{Username: user, Password: pass}), remote.WithContext(context.Background()))
	return err == nil
}

// readSigningKey is the PEM text of the suite's signing key.
func readSigningKey(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(signingKey)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

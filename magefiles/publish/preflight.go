package publish

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/determined-ai/environments/magefiles/build"
	"github.com/determined-ai/environments/magefiles/plan"
	"github.com/determined-ai/environments/magefiles/registry"
	"github.com/determined-ai/environments/magefiles/run"
	"github.com/determined-ai/environments/magefiles/variant"
)

// checkOutputs checks where the run writes files, before anything is built:
// ARTIFACTS_DIR and the report's directory must be writable (real runs), and
// neither may be inside the checkout unless git ignores it, because files
// there would make the worktree dirty and the next publish refuse.
func checkOutputs(ctx context.Context, e *build.Env) error {
	s := e.Settings
	var errs []error
	if !e.Runner.DryRun {
		if err := checkArtifactsDir(s.ArtifactsDir); err != nil {
			errs = append(errs, err)
		}
		if err := checkWritableDir("PUBLISH_REPORT", s.Report, filepath.Dir(s.Report)); err != nil {
			errs = append(errs, err)
		}
	}
	for _, out := range []struct{ key, value, probe string }{
		{"ARTIFACTS_DIR", s.ArtifactsDir, filepath.Join(s.ArtifactsDir, ArtifactName("probe", "0"))},
		{"PUBLISH_REPORT", s.Report, s.Report},
	} {
		if err := checkOutsideCheckout(ctx, e, out.key, out.value, out.probe); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// checkOutsideCheckout refuses an output path inside the checkout that git
// does not ignore. probe is a file the run would write there.
func checkOutsideCheckout(ctx context.Context, e *build.Env, key, value, probe string) error {
	if e.Root == "" {
		return nil
	}
	root, err := filepath.Abs(e.Root)
	if err != nil {
		return nil
	}
	abs := probe
	if !filepath.IsAbs(abs) {
		abs = filepath.Join(root, abs) // the tool runs in the checkout
	}
	rel, err := filepath.Rel(root, abs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return nil
	}
	_, err = e.Runner.Output(ctx, "git", "-C", root, "check-ignore", "-q", "--", rel)
	if err == nil {
		return nil // ignored: does not make the worktree dirty
	}
	var ee *run.ExitError
	if !errors.As(err, &ee) || ee.Code != 1 {
		return fmt.Errorf("%s=%q: checking whether git ignores it in the checkout %s: %w", key, value, root, err)
	}
	return fmt.Errorf("%s=%q is inside the checkout %s and git does not ignore it: the files written there would make the worktree dirty and the next publish refuse; use a path outside the checkout (default ARTIFACTS_DIR=%s, report beside it) or add it to .gitignore",
		key, value, root, variant.DefaultArtifactsDir)
}

// checkArtifactsDir makes sure the artifact files can be written before
// anything is built or pushed: the directory exists (or is created) and a
// probe file can be written and removed.
func checkArtifactsDir(dir string) error {
	return checkWritableDir("ARTIFACTS_DIR", dir, dir)
}

// checkWritableDir creates dir if needed and writes and removes a probe file
// in it; key=value is the setting that names it.
func checkWritableDir(key, value, dir string) error {
	bad := func(err error) error {
		if key == "ARTIFACTS_DIR" {
			return fmt.Errorf("ARTIFACTS_DIR=%q cannot receive the artifact files (%v); set ARTIFACTS_DIR to a writable directory (default %s)", value, err, variant.DefaultArtifactsDir)
		}
		return fmt.Errorf("%s=%q: the directory %s cannot receive the file (%v); set %s to a path in a writable directory", key, value, dir, err, key)
	}
	if dir == "" {
		return bad(errors.New("empty path"))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return bad(err)
	}
	f, err := os.CreateTemp(dir, ".publish-probe-*")
	if err != nil {
		return bad(err)
	}
	_, werr := f.WriteString("probe\n")
	cerr := f.Close()
	rerr := os.Remove(f.Name())
	if err := errors.Join(werr, cerr, rerr); err != nil {
		return bad(err)
	}
	return nil
}

// checkNGCTarget refuses to send images to Determined's NGC organisation
// from someone else's Docker Hub namespace (DOCKERHUB_REGISTRY=myorg, the
// manual flow, with NGC_REGISTRY left at its default): the NGC copies would
// carry images that are not Determined's releases. It is refused, not
// skipped, so that a target never silently does less than it says; the
// error gives both fixes.
func checkNGCTarget(s variant.Settings, ngc bool, specs []plan.Spec) error {
	if !ngc || s.NGCRegistry != variant.DefaultNGCRegistry || isDeterminedHub(s.DockerhubRegistry) {
		return nil
	}
	for _, sp := range specs {
		if sp.NGCTags.Hashed != "" {
			return fmt.Errorf("DOCKERHUB_REGISTRY=%q is not Determined's namespace (%s), but NGC_REGISTRY is Determined's NGC organisation (%s): set NGC_PUBLISH=0 to publish to %s only, or NGC_REGISTRY to your own NGC namespace",
				s.DockerhubRegistry, variant.DefaultDockerhubRegistry, variant.DefaultNGCRegistry, plan.DockerhubRepo(s))
		}
	}
	return nil
}

func isDeterminedHub(v string) bool {
	for _, p := range []string{"", "docker.io/", "index.docker.io/", "registry-1.docker.io/"} {
		if v == p+variant.DefaultDockerhubRegistry {
			return true
		}
	}
	return false
}

// pushChecker is implemented by registry clients that can check, before
// anything is built, that the credentials allow pushing to a repository
// (*registry.Client does).
type pushChecker interface {
	CheckPush(ctx context.Context, repo string) error
}

var _ pushChecker = (*registry.Client)(nil)

// checkPush checks the permission to push to every repository the run
// writes: Docker Hub always, NGC when NGC images are copied there. A missing
// `docker login` then fails in seconds, naming the registry and the login to
// run, instead of after hours of building. A dry run only names the checks.
func (p *publisher) checkPush(ctx context.Context, specs []plan.Spec) error {
	s := p.e.Settings
	repos := []string{plan.DockerhubRepo(s)}
	if p.ngc {
		for _, sp := range specs {
			if sp.NGCTags.Hashed != "" {
				repos = append(repos, plan.NGCRepo(s))
				break
			}
		}
	}
	pc, ok := p.reg.(pushChecker)
	var errs []error
	for _, repo := range repos {
		p.e.Runner.Note("check push permission %s", repo)
		if p.dry || !ok {
			continue
		}
		if err := pc.CheckPush(ctx, repo); err != nil {
			errs = append(errs, fmt.Errorf("publish: %w", err))
		}
	}
	return errors.Join(errs...)
}

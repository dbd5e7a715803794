// Package publish builds, pushes and verifies the images, copies the NGC
// images to NGC, and writes the artifact files of the old Makefile's
// publish-<image> targets, plus a JSON report of the whole run.
//
// Every image is built with `docker buildx build --push --metadata-file`,
// unless it is already published from the same inputs (the
// plan.InputsLabel label); then each tag is verified to point at the pushed
// digest with the planned platforms, and only after that is the artifact
// file written. Images run in dependency order with bounded parallelism; a
// failure stops only the images built on the failed one.
package publish

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/determined-ai/environments/magefiles/build"
	"github.com/determined-ai/environments/magefiles/catalog"
	"github.com/determined-ai/environments/magefiles/inputs"
	"github.com/determined-ai/environments/magefiles/plan"
	"github.com/determined-ai/environments/magefiles/registry"
	"github.com/determined-ai/environments/magefiles/schedule"
	"github.com/determined-ai/environments/magefiles/sign"
)

// Registry is what publish needs from a registry client; *registry.Client
// satisfies it.
type Registry interface {
	Lookup(ctx context.Context, tags []string) (registry.Found, error)
	Tag(ctx context.Context, src string, dst []string) error
	Resolve(ctx context.Context, ref string) (string, error)
	Verify(ctx context.Context, tags []string, wantDigest string, wantPlatforms []string) (registry.Image, error)
	Copy(ctx context.Context, src string, dst []string) (registry.CopyStats, error)
	ReadSupply(ctx context.Context, ref string) (registry.Supply, error)
	Signatures(ctx context.Context, repo, digest string) ([]registry.Signature, error)
	AddSignatures(ctx context.Context, repo, digest string, sigs []registry.Signature) error
	CopySignatures(ctx context.Context, srcRepo, dstRepo, digest string) error
}

var _ Registry = (*registry.Client)(nil)

// Options say what to publish and where.
type Options struct {
	// Images are catalog names (their bases are added); nil means every image.
	Images []string
	// Dockerhub publishes to $DOCKERHUB_REGISTRY/$REGISTRY_REPO. It must be
	// true: images are pushed there by their build, and NGC copies from there.
	Dockerhub bool
	// NGC also copies the NGC images to $NGC_REGISTRY/$REGISTRY_REPO; it has
	// no effect unless NGC publishing is on (Settings.NGCPublish).
	NGC bool
	// Inputs, when set (CHECK_INPUTS=1), asks every source whether the
	// external inputs of the images to build still exist, with the other
	// checks before any build; one that does not stops the run.
	Inputs *inputs.Checker
	// Lease makes a base image that needs a build be built by one publish
	// at a time: the publishes that share it (CI jobs started together)
	// agree through a lease in the registry, and the others wait for its
	// push instead of building it too (lease.go).
	Lease bool
}

// Cost hints for the scheduler: framework builds take longer than bases
// (see also finishCost).
const (
	baseCost      = 3
	frameworkCost = 5
)

// digestPlaceholder stands for the pushed digest in dry-run lines.
const digestPlaceholder = "<digest>"

type buildFunc func(ctx context.Context, sp plan.Spec) (digest string, err error)

// hooks replace the steps that need Docker, for tests.
type hooks struct {
	build     buildFunc                                      // nil: buildx build --push + metadata file
	preflight func(ctx context.Context, s []plan.Spec) error // nil: Env.Preflight
	lease     *leaseTimes                                    // nil: leaseTimesOr's defaults
}

type publisher struct {
	e     *build.Env
	reg   Registry
	ngc   bool // copy NGC images to NGC
	dry   bool
	build buildFunc
	// signer signs every published image (SIGNING_KEY); nil in dry runs.
	signer *sign.Signer

	// external maps each external image to its digest (resolveExternal);
	// gone maps each one that does not exist to the error saying so.
	external map[string]string
	// inputs checks the external inputs first (CHECK_INPUTS=1), or is nil.
	inputs *inputs.Checker
	gone   map[string]error
	// specs are the planned images, in plan order.
	specs []plan.Spec

	mu      sync.Mutex
	digests map[string]string // image -> digest published in this run (see pin)
	// lookups are the look-ups prefetch started, by their tags.
	lookups map[string]*lookup
	// lease is nil unless Options.Lease (lease.go).
	lease *leaseTimes
	// holder names this run in the leases it takes.
	holder string
}

// Run publishes the images of o. Before anything is built it removes the
// artifact files and the report an earlier run left for these images, checks
// that ARTIFACTS_DIR and PUBLISH_REPORT are writable (and outside the
// checkout, unless git ignores them), that the worktree is clean (unless
// ALLOW_DIRTY=1), the plan, where NGC images would go, the permission to push
// to every repository the run writes, and the builder. It returns the report
// (also written to PUBLISH_REPORT, except in dry runs) and an error naming
// every image that was not published.
func Run(ctx context.Context, e *build.Env, reg Registry, o Options) (*Report, error) {
	return publishWith(ctx, e, reg, o, hooks{})
}

func publishWith(ctx context.Context, e *build.Env, reg Registry, o Options, h hooks) (*Report, error) {
	if !o.Dockerhub {
		return nil, errors.New("publish: Options.Dockerhub must be true: images are pushed to $DOCKERHUB_REGISTRY/$REGISTRY_REPO by their build and NGC copies from there")
	}
	s := e.Settings
	p := &publisher{e: e, reg: reg, ngc: o.NGC && s.NGCPublish, dry: e.Runner.DryRun, build: h.build, inputs: o.Inputs}
	if p.build == nil {
		p.build = p.buildAndPush
	}
	if o.Lease && !p.dry {
		p.lease, p.holder = leaseTimesOr(h.lease), newHolder()
	}
	if reg == nil && !p.dry {
		return nil, errors.New("publish: no registry client")
	}
	names := o.Images
	if names == nil {
		names = catalog.Names()
	}
	if len(names) == 0 {
		return nil, errors.New("publish: no images named (`mage images` lists them)")
	}

	// Up front, before anything is built or pushed. First the files of an
	// earlier run go, so that whatever fails next leaves no artifact of an
	// image this run did not verify (and no report saying "ok").
	if err := p.removeStale(names); err != nil {
		return nil, err
	}
	var errs []error
	if err := checkOutputs(ctx, e); err != nil {
		errs = append(errs, err)
	}
	if err := e.CheckClean(ctx); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	metaDir := filepath.Join(os.TempDir(), "publish-metadata") // printed only
	if !p.dry {
		dir, err := os.MkdirTemp("", "publish-metadata-")
		if err != nil {
			return nil, fmt.Errorf("publish: creating a directory for the buildx metadata files: %w", err)
		}
		defer os.RemoveAll(dir)
		metaDir = dir
	}
	specs, err := e.Plan(plan.Request{Images: names, Mode: plan.Publish, MetadataDir: metaDir})
	if err != nil {
		return nil, err
	}
	p.specs = specs
	if err := checkNGCTarget(s, p.ngc, specs); err != nil {
		return nil, err
	}
	stopPrefetch := p.prefetch(ctx, specs) // reads only; overlaps the checks
	defer stopPrefetch()
	preflight := h.preflight
	if preflight == nil {
		preflight = e.Preflight
	}
	if err := p.checkAll(ctx, specs, preflight); err != nil {
		return nil, err
	}

	rep := &Report{Settings: reportSettings(s, p.ngc), Started: time.Now()}
	entries := make([]*ImageReport, len(specs))
	var jobs []schedule.Job
	for i, sp := range specs {
		ent := &ImageReport{
			Name: sp.Image.Name, Platforms: sp.Platforms,
			Tags: ReportTags{Dockerhub: sp.Tags.List(), NGC: []string{}},
		}
		if p.ngc && sp.NGCTags.Hashed != "" {
			ent.Tags.NGC = sp.NGCTags.List()
		}
		entries[i] = ent
		jobs = append(jobs, p.imageJobs(sp, ent)...)
	}
	limit := s.Jobs
	if p.dry {
		limit = 1 // dry-run lines come out in plan order
	}
	jobResults, err := schedule.Run(ctx, jobs, limit)
	if err != nil {
		return nil, err
	}
	results := imageResults(specs, jobResults)

	var failed []string
	var failures []error
	for i, r := range results {
		ent := entries[i]
		ent.Started = r.Start
		ent.DurationSeconds = r.Duration.Seconds()
		switch r.State {
		case schedule.Done:
			continue
		case schedule.Skipped:
			ent.Result = Skipped
			ent.Error = fmt.Sprintf("not published: its base image %s was not", specs[i].Base)
			if ctx.Err() != nil {
				// Its base was interrupted, not broken.
				ent.Result = Cancelled
			}
		case schedule.Cancelled:
			ent.Result = Cancelled
			ent.Error = "not started: " + errString(r.Err)
			if errors.Is(r.Err, errNotVerified) {
				ent.Error = errString(r.Err)
			}
		default:
			ent.Result = Failed
			if ctx.Err() != nil {
				ent.Result = Cancelled
			}
			ent.Error = errString(r.Err)
		}
		ent.Verified, ent.Artifact = false, ""
		failed = append(failed, fmt.Sprintf("%s (%s)", ent.Name, ent.Result))
		failures = append(failures, fmt.Errorf("%s %s: %s", ent.Name, ent.Result, ent.Error))
	}
	for _, ent := range entries {
		rep.Images = append(rep.Images, *ent)
	}
	rep.OK = len(failed) == 0
	rep.DurationSeconds = time.Since(rep.Started).Seconds()

	if !p.dry {
		rows := make([]schedule.Result, len(results))
		digests := map[string]string{}
		for i, r := range results {
			rows[i] = r
			rows[i].State = schedule.State(entries[i].Result)
			digests[r.Name] = entries[i].Digest
		}
		e.Summary(e.Runner.Err, rows, digests)
	}

	var reportErr error
	if p.dry {
		e.Runner.Note("write report %s", s.Report)
	} else if err := rep.write(s.Report); err != nil {
		reportErr = fmt.Errorf("publish: writing the report: %w", err)
	}

	if len(failed) > 0 {
		err := fmt.Errorf("publish: %d of %d images not published: %s\n%w",
			len(failed), len(specs), strings.Join(failed, ", "), errors.Join(failures...))
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", err, ctx.Err())
		}
		return rep, errors.Join(err, reportErr)
	}
	if ctx.Err() != nil {
		return rep, errors.Join(fmt.Errorf("publish: interrupted: %w", ctx.Err()), reportErr)
	}
	return rep, reportErr
}

func errString(err error) string {
	if err == nil {
		return "unknown error"
	}
	return err.Error()
}

// pushImage is the first job of an image (pipeline.go): up-to-date check or
// build and push. It returns the digest and the result so far.
func (p *publisher) pushImage(ctx context.Context, sp plan.Spec, ent *ImageReport) (string, Result, error) {
	s := p.e.Settings
	if err := p.goneBase(sp, p.specs); err != nil {
		return "", "", err
	}
	sp, err := p.pin(sp)
	if err != nil {
		return "", "", err
	}
	ent.Inputs = reportInputs(sp)
	result := Built
	digest := ""
	if p.dry {
		if !s.Force {
			p.e.Runner.Note("check up to date or reuse: %s %s (inputs %s)", sp.Tags.Hashed, sp.Tags.Versioned, sp.InputsDigest)
		}
		if err := p.e.RunSpec(ctx, sp); err != nil {
			return "", "", err
		}
		digest, result = digestPlaceholder, DryRun
	} else {
		if !s.Force {
			digest, result = p.keep(ctx, sp)
		}
		if digest == "" {
			d, r, err := p.buildShared(ctx, sp)
			if err != nil {
				return "", "", err
			}
			digest, result = d, r
		}
		ent.Digest = digest
		// The images built on this one start now, FROM this digest; they are
		// reported published only once this one is verified (pipeline.go).
		p.setPublished(sp.Image.Name, digest)
	}
	return digest, result, nil
}

// finishImage is the second job of an image (pipeline.go): Docker Hub
// verification, NGC copy and verification, artifact file.
func (p *publisher) finishImage(ctx context.Context, sp plan.Spec, ent *ImageReport, digest string, result Result) error {
	s := p.e.Settings
	// As pushImage built it: the supply-chain checks want its pinned bases
	// and inputs digest.
	sp, err := p.pin(sp)
	if err != nil {
		return err
	}
	// A kept image was read back completely while deciding.
	if result == Built || result == DryRun {
		// The build pushed the hashed tag only (plan.Spec.BuildTags); the
		// other tags point at the same digest before anything is verified.
		// A concurrent publish of the same inputs may move them (twin.go).
		twin := false
		if after := sp.TagsAfterPush(); len(after) > 0 {
			src := repoOf(sp.Tags.Hashed) + "@" + digest
			if p.dry {
				p.e.Runner.Note("tag %s -> %s", strings.Join(after, " "), src)
			} else if err := p.reg.Tag(ctx, src, after); err != nil {
				if !errors.Is(err, registry.ErrVerify) || !p.concurrentTwin(ctx, sp, inputsOf(ent), digest) {
					return fmt.Errorf("pointing %s at the pushed %s: %w", strings.Join(after, " "), src, err)
				}
				twin = true
			}
		}
		if err := p.verify(ctx, sp.Tags.List(), digest, sp.Platforms); err != nil && !twin {
			if !errors.Is(err, registry.ErrVerify) || !p.concurrentTwin(ctx, sp, inputsOf(ent), digest) {
				return fmt.Errorf("verifying the Docker Hub tags of %s: %w", sp.Image.Name, err)
			}
		}
	}
	// Every image, kept ones too, is signed and its attestations and
	// signatures checked at Docker Hub, then at NGC (supply.go).
	if err := p.signImage(ctx, sp, digest); err != nil {
		return err
	}
	if err := p.checkSupplyAt(ctx, "Docker Hub", repoOf(sp.Tags.Hashed), sp, digest); err != nil {
		return err
	}
	if p.ngc && sp.NGCTags.Hashed != "" {
		if !(result != Built && p.reuseNGC(ctx, sp, digest, ent)) {
			if err := p.copyToNGC(ctx, sp, digest, ent); err != nil {
				return err
			}
		}
		if err := p.copySignatures(ctx, sp, digest); err != nil {
			return err
		}
		if err := p.checkSupplyAt(ctx, "NGC", repoOf(sp.NGCTags.Hashed), sp, digest); err != nil {
			return err
		}
	}
	if !sp.Image.IsBase() {
		if err := p.writeArtifact(ctx, sp); err != nil {
			return err
		}
		ent.Artifact = ArtifactName(sp.Image.Name, s.MPIDigit())
	}
	ent.Verified = !p.dry
	ent.Result = result
	if !p.dry {
		p.status().OK("%s %s: %s", sp.Image.Name, result, digest)
	}
	return nil
}

func (p *publisher) verify(ctx context.Context, tags []string, digest string, platforms []string) error {
	p.e.Runner.Note("verify %s platforms %s", strings.Join(tags, " "), strings.Join(platforms, ","))
	if p.dry {
		return nil
	}
	_, err := p.reg.Verify(ctx, tags, digest, platforms)
	return err
}

// copyToNGC copies the verified Docker Hub image by digest to the NGC tags
// and verifies them.
func (p *publisher) copyToNGC(ctx context.Context, sp plan.Spec, digest string, ent *ImageReport) error {
	dst := sp.NGCTags.List()
	src := repoOf(sp.Tags.Hashed) + "@" + digest
	if p.dry {
		src = sp.Tags.Hashed + "@" + digest
	}
	p.e.Runner.Note("copy %s -> %s", src, strings.Join(dst, " "))
	if !p.dry {
		stats, err := p.reg.Copy(ctx, src, dst)
		if err != nil {
			return fmt.Errorf("copying %s to NGC: %w", sp.Image.Name, err)
		}
		ent.NGCCopied = true
		ent.NGCBytesUploaded = stats.BytesUploaded
	}
	if err := p.verify(ctx, dst, digest, sp.Platforms); err != nil {
		return fmt.Errorf("verifying the NGC tags of %s: %w", sp.Image.Name, err)
	}
	return nil
}

// writeArtifact writes publish-<image>-<M> once every tag is verified.
func (p *publisher) writeArtifact(ctx context.Context, sp plan.Spec) error {
	s := p.e.Settings
	name := ArtifactName(sp.Image.Name, s.MPIDigit())
	content := ArtifactContent(sp.Image.Name, s.MPIDigit(), sp.Tags)
	path := filepath.Join(s.ArtifactsDir, name)
	p.e.Runner.Note("write artifact %s", path)
	for _, line := range strings.Split(strings.TrimSuffix(content, "\n"), "\n") {
		p.e.Runner.Note("  %s", line)
	}
	if p.dry {
		return nil
	}
	// An interrupted run claims nothing.
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("not writing %s: %w", path, err)
	}
	return writeAtomic(s.ArtifactsDir, name, []byte(content))
}

// repoOf strips the tag from a tag reference: host:5000/org/repo:tag gives
// host:5000/org/repo.
func repoOf(ref string) string {
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[:i]
	}
	return ref
}

type nopStatus struct{}

func (nopStatus) Info(string, ...any) {}
func (nopStatus) OK(string, ...any)   {}
func (nopStatus) Fail(string, ...any) {}
func (nopStatus) Warn(string, ...any) {}

type statusLine interface {
	Info(format string, a ...any)
	OK(format string, a ...any)
	Fail(format string, a ...any)
	Warn(format string, a ...any)
}

func (p *publisher) status() statusLine {
	if p.e.Status == nil {
		return nopStatus{}
	}
	return p.e.Status
}

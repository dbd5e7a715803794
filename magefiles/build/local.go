package build

import (
	"context"
	"errors"
	"fmt"

	"github.com/determined-ai/environments/magefiles/builder"
	"github.com/determined-ai/environments/magefiles/plan"
	"github.com/determined-ai/environments/magefiles/run"
	"github.com/determined-ai/environments/magefiles/variant"
)

// prepareLocal runs before a local build (build without PUSH=1, localArm64):
// the docker CLI and buildx, a reachable Docker Engine (the images go into
// it), the builder and its platforms. The builder's driver decides how the
// results reach the engine, so req is planned again with it. It returns the
// engine's platform and the final specs. A dry run contacts nothing: it
// assumes the driver of the builder `mage builder` creates and the host's
// platform.
func (e *Env) prepareLocal(ctx context.Context, req plan.Request, specs []plan.Spec) (string, []plan.Spec, error) {
	engine := variant.HostPlatform()
	req.Driver = builder.DefaultDriver
	if e.Runner.DryRun {
		if e.Settings.BuilderExplicit {
			e.Runner.Note("a dry run does not inspect builder %s: the commands assume a %s builder; a docker-driver builder writes to the engine with --output type=image,push=false instead of --load",
				e.Settings.Builder, builder.DefaultDriver)
		}
	} else {
		if err := builder.CheckTools(ctx, e.Runner); err != nil {
			return "", nil, err
		}
		p, err := builder.CheckEngine(ctx, e.Runner)
		if err != nil {
			return "", nil, err
		}
		engine = p
		info, err := builder.Ensure(ctx, e.Runner, e.Settings.Builder, e.Settings.BuilderExplicit)
		if err != nil {
			return "", nil, err
		}
		if err := e.checkPlatforms(info.Platforms, specs); err != nil {
			return "", nil, err
		}
		req.Driver = info.Driver
	}
	specs, err := e.Plan(req)
	return engine, specs, err
}

// RunCommand is how to start an image of platform on an engine of platform
// engine: `docker run --rm -it [--platform P] REF`.
func RunCommand(ref, platform, engine string) []string {
	argv := []string{"docker", "run", "--rm", "-it"}
	if platform != engine {
		argv = append(argv, "--platform", platform)
	}
	return append(argv, ref)
}

// ShowLoaded checks that every image of a local build is in the Docker
// Engine for its planned platform (`docker image inspect`), then prints each
// one and how to run it. A built image missing from the engine is an error:
// nothing is reported as there that is not.
func (e *Env) ShowLoaded(ctx context.Context, specs []plan.Spec, engine string) error {
	var errs []error
	var lines []string
	for _, sp := range specs {
		ref, platform := sp.Tags.Hashed, sp.Platforms[0]
		how := run.Quote(RunCommand(ref, platform, engine))
		if e.Runner.DryRun {
			e.Runner.Note("check that %s (%s) is in the Docker Engine; run it with `%s`", ref, platform, how)
			continue
		}
		got, err := e.Runner.Output(ctx, "docker", "image", "inspect", "--format", "{{.Os}}/{{.Architecture}}", ref)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s was built but %s is not in the Docker Engine (%w)", sp.Image.Name, ref, err))
		case got != platform:
			errs = append(errs, fmt.Errorf("%s was built for %s but %s in the Docker Engine is %s", sp.Image.Name, platform, ref, got))
		default:
			lines = append(lines, fmt.Sprintf("now in the engine: %s (%s); run it with `%s`", ref, platform, how))
		}
	}
	for _, l := range lines {
		e.Status.OK("%s", l)
	}
	return errors.Join(errs...)
}

package build

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/determined-ai/environments/magefiles/builder"
	"github.com/determined-ai/environments/magefiles/plan"
	"github.com/determined-ai/environments/magefiles/run"
	"github.com/determined-ai/environments/magefiles/variant"
)

// prepareLocal runs before a local build (build without PUSH=1, localArm64):
// the docker CLI and buildx, a reachable Docker Engine (the images go into
// it), then the builder (builder.ChooseLocal): BUILDX_BUILDER when set; else
// the engine's own builder (the current docker context's, docker driver),
// which writes the images straight into the engine, when it builds every
// platform of specs; else the builder `mage builder` creates, with --load,
// saying why in one line. The builder and its driver decide how the results
// reach the engine, so req is planned again with them. It returns the
// engine's platform and the final specs. A dry run contacts nothing: it
// assumes the host's platform and that the engine's builder can build (with
// BUILDX_BUILDER, a builder of the driver `mage builder` creates).
func (e *Env) prepareLocal(ctx context.Context, req plan.Request, specs []plan.Spec) (string, []plan.Spec, error) {
	engine := variant.HostPlatform()
	facts := builder.LocalFacts{Want: platformsOf(specs), Fallback: e.Settings.Builder}
	if e.Settings.BuilderExplicit {
		facts.Named = e.Settings.Builder
	} else {
		name, err := builder.EngineBuilder(os.Getenv)
		if err != nil {
			return "", nil, err
		}
		facts.Engine = name
	}
	if e.Runner.DryRun {
		e.dryRunBuilder(&req, facts)
	} else {
		if err := builder.CheckTools(ctx, e.Runner); err != nil {
			return "", nil, err
		}
		p, err := builder.CheckEngine(ctx, e.Runner)
		if err != nil {
			return "", nil, err
		}
		engine = p
		if facts.Named == "" {
			facts.EngineIs, facts.EngineErr = builder.Inspect(ctx, e.Runner, facts.Engine)
		}
		if err := e.useBuilder(ctx, &req, builder.ChooseLocal(facts), specs); err != nil {
			return "", nil, err
		}
	}
	specs, err := e.Plan(req)
	return engine, specs, err
}

// useBuilder makes req build on the chosen builder: the engine's own as it
// is, any other made sure of (created when it is the default one and
// missing) and checked for the platforms of specs.
func (e *Env) useBuilder(ctx context.Context, req *plan.Request, c builder.LocalChoice, specs []plan.Spec) error {
	req.Builder = c.Builder
	if c.Engine {
		e.Runner.Note("building on the Docker Engine's own builder %s (docker driver): the images go straight into the engine (--output type=image,push=false)", c.Builder)
		req.Driver = plan.DriverDocker
		return nil
	}
	if c.Why != "" {
		e.Status.Warn("%s", c.Why)
	}
	info, err := builder.Ensure(ctx, e.Runner, c.Builder, c.Named, e.Settings.Mirrors)
	if err != nil {
		return err
	}
	if w := builder.MirrorsWarning(c.Builder, c.Named, info, e.Settings.Mirrors); w != "" {
		e.Status.Warn("%s", w)
	}
	req.Driver = info.Driver
	return checkPlatforms(c.Builder, info.Platforms, specs)
}

// dryRunBuilder is useBuilder without inspecting anything: the engine's own
// builder when BUILDX_BUILDER is unset, else the named one as a builder of
// the driver `mage builder` creates.
func (e *Env) dryRunBuilder(req *plan.Request, f builder.LocalFacts) {
	if f.Named != "" {
		req.Builder, req.Driver = f.Named, builder.DefaultDriver
		e.Runner.Note("a dry run does not inspect builder %s: the commands assume a %s builder; a docker-driver builder writes to the engine with --output type=image,push=false instead of --load",
			f.Named, builder.DefaultDriver)
		return
	}
	req.Builder, req.Driver = f.Engine, plan.DriverDocker
	e.Runner.Note("a dry run does not inspect the Docker Engine's own builder %s: the commands assume it builds %s; if it cannot, the builds run on builder %s with --load",
		f.Engine, strings.Join(slices.Compact(slices.Sorted(slices.Values(f.Want))), ", "), f.Fallback)
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

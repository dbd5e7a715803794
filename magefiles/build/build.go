package build

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/determined-ai/environments/magefiles/builder"
	"github.com/determined-ai/environments/magefiles/plan"
	"github.com/determined-ai/environments/magefiles/schedule"
)

// Preflight checks docker, buildx and the builder's platforms before a real
// run; dry runs skip it (they contact nothing).
func (e *Env) Preflight(ctx context.Context, specs []plan.Spec) error {
	if e.Runner.DryRun {
		return nil
	}
	// The tools' versions and the builder are looked at side by side (each
	// is a docker/buildx process start); a tool error comes first.
	var info builder.Info
	var inspectErr error
	inspected := make(chan struct{})
	go func() {
		defer close(inspected)
		info, inspectErr = builder.Inspect(ctx, e.Runner, e.Settings.Builder)
	}()
	toolsErr := builder.CheckTools(ctx, e.Runner)
	<-inspected
	if toolsErr != nil {
		return toolsErr
	}
	info, err := builder.EnsureInspected(ctx, e.Runner, e.Settings.Builder, e.Settings.BuilderExplicit, e.Settings.Mirrors, info, inspectErr)
	if err != nil {
		return err
	}
	if w := builder.MirrorsWarning(e.Settings.Builder, e.Settings.BuilderExplicit, info, e.Settings.Mirrors); w != "" {
		e.Status.Warn("%s", w)
	}
	return checkPlatforms(e.Settings.Builder, info.Platforms, specs)
}

// platformsOf lists every platform of specs.
func platformsOf(specs []plan.Spec) []string {
	var want []string
	for _, sp := range specs {
		want = append(want, sp.Platforms...)
	}
	return want
}

// checkPlatforms fails when the builder name cannot build every platform of specs.
func checkPlatforms(name string, have []string, specs []plan.Spec) error {
	if missing := builder.Missing(have, platformsOf(specs)); len(missing) > 0 {
		msg := fmt.Sprintf("builder %q cannot build %s (it builds %s)", name, strings.Join(missing, ", "), strings.Join(have, ", "))
		for _, m := range missing {
			if m == "linux/arm64" {
				msg += "; " + builder.EmulationHint
				break
			}
		}
		return errors.New(msg)
	}
	return nil
}

// Build plans and builds the named images (and their bases) in mode. A
// local build (plan.Local) first checks the Docker Engine and the builder's
// driver, and ends by checking and printing what is now in the engine; a
// PUSH=1 build first refuses a dirty worktree.
func (e *Env) Build(ctx context.Context, names []string, mode plan.Mode) error {
	req := plan.Request{Images: names, Mode: mode}
	specs, err := e.Plan(req)
	if err != nil {
		return err
	}
	local := plan.Local(mode, e.Settings)
	engine := ""
	switch {
	case local:
		if engine, specs, err = e.prepareLocal(ctx, req, specs); err != nil {
			return err
		}
	default:
		if err := e.CheckClean(ctx); err != nil {
			return err
		}
		if err := e.Preflight(ctx, specs); err != nil {
			return err
		}
	}
	// A base the catalog knows is gone, without a mirror that may hold a
	// copy: said now, and only that image and the ones on it fail.
	gone := map[string]error{}
	for _, sp := range specs {
		if err := plan.GoneBase(sp, specs, e.Settings.Mirrors); err != nil {
			gone[sp.Image.Name] = err
			if e.Runner.DryRun {
				e.Runner.Note("%v", err)
			} else {
				e.Status.Fail("%v", err)
			}
		}
	}
	jobs := make([]schedule.Job, len(specs))
	for i, sp := range specs {
		sp := sp
		var deps []string
		if sp.Base != "" {
			deps = []string{sp.Base}
		}
		jobs[i] = schedule.Job{Name: sp.Image.Name, Deps: deps, Run: func(ctx context.Context) error {
			if err := gone[sp.Image.Name]; err != nil && !e.Runner.DryRun {
				return err
			}
			return e.RunSpec(ctx, sp)
		}}
	}
	limit := e.Settings.Jobs
	if e.Runner.DryRun {
		limit = 1 // dry-run lines come out in plan order
	}
	results, err := schedule.Run(ctx, jobs, limit)
	if err != nil {
		return err
	}
	if !e.Runner.DryRun {
		e.Summary(e.Runner.Err, results, nil)
	}
	if err := Failure(results); err != nil || !local {
		return err
	}
	return e.ShowLoaded(ctx, specs, engine)
}

// RunSpec runs one build; with parallel jobs its output lines are prefixed
// with the image name.
func (e *Env) RunSpec(ctx context.Context, sp plan.Spec) error {
	if !e.Runner.DryRun {
		e.Status.Step("building %s (%s)", sp.Image.Name, strings.Join(sp.Platforms, ","))
	}
	out, errw := e.Runner.Out, e.Runner.Err
	if e.Settings.Jobs > 1 && !e.Runner.DryRun {
		po, pe := NewPrefixWriter(out, "["+sp.Image.Name+"] "), NewPrefixWriter(errw, "["+sp.Image.Name+"] ")
		defer po.Flush()
		defer pe.Flush()
		out, errw = po, pe
	}
	if err := e.Runner.RunTo(ctx, sp.Argv, out, errw); err != nil {
		return fmt.Errorf("building %s: %w", sp.Image.Name, err)
	}
	return nil
}

// Failure turns failed results into one error naming every image.
func Failure(results []schedule.Result) error {
	var errs []error
	for _, r := range results {
		if r.State != schedule.Done {
			errs = append(errs, fmt.Errorf("%s %s: %w", r.Name, r.State, r.Err))
		}
	}
	return errors.Join(errs...)
}

// Summary prints a table: image, result, digest, time. digests may be nil.
func (e *Env) Summary(w io.Writer, results []schedule.Result, digests map[string]string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tRESULT\tDIGEST\tTIME")
	for _, r := range results {
		d := digests[r.Name]
		if d == "" {
			d = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Name, r.State, d, r.Duration.Round(100*time.Millisecond))
	}
	tw.Flush()
}

// PrefixWriter prefixes every line written through it.
type PrefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	buf    bytes.Buffer
}

// NewPrefixWriter returns a PrefixWriter on w.
func NewPrefixWriter(w io.Writer, prefix string) *PrefixWriter {
	return &PrefixWriter{w: w, prefix: prefix}
}

func (p *PrefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf.Write(b)
	for {
		line, err := p.buf.ReadBytes('\n')
		if err != nil {
			// Incomplete line: keep it for the next write.
			rest := append([]byte(nil), line...)
			p.buf.Reset()
			p.buf.Write(rest)
			return len(b), nil
		}
		if _, err := fmt.Fprintf(p.w, "%s%s", p.prefix, line); err != nil {
			return 0, err
		}
	}
}

// Flush writes a pending incomplete line.
func (p *PrefixWriter) Flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.buf.Len() > 0 {
		fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.buf.String())
		p.buf.Reset()
	}
}

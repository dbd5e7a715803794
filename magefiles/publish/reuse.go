package publish

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"

	"github.com/determined-ai/environments/magefiles/plan"
	"github.com/determined-ai/environments/magefiles/registry"
)

// Content addressing (docs/publishing.md, "Reuse"): an image is built FROM
// its base by digest and from external images by digest, and those digests
// are part of its inputs digest; an image whose inputs are already published
// is kept (up to date) or reused (its other tag pointed at it), never rebuilt.

// resolveExternal resolves every external image of specs (ubuntu:20.04,
// nvidia/cuda:...) to the digest it has now, once per run, before anything
// is built; dry runs use a placeholder.
func (p *publisher) resolveExternal(ctx context.Context, specs []plan.Spec) error {
	p.external = map[string]string{}
	var refs []string
	users := map[string]string{}
	for _, sp := range specs {
		for _, ref := range sp.External {
			if _, ok := users[ref]; !ok {
				users[ref] = sp.Image.Name
				refs = append(refs, ref)
			}
		}
	}
	digests := make([]string, len(refs))
	errs := make([]error, len(refs))
	var wg sync.WaitGroup
	for i, ref := range refs {
		if p.dry {
			digests[i] = plan.DigestPlaceholder
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := p.reg.Resolve(ctx, ref)
			if err != nil {
				err = fmt.Errorf("publish: resolving the external image %s (of %s) to a digest: %w", ref, users[ref], err)
			}
			digests[i], errs[i] = d, err
		}()
	}
	wg.Wait()
	// An external image that does not exist stops only the images on it
	// (GoneBaseError, said here, before anything is built).
	p.gone = map[string]error{}
	for i, ref := range refs {
		if errors.Is(errs[i], registry.ErrNotFound) {
			p.gone[ref], errs[i] = errs[i], nil
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, sp := range specs {
		if err := p.goneBase(sp, specs); err != nil {
			p.status().Fail("%v", err)
		}
	}
	for i, ref := range refs {
		if _, gone := p.gone[ref]; gone {
			continue
		}
		p.external[ref] = digests[i]
		if !p.dry {
			p.status().Info("%s is %s", ref, digests[i])
		}
	}
	return nil
}

// pin returns sp built FROM its base and external images by digest: the
// base's digest as published (up to date, reused or built and verified) in
// this run, a placeholder in dry runs.
func (p *publisher) pin(sp plan.Spec) (plan.Spec, error) {
	digests := map[string]string{}
	for _, ref := range sp.External {
		d, ok := p.external[ref]
		if !ok {
			return sp, fmt.Errorf("image %s: external image %s was not resolved", sp.Image.Name, ref)
		}
		digests[ref] = d
	}
	if sp.BaseTag != "" {
		d := p.published(sp.Base)
		switch {
		case p.dry:
			d = plan.DigestPlaceholder
		case d == "":
			return sp, fmt.Errorf("image %s: its base %s has no published digest in this run", sp.Image.Name, sp.Base)
		}
		digests[sp.BaseTag] = d
	}
	sp = plan.Pin(sp, digests)
	if un := plan.Unpinned(sp); len(un) > 0 {
		return sp, fmt.Errorf("image %s: not pinned by digest: %s", sp.Image.Name, strings.Join(un, ", "))
	}
	return sp, nil
}

// published is the digest image was published at in this run ("" if not yet).
func (p *publisher) published(image string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.digests[image]
}

func (p *publisher) setPublished(image, digest string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.digests == nil {
		p.digests = map[string]string{}
	}
	p.digests[image] = digest
}

// keep decides whether sp needs a build (see decide). When it does not, it
// points the missing tags at the image found (Reused) and returns its
// digest, already verified: Lookup read it back completely and Tag checked
// every tag it set. Registry trouble while deciding means a build, with a
// warning: the build's push and verification will tell.
func (p *publisher) keep(ctx context.Context, sp plan.Spec) (digest string, result Result) {
	found, err := p.lookup(ctx, sp.Tags.List())
	if err != nil {
		p.status().Warn("%s: cannot tell whether it is up to date, building it: %v", sp.Image.Name, err)
		return "", Built
	}
	dec := decide(found, sp)
	if dec.digest == "" {
		p.status().Info("%s needs a build: %s", sp.Image.Name, dec.why)
		return "", Built
	}
	if len(dec.retag) > 0 {
		src := repoOf(sp.Tags.Hashed) + "@" + dec.digest
		if err := p.reg.Tag(ctx, src, dec.retag); err != nil {
			p.status().Warn("%s: could not point %s at %s, building it: %v", sp.Image.Name, strings.Join(dec.retag, " "), src, err)
			return "", Built
		}
		p.status().Info("%s reused: %s now points at %s (same inputs %s)", sp.Image.Name, strings.Join(dec.retag, " "), dec.digest, sp.InputsDigest)
		return dec.digest, dec.result
	}
	p.status().Info("%s is up to date (%s)", sp.Image.Name, dec.digest)
	return dec.digest, dec.result
}

// reportInputs is the report's view of sp's inputs.
func reportInputs(sp plan.Spec) *ReportInputs {
	return &ReportInputs{Digest: sp.InputsDigest, Images: maps.Clone(sp.Pinned)}
}

// reuseNGC publishes a kept image (up to date or reused on Docker Hub) to
// NGC without a copy when NGC already holds it under one of its NGC tags:
// the other NGC tags are pointed at it by registry API. It reports whether
// it did; when it did not (NGC lacks the image, or cannot answer), the
// caller copies as usual. Lookup reads the NGC image back completely, so
// nothing is verified twice.
func (p *publisher) reuseNGC(ctx context.Context, sp plan.Spec, digest string, ent *ImageReport) bool {
	if p.dry {
		return false
	}
	tags := sp.NGCTags.List()
	found, err := p.lookup(ctx, tags)
	if err != nil || found.Problems[digest] != nil || found.Images[digest].Digest != digest ||
		!samePlatforms(found.Images[digest].Platforms, sp.Platforms) {
		return false
	}
	var missing []string
	for i, d := range found.Digests {
		if d != digest {
			missing = append(missing, tags[i])
		}
	}
	if len(missing) > 0 {
		if err := p.reg.Tag(ctx, repoOf(sp.NGCTags.Hashed)+"@"+digest, missing); err != nil {
			p.status().Warn("%s: could not point %s at %s on NGC, copying instead: %v", sp.Image.Name, strings.Join(missing, " "), digest, err)
			return false
		}
	}
	p.status().Info("%s on NGC: %s point at %s (no copy)", sp.Image.Name, strings.Join(tags, " "), digest)
	ent.NGCCopied = true
	return true
}

// lookup is one registry.Lookup running or done.
type lookup struct {
	done  chan struct{}
	found registry.Found
	err   error
}

// prefetch starts the look-up of every image's tags (Docker Hub, and NGC
// when it is published to) at once, before anything else runs: what the
// tags hold does not depend on the other images, only the decision does
// (a framework image's inputs wait for its base's digest). So no look-up is
// on the path from one image to the next. Each is made once, as keep and
// reuseNGC would make it; dry runs and FORCE=1 make none. The returned
// function stops the look-ups still running.
func (p *publisher) prefetch(ctx context.Context, specs []plan.Spec) func() {
	if p.dry || p.e.Settings.Force {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	p.lookups = map[string]*lookup{}
	start := func(tags []string) {
		l := &lookup{done: make(chan struct{})}
		p.lookups[strings.Join(tags, " ")] = l
		go func() {
			defer close(l.done)
			l.found, l.err = p.reg.Lookup(ctx, tags)
		}()
	}
	for _, sp := range specs {
		start(sp.Tags.List())
		if p.ngc && sp.NGCTags.Hashed != "" {
			start(sp.NGCTags.List())
		}
	}
	return cancel
}

// lookup returns the prefetched look-up of tags, or makes it.
func (p *publisher) lookup(ctx context.Context, tags []string) (registry.Found, error) {
	l, ok := p.lookups[strings.Join(tags, " ")]
	if !ok {
		return p.reg.Lookup(ctx, tags)
	}
	select {
	case <-l.done:
		return l.found, l.err
	case <-ctx.Done():
		return registry.Found{}, ctx.Err()
	}
}

package registry

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// WithMirrors sets the registry mirrors Resolve asks first: registry host
// ("docker.io", "nvcr.io") -> mirror host[:port].
func WithMirrors(m map[string]string) Option {
	return func(c *Client) {
		c.mirrors = map[string]string{}
		for k, v := range m {
			c.mirrors[canonicalRegistry(k)] = v
		}
	}
}

func canonicalRegistry(host string) string {
	if r, err := name.NewRegistry(host); err == nil {
		return r.RegistryStr() // docker.io -> index.docker.io
	}
	return host
}

// shared returns the client's puller and pusher for the short operations
// (Lookup, Tag, Resolve, Inspect, Verify): they keep each registry's
// connection set-up (ping, token) for the client's life instead of
// repeating it per operation. Every request still carries its operation's
// context. Copy makes its own, to watch its progress.
func (c *Client) shared() (*remote.Puller, *remote.Pusher, error) {
	c.once.Do(func() {
		opts := c.remoteOptions(context.Background(), c.transport(newActivity(), nil))
		if c.puller, c.sharedErr = remote.NewPuller(opts...); c.sharedErr != nil {
			return
		}
		c.pusher, c.sharedErr = remote.NewPusher(append(opts, remote.Reuse(c.puller))...)
	})
	return c.puller, c.pusher, c.sharedErr
}

// Found is what Lookup found at some tags.
type Found struct {
	// Digests holds, per tag asked, the digest it points at ("" when the tag
	// does not exist).
	Digests []string
	// Images holds, per distinct digest, what it is: read back completely
	// (manifests, configs, layer existence), as Verify reads it.
	Images map[string]Image
	// Problems holds, per distinct digest, why its content could not be read
	// back (wraps ErrVerify).
	Problems map[string]error
}

// Lookup finds what tags point at with as few requests as it can: the first
// tag's manifest is fetched (GET), every other tag is only resolved (HEAD),
// and each distinct digest is read back completely once. Missing tags and
// unreadable content are reported in Found; an error is returned only when
// the registry could not answer (outage, throttling, denied).
func (c *Client) Lookup(ctx context.Context, tags []string) (Found, error) {
	f := Found{Digests: make([]string, len(tags)), Images: map[string]Image{}, Problems: map[string]error{}}
	if len(tags) == 0 {
		return f, nil
	}
	refs := make([]name.Reference, len(tags))
	for i, t := range tags {
		r, err := parseRef(t)
		if err != nil {
			return f, err
		}
		refs[i] = r
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	p, _, err := c.shared()
	if err != nil {
		return f, err
	}
	for i, r := range refs {
		var desc *remote.Descriptor
		if i == 0 {
			desc, err = getManifest(ctx, p, r)
		} else {
			var d string
			if d, err = head(ctx, p, r); err == nil {
				f.Digests[i] = d
				if _, read := f.Images[d]; read || f.Problems[d] != nil {
					continue
				}
				desc, err = getManifest(ctx, p, r.Context().Digest(d))
			}
		}
		switch {
		case errors.Is(err, ErrNotFound):
			f.Digests[i] = ""
			continue
		case err != nil:
			return f, hostErr("looking up", r, withCause(ctx, err))
		}
		d := desc.Digest.String()
		f.Digests[i] = d
		c.manifests.Store(r.Context().Digest(d).String(), desc)
		img, err := readBack(ctx, p, r, desc)
		switch {
		case errors.Is(err, ErrVerify):
			f.Problems[d] = hostErr("reading back", r, err)
		case err != nil:
			return f, hostErr("reading back", r, withCause(ctx, err))
		default:
			f.Images[d] = img
		}
	}
	return f, nil
}

// head resolves ref to a digest with one HEAD request.
func head(ctx context.Context, p *remote.Puller, ref name.Reference) (string, error) {
	d, err := p.Head(ctx, ref)
	if err != nil {
		if isNotFound(err) {
			return "", fmt.Errorf("%w: %w", ErrNotFound, err)
		}
		return "", err
	}
	return d.Digest.String(), nil
}

// Tag points every dst tag at src ("repo@sha256:...") by putting src's
// manifest under each tag: no blob is read or uploaded, so every dst must be
// in src's repository. Each tag is then resolved (HEAD) to check it.
func (c *Client) Tag(ctx context.Context, src string, dst []string) error {
	sr, err := parseRef(src)
	if err != nil {
		return err
	}
	sd, ok := sr.(name.Digest)
	if !ok {
		return fmt.Errorf("tagging %s: source must be pinned by digest (repo@sha256:...)", src)
	}
	drs := make([]name.Reference, len(dst))
	for i, d := range dst {
		if drs[i], err = parseRef(d); err != nil {
			return err
		}
		if drs[i].Context().String() != sd.Context().String() {
			return fmt.Errorf("tagging %s as %s: a tag can only point at an image of its own repository %s", src, d, sd.Context())
		}
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	p, pusher, err := c.shared()
	if err != nil {
		return err
	}
	// A manifest Lookup read needs no second GET: a digest names one content.
	var desc *remote.Descriptor
	if v, ok := c.manifests.Load(sd.String()); ok {
		desc = v.(*remote.Descriptor)
	} else if desc, err = getManifest(ctx, p, sd); err != nil {
		return hostErr("tagging", sd, withCause(ctx, err))
	}
	for _, dr := range drs {
		if err := pusher.Put(ctx, dr, desc); err != nil {
			return hostErr("tagging "+src+" as", dr, withCause(ctx, err))
		}
		got, err := head(ctx, p, dr)
		if err != nil {
			return hostErr("checking tag", dr, withCause(ctx, err))
		}
		if got != sd.DigestStr() {
			return fmt.Errorf("%w: tagged %s as %s but it resolves to %s", ErrVerify, src, dr, got)
		}
	}
	return nil
}

// Resolve returns the digest an image reference points at now ("ubuntu:20.04"
// -> "sha256:..."), asking the registry's mirror (WithMirrors) first, as a
// builder with that mirror pulls it; a reference already pinned by digest is
// returned as is.
func (c *Client) Resolve(ctx context.Context, ref string) (string, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", fmt.Errorf("resolving %q: %w", ref, err)
	}
	if d, ok := r.(name.Digest); ok {
		return d.DigestStr(), nil
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	p, _, err := c.shared()
	if err != nil {
		return "", err
	}
	if m, ok := c.mirrors[r.Context().RegistryStr()]; ok {
		mr, err := parseRef(m + "/" + r.Context().RepositoryStr() + ":" + r.Identifier())
		if err != nil {
			return "", fmt.Errorf("resolving %s through mirror %s: %w", ref, m, err)
		}
		d, err := head(ctx, p, mr)
		if err == nil {
			return d, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return "", hostErr("resolving "+ref+" as", mr, withCause(ctx, err))
		}
	}
	or, err := parseRef(r.String())
	if err != nil {
		return "", err
	}
	d, err := head(ctx, p, or)
	if err != nil {
		return "", hostErr("resolving", or, withCause(ctx, err))
	}
	return d, nil
}

// Package registry verifies images pushed to a container registry and copies
// them registry-to-registry, digest-preserving, with retries.
//
// Only loopback registries (127.0.0.0/8, ::1, localhost) are spoken to over
// plain HTTP; everything else is https only. Nothing is logged: problems are
// returned as errors, which never contain credentials.
package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Sentinel errors callers can branch on with errors.Is.
var (
	// ErrNotFound: the tag or manifest does not exist (404 / MANIFEST_UNKNOWN / NAME_UNKNOWN).
	ErrNotFound = errors.New("not found")
	// ErrVerify: what the registry serves is not what was expected or cannot
	// be read back completely.
	ErrVerify = errors.New("verification failed")
)

const (
	// layerCheckJobs bounds concurrent blob existence checks in Verify.
	layerCheckJobs = 8

	annotationReferenceType = "vnd.docker.reference.type"
	attestationManifest     = "attestation-manifest"
)

// Client talks to registries. It holds only configuration and is safe for
// concurrent use.
type Client struct {
	base     http.RoundTripper
	keychain authn.Keychain
	attempts int
	initial  time.Duration
	timeout  time.Duration
	mirrors  map[string]string // canonical registry host -> mirror (WithMirrors)

	once      sync.Once // shared
	puller    *remote.Puller
	pusher    *remote.Pusher
	sharedErr error
	// manifests are the manifests Lookup fetched, by repo@digest (Tag
	// reuses them).
	manifests sync.Map
}

// Option configures a Client.
type Option func(*Client)

// WithTransport sets the base transport (default remote.DefaultTransport).
// Retries, the https-only guard and upload accounting are layered on top.
func WithTransport(rt http.RoundTripper) Option {
	return func(c *Client) {
		if rt != nil {
			c.base = rt
		}
	}
}

// WithKeychain sets where credentials come from (default
// authn.DefaultKeychain, i.e. docker login credentials).
func WithKeychain(k authn.Keychain) Option {
	return func(c *Client) {
		if k != nil {
			c.keychain = k
		}
	}
}

// WithRetry sets how many times a request (or, for uploads, a whole blob
// upload) is attempted and the first backoff delay. Delays grow 1.6x and
// get jitter. Default: 10 attempts, 1s (see retry.go).
func WithRetry(attempts int, initial time.Duration) Option {
	return func(c *Client) {
		c.attempts = max(attempts, 1)
		c.initial = max(initial, 0)
	}
}

// WithTimeout bounds an operation against a registry that stays down
// (default 5m). Inspect and Verify must finish within it; Copy fails once no
// registry involved has made progress (answered, or moved blob bytes) for
// that long, so long uploads of large layers are not cut off.
func WithTimeout(d time.Duration) Option {
	return func(c *Client) {
		if d > 0 {
			c.timeout = d
		}
	}
}

// New returns a Client.
func New(opts ...Option) *Client {
	c := &Client{
		base:     remote.DefaultTransport,
		keychain: authn.DefaultKeychain,
		attempts: defaultAttempts,
		initial:  defaultInitial,
		timeout:  defaultTimeout,
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Image describes what a reference points at.
type Image struct {
	Ref       string            // as asked
	Digest    string            // "sha256:..." of the manifest or index the tag points at
	Platforms []string          // "linux/amd64", ... (attestation manifests excluded)
	Labels    map[string]string // config labels (of the linux/amd64 image, or the single image)
}

// CopyStats reports what Copy sent to the destination registries.
type CopyStats struct {
	BlobsUploaded, BlobsSkipped int
	BytesUploaded               int64
	// RacePushes counts the pushes repeated because the registry refused a
	// write that a concurrent write of the same blobs can cause (race.go).
	RacePushes int
}

// IsLoopback reports whether a reference's registry host is in 127.0.0.0/8,
// ::1 or localhost.
func IsLoopback(ref string) bool {
	return isLoopbackHost(registryHost(ref))
}

func registryHost(ref string) string {
	if r, err := name.ParseReference(ref); err == nil {
		return r.Context().RegistryStr()
	}
	if r, err := name.NewRegistry(ref); err == nil {
		return r.RegistryStr()
	}
	return ""
}

func isLoopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// parseRef parses ref, allowing plain HTTP only for loopback registries.
func parseRef(ref string) (name.Reference, error) {
	var opts []name.Option
	if IsLoopback(ref) {
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(ref, opts...)
	if err != nil {
		return nil, fmt.Errorf("parsing reference %q: %w", ref, err)
	}
	return r, nil
}

// transport builds the per-operation stack below ggcr's own wrappers.
func (c *Client) transport(act *activity, stats *uploadStats) http.RoundTripper {
	var rt http.RoundTripper = &observeTransport{inner: credentialScrub{inner: c.base}, act: act, stats: stats}
	return schemeGuard{inner: retryAfterWait{inner: rt}}
}

func (c *Client) remoteOptions(ctx context.Context, rt http.RoundTripper) []remote.Option {
	return append([]remote.Option{
		remote.WithContext(ctx),
		remote.WithTransport(rt),
		remote.WithAuthFromKeychain(c.keychain),
	}, c.retryOptions()...)
}

// hostErr prefixes err with what was being done and the registry host.
func hostErr(verb string, ref name.Reference, err error) error {
	return fmt.Errorf("%s %s (registry %s): %w", verb, ref, ref.Context().RegistryStr(), err)
}

// withTimeout bounds a read operation by c.timeout.
func (c *Client) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, c.timeout,
		fmt.Errorf("no answer within %s (registry down?): %w", c.timeout, context.DeadlineExceeded))
}

// Inspect reads ref back completely (manifest or index, child manifests,
// config blobs, layer existence) and describes it.
func (c *Client) Inspect(ctx context.Context, ref string) (Image, error) {
	r, err := parseRef(ref)
	if err != nil {
		return Image{Ref: ref}, err
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	p, _, err := c.shared()
	if err != nil {
		return Image{Ref: ref}, err
	}
	desc, err := getManifest(ctx, p, r)
	if err != nil {
		return Image{Ref: ref}, hostErr("inspecting", r, withCause(ctx, err))
	}
	img, err := readBack(ctx, p, r, desc)
	img.Ref = ref
	if err != nil {
		return img, hostErr("inspecting", r, withCause(ctx, err))
	}
	return img, nil
}

// Verify checks that every tag exists, all point at wantDigest (if
// wantDigest != ""; else at the same digest as the first tag), and that the
// platforms are exactly wantPlatforms (order-insensitive, attestations aside;
// an empty wantPlatforms skips the platform check). Each distinct digest is
// read back completely: the manifest or index, every child manifest, every
// config blob, and the existence of every layer.
//
// Errors wrap ErrNotFound (missing tag) and/or ErrVerify (mismatch, or content
// that cannot be read back); registry outages are returned without either.
// The returned Image describes the first tag.
func (c *Client) Verify(ctx context.Context, tags []string, wantDigest string, wantPlatforms []string) (Image, error) {
	if len(tags) == 0 {
		return Image{}, fmt.Errorf("%w: no tags given", ErrVerify)
	}
	if wantDigest != "" {
		if _, err := v1.NewHash(wantDigest); err != nil {
			return Image{}, fmt.Errorf("verifying %s: bad wanted digest %q: %w", strings.Join(tags, ", "), wantDigest, err)
		}
	}
	refs := make([]name.Reference, len(tags))
	for i, t := range tags {
		r, err := parseRef(t)
		if err != nil {
			return Image{Ref: tags[0]}, err
		}
		refs[i] = r
	}
	want := normalizePlatforms(wantPlatforms)

	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	p, _, err := c.shared()
	if err != nil {
		return Image{Ref: tags[0]}, err
	}

	expect, expectFrom := wantDigest, "wanted"
	readDigests := map[string]Image{}
	first := Image{Ref: tags[0]}
	var errs []error
	for i, r := range refs {
		desc, err := getManifest(ctx, p, r)
		if err != nil {
			err = hostErr("verifying", r, withCause(ctx, err))
			if !errors.Is(err, ErrNotFound) {
				return first, err // registry trouble: stop here
			}
			errs = append(errs, err)
			continue
		}
		got := desc.Digest.String()
		if i == 0 {
			first.Digest = got
		}
		if expect == "" {
			expect, expectFrom = got, "digest of "+tags[i]
		}
		if got != expect {
			errs = append(errs, fmt.Errorf("%w: %s points at %s, want %s (%s)", ErrVerify, tags[i], got, expect, expectFrom))
			continue
		}
		img, done := readDigests[got]
		if !done {
			img, err = readBack(ctx, p, r, desc)
			if err != nil {
				err = hostErr("verifying", r, withCause(ctx, err))
				if !errors.Is(err, ErrVerify) {
					return first, err
				}
				errs = append(errs, err)
				continue
			}
			readDigests[got] = img
			if len(want) > 0 {
				if missing, extra := diff(want, img.Platforms); len(missing)+len(extra) > 0 {
					errs = append(errs, fmt.Errorf("%w: %s (%s) has platforms %v, want %v (missing %v, unexpected %v)",
						ErrVerify, tags[i], got, img.Platforms, want, missing, extra))
				}
			}
		}
		if i == 0 {
			first = img
			first.Ref = tags[0]
		}
	}
	return first, errors.Join(errs...)
}

// Copy copies src, which must be pinned by digest ("reg/repo@sha256:..."), to
// every dst reference, registry to registry, preserving the digest. Indexes
// are copied with all children (attestations included). Blobs the
// destination already has are not uploaded again; a second dst in the same
// repository is one manifest PUT. After writing, each dst is read back to
// check it resolves to the source digest.
func (c *Client) Copy(ctx context.Context, src string, dst []string) (CopyStats, error) {
	sr, err := parseRef(src)
	if err != nil {
		return CopyStats{}, err
	}
	sd, ok := sr.(name.Digest)
	if !ok {
		return CopyStats{}, fmt.Errorf("copying %s: source must be pinned by digest (repo@sha256:...)", src)
	}
	if len(dst) == 0 {
		return CopyStats{}, fmt.Errorf("copying %s: no destination given", src)
	}
	drs := make([]name.Reference, len(dst))
	for i, d := range dst {
		if drs[i], err = parseRef(d); err != nil {
			return CopyStats{}, err
		}
	}

	act, stats := newActivity(), newUploadStats()
	races := 0
	snap := func() CopyStats {
		st := stats.snapshot()
		st.RacePushes = races
		return st
	}
	ctx, stop := c.watchdog(ctx, act, sr, drs)
	defer stop()

	puller, err := remote.NewPuller(c.remoteOptions(ctx, c.transport(act, nil))...)
	if err != nil {
		return CopyStats{}, err
	}
	dstOpts := c.remoteOptions(ctx, noReferrersFallback{c.transport(act, stats)})
	checker, err := remote.NewPuller(dstOpts...)
	if err != nil {
		return CopyStats{}, err
	}

	desc, err := getManifest(ctx, puller, sd)
	if err != nil {
		return snap(), hostErr("copying from", sd, withCause(ctx, err))
	}
	if desc.Digest.String() != sd.DigestStr() {
		return snap(), fmt.Errorf("%w: copying %s: source served %s", ErrVerify, src, desc.Digest)
	}
	if !desc.MediaType.IsIndex() && !desc.MediaType.IsImage() {
		return snap(), fmt.Errorf("copying %s: unsupported media type %q", src, desc.MediaType)
	}
	// The first destination of each repository gets the whole image; the
	// others in that repository hold all of it by then, so they are only
	// a manifest PUT (a full push again would check every blob again).
	pushed := map[string]bool{} // repositories that hold the whole image
	var tagger *remote.Pusher
	for _, dr := range drs {
		repo := dr.Context().String()
		var err error
		put := false
		if pushed[repo] {
			if tagger == nil {
				tagger, err = remote.NewPusher(dstOpts...)
			}
			if err == nil {
				err = tagger.Put(ctx, dr, desc)
			}
			put = err == nil || !writeRace(err) // after a race, push it whole
		}
		if !put {
			var again int
			again, err = c.pushRacing(ctx, dstOpts, dr, desc)
			races += again
			pushed[repo] = err == nil
		}
		if err != nil {
			return snap(), fmt.Errorf("copying %s to %s (registry %s): %w", src, dr, dr.Context().RegistryStr(), withCause(ctx, err))
		}
		got, err := checker.Get(ctx, dr)
		if err != nil {
			return snap(), hostErr(fmt.Sprintf("checking copy of %s at", src), dr, withCause(ctx, err))
		}
		if got.Digest != desc.Digest {
			return snap(), fmt.Errorf("%w: copied %s to %s but it resolves to %s", ErrVerify, src, dr, got.Digest)
		}
	}
	return snap(), nil
}

// watchdog cancels ctx once no registry has made progress for c.timeout.
func (c *Client) watchdog(ctx context.Context, act *activity, src name.Reference, dst []name.Reference) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(watchdogTick(c.timeout))
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				if act.idle() > c.timeout {
					hosts := []string{src.Context().RegistryStr()}
					for _, d := range dst {
						if h := d.Context().RegistryStr(); !slices.Contains(hosts, h) {
							hosts = append(hosts, h)
						}
					}
					cancel(fmt.Errorf("no progress from registry %s for %s (registry down?): %w",
						strings.Join(hosts, ", "), c.timeout, context.DeadlineExceeded))
					return
				}
			}
		}
	}()
	return ctx, func() {
		close(done)
		cancel(context.Canceled)
	}
}

// watchdogTick is how often the copy watchdog looks at the activity: a
// twentieth of the timeout (a stalled copy ends at most 5 % late), between
// 10 ms and a second.
func watchdogTick(timeout time.Duration) time.Duration {
	return min(max(timeout/20, 10*time.Millisecond), time.Second)
}

// withCause adds the reason the operation's context ended, if it did.
func withCause(ctx context.Context, err error) error {
	if ctx.Err() == nil {
		return err
	}
	cause := context.Cause(ctx)
	if cause == nil || errors.Is(err, cause) || strings.Contains(err.Error(), cause.Error()) {
		return err
	}
	return fmt.Errorf("%w: %w", cause, err)
}

// getManifest fetches the manifest or index ref points at, mapping "does not
// exist" to ErrNotFound.
func getManifest(ctx context.Context, p *remote.Puller, ref name.Reference) (*remote.Descriptor, error) {
	desc, err := p.Get(ctx, ref)
	if err != nil {
		if isNotFound(err) {
			return nil, fmt.Errorf("%w: %w", ErrNotFound, err)
		}
		return nil, err
	}
	return desc, nil
}

func isNotFound(err error) bool {
	var te *transport.Error
	if !errors.As(err, &te) {
		return false
	}
	if te.StatusCode == http.StatusNotFound {
		return true
	}
	for _, d := range te.Errors {
		switch d.Code {
		case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode:
			return true
		}
	}
	return false
}

// contentErr marks errors about the content served as ErrVerify, leaving
// registry trouble (outage, throttling, timeouts) as is.
func contentErr(what string, err error) error {
	if infraError(err) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrVerify, what, err)
}

// readBack reads everything desc refers to except layer contents.
func readBack(ctx context.Context, p *remote.Puller, ref name.Reference, desc *remote.Descriptor) (Image, error) {
	ctx = context.WithValue(ctx, checkedLayers{}, &sync.Map{})
	out := Image{Ref: ref.String(), Digest: desc.Digest.String()}
	switch {
	case desc.MediaType.IsIndex():
		idx, err := desc.ImageIndex()
		if err != nil {
			return out, contentErr("reading index", err)
		}
		var amd64 bool
		err = walkIndex(ctx, p, ref, idx, 0, func(d v1.Descriptor, cfg *v1.ConfigFile) {
			plat := platformString(d.Platform, cfg)
			out.Platforms = append(out.Platforms, plat)
			switch {
			case plat == "linux/amd64" && !amd64:
				amd64 = true
				out.Labels = cfg.Config.Labels
			case out.Labels == nil && !amd64:
				out.Labels = cfg.Config.Labels
			}
		})
		if err != nil {
			return out, err
		}
	case desc.MediaType.IsImage():
		img, err := desc.Image()
		if err != nil {
			return out, contentErr("reading image", err)
		}
		cfg, err := readImage(ctx, p, ref, img, false)
		if err != nil {
			return out, err
		}
		out.Platforms = []string{platformString(nil, cfg)}
		out.Labels = cfg.Config.Labels
	default:
		return out, fmt.Errorf("%w: unsupported media type %q", ErrVerify, desc.MediaType)
	}
	sort.Strings(out.Platforms)
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	return out, nil
}

// walkIndex reads every child of idx, calling visit for each platform image
// (attestation manifests are read but not visited).
func walkIndex(ctx context.Context, p *remote.Puller, ref name.Reference, idx v1.ImageIndex, depth int,
	visit func(v1.Descriptor, *v1.ConfigFile)) error {
	if depth > 4 {
		return fmt.Errorf("%w: indexes nested too deeply", ErrVerify)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return contentErr("parsing index", err)
	}
	for _, d := range im.Manifests {
		switch {
		case d.MediaType.IsIndex():
			child, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return contentErr("reading child index "+d.Digest.String(), err)
			}
			if err := walkIndex(ctx, p, ref, child, depth+1, visit); err != nil {
				return err
			}
		case d.MediaType.IsImage():
			img, err := idx.Image(d.Digest)
			if err != nil {
				return contentErr("reading child manifest "+d.Digest.String(), err)
			}
			att := isAttestation(d)
			cfg, err := readImage(ctx, p, ref, img, att)
			if err != nil {
				return fmt.Errorf("child %s: %w", d.Digest, err)
			}
			if !att {
				visit(d, cfg)
			}
		default:
			// Something we don't know (an artifact): at least it must exist.
			if _, err := p.Head(ctx, ref.Context().Digest(d.Digest.String())); err != nil {
				return contentErr("checking child "+d.Digest.String(), err)
			}
		}
	}
	return nil
}

func isAttestation(d v1.Descriptor) bool {
	if d.Annotations[annotationReferenceType] == attestationManifest {
		return true
	}
	return d.Platform != nil && d.Platform.OS == "unknown" && d.Platform.Architecture == "unknown"
}

// readImage fetches the image's manifest (digest-checked) and config blob
// (digest-checked) and checks that every layer blob exists. The config is
// parsed unless raw is set (attestations carry no meaningful config).
func readImage(ctx context.Context, p *remote.Puller, ref name.Reference, img v1.Image, raw bool) (*v1.ConfigFile, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, contentErr("reading manifest", err)
	}
	rawCfg, err := img.RawConfigFile()
	if err != nil {
		return nil, contentErr("reading config blob "+m.Config.Digest.String(), err)
	}
	cfg := &v1.ConfigFile{}
	if !raw {
		if cfg, err = v1.ParseConfigFile(bytes.NewReader(rawCfg)); err != nil {
			return nil, contentErr("parsing config blob "+m.Config.Digest.String(), err)
		}
	}
	if err := checkLayers(ctx, p, ref, m.Layers); err != nil {
		return nil, err
	}
	return cfg, nil
}

// checkedLayers is the context key of the layers one read-back has checked
// already (the platforms of an index often share layers).
type checkedLayers struct{}

// checkLayers HEADs every layer blob (bounded concurrency), each once per
// read-back.
func checkLayers(ctx context.Context, p *remote.Puller, ref name.Reference, layers []v1.Descriptor) error {
	sem := make(chan struct{}, layerCheckJobs)
	var wg sync.WaitGroup
	errs := make([]error, len(layers))
	checked, _ := ctx.Value(checkedLayers{}).(*sync.Map)
	for i, l := range layers {
		if checked != nil {
			if _, done := checked.LoadOrStore(l.Digest.String(), true); done {
				continue
			}
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			what := "checking layer " + l.Digest.String()
			layer, err := p.Layer(ctx, ref.Context().Digest(l.Digest.String()))
			if err != nil {
				errs[i] = contentErr(what, err)
				return
			}
			ok, err := partial.Exists(layer)
			switch {
			case err != nil:
				errs[i] = contentErr(what, err)
			case !ok:
				errs[i] = fmt.Errorf("%w: layer blob %s does not exist", ErrVerify, l.Digest)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// platformString renders os/arch[/variant] from an index descriptor's
// platform, falling back to the image config. linux/arm64/v8 is reported as
// linux/arm64.
func platformString(p *v1.Platform, cfg *v1.ConfigFile) string {
	var os, arch, variant string
	if p != nil && p.OS != "" {
		os, arch, variant = p.OS, p.Architecture, p.Variant
	} else if cfg != nil {
		os, arch, variant = cfg.OS, cfg.Architecture, cfg.Variant
	}
	return normalizePlatform(strings.Join([]string{os, arch, variant}, "/"))
}

func normalizePlatform(s string) string {
	parts := strings.Split(strings.TrimSpace(s), "/")
	for len(parts) > 0 && parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	if len(parts) == 3 && parts[1] == "arm64" && parts[2] == "v8" {
		parts = parts[:2]
	}
	return strings.Join(parts, "/")
}

func normalizePlatforms(ps []string) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		if n := normalizePlatform(p); n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// diff returns want minus got and got minus want (as multisets of distinct
// values).
func diff(want, got []string) (missing, extra []string) {
	for _, w := range want {
		if !slices.Contains(got, w) {
			missing = append(missing, w)
		}
	}
	seen := map[string]bool{}
	for _, g := range got {
		if !slices.Contains(want, g) || seen[g] {
			extra = append(extra, g)
		}
		seen[g] = true
	}
	return missing, extra
}

package inputs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/determined-ai/environments/magefiles/registry"
)

// Status is the outcome of asking a source about an input.
type Status string

const (
	// OK: the source has the input.
	OK Status = "ok"
	// Warn: the input exists but something about it deserves a look (a
	// yanked pip release an exact pin still installs, a commit that cannot
	// be looked up without a clone).
	Warn Status = "warning"
	// Missing: the source answered, and it does not have the input.
	Missing Status = "missing"
	// Unreachable: the source could not be asked (network, server error).
	Unreachable Status = "unreachable"
)

// Result is what one check found.
type Result struct {
	Input  Input    `json:"input"`
	Images []string `json:"images"`
	Status Status   `json:"status"`
	// Asked is the URL or reference asked (after mirrors).
	Asked string `json:"asked"`
	// Detail is what the source said.
	Detail string `json:"detail,omitempty"`
	// Fix says what to do about a failed check.
	Fix string `json:"fix,omitempty"`
}

// Failed reports whether the result fails the check.
func (r Result) Failed() bool { return r.Status == Missing || r.Status == Unreachable }

// Resolver resolves an image reference to a digest; registry.Client is one
// (it asks REGISTRY_MIRRORS first). A missing tag wraps NotFound.
type Resolver interface {
	Resolve(ctx context.Context, ref string) (string, error)
}

// DefaultJobs is how many sources are asked at once.
const DefaultJobs = 16

// NewChecker returns a Checker that resolves images with a registry client
// asking mirrors (registry host -> mirror, REGISTRY_MIRRORS) first, as
// publish does, with short retries: the check must answer in seconds.
func NewChecker(mirrors map[string]string, src Sources, verify bool) *Checker {
	return &Checker{
		Registry: registry.New(registry.WithMirrors(mirrors), registry.WithRetry(2, 300*time.Millisecond), registry.WithTimeout(30*time.Second)),
		NotFound: registry.ErrNotFound,
		Sources:  src,
		Verify:   verify,
	}
}

// Checker asks sources whether inputs still exist. It holds configuration
// and the indexes it has read; one Checker serves one Check.
type Checker struct {
	// Registry resolves images; NotFound is the error a missing tag wraps.
	Registry Resolver
	NotFound error
	// HTTP asks every other source (default: a client with a 30s timeout).
	HTTP *http.Client
	// Sources says where to ask (mirrors, the pip index) and how many
	// questions are in flight at once (Jobs, default DefaultJobs).
	Sources Sources
	// Verify downloads every file with a declared checksum and compares it.
	Verify bool

	mu      sync.Mutex
	indexes map[string]*fetched
}

// fetched is an index page read once and shared by every input that needs it.
type fetched struct {
	once sync.Once
	val  any
	err  error
}

// cached runs read once per key and returns its result to every caller.
func (c *Checker) cached(key string, read func() (any, error)) (any, error) {
	c.mu.Lock()
	if c.indexes == nil {
		c.indexes = map[string]*fetched{}
	}
	f, ok := c.indexes[key]
	if !ok {
		f = &fetched{}
		c.indexes[key] = f
	}
	c.mu.Unlock()
	f.once.Do(func() { f.val, f.err = read() })
	return f.val, f.err
}

// Check asks each input's source, every distinct input once, at most Jobs at
// a time, and returns one result per distinct input in the order of imgs.
func (c *Checker) Check(ctx context.Context, imgs []ImageInputs) []Result {
	var order []string
	byKey := map[string]*Result{}
	for _, ii := range imgs {
		for _, in := range ii.Inputs {
			k := in.Key()
			r, ok := byKey[k]
			if !ok {
				r = &Result{Input: in}
				byKey[k] = r
				order = append(order, k)
			}
			if !slices.Contains(r.Images, ii.Image) {
				r.Images = append(r.Images, ii.Image)
			}
		}
	}
	jobs := c.Sources.Jobs
	if jobs <= 0 {
		jobs = DefaultJobs
	}
	sem := make(chan struct{}, jobs)
	var wg sync.WaitGroup
	for _, k := range order {
		r := byKey[k]
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			case <-ctx.Done():
				r.Status, r.Detail = Unreachable, context.Cause(ctx).Error()
				return
			}
			c.checkOne(ctx, r)
		}()
	}
	wg.Wait()
	out := make([]Result, len(order))
	for i, k := range order {
		out[i] = *byKey[k]
	}
	return out
}

func (c *Checker) client() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 30 * time.Second}
}

func (c *Checker) checkOne(ctx context.Context, r *Result) {
	in := r.Input
	switch in.Kind {
	case Image:
		c.checkImage(ctx, r)
	case File:
		c.checkFile(ctx, r)
	case Git:
		c.checkGit(ctx, r)
	case Pip:
		c.checkPip(ctx, r)
	case Apt:
		c.checkApt(ctx, r)
	case Conda:
		c.checkConda(ctx, r)
	default:
		r.Status, r.Detail = Unreachable, fmt.Sprintf("unknown input kind %q", in.Kind)
	}
	if r.Failed() && r.Fix == "" {
		r.Fix = fixFor(in, r.Status)
	}
}

func (c *Checker) checkImage(ctx context.Context, r *Result) {
	r.Asked = r.Input.Name
	if c.Registry == nil {
		r.Status, r.Detail = Unreachable, "no registry client"
		return
	}
	d, err := c.Registry.Resolve(ctx, r.Input.Name)
	switch {
	case err == nil:
		r.Status, r.Detail = OK, d
	case c.NotFound != nil && errors.Is(err, c.NotFound) && r.Input.Gone != "":
		// Known: the catalog says so, and build and publish refuse its
		// images unless a mirror has it.
		r.Status, r.Detail = Warn, "gone, as the catalog says ("+r.Input.Gone+"); its images build only from a registry mirror that has it (REGISTRY_MIRRORS)"
	case c.NotFound != nil && errors.Is(err, c.NotFound):
		r.Status, r.Detail = Missing, err.Error()
	default:
		r.Status, r.Detail = Unreachable, err.Error()
	}
}

// fixFor is what a maintainer does about a missing or unreachable input.
func fixFor(in Input, st Status) string {
	if st == Unreachable {
		return "the source did not answer: check the network or the mirror (" + mirrorVar(in.Kind) + "), then run `mage inputs -check` again"
	}
	switch in.Kind {
	case Image:
		return "the tag is gone: pin a tag (or digest) that exists in " + locate(in) + ", serve the old one from a mirror (REGISTRY_MIRRORS), or retire the image"
	case File:
		return "the file is gone: point " + locate(in) + " at a URL that serves it (and record its checksum there and in magefiles/inputs/recipes.go)"
	case Git:
		return "the ref is gone: pin a branch, tag or commit that exists in " + locate(in)
	case Pip:
		return "no installable release matches: pin a version the index has in " + locate(in) + ", or serve it from a mirror (PIP_INDEX_URL)"
	case Apt:
		return "the repository no longer has the package: use its new name or a repository that has it, in " + locate(in)
	case Conda:
		return "the channel no longer has that version: pin one it has in " + locate(in)
	}
	return ""
}

// locate says where a declaration lives.
func locate(in Input) string {
	if strings.HasPrefix(in.Where, "catalog ") {
		return "magefiles/catalog (" + strings.TrimPrefix(in.Where, "catalog ") + ")"
	}
	return in.Where + " and magefiles/inputs/recipes.go"
}

func mirrorVar(k Kind) string {
	switch k {
	case Image:
		return "REGISTRY_MIRRORS"
	case Pip:
		return "PIP_INDEX_URL, INPUT_MIRRORS"
	}
	return "INPUT_MIRRORS"
}

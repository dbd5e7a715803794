package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// Lease is a claim held in a registry: "Holder builds the image of Inputs
// until Expires". Publishes on different machines (the CI jobs of one
// release) that share an image agree through it on one builder; the others
// wait for its push. It is stored as a tiny image (no layer) whose config
// holds the claim in the LeaseLabel label, under a tag of its own.
type Lease struct {
	Inputs  string    `json:"inputs"`
	Holder  string    `json:"holder"`
	Expires time.Time `json:"expires"`
}

// LeaseLabel is the config label holding a Lease as JSON.
const LeaseLabel = "ai.determined.environments.lease"

// WriteLease puts l under tag (overwriting whatever is there: the registry
// API has no compare-and-swap; readers settle who holds it by reading it
// back).
func (c *Client) WriteLease(ctx context.Context, tag string, l Lease) error {
	r, err := parseRef(tag)
	if err != nil {
		return err
	}
	body, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("lease %s: %w", tag, err)
	}
	img, err := mutate.Config(empty.Image, v1.Config{Labels: map[string]string{LeaseLabel: string(body)}})
	if err != nil {
		return fmt.Errorf("lease %s: %w", tag, err)
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	_, pusher, err := c.shared()
	if err != nil {
		return err
	}
	if err := pusher.Push(ctx, r, img); err != nil {
		return hostErr("writing lease", r, withCause(ctx, err))
	}
	return nil
}

// ReadLease reads the lease at tag; found is false when there is none.
func (c *Client) ReadLease(ctx context.Context, tag string) (l Lease, found bool, err error) {
	r, err := parseRef(tag)
	if err != nil {
		return Lease{}, false, err
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	p, _, err := c.shared()
	if err != nil {
		return Lease{}, false, err
	}
	desc, err := getManifest(ctx, p, r)
	if err != nil {
		err = hostErr("reading lease", r, withCause(ctx, err))
		if errors.Is(err, ErrNotFound) {
			return Lease{}, false, nil
		}
		return Lease{}, false, err
	}
	img, err := desc.Image()
	if err != nil {
		return Lease{}, false, fmt.Errorf("reading lease %s: %w", tag, err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return Lease{}, false, fmt.Errorf("reading lease %s: %w", tag, err)
	}
	raw, ok := cfg.Config.Labels[LeaseLabel]
	if !ok {
		return Lease{}, false, fmt.Errorf("reading lease %s: the image there is no lease (no %s label)", tag, LeaseLabel)
	}
	if err := json.Unmarshal([]byte(raw), &l); err != nil {
		return Lease{}, false, fmt.Errorf("reading lease %s: %w", tag, err)
	}
	return l, true, nil
}

package publish

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/determined-ai/environments/magefiles/plan"
	"github.com/determined-ai/environments/magefiles/registry"
)

// leaser is what the build lease needs from the registry client;
// *registry.Client has it.
type leaser interface {
	ReadLease(ctx context.Context, tag string) (registry.Lease, bool, error)
	WriteLease(ctx context.Context, tag string, l registry.Lease) error
}

var _ leaser = (*registry.Client)(nil)

// leaseTimes: a lease lasts ttl and is renewed every renew while its holder
// builds; a claim is read back after settle (the registry has no
// compare-and-swap: the last write wins, and every claimant reads back who
// that was, twice: stillMine); waiters look again every poll.
type leaseTimes struct {
	ttl, renew, settle, poll time.Duration
}

// leaseTimesOr returns t, or when it is nil the defaults (docs/publishing.md):
// a holder that dies (a cancelled CI job) blocks the others for at most ttl;
// settle is far above the registry's write-to-read delay; poll keeps the log
// moving (a line per wait) without load.
func leaseTimesOr(t *leaseTimes) *leaseTimes {
	if t != nil {
		return t
	}
	return &leaseTimes{ttl: 5 * time.Minute, renew: time.Minute, settle: 3 * time.Second, poll: 15 * time.Second}
}

// leaseTag is where an image's lease lives: its hashed tag without the
// commit, plus "-build-lease" (one tag per image and flavour for every
// release: a lease is the claim of whoever wrote it last, whatever commit).
func leaseTag(sp plan.Spec) string {
	t := sp.Tags.Hashed
	if i := strings.LastIndex(t, "-"); i > strings.LastIndex(t, ":") {
		t = t[:i]
	}
	return t + "-build-lease"
}

func newHolder() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown-host"
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(rnd[:]))
}

// buildShared builds sp, or, for a base image with leases on, takes the
// image's lease first: while another publish holds it, this one waits and
// looks at the image's tags again every poll, keeping the image as soon as
// the holder has pushed it (up to date or reused: no build here). A lease
// that expires (its holder died) is taken over. A registry that cannot hold
// a lease means a build without one, with a warning: the twin check
// (twin.go) keeps concurrent builds correct.
func (p *publisher) buildShared(ctx context.Context, sp plan.Spec) (string, Result, error) {
	l, ok := p.reg.(leaser)
	if p.lease == nil || !ok || !sp.Image.IsBase() || p.e.Settings.Force {
		d, err := p.build(ctx, sp)
		return d, Built, err
	}
	tag, lt := leaseTag(sp), *p.lease
	mine := registry.Lease{Inputs: sp.InputsDigest, Holder: p.holder}
	for {
		cur, found, err := l.ReadLease(ctx, tag)
		if err != nil {
			p.status().Warn("%s: cannot read the build lease %s, building without one: %v", sp.Image.Name, tag, err)
			d, err := p.build(ctx, sp)
			return d, Built, err
		}
		if !found || cur.Holder == p.holder || !time.Now().Before(cur.Expires) {
			mine.Expires = time.Now().Add(lt.ttl)
			if err := l.WriteLease(ctx, tag, mine); err != nil {
				p.status().Warn("%s: cannot write the build lease %s, building without one: %v", sp.Image.Name, tag, err)
				d, err := p.build(ctx, sp)
				return d, Built, err
			}
			if p.stillMine(ctx, l, tag) {
				return p.buildHolding(ctx, sp, l, tag, mine)
			}
			continue // another claim came last: wait for it
		}
		p.status().Info("%s: %s builds it (build lease %s until %s); waiting for its push", sp.Image.Name, cur.Holder, tag, cur.Expires.UTC().Format(time.TimeOnly))
		if err := sleep(ctx, lt.poll); err != nil {
			return "", "", err
		}
		if d, r := p.keepNow(ctx, sp); d != "" {
			return d, r, nil
		}
	}
}

// stillMine reads the lease back twice, settle apart: a claim is won when
// this run's was the last write both times. A claimant whose look at the
// lease was older than 2 x settle when it wrote can still win too; then two
// builds run, and the twin check (twin.go) keeps both correct.
func (p *publisher) stillMine(ctx context.Context, l leaser, tag string) bool {
	for range 2 {
		if sleep(ctx, p.lease.settle) != nil {
			return false
		}
		cur, found, err := l.ReadLease(ctx, tag)
		if err != nil || !found || cur.Holder != p.holder {
			return false
		}
	}
	return true
}

// buildHolding builds sp while holding its lease: the image may have been
// pushed by the previous holder in the meantime (then it is kept); the lease
// is renewed during the build and given up (expired) at the end, so waiters
// look again at once.
func (p *publisher) buildHolding(ctx context.Context, sp plan.Spec, l leaser, tag string, mine registry.Lease) (string, Result, error) {
	release := func() {
		mine.Expires = time.Now().Add(-time.Second)
		if err := l.WriteLease(context.WithoutCancel(ctx), tag, mine); err != nil {
			p.status().Warn("%s: could not give up the build lease %s (it expires by itself): %v", sp.Image.Name, tag, err)
		}
	}
	if d, r := p.keepNow(ctx, sp); d != "" {
		release()
		return d, r, nil
	}
	renewCtx, stop := context.WithCancel(ctx)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		for sleep(renewCtx, p.lease.renew) == nil {
			m := mine
			m.Expires = time.Now().Add(p.lease.ttl)
			if err := l.WriteLease(renewCtx, tag, m); err != nil && renewCtx.Err() == nil {
				p.status().Warn("%s: could not renew the build lease %s: %v", sp.Image.Name, tag, err)
			}
		}
	}()
	d, err := p.build(ctx, sp)
	stop()
	<-renewed
	release()
	return d, Built, err
}

// keepNow is keep with a fresh look at the tags (not the run's first one).
func (p *publisher) keepNow(ctx context.Context, sp plan.Spec) (string, Result) {
	found, err := p.reg.Lookup(ctx, sp.Tags.List())
	if err != nil {
		return "", Built
	}
	dec := decide(found, sp)
	if dec.digest == "" {
		return "", Built
	}
	if len(dec.retag) > 0 {
		if err := p.reg.Tag(ctx, repoOf(sp.Tags.Hashed)+"@"+dec.digest, dec.retag); err != nil {
			return "", Built
		}
	}
	p.status().Info("%s %s: another publish pushed it (%s)", sp.Image.Name, dec.result, dec.digest)
	return dec.digest, dec.result
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

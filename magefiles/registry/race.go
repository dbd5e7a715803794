package registry

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Parallel writes into one repository race in the distribution registry
// (Docker's registry:2, Debian's docker-registry): while one upload commits a
// blob that another upload already committed, the blob's link in the
// repository is rewritten, and a manifest PUT that checks the blob in that
// moment is refused with MANIFEST_BLOB_UNKNOWN (and DIGEST_INVALID, the empty
// link read back). Images built on one base share its layers, so publish's
// parallel NGC copies into one repository meet this, and so would two
// publishes (two CI jobs) writing into one repository from two machines.
//
// The decision: retry, not serialise. Copy pushes again when the registry
// refuses a write with one of raceCodes: a fresh push checks every blob
// again (HEAD), uploads the ones the registry now reports missing and PUTs
// the manifest again. Serialising copies per repository inside this process
// would neither help against other writers nor keep parallel copies of large
// images fast.
var raceCodes = []transport.ErrorCode{
	transport.ManifestBlobUnknownErrorCode,
	transport.BlobUnknownErrorCode,
	transport.DigestInvalidErrorCode,
	transport.BlobUploadUnknownErrorCode,
	transport.BlobUploadInvalidErrorCode,
}

// raceAttempts bounds the pushes of one destination: a content error that
// is not a race (a corrupt source blob) fails after this many. raceInitial
// is the first wait (half to all of it), doubling up to raceMaxDelay: the
// other write has usually committed within milliseconds, and a push that
// finds a blob still missing uploads it again itself; the waits add up to
// 8.1-16.2 s before a copy gives up (raceDelays).
const (
	raceAttempts = 8
	raceInitial  = 200 * time.Millisecond
)

// writeRace reports whether err is a registry refusal that a concurrent
// write of the same blobs can cause.
func writeRace(err error) bool {
	var te *transport.Error
	if !errors.As(err, &te) {
		return false
	}
	for _, d := range te.Errors {
		for _, c := range raceCodes {
			if d.Code == c {
				return true
			}
		}
	}
	return false
}

// pushRacing pushes desc to dst, pushing again with a fresh pusher (so every
// blob is checked and uploaded again if missing) while the registry refuses
// with a write race, with the client's backoff between attempts. It returns
// how many pushes were repeated.
func (c *Client) pushRacing(ctx context.Context, opts []remote.Option, dst name.Reference, desc *remote.Descriptor) (int, error) {
	delays := raceDelays(c.initial)
	for attempt := 1; ; attempt++ {
		pusher, err := remote.NewPusher(opts...)
		if err != nil {
			return attempt - 1, err
		}
		err = pusher.Push(ctx, dst, desc)
		if err == nil || !writeRace(err) || ctx.Err() != nil {
			return attempt - 1, err
		}
		if attempt == raceAttempts {
			return attempt - 1, fmt.Errorf("still refused after %d pushes (a concurrent write of the same blobs would have settled by now): %w", attempt, err)
		}
		t := time.NewTimer(jitter(delays[attempt-1], rand.N[time.Duration]))
		select {
		case <-ctx.Done():
			t.Stop()
			return attempt - 1, err
		case <-t.C:
		}
	}
}

// raceDelays are the bounds of the waits between the raceAttempts pushes of
// pushRacing: the client's initial wait (at most raceInitial), doubling up
// to raceMaxDelay.
func raceDelays(initial time.Duration) []time.Duration {
	out := make([]time.Duration, raceAttempts-1)
	d := min(initial, raceInitial)
	for i := range out {
		out[i] = d
		d = min(2*d, raceMaxDelay)
	}
	return out
}

// jitter is a wait of half to all of delay; n(k) draws from [0, k)
// (rand.N), so that pushes racing each other spread out.
func jitter(delay time.Duration, n func(time.Duration) time.Duration) time.Duration {
	return delay/2 + n(delay/2+1)
}

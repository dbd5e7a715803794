package registry

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Retry policy (docs/publishing.md, "Retries and limits"). Each request is
// repeated by go-containerregistry's retry transport on the statuses of
// retryStatuses and on network errors, with exponential backoff: 10
// attempts, waits of 1 s growing by 1.6x (plus up to 20% jitter), so a
// request gives up after 113-135 s of failures in a row; its attempts come at
// about 0, 1, 2.6, 5.2, 9.3, 16, 26, 43, 70 and 113 s. (No Cap: ggcr's
// backoff stops retrying once a Cap is reached.) A Retry-After is waited for
// first (up to maxRetryAfter; a longer one fails the request at once). An
// Inspect, Verify, Lookup, Tag or Resolve never takes longer than the
// client's timeout (default 5 minutes); a Copy stops after that long without
// progress.
const (
	defaultAttempts = 10
	defaultInitial  = time.Second
	backoffFactor   = 1.6
	backoffJitter   = 0.2
	defaultTimeout  = 5 * time.Minute
	// maxRetryAfter is the longest Retry-After waited for.
	maxRetryAfter = 2 * time.Minute
	// raceMaxDelay caps the waits between the pushes of pushRacing.
	raceMaxDelay = 5 * time.Second
)

// retryStatuses are the HTTP statuses a request is repeated on.
var retryStatuses = []int{http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
	http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout}

func retryableStatus(code int) bool {
	for _, c := range retryStatuses {
		if c == code {
			return true
		}
	}
	return false
}

// retryOptions configure ggcr's retries: its retry transport (transport.NewRetry,
// which remote wraps around our transport) for single requests, and its
// retries of whole blob uploads.
func (c *Client) retryOptions() []remote.Option {
	return []remote.Option{
		remote.WithRetryStatusCodes(retryStatuses...),
		remote.WithRetryPredicate(opRetryable),
		remote.WithRetryBackoff(c.backoff()),
	}
}

// retrying wraps rt in ggcr's retry transport with the same policy, for
// library calls that take a transport but no remote options.
func (c *Client) retrying(rt http.RoundTripper) http.RoundTripper {
	return transport.NewRetry(rt,
		transport.WithRetryStatusCodes(retryStatuses...),
		transport.WithRetryPredicate(opRetryable),
		transport.WithRetryBackoff(c.backoff()))
}

func (c *Client) backoff() remote.Backoff {
	return remote.Backoff{Duration: c.initial, Factor: backoffFactor, Jitter: backoffJitter, Steps: c.attempts}
}

// giveUpError stops ggcr's retries: the registry asked for a longer wait
// than we are willing to make, or the operation's time is up.
type giveUpError struct {
	host string
	err  error
}

func (e *giveUpError) Error() string { return fmt.Sprintf("registry %s: giving up: %v", e.host, e.err) }
func (e *giveUpError) Unwrap() error { return e.err }

// retryAfterWait sits below ggcr's retry transport: a retryable answer with
// a Retry-After is held for that long before ggcr sees it (and then backs
// off as usual), so the registry's wish is honoured; a Retry-After beyond
// maxRetryAfter or beyond the operation's deadline ends the retries.
type retryAfterWait struct{ inner http.RoundTripper }

func (t retryAfterWait) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.inner.RoundTrip(req)
	if err != nil || !retryableStatus(resp.StatusCode) {
		return resp, err
	}
	wait := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	if wait <= 0 {
		return resp, nil
	}
	ctx := req.Context()
	giveUp := func(why string) (*http.Response, error) {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit))
		resp.Body.Close()
		return nil, &giveUpError{req.URL.Host, fmt.Errorf("%s %s: status %s with Retry-After %s: %s", req.Method, redactURL(req.URL), resp.Status, wait, why)}
	}
	if wait > maxRetryAfter {
		return giveUp(fmt.Sprintf("longer than the %s we wait", maxRetryAfter))
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
		return giveUp("past the operation's time limit")
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		resp.Body.Close()
		return nil, context.Cause(ctx)
	case <-timer.C:
	}
	return resp, nil
}

package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// maxRetryAfter is the longest Retry-After we are willing to wait for; a
// registry asking for more gets its error returned instead.
const maxRetryAfter = time.Minute

// drainLimit bounds how much of a discarded response body is read so that the
// connection can be reused.
const drainLimit = 64 << 10

// The per-operation transport stack, outermost first:
//
//	ggcr (auth, scheme, user agent) -> schemeGuard -> retryTransport -> observeTransport -> base
//
// retryTransport retries only requests that are safe to repeat on their own;
// the remaining blob-upload steps (PATCH of data, PUT committing an upload
// session) are retried by ggcr as a whole upload (existence check, new session,
// data, commit), driven by opRetryable.

// schemeGuard refuses plain-HTTP requests to hosts that are not loopback.
// ggcr falls back to http for RFC 1918 and *.local registries; we don't.
type schemeGuard struct{ inner http.RoundTripper }

// errInsecure is returned (wrapped) when a plain-HTTP request to a non-loopback
// host is attempted.
var errInsecure = errors.New("refusing plain-HTTP request to non-loopback host")

func (g schemeGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" && !isLoopbackHost(req.URL.Host) {
		closeBody(req)
		return nil, fmt.Errorf("%w %s (scheme %q)", errInsecure, req.URL.Host, req.URL.Scheme)
	}
	return g.inner.RoundTrip(req)
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// retryTransport retries requests that can be repeated safely (see
// transportRetries) on retryable statuses and network errors, with capped
// exponential backoff with jitter, honouring Retry-After.
type retryTransport struct {
	inner    http.RoundTripper
	attempts int
	initial  time.Duration
	max      time.Duration
}

// exhaustedError reports that retryTransport gave up on a request. Errors of
// this type are never retried again higher up.
type exhaustedError struct {
	host     string
	attempts int
	err      error
}

func (e *exhaustedError) Error() string {
	return fmt.Sprintf("registry %s: giving up after %d attempt(s): %v", e.host, e.attempts, e.err)
}

func (e *exhaustedError) Unwrap() error { return e.err }

// transportRetries reports whether retryTransport retries req by itself:
// reads, manifest PUTs (idempotent) and the POST that opens a blob upload
// session (repeating it at worst leaves an unused session behind).
func transportRetries(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead:
		return true
	case http.MethodPut:
		return strings.Contains(req.URL.Path, "/manifests/")
	case http.MethodPost:
		return strings.HasSuffix(req.URL.Path, "/blobs/uploads/") && req.URL.Query().Get("digest") == "" &&
			(req.Body == nil || req.Body == http.NoBody)
	}
	return false
}

func (t *retryTransport) backoff(attempt int) time.Duration {
	d := t.initial
	for i := 1; i < attempt && d < t.max; i++ {
		d *= 2
	}
	d = min(d, t.max)
	if d <= 0 {
		return 0
	}
	// "Equal jitter": somewhere in [d/2, d].
	half := d / 2
	return half + rand.N(d-half+1)
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !transportRetries(req) || t.attempts <= 1 {
		return t.inner.RoundTrip(req)
	}
	ctx := req.Context()
	hasBody := req.Body != nil && req.Body != http.NoBody
	var lastErr error
	for attempt := 1; ; attempt++ {
		r := req
		if attempt > 1 && hasBody {
			if req.GetBody == nil {
				return nil, &exhaustedError{req.URL.Host, attempt - 1, lastErr}
			}
			body, err := req.GetBody()
			if err != nil {
				return nil, &exhaustedError{req.URL.Host, attempt - 1, errors.Join(lastErr, err)}
			}
			r = req.Clone(ctx)
			r.Body = body
		}
		resp, err := t.inner.RoundTrip(r)
		var retryAfter time.Duration
		switch {
		case err != nil:
			if ctx.Err() != nil || !retryableNetErr(err) {
				return nil, err
			}
			lastErr = fmt.Errorf("%s %s: %w", req.Method, redactURL(req.URL), err)
		case retryableStatus(resp.StatusCode):
			lastErr = fmt.Errorf("%s %s: status %s", req.Method, redactURL(req.URL), resp.Status)
			retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		default:
			return resp, nil
		}

		delay := max(t.backoff(attempt), retryAfter)
		giveUp := attempt >= t.attempts || retryAfter > maxRetryAfter
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < delay {
			giveUp = true
		}
		if giveUp {
			if resp != nil {
				// Let the caller parse the registry's own error.
				return resp, nil
			}
			return nil, &exhaustedError{req.URL.Host, attempt, lastErr}
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit))
			resp.Body.Close()
		}
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, &exhaustedError{req.URL.Host, attempt, fmt.Errorf("%w (last error: %v)", context.Cause(ctx), lastErr)}
		case <-timer.C:
		}
	}
}

func redactURL(u *url.URL) string {
	c := *u
	c.RawQuery = ""
	c.User = nil
	return c.String()
}

func retryableStatus(code int) bool {
	switch code {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// parseRetryAfter understands delta-seconds and HTTP-dates; anything else is 0.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// retryableNetErr reports whether a transport-level error is worth retrying:
// dropped/reset/refused connections, EOF and timeouts.
func retryableNetErr(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if errors.Is(err, errInsecure) {
		return false
	}
	for _, target := range []error{io.EOF, io.ErrUnexpectedEOF, syscall.ECONNRESET, syscall.ECONNREFUSED,
		syscall.ECONNABORTED, syscall.EPIPE, syscall.ETIMEDOUT, syscall.EHOSTUNREACH, syscall.ENETUNREACH, net.ErrClosed} {
		if errors.Is(err, target) {
			return true
		}
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return dnsErr.IsTemporary || dnsErr.IsTimeout
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return true
	}
	msg := err.Error()
	for _, s := range []string{"connection reset", "broken pipe", "server closed idle connection", "transport connection broken", "unexpected EOF"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// opRetryable is the predicate ggcr uses for its operation-level retries (a
// whole blob upload, a manifest PUT). Requests that retryTransport already
// retried are not retried again.
func opRetryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var ex *exhaustedError
	if errors.As(err, &ex) {
		return false
	}
	var te *transport.Error
	if errors.As(err, &te) {
		if te.Request != nil && transportRetries(te.Request) {
			return false
		}
		if retryableStatus(te.StatusCode) {
			return true
		}
		for _, d := range te.Errors {
			switch d.Code {
			case transport.BlobUploadUnknownErrorCode, transport.BlobUploadInvalidErrorCode,
				transport.TooManyRequestsErrorCode, transport.UnavailableErrorCode:
				// A lost or broken upload session: start the upload again.
				return true
			}
		}
		return false
	}
	return retryableNetErr(err)
}

// infraError reports whether err is about reaching the registry (down,
// throttled, timed out) rather than about the content it served.
func infraError(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, errInsecure) {
		return true
	}
	var ex *exhaustedError
	if errors.As(err, &ex) {
		return true
	}
	var te *transport.Error
	if errors.As(err, &te) {
		return retryableStatus(te.StatusCode) || te.StatusCode == http.StatusUnauthorized ||
			te.StatusCode == http.StatusForbidden
	}
	return retryableNetErr(err)
}

// activity records when a registry last answered anything useful; Copy's
// stall watchdog uses it.
type activity struct{ last atomic.Int64 }

func newActivity() *activity {
	a := &activity{}
	a.touch()
	return a
}

func (a *activity) touch()              { a.last.Store(time.Now().UnixNano()) }
func (a *activity) idle() time.Duration { return time.Since(time.Unix(0, a.last.Load())) }
func (a *activity) body(rc io.ReadCloser) io.ReadCloser {
	return &observedBody{rc: rc, act: a}
}

// uploadStats counts blob uploads seen on the wire during one Copy.
type uploadStats struct {
	bytes    atomic.Int64
	mu       sync.Mutex
	uploaded map[string]bool
	skipped  map[string]bool
}

func newUploadStats() *uploadStats {
	return &uploadStats{uploaded: map[string]bool{}, skipped: map[string]bool{}}
}

func (s *uploadStats) snapshot() CopyStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := CopyStats{BlobsUploaded: len(s.uploaded), BytesUploaded: s.bytes.Load()}
	for d := range s.skipped {
		if !s.uploaded[d] {
			st.BlobsSkipped++
		}
	}
	return st
}

// record classifies a finished request: existing blob (HEAD 200), mounted
// blob (POST ?mount= 201) or committed upload (PUT ?digest= 201).
func (s *uploadStats) record(req *http.Request, status int) {
	p := req.URL.Path
	var digest string
	var skipped bool
	switch {
	case req.Method == http.MethodHead && status == http.StatusOK && strings.Contains(p, "/blobs/sha256:"):
		digest, skipped = p[strings.LastIndex(p, "/")+1:], true
	case req.Method == http.MethodPost && status == http.StatusCreated && strings.HasSuffix(p, "/blobs/uploads/"):
		q := req.URL.Query()
		if d := q.Get("digest"); d != "" {
			digest = d // monolithic upload
		} else {
			digest, skipped = q.Get("mount"), true
		}
	case req.Method == http.MethodPut && status == http.StatusCreated && strings.Contains(p, "/blobs/uploads/"):
		digest = req.URL.Query().Get("digest")
	}
	if digest == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if skipped {
		s.skipped[digest] = true
	} else {
		s.uploaded[digest] = true
	}
}

// observeTransport sits right above the base transport, so it sees every
// attempt: it feeds the activity clock and, when stats is set, counts the
// bytes of blob-upload bodies (POST/PATCH/PUT to /v2/.../blobs/uploads/).
type observeTransport struct {
	inner http.RoundTripper
	act   *activity
	stats *uploadStats
}

func (t *observeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.stats != nil && strings.Contains(req.URL.Path, "/blobs/uploads/") && req.Body != nil && req.Body != http.NoBody {
		orig := req
		req = req.Clone(req.Context())
		req.Body = &observedBody{rc: orig.Body, act: t.act, n: &t.stats.bytes}
		if orig.GetBody != nil {
			req.GetBody = func() (io.ReadCloser, error) {
				rc, err := orig.GetBody()
				if err != nil {
					return nil, err
				}
				return &observedBody{rc: rc, act: t.act, n: &t.stats.bytes}, nil
			}
		}
	}
	resp, err := t.inner.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if t.stats != nil {
		t.stats.record(req, resp.StatusCode)
	}
	// Throttling and server errors are not progress, and neither is reading
	// their bodies.
	if !retryableStatus(resp.StatusCode) {
		t.act.touch()
		resp.Body = t.act.body(resp.Body)
	}
	return resp, nil
}

// observedBody counts bytes (optionally) and marks activity as they flow.
type observedBody struct {
	rc  io.ReadCloser
	act *activity
	n   *atomic.Int64
}

func (b *observedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		b.act.touch()
		if b.n != nil {
			b.n.Add(int64(n))
		}
	}
	return n, err
}

func (b *observedBody) Close() error { return b.rc.Close() }

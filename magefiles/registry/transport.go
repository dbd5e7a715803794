package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
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

// drainLimit bounds how much of a discarded response body is read so that the
// connection can be reused.
const drainLimit = 64 << 10

// The per-operation transport stack, outermost first:
//
//	ggcr (auth, retries of retry.go, user agent) -> schemeGuard -> retryAfterWait -> observeTransport -> credentialScrub (scrub.go) -> base
//
// ggcr's own retry transport (transport.NewRetry, configured by the
// remote.WithRetry* options of retryOptions) repeats requests;
// retryAfterWait makes it wait as long as a Retry-After asks first.

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

func redactURL(u *url.URL) string {
	c := *u
	c.RawQuery = ""
	c.User = nil
	return c.String()
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

// opRetryable is the predicate of ggcr's retries, of single requests (its
// retry transport) and of whole blob uploads: retryable statuses, broken
// upload sessions and network errors; never a cancelled operation or a
// Retry-After longer than we wait.
func opRetryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var gu *giveUpError
	if errors.As(err, &gu) {
		return false
	}
	var te *transport.Error
	if errors.As(err, &te) {
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
	var gu *giveUpError
	if errors.As(err, &gu) {
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

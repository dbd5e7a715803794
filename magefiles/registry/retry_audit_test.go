package registry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// outage is a registry whose manifests always answer 503 (optionally with
// a Retry-After), recording when each manifest request came.
type outage struct {
	mu         sync.Mutex
	times      []time.Time
	retryAfter string
}

func (o *outage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.Contains(r.URL.Path, "/manifests/") {
		w.WriteHeader(http.StatusOK) // the /v2/ ping
		return
	}
	o.mu.Lock()
	o.times = append(o.times, time.Now())
	o.mu.Unlock()
	if o.retryAfter != "" {
		w.Header().Set("Retry-After", o.retryAfter)
	}
	w.WriteHeader(http.StatusServiceUnavailable)
}

func (o *outage) attempts() []time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]time.Time(nil), o.times...)
}

// The documented promise: a request gives up after about 2 minutes of
// failures in a row (README, docs/publishing.md "Retries and limits": 10
// attempts, 113-135 s). The client is built with New's defaults (attempt
// count, growth factor, jitter); only the first wait is scaled down 100x so
// the whole schedule runs in about 1.2 s, and the measured schedule is
// scaled back up. Raising the default attempts (10 -> 30), the factor or the
// first wait fails this test.
func TestTheDefaultRetriesGiveUpAfterAboutTwoMinutes(t *testing.T) {
	const scale = 100
	o := &outage{}
	srv := httptest.NewServer(o)
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")

	c := New(WithKeychain(anonymous))
	if c.initial != time.Second || c.timeout != 5*time.Minute {
		t.Errorf("defaults: first wait %s, operation limit %s; want 1s and 5m (docs/publishing.md)", c.initial, c.timeout)
	}
	c.initial /= scale // the scaled clock: every wait is 1/scale of the real one
	// A bound well past the scaled schedule (1.35 s) stops a runaway
	// schedule (30 attempts would take hours scaled back) promptly.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	_, err := c.Inspect(ctx, host+"/env:x")
	elapsed := time.Since(start)
	times := o.attempts()
	if err == nil {
		t.Fatal("Inspect succeeded against a registry that always answers 503")
	}
	if !strings.Contains(err.Error(), "registry "+host) {
		t.Errorf("error %q does not name the registry", err)
	}
	if len(times) != 10 {
		t.Errorf("%d attempts, want 10 (the documented default)", len(times))
	}
	if len(times) < 2 {
		t.FailNow()
	}
	span := times[len(times)-1].Sub(times[0]) * scale
	t.Logf("%d attempts over %s scaled back (gave up after %s real); documented 113-135 s", len(times), span.Round(time.Second), elapsed.Round(time.Millisecond))
	// 113-135 s by the schedule. A wait is never shorter than scheduled, so
	// the lower bounds hold on any machine; each attempt's own round trip
	// (a few ms on loopback, times 100) and a loaded machine's scheduling
	// delays only add, so the upper bound is generous.
	if span < 110*time.Second || span > 200*time.Second {
		t.Errorf("gave up after %s of failures (scaled back), want about 2 minutes (113-135 s)", span.Round(time.Second))
	}
	// The waits grow 1.6x from 1 s: wait i is at least 1.6^(i-1) s (the
	// jitter only adds).
	least := time.Second / scale
	for i := 1; i < len(times); i++ {
		if w := times[i].Sub(times[i-1]); w < least {
			t.Errorf("wait %d was %s (scaled back %s), want at least %s: not the documented backoff", i, w, w*scale, least*scale)
		}
		least = time.Duration(float64(least) * 1.6)
	}
}

// A Retry-After within maxRetryAfter but beyond what is left of the
// operation's time limit ends the retries at once: waiting would only end in
// a timeout, later, with a less useful message.
func TestARetryAfterBeyondTheOperationsLimitFailsAtOnce(t *testing.T) {
	o := &outage{retryAfter: "60"} // 1 minute: under maxRetryAfter (2 m), over the 2 s limit
	srv := httptest.NewServer(o)
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	c := New(WithKeychain(anonymous), WithTimeout(2*time.Second))
	start := time.Now()
	_, err := c.Inspect(context.Background(), host+"/env:x")
	elapsed := time.Since(start)
	t.Logf("after %s: %v", elapsed, err)
	if err == nil {
		t.Fatal("Inspect succeeded against a registry that always answers 503")
	}
	if !strings.Contains(err.Error(), "Retry-After 1m0s: past the operation's time limit") {
		t.Errorf("error %q does not say the Retry-After is past the operation's time limit", err)
	}
	if n := len(o.attempts()); n != 1 {
		t.Errorf("%d attempts, want 1: the Retry-After was beyond the limit", n)
	}
	if elapsed > 1500*time.Millisecond {
		t.Errorf("took %s: waited instead of giving up at once", elapsed)
	}
}

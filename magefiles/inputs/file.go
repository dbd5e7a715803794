package inputs

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strings"
)

// checkFile asks the file's server with HEAD; a server that refuses HEAD
// (405, 403, 501) is asked for the first byte with a ranged GET. With
// Verify, a file with a declared checksum is downloaded and hashed.
func (c *Checker) checkFile(ctx context.Context, r *Result) {
	u := c.Sources.URL(r.Input.Name)
	r.Asked = u
	if c.Verify && r.Input.Checksum != "" {
		c.verifyFile(ctx, r, u)
		return
	}
	code, err := c.status(ctx, http.MethodHead, u, "")
	if err == nil && (code == http.StatusMethodNotAllowed || code == http.StatusForbidden || code == http.StatusNotImplemented) {
		code, err = c.status(ctx, http.MethodGet, u, "bytes=0-0")
	}
	httpResult(r, code, err)
}

// httpResult turns an HTTP answer into a result: 2xx is there, 404 and 410
// are gone, anything else could not be answered.
func httpResult(r *Result, code int, err error) {
	switch {
	case err != nil:
		r.Status, r.Detail = Unreachable, err.Error()
	case code >= 200 && code < 300:
		r.Status, r.Detail = OK, fmt.Sprintf("HTTP %d", code)
	case code == http.StatusNotFound || code == http.StatusGone:
		r.Status, r.Detail = Missing, fmt.Sprintf("HTTP %d %s", code, http.StatusText(code))
	default:
		r.Status, r.Detail = Unreachable, fmt.Sprintf("HTTP %d %s", code, http.StatusText(code))
	}
}

// status does one request (following redirects) and returns its status code.
func (c *Checker) status(ctx context.Context, method, u, rangeHdr string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, u, err)
	}
	if rangeHdr != "" {
		req.Header.Set("Range", rangeHdr)
	}
	resp, err := c.client().Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, u, err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16)); err != nil {
		return 0, fmt.Errorf("%s %s: reading the answer: %w", method, u, err)
	}
	return resp.StatusCode, nil
}

// hashes are the checksum algorithms the recipes verify with.
var hashes = map[string]func() hash.Hash{"sha256": sha256.New, "md5": md5.New}

// verifyFile downloads u and compares its checksum with the declared one.
func (c *Checker) verifyFile(ctx context.Context, r *Result, u string) {
	algo, want, _ := strings.Cut(r.Input.Checksum, ":")
	newHash, ok := hashes[algo]
	if !ok {
		r.Status, r.Detail = Unreachable, fmt.Sprintf("checksum %q: unknown algorithm (want sha256:HEX or md5:HEX)", r.Input.Checksum)
		return
	}
	body, code, err := c.get(ctx, u)
	if err != nil || code != http.StatusOK {
		httpResult(r, code, err)
		return
	}
	defer body.Close()
	h := newHash()
	n, err := io.Copy(h, body)
	if err != nil {
		r.Status, r.Detail = Unreachable, fmt.Sprintf("GET %s: reading: %v", u, err)
		return
	}
	got := hex.EncodeToString(h.Sum(nil))
	if got != want {
		r.Status = Missing
		r.Detail = fmt.Sprintf("the file (%d bytes) has %s %s, the recipe verifies %s", n, algo, got, want)
		r.Fix = "the file changed under its URL: the build's checksum check will fail; find out why, then update the checksum in " + locate(r.Input)
		return
	}
	r.Status, r.Detail = OK, fmt.Sprintf("%s matches (%d bytes)", algo, n)
}

// get starts a GET; the caller closes the body when code is 200.
func (c *Checker) get(ctx context.Context, u string) (io.ReadCloser, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("GET %s: %w", u, err)
	}
	resp, err := c.client().Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("GET %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, resp.StatusCode, nil
	}
	return resp.Body, resp.StatusCode, nil
}

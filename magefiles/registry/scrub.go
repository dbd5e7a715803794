package registry

import (
	"bytes"
	"encoding/base64"
	"io"
	"net/http"
	"strings"
)

// scrubLimit bounds how much of an error answer's body is scrubbed; error
// bodies are a few hundred bytes.
const scrubLimit = 1 << 20

// minSecret is the shortest credential part that is scrubbed: shorter
// ones would blank out ordinary words of a message.
const minSecret = 4

// credentialScrub sits right above the base transport. An error answer
// (status 400 or more) whose body repeats the request's credentials, as a
// careless registry or proxy may ("bad credentials: Basic dXNlcjpwYXNz"),
// has them replaced by <redacted> before ggcr reads it into an error: the
// client's errors are printed, and must never carry credentials.
type credentialScrub struct{ inner http.RoundTripper }

func (s credentialScrub) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := s.inner.RoundTrip(req)
	if err != nil || resp.StatusCode < 400 || resp.Body == nil {
		return resp, err
	}
	secrets := requestSecrets(req)
	if len(secrets) == 0 {
		return resp, nil
	}
	head, err := io.ReadAll(io.LimitReader(resp.Body, scrubLimit))
	if err != nil {
		resp.Body.Close()
		return nil, err
	}
	for _, v := range secrets {
		head = bytes.ReplaceAll(head, []byte(v), []byte("<redacted>"))
	}
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(head), resp.Body), resp.Body}
	resp.ContentLength = -1
	resp.Header.Del("Content-Length")
	return resp, nil
}

// requestSecrets are the forms in which the request's credentials could
// come back: the Authorization header, its credential part, and for Basic
// the decoded user:password and password. Longest first, so that a longer
// form is replaced whole.
func requestSecrets(req *http.Request) []string {
	h := req.Header.Get("Authorization")
	if h == "" {
		return nil
	}
	out := []string{h}
	scheme, cred, ok := strings.Cut(h, " ")
	if !ok {
		return out
	}
	out = append(out, cred)
	if strings.EqualFold(scheme, "basic") {
		if b, err := base64.StdEncoding.DecodeString(cred); err == nil {
			out = append(out, string(b))
			if _, pass, ok := strings.Cut(string(b), ":"); ok {
				out = append(out, pass)
			}
		}
	}
	kept := out[:0]
	for _, v := range out {
		if len(v) >= minSecret {
			kept = append(kept, v)
		}
	}
	return kept
}

package registry

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
)

type staticKeychain struct{ cfg authn.AuthConfig }

func (k staticKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	return authn.FromConfig(k.cfg), nil
}

// A registry that repeats the credentials it refuses in its error body
// never gets them into the client's errors (which the tool prints).
func TestRefusedCredentialsNeverReachAnError(t *testing.T) {
	const user, password = "ci-bot", "pa55-Never-Print-Me"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, _ := r.BasicAuth()
		w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"refused `+r.Header.Get("Authorization")+` for `+u+`:`+p+` (password `+p+`)"}]}`)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	c := New(WithKeychain(staticKeychain{authn.AuthConfig{Username: user, Password: password}}), WithRetry(1, 0))
	secrets := []string{password, base64.StdEncoding.EncodeToString([]byte(user + ":" + password))}
	pushErr := c.CheckPush(context.Background(), host+"/determinedai/environments")
	_, inspectErr := c.Inspect(context.Background(), host+"/determinedai/environments:x")
	for name, err := range map[string]error{"CheckPush": pushErr, "Inspect": inspectErr} {
		if err == nil {
			t.Fatalf("%s succeeded against a registry that refuses everything", name)
		}
		t.Logf("%s: %v", name, err)
		for _, s := range secrets {
			if strings.Contains(err.Error(), s) {
				t.Errorf("%s's error carries the credential %q: %v", name, s, err)
			}
		}
		if !strings.Contains(err.Error(), "<redacted>") {
			t.Errorf("%s's error does not show where the registry repeated the credentials: %v", name, err)
		}
	}
}

func TestRequestSecrets(t *testing.T) {
	req := func(h string) *http.Request {
		r, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1/v2/", nil)
		if h != "" {
			r.Header.Set("Authorization", h)
		}
		return r
	}
	b64 := base64.StdEncoding.EncodeToString([]byte("bot:hunter22"))
	for h, want := range map[string][]string{
		"":                     nil,
		"Basic " + b64:         {"Basic " + b64, b64, "bot:hunter22", "hunter22"},
		"Bearer eyJ.token.sig": {"Bearer eyJ.token.sig", "eyJ.token.sig"},
		"Basic " + base64.StdEncoding.EncodeToString([]byte("u:pw")): {"Basic dTpwdw==", "dTpwdw==", "u:pw"}, // "pw" is too short to scrub
	} {
		if got := requestSecrets(req(h)); !slices.Equal(got, want) {
			t.Errorf("requestSecrets(%q) = %q, want %q", h, got, want)
		}
	}
}

package registry

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	memreg "github.com/google/go-containerregistry/pkg/registry"
)

// authGate wraps ggcr's in-memory registry with Basic authentication:
// "writer" may do anything, "reader" may only read, anyone else gets 401.
type authGate struct {
	inner http.Handler
	mu    sync.Mutex
	seen  []string // "METHOD path user"
}

func (g *authGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user, pass, ok := r.BasicAuth()
	g.mu.Lock()
	g.seen = append(g.seen, r.Method+" "+r.URL.Path+" "+user)
	g.mu.Unlock()
	if !ok || pass != "secret" || (user != "writer" && user != "reader") {
		w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
		return
	}
	if user == "reader" && r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}`)
		return
	}
	g.inner.ServeHTTP(w, r)
}

func (g *authGate) requests() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.seen...)
}

func newAuthRegistry(t *testing.T) (*authGate, string) {
	t.Helper()
	g := &authGate{inner: memreg.New(memreg.Logger(log.New(io.Discard, "", 0)))}
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return g, strings.TrimPrefix(srv.URL, "http://")
}

// userKeychain returns the same credentials for every registry.
type userKeychain struct{ user string }

func (k userKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	return authn.FromConfig(authn.AuthConfig{Username: k.user, Password: "secret"}), nil
}

func TestCheckPushWithoutLoginNamesTheRegistryAndTheLogin(t *testing.T) {
	g, host := newAuthRegistry(t)
	repo := host + "/determinedai/environments"
	err := New(WithKeychain(anonymous)).CheckPush(context.Background(), repo)
	var denied *PushDeniedError
	if !errors.As(err, &denied) {
		t.Fatalf("CheckPush without credentials: %v, want a PushDeniedError", err)
	}
	for _, want := range []string{"no permission to push to " + repo, "docker login " + host} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if len(g.requests()) == 0 {
		t.Error("the registry was not asked")
	}
}

func TestCheckPushWithReadOnlyCredentialsIsDenied(t *testing.T) {
	_, host := newAuthRegistry(t)
	err := New(WithKeychain(userKeychain{"reader"})).CheckPush(context.Background(), host+"/org/repo")
	var denied *PushDeniedError
	if !errors.As(err, &denied) || denied.Registry != host {
		t.Fatalf("CheckPush as a reader: %v", err)
	}
}

func TestCheckPushWithPushCredentialsStartsAnUploadAndPushesNothing(t *testing.T) {
	g, host := newAuthRegistry(t)
	if err := New(WithKeychain(userKeychain{"writer"})).CheckPush(context.Background(), host+"/org/repo"); err != nil {
		t.Fatalf("CheckPush as a writer: %v", err)
	}
	started := false
	for _, r := range g.requests() {
		if strings.HasPrefix(r, "POST /v2/org/repo/blobs/uploads/ writer") {
			started = true
		}
		if strings.HasPrefix(r, "PUT /v2/org/repo/manifests/") {
			t.Errorf("the check pushed a manifest: %s", r)
		}
	}
	if !started {
		t.Errorf("no upload was started in org/repo: %v", g.requests())
	}
}

func TestCheckPushToAnUnreachableRegistryFails(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	host := strings.TrimPrefix(srv.URL, "http://")
	srv.Close() // nothing listens there now
	err := New(WithKeychain(anonymous), WithRetry(2, time.Millisecond)).CheckPush(context.Background(), host+"/org/repo")
	var denied *PushDeniedError
	if err == nil || errors.As(err, &denied) || !strings.Contains(err.Error(), host) {
		t.Fatalf("CheckPush to a closed port: %v", err)
	}
}

func TestLoginHints(t *testing.T) {
	for reg, want := range map[string]string{
		"index.docker.io": "`docker login` (Docker Hub)",
		"nvcr.io":         "`docker login nvcr.io` with user `$oauthtoken`",
		"ghcr.io":         "`docker login ghcr.io`",
	} {
		if got := LoginHint(reg); !strings.Contains(got, want) {
			t.Errorf("LoginHint(%s) = %q, want %q in it", reg, got, want)
		}
	}
}

package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// PushDeniedError says that the credentials found for a registry do not allow
// pushing to a repository, and which login would fix it.
type PushDeniedError struct {
	Repo     string // as configured, e.g. determinedai/environments
	Registry string // e.g. index.docker.io, nvcr.io
	Err      error
}

func (e *PushDeniedError) Error() string {
	return fmt.Sprintf("no permission to push to %s (registry %s: %v): %s", e.Repo, e.Registry, e.Err, LoginHint(e.Registry))
}

func (e *PushDeniedError) Unwrap() error { return e.Err }

// LoginHint is the login that gives the tool (which reads the Docker
// credential store) push access to registry.
func LoginHint(registry string) string {
	switch registry {
	case name.DefaultRegistry, "docker.io", "registry-1.docker.io":
		return "run `docker login` (Docker Hub) as a user that may push there"
	case "nvcr.io":
		return "run `docker login nvcr.io` with user `$oauthtoken` and an NGC API key that may push there"
	}
	return fmt.Sprintf("run `docker login %s` as a user that may push there", registry)
}

// CheckPush checks that the credentials the keychain holds for repo's
// registry allow pushing to repo, with go-containerregistry's
// remote.CheckPushPermission (a token for the push scope, then an upload that
// is started and cancelled). A refusal is a *PushDeniedError; its requests
// are retried like every other (retry.go), and a registry that cannot be
// reached fails within the client's timeout. Nothing is pushed.
func (c *Client) CheckPush(ctx context.Context, repo string) error {
	var opts []name.Option
	if IsLoopback(repo) {
		opts = append(opts, name.Insecure)
	}
	r, err := name.NewRepository(repo, opts...)
	if err != nil {
		return fmt.Errorf("checking push permission: parsing repository %q: %w", repo, err)
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	// CheckPushPermission takes no context: the transport carries ours, so
	// the check honours the timeout and Ctrl-C. It takes no remote options
	// either, so ggcr's retry transport is put in here.
	rt := c.retrying(contextTransport{ctx: ctx, inner: c.transport(newActivity(), nil)})
	err = remote.CheckPushPermission(r.Tag("push-permission-check"), c.keychain, rt)
	if err == nil {
		return nil
	}
	if denied(err) {
		return &PushDeniedError{Repo: repo, Registry: r.RegistryStr(), Err: err}
	}
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (%w)", err, ctx.Err())
	}
	return fmt.Errorf("checking push permission to %s (registry %s): %w", repo, r.RegistryStr(), err)
}

// denied reports whether err is the registry refusing the credentials or the
// push (401, 403, or an UNAUTHORIZED/DENIED error code).
func denied(err error) bool {
	var te *transport.Error
	if errors.As(err, &te) {
		if te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden {
			return true
		}
		for _, d := range te.Errors {
			if d.Code == transport.UnauthorizedErrorCode || d.Code == transport.DeniedErrorCode {
				return true
			}
		}
	}
	return false
}

// contextTransport sends every request with ctx, for library calls that take
// no context.
type contextTransport struct {
	ctx   context.Context
	inner http.RoundTripper
}

func (t contextTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.inner.RoundTrip(req.WithContext(t.ctx))
}

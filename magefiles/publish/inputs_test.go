package publish

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/determined-ai/environments/magefiles/inputs"
	"github.com/determined-ai/environments/magefiles/registry"
)

// toServer sends every request to one server, keeping the path: the
// declared URLs stay as the recipes have them.
type toServer struct{ target *url.URL }

func (t toServer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host = t.target.Scheme, t.target.Host
	return http.DefaultTransport.RoundTrip(r)
}

// TestCheckInputsStopsPublishBeforeAnyBuild: with CHECK_INPUTS=1 a publish
// whose downloads, indexes and repositories are gone stops before any
// build, naming them; the base image (on the mirror) is found.
func TestCheckInputsStopsPublishBeforeAnyBuild(t *testing.T) {
	h := newHarness(t)
	gone := httptest.NewServer(http.NotFoundHandler()) // a server that has none of the files
	t.Cleanup(gone.Close)
	target, err := url.Parse(gone.URL)
	if err != nil {
		t.Fatal(err)
	}
	c := &inputs.Checker{
		Registry: h.client(), NotFound: registry.ErrNotFound,
		HTTP: &http.Client{Transport: toServer{target}},
	}
	h.env["CHECK_INPUTS"] = "1"
	_, err = h.run(context.Background(), h.client(), Options{Images: []string{"pt-cpu"}, Dockerhub: true, Inputs: c})
	if err == nil {
		t.Fatal("publish with vanished inputs succeeded")
	}
	if !strings.HasPrefix(err.Error(), "publish: CHECK_INPUTS=1: ") || !strings.Contains(err.Error(), "external inputs are missing or unreachable: missing ") {
		t.Errorf("error = %q", err)
	}
	if n := h.buildCount(); n != 0 {
		t.Errorf("%d builds before the inputs check", n)
	}
	out := h.err.String()
	for _, want := range []string{
		"MISSING     file " + "https://repo.anaconda.com/miniconda/", // the base's installer
		"MISSING     pip torch==1.12.0+cpu (amd64)",                  // pt-cpu's pin, amd64 only (WITH_MPI=0 builds arm64 too)
		"images:  cpu-py-38-base",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the report does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "openmpi") {
		t.Error("a WITH_MPI=0 publish checked the MPI downloads")
	}
	if strings.Contains(out, "image ubuntu:20.04") {
		t.Error("the base image on the mirror was reported")
	}
}

// TestCheckInputsDryRun: a dry run says it would check, and asks nothing.
func TestCheckInputsDryRun(t *testing.T) {
	h := newHarness(t)
	h.env["DRY_RUN"] = "1"
	h.env["CHECK_INPUTS"] = "1"
	asked := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { asked++ }))
	t.Cleanup(srv.Close)
	target, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	c := &inputs.Checker{Registry: h.client(), NotFound: registry.ErrNotFound, HTTP: &http.Client{Transport: toServer{target}}}
	if _, err := h.run(context.Background(), nil, Options{Images: []string{"pt-cpu"}, Dockerhub: true, Inputs: c}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(h.out.String(), "# check that the external inputs of 2 images still exist (CHECK_INPUTS=1") || asked != 0 {
		t.Errorf("dry run: asked %d times; output:\n%s", asked, h.out.String())
	}
}

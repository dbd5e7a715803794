package publish

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/determined-ai/environments/magefiles/plan"
	"github.com/determined-ai/environments/magefiles/registry"
)

// dockerHubRoute sends Docker Hub's requests to a local registry (http).
type dockerHubRoute struct {
	host string
	next http.RoundTripper
}

func (r dockerHubRoute) RoundTrip(req *http.Request) (*http.Response, error) {
	switch req.URL.Host {
	case "index.docker.io", "registry-1.docker.io", "docker.io":
	default:
		return r.next.RoundTrip(req)
	}
	routed := req.Clone(req.Context())
	routed.URL.Scheme, routed.URL.Host, routed.Host = "http", r.host, r.host
	resp, err := r.next.RoundTrip(routed)
	if resp != nil {
		resp.Request = req // the client goes on talking https to Docker Hub
	}
	return resp, err
}

// TestGoneBaseStopsOnlyItsImages: the CUDA 10.2 image NVIDIA deleted is on
// neither Docker Hub (a local registry standing in for it) nor the mirror.
// Before anything is built the run names the image, the reference and what
// to do; gpu-cuda-102-base fails and tf1-gpu is skipped without a build;
// the images on other bases are published; the run ends with an error.
func TestGoneBaseStopsOnlyItsImages(t *testing.T) {
	h := newHarness(t)
	const gone = "nvidia/cuda:10.2-cudnn7-devel-ubuntu18.04"
	mirrored, err := name.ParseReference(h.mirror+"/"+gone, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Delete(mirrored); err != nil {
		t.Fatalf("deleting %s from the mirror: %v", mirrored, err)
	}
	hub := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(discardLogger())))
	t.Cleanup(hub.Close)
	reg := registry.New(registry.WithMirrors(map[string]string{"docker.io": h.mirror}),
		registry.WithTransport(dockerHubRoute{host: strings.TrimPrefix(hub.URL, "http://"), next: http.DefaultTransport}),
		registry.WithRetry(1, 0))
	var atFirstBuild string
	h.onBuild = func(context.Context, plan.Spec) error {
		h.mu.Lock()
		defer h.mu.Unlock()
		if atFirstBuild == "" {
			atFirstBuild = h.err.String() + " "
		}
		return nil
	}

	images := []string{"tf1-gpu", "tf28-gpu", "tf1-cpu"}
	rep, err := h.run(context.Background(), reg, Options{Images: images, Dockerhub: true})
	if err == nil || rep == nil {
		t.Fatalf("publish with a vanished base: report %v, error %v; want a report and an error", rep, err)
	}
	const start = "gpu-cuda-102-base cannot be built: its base image " + gone + " does not exist (NVIDIA deleted it"
	for _, want := range []string{start, "tf1-gpu, built on it, cannot be built either",
		"The mirror " + h.mirror + " (REGISTRY_MIRRORS) does not have it either: push a copy of " + gone + " to " + h.mirror + "/" + gone} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q:\n%v", want, err)
		}
		if !strings.Contains(atFirstBuild, want) {
			t.Errorf("before the first build, the output did not say %q:\n%s", want, atFirstBuild)
		}
	}
	want := map[string]Result{
		"cpu-py-37-base": Built, "gpu-cuda-102-base": Failed, "gpu-cuda-112-base": Built,
		"tf1-cpu": Built, "tf1-gpu": Skipped, "tf28-gpu": Built,
	}
	for _, ir := range rep.Images {
		if ir.Result != want[ir.Name] {
			t.Errorf("%s: %s, want %s (%s)", ir.Name, ir.Result, want[ir.Name], ir.Error)
		}
	}
	if len(rep.Images) != len(want) {
		t.Errorf("report has %d images, want %d", len(rep.Images), len(want))
	}
	if h.builds["gpu-cuda-102-base"] != 0 || h.builds["tf1-gpu"] != 0 {
		t.Errorf("images on the vanished base were built: %v", h.builds)
	}
	if got := readDir(t, h.artifactsDir()); !slices.Equal(got, []string{"publish-tf1-cpu-0", "publish-tf28-gpu-0"}) {
		t.Errorf("artifacts %v", got)
	}

	// Without a mirror the error says to set one up.
	e := (&plan.GoneBaseError{Image: "gpu-cuda-102-base", Ref: gone, Err: registry.ErrNotFound}).Error()
	if !strings.Contains(e, "set REGISTRY_MIRRORS=docker.io=HOST[:PORT]") {
		t.Errorf("without a mirror: %s", e)
	}
}

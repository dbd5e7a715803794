package publish

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/determined-ai/environments/magefiles/registry"
)

// cancelAfterVerify is the real registry client, except that the context
// is cancelled (Ctrl-C) right after the tags named by cancelOn verified: the
// moment between verification and the artifact file.
type cancelAfterVerify struct {
	*registry.Client
	cancelOn string
	cancel   context.CancelFunc
}

func (c cancelAfterVerify) Verify(ctx context.Context, tags []string, want string, platforms []string) (registry.Image, error) {
	img, err := c.Client.Verify(ctx, tags, want, platforms)
	if err == nil && slices.Contains(tags, c.cancelOn) {
		c.cancel()
	}
	return img, err
}

// A Ctrl-C that lands after an image's last verification but before its
// artifact file is written leaves no artifact file: the run was
// interrupted, so it claims nothing.
func TestCancelBetweenVerifyAndArtifactWritesNoArtifact(t *testing.T) {
	h := newHarness(t)
	h.env["JOBS"] = "1"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hub, _ := tagsOf(t, h, "tf2-cpu")
	reg := cancelAfterVerify{Client: h.client(), cancelOn: hub.Hashed, cancel: cancel}
	rep, err := h.run(ctx, reg, Options{Images: []string{"tf2-cpu"}, Dockerhub: true, NGC: false})
	if err == nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want one wrapping context.Canceled", err)
	}
	if ctx.Err() == nil {
		t.Fatal("tf2-cpu's tags were never verified: the cancel never happened")
	}
	if _, err := os.Stat(filepath.Join(h.artifactsDir(), ArtifactName("tf2-cpu", "0"))); err == nil {
		t.Error("artifact written after the run was cancelled")
	}
	if ir := imageReport(t, *rep, "tf2-cpu"); ir.Artifact != "" || ir.Verified {
		t.Errorf("tf2-cpu claims success: %+v", ir)
	}
}

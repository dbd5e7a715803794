package publish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"

	"github.com/determined-ai/environments/magefiles/plan"
)

// digestKey is the key of the pushed manifest (list) digest in the file
// written by `docker buildx build --metadata-file`.
const digestKey = "containerimage.digest"

var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// buildAndPush is the real build step: `docker buildx build --push
// --metadata-file` (the spec's argv) and the pushed digest read back from the
// metadata file.
func (p *publisher) buildAndPush(ctx context.Context, sp plan.Spec) (string, error) {
	if sp.MetadataFile == "" {
		return "", fmt.Errorf("image %s: the plan has no --metadata-file; publish cannot learn the pushed digest", sp.Image.Name)
	}
	// A file left by an earlier run must not pass for this build's.
	if err := os.Remove(sp.MetadataFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("image %s: removing old metadata file: %w", sp.Image.Name, err)
	}
	if err := p.e.RunSpec(ctx, sp); err != nil {
		return "", err
	}
	return readDigest(sp.MetadataFile)
}

// readDigest reads containerimage.digest from a buildx metadata file.
func readDigest(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading the pushed digest: %w (buildx writes it with --metadata-file)", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return "", fmt.Errorf("reading the pushed digest: %s is not JSON: %w", path, err)
	}
	d, _ := m[digestKey].(string)
	if !digestRE.MatchString(d) {
		return "", fmt.Errorf("reading the pushed digest: %s has %s=%q, want sha256:<64 hex digits>", path, digestKey, d)
	}
	return d, nil
}

package bench

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/determined-ai/environments/magefiles/catalog"
	"github.com/determined-ai/environments/magefiles/registry"
)

// ngcCopy copies an NGC image of the parallel publish from the Hub stand-in
// to a fresh repository on the NGC stand-in twice, with registry.Client.Copy
// (what publish uses), and reports the bytes the second copy uploaded: the
// destination already holds every blob by then.
func (b *stackBench) ngcCopy(ctx context.Context, par *run) error {
	src := ""
	name := ""
	for _, im := range par.report.Images {
		img, err := catalog.Lookup(im.Name)
		if err != nil || !img.NGC || im.Digest == "" || len(im.Tags.Dockerhub) == 0 {
			continue
		}
		tag := im.Tags.Dockerhub[0]
		repo := tag
		if i := strings.LastIndex(tag, ":"); i > strings.LastIndex(tag, "/") {
			repo = tag[:i]
		}
		src, name = repo+"@"+im.Digest, im.Name
		break
	}
	if src == "" {
		return errors.New("the parallel publish reported no NGC image with a digest to copy")
	}
	c := registry.New()
	dst := b.st.NGC + "/ngc/bench-copy"
	first, err := c.Copy(ctx, src, []string{dst + ":first"})
	if err != nil {
		return fmt.Errorf("first copy: %w", err)
	}
	second, err := c.Copy(ctx, src, []string{dst + ":second"})
	if err != nil {
		return fmt.Errorf("second copy: %w", err)
	}
	b.r.figure(FigNGCCopyBytes, float64(second.BytesUploaded), 0, &Goal{Max: 0, Say: "0"})
	b.r.note("copied %s (%s) to %s: first copy %d bytes in %d blobs (%d skipped); second copy, new tag, %d blobs uploaded, %d skipped",
		name, src, dst, first.BytesUploaded, first.BlobsUploaded, first.BlobsSkipped, second.BlobsUploaded, second.BlobsSkipped)
	return nil
}

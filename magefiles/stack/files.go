package stack

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// ImageFiles returns the content of the named files (absolute paths, the
// keys of the result) in img's flattened filesystem; files it does not hold
// are absent from the result. Tests use it to read what RUN steps recorded.
func ImageFiles(img v1.Image, names ...string) (map[string]string, error) {
	want := map[string]bool{}
	for _, n := range names {
		want[filepath.Clean("/"+n)] = true
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	got := map[string]string{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return got, nil
		}
		if err != nil {
			return nil, fmt.Errorf("extracting the image filesystem: %w", err)
		}
		n := filepath.Clean("/" + strings.TrimPrefix(h.Name, "./"))
		if want[n] {
			b, err := io.ReadAll(tr)
			if err != nil {
				return nil, fmt.Errorf("reading %s from the image: %w", n, err)
			}
			got[n] = string(b)
		}
	}
}

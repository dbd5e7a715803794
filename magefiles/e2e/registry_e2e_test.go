//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/determined-ai/environments/magefiles/stack"
)

// ref parses a loopback registry reference.
func ref(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s, name.Insecure)
	if err != nil {
		t.Fatalf("reference %q: %v", s, err)
	}
	return r
}

func isNotFound(err error) bool {
	var te *transport.Error
	return errors.As(err, &te) && te.StatusCode == http.StatusNotFound
}

// headDigest returns the digest tag points at, "" when the tag does not exist.
func headDigest(t *testing.T, tag string) string {
	t.Helper()
	d, err := remote.Head(ref(t, tag), remote.WithContext(context.Background()))
	if isNotFound(err) {
		return ""
	}
	if err != nil {
		t.Fatalf("HEAD %s: %v", tag, err)
	}
	return d.Digest.String()
}

// platformImages returns the images of tag by "os/arch" (attestation
// manifests, platform unknown/unknown, left out).
func platformImages(t *testing.T, tag string) map[string]v1.Image {
	t.Helper()
	r := ref(t, tag)
	desc, err := remote.Get(r, remote.WithContext(context.Background()))
	if err != nil {
		t.Fatalf("GET %s: %v", tag, err)
	}
	out := map[string]v1.Image{}
	if !desc.MediaType.IsIndex() {
		img, err := desc.Image()
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		out[cf.OS+"/"+cf.Architecture] = img
		return out
	}
	idx, err := desc.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range im.Manifests {
		if m.Platform == nil || m.Platform.OS == "unknown" {
			continue
		}
		img, err := idx.Image(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		out[m.Platform.OS+"/"+m.Platform.Architecture] = img
	}
	return out
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func layerDigests(t *testing.T, img v1.Image) []string {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range ls {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d.String())
	}
	return out
}

// registryState lists every repository:tag and its digest of the given
// registries, one a line.
func registryState(t *testing.T, regs ...string) string {
	t.Helper()
	state, err := stack.RegistryState(context.Background(), regs...)
	if err != nil {
		t.Fatal(err)
	}
	return state
}

// blobs lists the blob digests stored by the named stack registries
// ("hub", "ngc", "mirror"), read from their storage directories.
func blobs(t *testing.T, regs ...string) []string {
	t.Helper()
	var out []string
	for _, r := range regs {
		dir := filepath.Join(stackWork, "registry-"+r, "storage", "docker", "registry", "v2", "blobs")
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) && p == dir {
					return fs.SkipDir
				}
				return err
			}
			if !d.IsDir() && d.Name() == "data" {
				rel, _ := filepath.Rel(dir, filepath.Dir(p))
				out = append(out, r+" "+rel)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	sort.Strings(out)
	return out
}

// diff returns the elements of b not in a.
func added(a, b []string) []string {
	var out []string
	for _, x := range b {
		if !slices.Contains(a, x) {
			out = append(out, x)
		}
	}
	return out
}

const reportName = "publish-report.json"

// report is the part of publish-report.json the suite checks.
type report struct {
	OK     bool          `json:"ok"`
	Images []imageReport `json:"images"`
}

type imageReport struct {
	Name      string   `json:"name"`
	Result    string   `json:"result"`
	Error     string   `json:"error"`
	Digest    string   `json:"digest"`
	Platforms []string `json:"platforms"`
	Tags      struct {
		Dockerhub []string `json:"dockerhub"`
		NGC       []string `json:"ngc"`
	} `json:"tags"`
	Verified bool `json:"verified"`
	Inputs   struct {
		Digest string            `json:"digest"`
		Images map[string]string `json:"images"`
	} `json:"inputs"`
}

// readReport reads the report of a publish with ARTIFACTS_DIR=dir: it is
// publish-report.json beside that directory (the default PUBLISH_REPORT);
// ok is false when there is none.
func readReport(t *testing.T, dir string) (report, bool) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(filepath.Dir(dir), reportName))
	if errors.Is(err, fs.ErrNotExist) {
		return report{}, false
	}
	if err != nil {
		t.Fatal(err)
	}
	var r report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%s is not a publish report: %v\n%s", reportName, err, b)
	}
	return r, true
}

func (r report) byName() map[string]imageReport {
	m := map[string]imageReport{}
	for _, i := range r.Images {
		m[i.Name] = i
	}
	return m
}

// parseYAMLMapping parses the artifact files' subset of YAML strictly: one
// "key: plain scalar" a line, no duplicates. A value that YAML would read as
// anything but that plain string (quotes, flow or block indicators, comments,
// ": " inside) is an error, so a file that passes loads in PyYAML as exactly
// this mapping of strings.
func parseYAMLMapping(content string) (map[string]string, error) {
	if !strings.HasSuffix(content, "\n") {
		return nil, errors.New("does not end with a newline")
	}
	m := map[string]string{}
	for i, line := range strings.Split(strings.TrimSuffix(content, "\n"), "\n") {
		k, v, ok := strings.Cut(line, ": ")
		switch {
		case !ok:
			return nil, fmt.Errorf("line %d %q is not `key: value`", i+1, line)
		case k == "" || strings.Trim(k, "abcdefghijklmnopqrstuvwxyz0123456789_") != "":
			return nil, fmt.Errorf("line %d: key %q is not a plain lower-case key", i+1, k)
		case v == "" || v != strings.TrimSpace(v):
			return nil, fmt.Errorf("line %d: value %q is empty or has surrounding blanks", i+1, v)
		case strings.ContainsAny(v[:1], "-?:,[]{}#&*!|>'\"%@`"):
			return nil, fmt.Errorf("line %d: value %q starts with a YAML indicator", i+1, v)
		case strings.Contains(v, ": ") || strings.Contains(v, " #") || strings.HasSuffix(v, ":"):
			return nil, fmt.Errorf("line %d: value %q is not a plain scalar", i+1, v)
		}
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("line %d: duplicate key %q", i+1, k)
		}
		m[k] = v
	}
	return m, nil
}

// imageFiles returns the content of the named files (absolute paths) in the
// image's flattened filesystem.
func imageFiles(t *testing.T, img v1.Image, names ...string) map[string]string {
	t.Helper()
	got, err := stack.ImageFiles(img, names...)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

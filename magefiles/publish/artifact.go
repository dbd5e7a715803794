package publish

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/determined-ai/environments/magefiles/catalog"
	"github.com/determined-ai/environments/magefiles/plan"
)

// The artifact files are the public contract with Determined's release
// tooling (update-bumpenvs-yaml.py): one file per framework image named
// publish-<image>-<M>, holding exactly two YAML lines whose keys are the image
// name with underscores for dashes, "_<M>" and "_hashed"/"_versioned".

// ArtifactName is the file name publish-<image>-<M>, M being 1 with
// WITH_MPI=1 and 0 otherwise (variant.Settings.MPIDigit).
func ArtifactName(image, mpiDigit string) string {
	return "publish-" + image + "-" + mpiDigit
}

// ArtifactKey is the YAML key prefix of an image: tf2-cpu with M=0 gives
// tf2_cpu_0; the file's keys are that plus "_hashed" and "_versioned".
func ArtifactKey(image, mpiDigit string) string {
	return strings.ReplaceAll(image, "-", "_") + "_" + mpiDigit
}

// ArtifactContent is the exact content of the artifact file: two lines, each
// ended by "\n", nothing else.
func ArtifactContent(image, mpiDigit string, hub plan.Tags) string {
	k := ArtifactKey(image, mpiDigit)
	return k + "_hashed: " + hub.Hashed + "\n" + k + "_versioned: " + hub.Versioned + "\n"
}

// writeAtomic writes content to dir/name through a temporary file in dir and
// a rename, so a reader never sees a partial file and a failed write leaves
// no file behind.
func writeAtomic(dir, name string, content []byte) error {
	f, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", filepath.Join(dir, name), err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(content); err != nil {
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("writing %s: %w", filepath.Join(dir, name), err)
	}
	ok = true
	return nil
}

// removeStale removes, before anything else can fail, the files an earlier
// run left for the images about to be published: their artifact files, the
// report at PUBLISH_REPORT, and a report an older version of the tool wrote
// into ARTIFACTS_DIR. Whatever stops this run later, no file then claims an
// image this run did not verify. Unknown names and base images (which have
// no artifact file) are skipped here; the plan refuses unknown names. A dry
// run only says what it would remove.
func (p *publisher) removeStale(names []string) error {
	s := p.e.Settings
	var paths []string
	for _, n := range names {
		img, err := catalog.Lookup(n)
		if err != nil || img.IsBase() {
			continue
		}
		paths = append(paths, filepath.Join(s.ArtifactsDir, ArtifactName(n, s.MPIDigit())))
	}
	paths = append(paths, s.Report, filepath.Join(s.ArtifactsDir, ReportName))
	for _, path := range paths {
		if _, err := os.Lstat(path); err != nil {
			continue
		}
		p.e.Runner.Note("remove stale %s", path)
		if p.dry {
			continue
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("publish: removing the stale file %s (left by an earlier run): %w", path, err)
		}
	}
	if foreign := foreignFiles(s.ArtifactsDir); len(foreign) > 0 {
		// Not ours to remove, but CI stores the directory whole.
		p.e.Runner.Note("ARTIFACTS_DIR %s holds files that are not artifact files: %s", s.ArtifactsDir, strings.Join(foreign, ", "))
		p.status().Info("ARTIFACTS_DIR %s should hold only publish-<image>-<M> files; it also holds %s", s.ArtifactsDir, strings.Join(foreign, ", "))
	}
	return nil
}

// foreignFiles lists what dir holds besides artifact files of catalog images
// (and the hidden temporary files of an atomic write).
func foreignFiles(dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	ok := map[string]bool{}
	for _, n := range catalog.Names() {
		ok[ArtifactName(n, "0")], ok[ArtifactName(n, "1")] = true, true
	}
	var out []string
	for _, e := range ents {
		if !ok[e.Name()] && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	return out
}

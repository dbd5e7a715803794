package publish

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/determined-ai/environments/magefiles/build"
)

// checkArtifactsDir makes sure the artifact files can be written before
// anything is built or pushed: the directory exists (or is created) and a
// probe file can be written and removed.
func checkArtifactsDir(dir string) error {
	bad := func(err error) error {
		return fmt.Errorf("ARTIFACTS_DIR=%q cannot receive the artifact files (%v); set ARTIFACTS_DIR to a writable directory (default /tmp/artifacts)", dir, err)
	}
	if dir == "" {
		return bad(errors.New("empty path"))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return bad(err)
	}
	f, err := os.CreateTemp(dir, ".publish-probe-*")
	if err != nil {
		return bad(err)
	}
	_, werr := f.WriteString("probe\n")
	cerr := f.Close()
	rerr := os.Remove(f.Name())
	if err := errors.Join(werr, cerr, rerr); err != nil {
		return bad(err)
	}
	return nil
}

// maxListed is how many changed files a dirty-worktree error names.
const maxListed = 20

// checkClean refuses a worktree with changes (tracked or untracked) unless
// ALLOW_DIRTY=1: the <hash> tag names a commit, and images built from other
// content would be published under it. `git status` is a read-only query, so
// dry runs check it too and show the real outcome.
func checkClean(ctx context.Context, e *build.Env) error {
	argv := []string{"git"}
	if e.Root != "" {
		argv = append(argv, "-C", e.Root)
	}
	argv = append(argv, "status", "--porcelain", "--untracked-files=all")
	out, err := e.Runner.Output(ctx, argv...)
	if err != nil {
		return fmt.Errorf("checking the worktree with `git status --porcelain` in %s: %w (ALLOW_DIRTY=1 skips the check)", e.Root, err)
	}
	files := changedFiles(out)
	if len(files) == 0 {
		return nil
	}
	if e.Settings.AllowDirty {
		e.Runner.Note("ALLOW_DIRTY=1: publishing with %d changed file(s) in the worktree under the %s tag", len(files), e.Settings.Hash)
		return nil
	}
	listed := files
	more := ""
	if len(listed) > maxListed {
		more = fmt.Sprintf(" and %d more", len(listed)-maxListed)
		listed = listed[:maxListed]
	}
	return fmt.Errorf("the worktree has changes (%s%s): the %s tag would not describe these images; commit, or ALLOW_DIRTY=1",
		strings.Join(listed, ", "), more, e.Settings.Hash)
}

// changedFiles parses `git status --porcelain` output into paths ("old ->
// new" for renames). The runner trims the output, which may eat the leading
// blank of the first status column, so the status is cut at the first blank.
func changedFiles(porcelain string) []string {
	var out []string
	for _, line := range strings.Split(porcelain, "\n") {
		line = strings.TrimLeft(line, " ")
		if line == "" {
			continue
		}
		_, path, found := strings.Cut(line, " ")
		if !found {
			continue
		}
		out = append(out, strings.TrimSpace(path))
	}
	return out
}

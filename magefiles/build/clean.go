package build

import (
	"context"
	"fmt"
	"strings"
)

// maxListed is how many changed files a dirty-worktree error names.
const maxListed = 20

// CheckClean refuses a worktree with changes (tracked or untracked) unless
// ALLOW_DIRTY=1: the <hash> tag names a commit, and images built from other
// content would be pushed under it. publish and `PUSH=1 build` call it before
// anything is built. `git status` is a read-only query, so dry runs check it
// too and show the real outcome.
func (e *Env) CheckClean(ctx context.Context) error {
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
		e.Runner.Note("ALLOW_DIRTY=1: pushing with %d changed file(s) in the worktree under the %s tag", len(files), e.Settings.Hash)
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

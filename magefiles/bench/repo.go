package bench

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// standIns are the stand-in recipes every stack figure builds: the real
// recipes' stages and ARGs, RUN steps that only sleep.
//
//go:embed testdata/recipes
var standIns embed.FS

const standInDir = "testdata/recipes"

// benchVersion is the VERSION of every benchmark repository.
const benchVersion = "0.0.1-bench"

// benchRepo is a throw-away git repository holding VERSION and the stand-in
// recipes (RECIPES_DIR=.) with one commit per state, so every repository,
// and every edit, has a hash of its own.
type benchRepo struct {
	dir string
}

func git(ctx context.Context, dir string, args ...string) error {
	argv := append([]string{"-C", dir, "-c", "user.name=bench", "-c", "user.email=bench@localhost", "-c", "commit.gpgsign=false"}, args...)
	cmd := exec.CommandContext(ctx, "git", argv...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("git %s: %w\n%s", strings.Join(args, " "), err, tail(string(out), 2000))
	}
	return nil
}

// gitOut runs git in dir and returns its trimmed output.
func gitOut(ctx context.Context, dir string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...).Output()
	if err != nil {
		return "", fmt.Errorf("git %s in %s: %w", strings.Join(args, " "), dir, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// newRepo creates dir with the stand-in recipes and commits them.
func newRepo(ctx context.Context, dir, label string) (*benchRepo, error) {
	sub, err := fs.Sub(standIns, standInDir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.CopyFS(dir, sub); err != nil {
		return nil, fmt.Errorf("copying the stand-in recipes to %s: %w", dir, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "VERSION"), []byte(benchVersion+"\n"), 0o644); err != nil {
		return nil, err
	}
	r := &benchRepo{dir: dir}
	if err := git(ctx, dir, "init", "-q"); err != nil {
		return nil, err
	}
	return r, r.commit(ctx, "bench "+label)
}

// commit commits everything; the message carries the time so that two
// repositories with the same content still get different hashes.
func (r *benchRepo) commit(ctx context.Context, msg string) error {
	if err := git(ctx, r.dir, "add", "-A"); err != nil {
		return err
	}
	return git(ctx, r.dir, "commit", "-q", "-m", fmt.Sprintf("%s %d", msg, time.Now().UnixNano()))
}

// edit replaces old by new in file (once; old must occur) and commits.
func (r *benchRepo) edit(ctx context.Context, file, old, new string) error {
	if err := r.replace(file, old, new); err != nil {
		return err
	}
	return r.commit(ctx, "bench edit "+file)
}

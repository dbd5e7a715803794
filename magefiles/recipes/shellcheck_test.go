package recipes

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// shellScripts lists the shell scripts under dir (by .sh suffix or a shell
// shebang); a missing dir has none.
func shellScripts(t *testing.T, dir string) []string {
	t.Helper()
	var scripts []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) && path == dir {
				return filepath.SkipDir
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		if strings.HasSuffix(path, ".sh") {
			scripts = append(scripts, path)
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		first, _, _ := strings.Cut(string(data), "\n")
		if isShellShebang(first) {
			scripts = append(scripts, path)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("listing %s: %v", dir, err)
	}
	sort.Strings(scripts)
	return scripts
}

// TestShellcheck runs shellcheck on every helper script the recipes use
// (dockerfile_scripts/) and on scripts/ when it holds any.
func TestShellcheck(t *testing.T) {
	shellcheck, err := exec.LookPath("shellcheck")
	if err != nil {
		t.Fatal("shellcheck is not installed: apt-get install shellcheck")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	var scripts []string
	for _, dir := range []string{"dockerfile_scripts", "scripts"} {
		scripts = append(scripts, shellScripts(t, filepath.Join(root, dir))...)
	}
	if len(scripts) == 0 {
		t.Fatalf("no shell scripts found under %s/dockerfile_scripts", root)
	}
	for _, script := range scripts {
		rel, _ := filepath.Rel(root, script)
		t.Run(rel, func(t *testing.T) {
			// -x follows the `source lib.sh` lines (source-path=SCRIPTDIR).
			cmd := exec.Command(shellcheck, "--external-sources", "--severity=style", rel)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("shellcheck %s: %v\n%s", rel, err, out)
			}
		})
	}
}

// isShellShebang reports whether a first line is a sh/bash shebang, such as
// "#!/bin/sh" or "#!/usr/bin/env bash".
func isShellShebang(line string) bool {
	if !strings.HasPrefix(line, "#!") {
		return false
	}
	for _, f := range strings.Fields(strings.TrimPrefix(line, "#!")) {
		switch filepath.Base(f) {
		case "sh", "bash", "dash":
			return true
		}
	}
	return false
}

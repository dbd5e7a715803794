// Package stack runs a real, loopback-only image build stack for end-to-end
// tests: three plain-HTTP registries (Debian's docker-registry), a BuildKit
// daemon (buildkitd with the OCI worker on runc) and a buildx builder using
// the remote driver, with arm64 emulation through QEMU user mode and
// binfmt_misc.
//
// Provision installs and builds what the stack needs (it must run as root),
// Start starts it, SeedBaseImages pushes stand-in base images to the mirror
// that buildkitd uses for docker.io, and Stop stops everything again.
package stack

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// Options configures Provision and Start.
type Options struct {
	// CacheDir holds the binaries built from the tools module and the
	// extracted busybox-static packages. Default:
	// $XDG_CACHE_HOME (or ~/.cache) + /determined-environments/e2e.
	CacheDir string
	// WorkDir holds the stack's state: buildkitd root, registry storage,
	// docker config, logs. Typically a test's t.TempDir(). Required by Start.
	WorkDir string
	// Log receives progress lines; nil discards them.
	Log io.Writer
	// ToolsDir is the directory of the tools module (tools/go.mod) that pins
	// buildkit and buildx. Default: found from this source file's location,
	// then by walking up from the working directory.
	ToolsDir string
	// Engine adds a Docker Engine: Provision installs Debian's docker.io
	// (dockerd 20.10), Start runs a dockerd of the stack's own (DockerHost,
	// and DOCKER_HOST in Env). Off by default: most users do not need one.
	Engine bool
}

// Tools holds absolute paths of everything the stack runs.
type Tools struct {
	Buildkitd   string
	Buildx      string // the docker-buildx CLI plugin binary
	Registry    string // Debian's docker-registry (distribution v2)
	Runc        string
	QemuAarch64 string // /usr/bin/qemu-aarch64-static
	Docker      string // the docker CLI (client only)
	Dockerd     string // the Docker Engine daemon; "" unless provisioned with Options.Engine

	// Statically linked busybox binaries, one per platform, used to make
	// stand-in base images.
	BusyboxAmd64 string
	BusyboxArm64 string

	BuildkitVersion string
	BuildxVersion   string
}

const (
	buildkitModule = "github.com/moby/buildkit"
	buildxModule   = "github.com/docker/buildx"
	qemuAarch64    = "/usr/bin/qemu-aarch64-static"
	binfmtDir      = "/proc/sys/fs/binfmt_misc"
	binfmtConf     = "/usr/lib/binfmt.d/qemu-aarch64.conf"
)

// aptPackages are the Debian packages the stack needs on the host.
var aptPackages = []string{"runc", "qemu-user-static", "docker-registry"}

func logf(w io.Writer, format string, args ...any) {
	if w == nil {
		return
	}
	fmt.Fprintf(w, "stack: "+format+"\n", args...)
}

// DefaultCacheDir returns $XDG_CACHE_HOME (or ~/.cache) + /determined-environments/e2e.
func DefaultCacheDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("stack: no cache dir (set Options.CacheDir or $XDG_CACHE_HOME): %w", err)
	}
	return filepath.Join(base, "determined-environments", "e2e"), nil
}

// Provision installs what is missing and returns the paths of the tools:
// Debian packages (runc, qemu-user-static, docker-registry; busybox-static for
// amd64 and arm64 extracted into the cache), buildkitd and buildx built from
// the pinned tools module (cached by version), and the qemu-aarch64 binfmt_misc
// handler. It must run as root.
func Provision(ctx context.Context, o Options) (Tools, error) {
	var t Tools
	start := time.Now()
	if os.Geteuid() != 0 {
		return t, fmt.Errorf("stack: Provision must run as root (uid is %d): it installs Debian packages with apt-get, registers a binfmt_misc handler for arm64 and runs buildkitd with runc", os.Geteuid())
	}
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		return t, fmt.Errorf("stack: Provision supports linux/amd64 hosts only (this is %s/%s)", runtime.GOOS, runtime.GOARCH)
	}
	cacheDir := o.CacheDir
	if cacheDir == "" {
		d, err := DefaultCacheDir()
		if err != nil {
			return t, err
		}
		cacheDir = d
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return t, fmt.Errorf("stack: create cache dir: %w", err)
	}

	// Serialize provisioning across processes (go test runs packages in
	// parallel): apt-get, binfmt registration and builds must not race.
	unlock, err := lockFile(ctx, filepath.Join(cacheDir, ".provision.lock"))
	if err != nil {
		return t, err
	}
	defer unlock()

	docker, err := exec.LookPath("docker")
	if err != nil {
		return t, fmt.Errorf("stack: the docker CLI is required (buildx runs as its plugin; no engine is needed): %w", err)
	}
	t.Docker = docker

	apt := &aptState{log: o.Log}
	// Add the arm64 dpkg architecture before any apt-get update, so that a
	// single update fetches every package list that is needed.
	if _, err := os.Stat(busyboxPath(cacheDir, "arm64")); err != nil {
		if err := apt.addArchitecture(ctx, "arm64"); err != nil {
			return t, err
		}
	}
	if err := apt.install(ctx, aptPackages); err != nil {
		return t, err
	}
	for _, p := range []struct {
		dst  *string
		name string
	}{{&t.Runc, "runc"}, {&t.Registry, "docker-registry"}, {&t.QemuAarch64, "qemu-aarch64-static"}} {
		path, err := lookPath(p.name)
		if err != nil {
			return t, fmt.Errorf("stack: %s not found after installing %v: %w", p.name, aptPackages, err)
		}
		*p.dst = path
	}

	if o.Engine {
		if t.Dockerd, err = provisionEngine(ctx, apt); err != nil {
			return t, err
		}
	}

	t.BusyboxAmd64, err = apt.extractBusybox(ctx, cacheDir, "amd64")
	if err != nil {
		return t, err
	}
	t.BusyboxArm64, err = apt.extractBusybox(ctx, cacheDir, "arm64")
	if err != nil {
		return t, err
	}

	if err := registerBinfmt(ctx, o.Log, t.QemuAarch64); err != nil {
		return t, err
	}
	// Check emulation end to end: the arm64 busybox must run and say aarch64.
	out, err := exec.CommandContext(ctx, t.BusyboxArm64, "uname", "-m").Output()
	if err != nil || strings.TrimSpace(string(out)) != "aarch64" {
		return t, fmt.Errorf("stack: arm64 emulation does not work: running %s uname -m gave %q: %v", t.BusyboxArm64, out, err)
	}

	toolsDir, err := findToolsDir(o.ToolsDir)
	if err != nil {
		return t, err
	}
	if t.BuildkitVersion, err = requiredVersion(toolsDir, buildkitModule); err != nil {
		return t, err
	}
	if t.BuildxVersion, err = requiredVersion(toolsDir, buildxModule); err != nil {
		return t, err
	}
	t.Buildkitd, err = buildTool(ctx, o.Log, toolsDir, cacheDir, "buildkitd", t.BuildkitVersion,
		buildkitModule+"/cmd/buildkitd", buildkitModule+"/version")
	if err != nil {
		return t, err
	}
	t.Buildx, err = buildTool(ctx, o.Log, toolsDir, cacheDir, "docker-buildx", t.BuildxVersion,
		buildxModule+"/cmd/buildx", buildxModule+"/version")
	if err != nil {
		return t, err
	}
	logf(o.Log, "provisioned in %s (buildkit %s, buildx %s, cache %s)",
		time.Since(start).Round(time.Millisecond), t.BuildkitVersion, t.BuildxVersion, cacheDir)
	return t, nil
}

// lookPath finds a binary in PATH or in the sbin directories that a non-login
// root shell may not have in PATH.
func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return filepath.Abs(p)
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: %w", name, exec.ErrNotFound)
}

// aptState runs apt-get update at most once per Provision.
type aptState struct {
	log        io.Writer
	updated    bool
	needUpdate bool // a dpkg architecture was added since the last update
}

func (a *aptState) run(ctx context.Context, dir string, args ...string) error {
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("stack: %s: %w\n%s", strings.Join(args, " "), err, tail(out.String(), 2000))
	}
	return nil
}

func (a *aptState) update(ctx context.Context) error {
	if a.updated && !a.needUpdate {
		return nil
	}
	logf(a.log, "apt-get update")
	if err := a.run(ctx, "", "apt-get", "-o", "DPkg::Lock::Timeout=300", "update"); err != nil {
		return err
	}
	a.updated, a.needUpdate = true, false
	return nil
}

func installed(ctx context.Context, pkg string) bool {
	out, err := exec.CommandContext(ctx, "dpkg-query", "-W", "-f=${Status}", pkg).Output()
	return err == nil && strings.TrimSpace(string(out)) == "install ok installed"
}

// missingPackages returns the packages of pkgs that are not installed.
func missingPackages(ctx context.Context, pkgs []string) []string {
	var missing []string
	for _, p := range pkgs {
		if !installed(ctx, p) {
			missing = append(missing, p)
		}
	}
	return missing
}

func (a *aptState) install(ctx context.Context, pkgs []string) error {
	missing := missingPackages(ctx, pkgs)
	if len(missing) == 0 {
		return nil
	}
	if err := a.update(ctx); err != nil {
		return err
	}
	logf(a.log, "apt-get install %s", strings.Join(missing, " "))
	args := append([]string{"apt-get", "-o", "DPkg::Lock::Timeout=300", "install", "-y", "--no-install-recommends"}, missing...)
	return a.run(ctx, "", args...)
}

// extractBusybox downloads Debian's busybox-static for arch and extracts it
// into the cache; it returns the path of the static busybox binary.
func (a *aptState) extractBusybox(ctx context.Context, cacheDir, arch string) (string, error) {
	return a.extractPackage(ctx, cacheDir, "busybox-static", arch, "bin/busybox")
}

// StaticBinary returns the path of the file rel (say bin/bash-static) of
// Debian's package pkg for arch (amd64, arm64), downloading and extracting
// the package into the stack's cache once. The host's installed packages do
// not change. It takes the provisioning lock, so it may run beside Provision.
func StaticBinary(ctx context.Context, log io.Writer, pkg, arch, rel string) (string, error) {
	cacheDir, err := DefaultCacheDir()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", fmt.Errorf("stack: create cache dir: %w", err)
	}
	unlock, err := lockFile(ctx, filepath.Join(cacheDir, ".provision.lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	return (&aptState{log: log}).extractPackage(ctx, cacheDir, pkg, arch, rel)
}

// extractPackage downloads Debian's pkg for arch (adding the dpkg
// architecture if needed) and extracts it into cacheDir/<pkg>-<arch>; it
// returns the path of the package's file rel there. The host's installed
// packages do not change.
func (a *aptState) extractPackage(ctx context.Context, cacheDir, pkg, arch, rel string) (string, error) {
	dir := filepath.Join(cacheDir, pkg+"-"+arch)
	bin := filepath.Join(dir, filepath.FromSlash(rel))
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := a.addArchitecture(ctx, arch); err != nil {
		return "", err
	}
	dl, err := os.MkdirTemp(cacheDir, "download-")
	if err != nil {
		return "", fmt.Errorf("stack: %w", err)
	}
	defer os.RemoveAll(dl)
	_ = os.Chmod(dl, 0o777) // apt downloads as the _apt user when it can
	download := func() error {
		logf(a.log, "apt-get download %s:%s", pkg, arch)
		return a.run(ctx, dl, "apt-get", "download", pkg+":"+arch)
	}
	if a.needUpdate {
		if err := a.update(ctx); err != nil {
			return "", err
		}
	}
	if err := download(); err != nil {
		if a.updated {
			return "", err
		}
		if err := a.update(ctx); err != nil {
			return "", err
		}
		if err := download(); err != nil {
			return "", err
		}
	}
	debs, _ := filepath.Glob(filepath.Join(dl, pkg+"_*_"+arch+".deb"))
	if len(debs) != 1 {
		return "", fmt.Errorf("stack: apt-get download %s:%s left %d .deb files in %s", pkg, arch, len(debs), dl)
	}
	tmp := filepath.Join(dl, "x")
	if err := a.run(ctx, "", "dpkg-deb", "-x", debs[0], tmp); err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(tmp, filepath.FromSlash(rel))); err != nil {
		return "", fmt.Errorf("stack: %s:%s has no %s: %w", pkg, arch, rel, err)
	}
	_ = os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		return "", fmt.Errorf("stack: %w", err)
	}
	return bin, nil
}

func busyboxPath(cacheDir, arch string) string {
	return filepath.Join(cacheDir, "busybox-static-"+arch, "bin", "busybox")
}

// addArchitecture adds a foreign dpkg architecture unless it is the native
// one or already added; a later apt-get update then fetches its lists.
func (a *aptState) addArchitecture(ctx context.Context, arch string) error {
	out, err := exec.CommandContext(ctx, "dpkg", "--print-architecture").Output()
	if err != nil {
		return fmt.Errorf("stack: dpkg --print-architecture: %w", err)
	}
	if strings.TrimSpace(string(out)) == arch {
		return nil
	}
	out, err = exec.CommandContext(ctx, "dpkg", "--print-foreign-architectures").Output()
	if err != nil {
		return fmt.Errorf("stack: dpkg --print-foreign-architectures: %w", err)
	}
	if containsField(string(out), arch) {
		return nil
	}
	logf(a.log, "dpkg --add-architecture %s", arch)
	if err := a.run(ctx, "", "dpkg", "--add-architecture", arch); err != nil {
		return err
	}
	a.needUpdate = true // the new architecture's package lists are needed
	return nil
}

func containsField(s, f string) bool {
	for _, x := range strings.Fields(s) {
		if x == f {
			return true
		}
	}
	return false
}

// registerBinfmt makes sure binfmt_misc is mounted and qemu-aarch64 is
// registered with the F flag (interpreter opened at registration, so it works
// inside containers and chroots) pointing at qemu.
func registerBinfmt(ctx context.Context, log io.Writer, qemu string) error {
	if _, err := os.Stat(filepath.Join(binfmtDir, "register")); err != nil {
		logf(log, "mount binfmt_misc on %s", binfmtDir)
		if err := syscall.Mount("binfmt_misc", binfmtDir, "binfmt_misc", 0, ""); err != nil {
			return fmt.Errorf("stack: arm64 emulation needs binfmt_misc, which is not mounted at %s, and mounting it failed (the kernel lacks binfmt_misc or this container may not mount it): %w", binfmtDir, err)
		}
	}
	if st, err := os.ReadFile(filepath.Join(binfmtDir, "status")); err == nil && strings.TrimSpace(string(st)) != "enabled" {
		if err := os.WriteFile(filepath.Join(binfmtDir, "status"), []byte("1"), 0); err != nil {
			return fmt.Errorf("stack: binfmt_misc is disabled and enabling it failed: %w", err)
		}
	}
	entry := filepath.Join(binfmtDir, "qemu-aarch64")
	if cur, err := os.ReadFile(entry); err == nil {
		if binfmtOK(string(cur), qemu) {
			return nil
		}
		logf(log, "replace binfmt_misc entry qemu-aarch64 (was: %s)", strings.Join(strings.Fields(string(cur)), " "))
		if err := os.WriteFile(entry, []byte("-1"), 0); err != nil {
			return fmt.Errorf("stack: remove old binfmt_misc entry %s: %w", entry, err)
		}
	}
	conf, err := os.ReadFile(binfmtConf)
	if err != nil {
		return fmt.Errorf("stack: read %s (from qemu-user-static) for the arm64 magic: %w", binfmtConf, err)
	}
	line, err := binfmtLine(string(conf), qemu)
	if err != nil {
		return err
	}
	logf(log, "register binfmt_misc qemu-aarch64 -> %s (flags F)", qemu)
	if err := os.WriteFile(filepath.Join(binfmtDir, "register"), []byte(line), 0); err != nil {
		return fmt.Errorf("stack: register qemu-aarch64 with binfmt_misc (%s): %w", line, err)
	}
	cur, err := os.ReadFile(entry)
	if err != nil || !binfmtOK(string(cur), qemu) {
		return fmt.Errorf("stack: binfmt_misc entry qemu-aarch64 is not as registered: %q %v", cur, err)
	}
	return nil
}

// binfmtOK reports whether a /proc/sys/fs/binfmt_misc/qemu-aarch64 content
// is enabled, uses qemu and has the F flag.
func binfmtOK(cur, qemu string) bool {
	var enabled, interp, fix bool
	sc := bufio.NewScanner(strings.NewReader(cur))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "enabled":
			enabled = true
		case l == "interpreter "+qemu:
			interp = true
		case strings.HasPrefix(l, "flags: "):
			fix = strings.Contains(strings.TrimPrefix(l, "flags: "), "F")
		}
	}
	return enabled && interp && fix
}

// binfmtLine turns the systemd binfmt.d line of qemu-user-static into a
// registration line with interpreter qemu and flags F.
func binfmtLine(conf, qemu string) (string, error) {
	sc := bufio.NewScanner(strings.NewReader(conf))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || l[0] == '#' || l[0] == ';' {
			continue
		}
		// :name:type:offset:magic:mask:interpreter:flags
		f := strings.Split(l, ":")
		if len(f) != 8 || f[0] != "" || f[1] != "qemu-aarch64" || f[2] != "M" {
			return "", fmt.Errorf("stack: unexpected binfmt line in %s: %q", binfmtConf, l)
		}
		f[6], f[7] = qemu, "F"
		return strings.Join(f, ":"), nil
	}
	return "", fmt.Errorf("stack: no binfmt line in %s", binfmtConf)
}

// findToolsDir returns the tools module directory.
func findToolsDir(explicit string) (string, error) {
	ok := func(d string) bool {
		b, err := os.ReadFile(filepath.Join(d, "go.mod"))
		return err == nil && bytes.Contains(b, []byte("module github.com/determined-ai/environments/tools"))
	}
	if explicit != "" {
		if !ok(explicit) {
			return "", fmt.Errorf("stack: %s is not the tools module (no tools go.mod)", explicit)
		}
		return filepath.Abs(explicit)
	}
	if _, file, _, found := runtime.Caller(0); found && filepath.IsAbs(file) {
		d := filepath.Join(filepath.Dir(file), "..", "..", "..", "tools")
		if ok(d) {
			return filepath.Clean(d), nil
		}
	}
	wd, err := os.Getwd()
	if err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			if ok(filepath.Join(d, "tools")) {
				return filepath.Join(d, "tools"), nil
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return "", errors.New("stack: cannot find the tools module (tools/go.mod); set Options.ToolsDir")
}

// requiredVersion reads the version of module required in dir/go.mod.
func requiredVersion(dir, module string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return "", fmt.Errorf("stack: %w", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(l), "require "))
		if len(f) >= 2 && f[0] == module {
			return f[1], nil
		}
	}
	return "", fmt.Errorf("stack: %s/go.mod does not require %s", dir, module)
}

// goBinary returns the go command: the one in PATH, else the toolchain
// that built this program.
func goBinary() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("stack: the go command is needed to build buildkitd and buildx: %w", exec.ErrNotFound)
	}
	return p, nil
}

// buildTool builds pkg from the tools module into
// cacheDir/<name>-<version>/<name> unless it is there already.
func buildTool(ctx context.Context, log io.Writer, toolsDir, cacheDir, name, version, pkg, versionPkg string) (string, error) {
	dir := filepath.Join(cacheDir, name+"-"+version)
	bin := filepath.Join(dir, name)
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() {
		return bin, nil
	}
	goCmd, err := goBinary()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("stack: %w", err)
	}
	tmp := fmt.Sprintf("%s.tmp-%d", bin, os.Getpid())
	logf(log, "go build %s@%s (cold builds take minutes)", pkg, version)
	start := time.Now()
	cmd := exec.CommandContext(ctx, goCmd, "build", "-trimpath",
		"-ldflags", "-s -w -X "+versionPkg+".Version="+version,
		"-o", tmp, pkg)
	cmd.Dir = toolsDir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly -buildvcs=false")
	out, err := cmd.CombinedOutput()
	if err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("stack: build %s@%s in %s: %w\n%s", pkg, version, toolsDir, err, tail(string(out), 4000))
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", fmt.Errorf("stack: %w", err)
	}
	logf(log, "built %s in %s", bin, time.Since(start).Round(time.Second))
	return bin, nil
}

// lockFile takes an exclusive flock on path, polling until ctx ends.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("stack: lock %s: %w", path, err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("stack: lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("stack: waiting for %s (another process is provisioning): %w", path, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// tail returns at most the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

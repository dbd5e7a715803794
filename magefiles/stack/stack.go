package stack

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Stack is a running set of registries, buildkitd and a buildx builder.
type Stack struct {
	Hub, NGC, Mirror string // "127.0.0.1:PORT" of the Docker Hub stand-in, the NGC stand-in and the base-image mirror
	DockerConfig     string // DOCKER_CONFIG dir with cli-plugins/docker-buildx and the builder's state
	Builder          string // buildx builder name (remote driver to BuildkitdAddr)
	BuildkitdAddr    string // unix:///.../buildkitd.sock
	// DockerHost is the DOCKER_HOST of the stack's Docker Engine
	// (unix:///.../docker.sock); "" unless Options.Engine.
	DockerHost string
	// EngineBridge is the network bridge the engine attaches containers
	// to; "" when it has none (its docker driver cannot run RUN steps then).
	EngineBridge string

	tools    Tools
	workDir  string
	log      io.Writer
	procs    []*proc  // in start order; stopped in reverse
	builder  bool     // the buildx builder was created
	builders []string // further builders (multi-node), removed by Stop
	tempDirs []string // outside workDir (short socket paths), removed by Stop
	mounts   []string // directories whose leftover mounts Stop unmounts
	links    []string // network links (the engine's bridge), deleted by Stop
	stopOnce sync.Once
	stopErr  error
}

// StopTimeout is how long Stop waits after SIGTERM before SIGKILL.
var StopTimeout = 10 * time.Second

// Start starts three registries and buildkitd, then creates and bootstraps the
// buildx builder. On error, whatever was started is stopped again.
func Start(ctx context.Context, t Tools, o Options) (_ *Stack, err error) {
	if o.WorkDir == "" {
		return nil, errors.New("stack: Options.WorkDir is required")
	}
	work, err := filepath.Abs(o.WorkDir)
	if err != nil {
		return nil, fmt.Errorf("stack: %w", err)
	}
	s := &Stack{tools: t, workDir: work, log: o.Log}
	defer func() {
		if err != nil {
			if serr := s.Stop(); serr != nil {
				logf(s.log, "stop after failed start: %v", serr)
			}
		}
	}()
	start := time.Now()
	for _, r := range []struct {
		name string
		addr *string
	}{{"hub", &s.Hub}, {"ngc", &s.NGC}, {"mirror", &s.Mirror}} {
		if *r.addr, err = s.startRegistry(ctx, r.name); err != nil {
			return nil, err
		}
	}
	if err := s.startBuildkitd(ctx); err != nil {
		return nil, err
	}
	if err := s.createBuilder(ctx); err != nil {
		return nil, err
	}
	if o.Engine {
		if err := s.startEngine(ctx); err != nil {
			return nil, err
		}
	}
	logf(s.log, "stack up in %s: hub=%s ngc=%s mirror=%s builder=%s engine=%q",
		time.Since(start).Round(time.Millisecond), s.Hub, s.NGC, s.Mirror, s.Builder, s.DockerHost)
	return s, nil
}

// Env returns the variables a child process needs to use this stack
// (DOCKER_CONFIG and BUILDX_BUILDER, and DOCKER_HOST with Options.Engine);
// append them to os.Environ().
func (s *Stack) Env() []string {
	env := []string{"DOCKER_CONFIG=" + s.DockerConfig, "BUILDX_BUILDER=" + s.Builder}
	if s.DockerHost != "" {
		env = append(env, "DOCKER_HOST="+s.DockerHost)
	}
	return env
}

// Docker runs the docker CLI with the stack's environment in dir and returns
// its combined output.
func (s *Stack) Docker(ctx context.Context, dir string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, s.tools.Docker, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), s.Env()...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("stack: docker %s: %w\n%s", strings.Join(args, " "), err, tail(string(out), 4000))
	}
	return out, nil
}

// Tools returns the tools the stack was started with.
func (s *Stack) Tools() Tools { return s.tools }

// Stop removes the builder and stops buildkitd and the registries (SIGTERM
// to each process group, SIGKILL after StopTimeout). It is idempotent and
// returns the first error.
func (s *Stack) Stop() error {
	s.stopOnce.Do(func() {
		var errs []error
		names := s.builders
		if s.builder {
			names = append(names, s.Builder)
		}
		for _, b := range names {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if _, err := s.Docker(ctx, "", "buildx", "rm", "--force", b); err != nil {
				errs = append(errs, err)
			}
			cancel()
		}
		for i := len(s.procs) - 1; i >= 0; i-- {
			if err := s.procs[i].stop(StopTimeout); err != nil {
				errs = append(errs, err)
			}
		}
		for _, d := range s.mounts {
			if err := unmountUnder(d); err != nil {
				errs = append(errs, err)
			}
		}
		for _, d := range s.tempDirs {
			_ = os.RemoveAll(d)
		}
		for _, l := range s.links {
			if err := deleteLink(l); err != nil {
				errs = append(errs, err)
			}
		}
		if len(errs) > 0 {
			s.stopErr = errs[0]
		}
	})
	return s.stopErr
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

const registryConfig = `version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  secret: e2e-stack-not-secret
health:
  storagedriver:
    enabled: false
%s`

// TokenAuth is the token authentication of a registry, as Docker Hub and
// NGC do it: an anonymous request is answered 401 with a Bearer challenge
// naming Realm and Service, and a JWT from the realm signed by the key of
// the certificate in RootCertBundle (a PEM file) with issuer Issuer grants
// the repository actions it lists.
type TokenAuth struct {
	Realm, Service, Issuer, RootCertBundle string
}

// StartTokenRegistry starts one more registry (Debian's docker-registry) on
// loopback that wants token authentication, and returns its host:port. It
// is stopped with the stack.
func (s *Stack) StartTokenRegistry(ctx context.Context, name string, a TokenAuth) (string, error) {
	return s.startRegistryWith(ctx, name, fmt.Sprintf("auth:\n  token:\n    realm: %s\n    service: %s\n    issuer: %s\n    rootcertbundle: %s\n",
		a.Realm, a.Service, a.Issuer, a.RootCertBundle))
}

func (s *Stack) startRegistry(ctx context.Context, name string) (string, error) {
	return s.startRegistryWith(ctx, name, "")
}

// startRegistryWith starts a registry with extra top-level config.
func (s *Stack) startRegistryWith(ctx context.Context, name, extra string) (string, error) {
	dir := filepath.Join(s.workDir, "registry-"+name)
	if err := os.MkdirAll(filepath.Join(dir, "storage"), 0o755); err != nil {
		return "", fmt.Errorf("stack: %w", err)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // the free port may be taken in between
		port, err := freePort()
		if err != nil {
			return "", fmt.Errorf("stack: free port for registry %s: %w", name, err)
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		conf := filepath.Join(dir, "config.yml")
		if err := os.WriteFile(conf, fmt.Appendf(nil, registryConfig, filepath.Join(dir, "storage"), addr, extra), 0o644); err != nil {
			return "", fmt.Errorf("stack: %w", err)
		}
		p, err := startProc(ctx, "registry "+name, filepath.Join(dir, "registry.log"), nil, s.tools.Registry, "serve", conf)
		if err != nil {
			return "", err
		}
		err = waitFor(ctx, p, 30*time.Second, func() error {
			resp, err := http.Get("http://" + addr + "/v2/")
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK && (extra == "" || resp.StatusCode != http.StatusUnauthorized) {
				return fmt.Errorf("GET /v2/: %s", resp.Status)
			}
			return nil
		})
		if err == nil {
			s.procs = append(s.procs, p)
			logf(s.log, "registry %s on %s", name, addr)
			return addr, nil
		}
		lastErr = err
		_ = p.stop(StopTimeout)
	}
	return "", lastErr
}

// BuildkitdConfig returns the buildkitd.toml the stack uses: docker.io is
// mirrored to the Mirror registry and all three registries are plain HTTP.
func (s *Stack) BuildkitdConfig() string {
	var b strings.Builder
	fmt.Fprintf(&b, "debug = false\n\n[worker.oci]\n  enabled = true\n  gc = false\n\n[worker.containerd]\n  enabled = false\n\n")
	fmt.Fprintf(&b, "[registry.\"docker.io\"]\n  mirrors = [%q]\n\n", s.Mirror)
	for _, r := range []string{s.Hub, s.NGC, s.Mirror} {
		fmt.Fprintf(&b, "[registry.%q]\n  http = true\n  insecure = true\n\n", r)
	}
	return b.String()
}

func (s *Stack) startBuildkitd(ctx context.Context) error {
	addr, err := s.startBuildkitdNamed(ctx, "buildkitd")
	s.BuildkitdAddr = addr
	return err
}

// startBuildkitdNamed starts a buildkitd with its state in workDir/name and
// returns its address; extra are more buildkitd flags.
func (s *Stack) startBuildkitdNamed(ctx context.Context, name string, extra ...string) (string, error) {
	dir := filepath.Join(s.workDir, name)
	if err := os.MkdirAll(filepath.Join(dir, "root"), 0o700); err != nil {
		return "", fmt.Errorf("stack: %w", err)
	}
	sock := filepath.Join(dir, "buildkitd.sock")
	if len(sock) > 100 { // unix socket paths are limited to 108 bytes
		d, err := os.MkdirTemp("", "bk-")
		if err != nil {
			return "", fmt.Errorf("stack: %w", err)
		}
		s.tempDirs = append(s.tempDirs, d)
		sock = filepath.Join(d, "buildkitd.sock")
	}
	addr := "unix://" + sock
	conf := filepath.Join(dir, "buildkitd.toml")
	if err := os.WriteFile(conf, []byte(s.BuildkitdConfig()), 0o644); err != nil {
		return "", fmt.Errorf("stack: %w", err)
	}
	// buildkitd looks up runc in PATH.
	env := []string{"PATH=" + filepath.Dir(s.tools.Runc) + string(os.PathListSeparator) + os.Getenv("PATH")}
	args := append([]string{"--root", filepath.Join(dir, "root"), "--addr", addr, "--config", conf}, extra...)
	p, err := startProc(ctx, name, filepath.Join(dir, "buildkitd.log"), env, s.tools.Buildkitd, args...)
	if err != nil {
		return "", err
	}
	s.procs = append(s.procs, p)
	s.mounts = append(s.mounts, filepath.Join(dir, "root"))
	err = waitFor(ctx, p, 60*time.Second, func() error {
		c, err := net.Dial("unix", sock)
		if err != nil {
			return err
		}
		return c.Close()
	})
	if err != nil {
		return "", err
	}
	logf(s.log, "%s on %s", name, addr)
	return addr, nil
}

func (s *Stack) createBuilder(ctx context.Context) error {
	s.DockerConfig = filepath.Join(s.workDir, "docker-config")
	plugins := filepath.Join(s.DockerConfig, "cli-plugins")
	if err := os.MkdirAll(plugins, 0o755); err != nil {
		return fmt.Errorf("stack: %w", err)
	}
	if err := os.WriteFile(filepath.Join(s.DockerConfig, "config.json"), []byte("{\"auths\": {}}\n"), 0o600); err != nil {
		return fmt.Errorf("stack: %w", err)
	}
	plugin := filepath.Join(plugins, "docker-buildx")
	_ = os.Remove(plugin)
	if err := os.Symlink(s.tools.Buildx, plugin); err != nil {
		return fmt.Errorf("stack: install buildx plugin: %w", err)
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	s.Builder = "e2e-" + hex.EncodeToString(rnd[:])
	if _, err := s.Docker(ctx, "", "buildx", "create", "--name", s.Builder, "--driver", "remote", s.BuildkitdAddr); err != nil {
		return err
	}
	s.builder = true
	out, err := s.Docker(ctx, "", "buildx", "inspect", "--bootstrap", s.Builder)
	if err != nil {
		return err
	}
	if !bytes.Contains(out, []byte("linux/arm64")) {
		return fmt.Errorf("stack: builder %s does not list linux/arm64 (is qemu-aarch64 registered with binfmt_misc?):\n%s", s.Builder, out)
	}
	return nil
}

// proc is a long-running child process in its own process group.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	logFile *os.File
	done    chan struct{}
	waitErr error
	stopped bool
}

func startProc(ctx context.Context, name, logPath string, env []string, bin string, args ...string) (*proc, error) {
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("stack: %s log: %w", name, err)
	}
	// The daemon outlives ctx (which only bounds Start); Stop ends it.
	cmd := exec.CommandContext(context.WithoutCancel(ctx), bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("stack: start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, logFile: lf, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has exited.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) logTail() string {
	b, _ := os.ReadFile(p.logPath)
	return tail(string(b), 3000)
}

// stop sends SIGTERM to the process group, then SIGKILL after timeout.
func (p *proc) stop(timeout time.Duration) error {
	if p.stopped {
		return nil
	}
	p.stopped = true
	defer p.logFile.Close()
	pgid := p.cmd.Process.Pid
	if p.exited() {
		_ = syscall.Kill(-pgid, syscall.SIGKILL) // leftovers in the group
		return nil
	}
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		return nil
	case <-time.After(timeout):
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		return fmt.Errorf("stack: %s (pid %d) did not exit after SIGKILL", p.name, pgid)
	}
	return fmt.Errorf("stack: %s (pid %d) ignored SIGTERM for %s and was killed", p.name, pgid, timeout)
}

// waitFor polls ready until it succeeds, the process exits, ctx ends or
// timeout passes.
func waitFor(ctx context.Context, p *proc, timeout time.Duration, ready func() error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		if last = ready(); last == nil {
			return nil
		}
		if p.exited() {
			return fmt.Errorf("stack: %s exited before it was ready (%v); log %s:\n%s", p.name, p.waitErr, p.logPath, p.logTail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("stack: %s not ready after %s: %w; log %s:\n%s", p.name, timeout, last, p.logPath, p.logTail())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stack: waiting for %s: %w", p.name, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

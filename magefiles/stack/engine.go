package stack

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// enginePackages are the Debian packages of the Docker Engine (dockerd 20.10
// with containerd and runc); the docker CLI stays the preinstalled one.
var enginePackages = []string{"docker.io"}

// policyRCD is Debian's hook that tells package scripts whether they may
// start services; exit status 101 means no.
const policyRCD = "/usr/sbin/policy-rc.d"

// provisionEngine returns the dockerd to run. A dockerd already installed
// (Debian's docker.io, or Docker's own docker-ce, which docker.io would
// replace) is used as it is; otherwise docker.io is installed, with package
// scripts told not to start the system's Docker service (policy-rc.d, only
// for the install, when the host has none): the stack runs a dockerd of its
// own and nothing else may start.
func provisionEngine(ctx context.Context, apt *aptState) (string, error) {
	// engineBridge makes the engine's bridge with iproute2's ip.
	if err := apt.install(ctx, []string{"iproute2"}); err != nil {
		return "", err
	}
	if p, err := lookPath("dockerd"); err == nil {
		return p, nil
	}
	if _, err := os.Stat(policyRCD); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(policyRCD, []byte("#!/bin/sh\n# written by the e2e stack while it installs docker.io\nexit 101\n"), 0o755); err != nil {
			return "", fmt.Errorf("stack: %w", err)
		}
		defer os.Remove(policyRCD)
	}
	if err := apt.install(ctx, enginePackages); err != nil {
		return "", err
	}
	p, err := lookPath("dockerd")
	if err != nil {
		return "", fmt.Errorf("stack: dockerd not found after installing %v: %w", enginePackages, err)
	}
	return p, nil
}

// engineBridge creates a network bridge of the engine's own (de<pid>-XXXX,
// on a random 10.x.y.1/24), up, with nothing routed or masqueraded through
// it. The containers of the engine's built-in builder (the docker driver)
// and of `docker run` need a bridge to attach to; one per engine keeps
// docker0 and other stacks' engines out of it. The name carries the pid of
// the process that made it, so a later stack deletes the bridges of
// processes that died without stopping theirs (removeStaleBridges).
func engineBridge(ctx context.Context) (string, error) {
	removeStaleBridges(ctx)
	var b [2]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("stack: %w", err)
	}
	name := bridgeName(os.Getpid(), b)
	cidr, err := freeSubnet(ctx)
	if err != nil {
		return "", err
	}
	for _, args := range [][]string{
		{"link", "add", "name", name, "type", "bridge"},
		{"addr", "add", cidr, "dev", name},
		{"link", "set", name, "up"},
	} {
		if _, err := ip(ctx, args...); err != nil {
			_ = deleteLink(name)
			return "", err
		}
	}
	return name, nil
}

// bridgeName is de<pid in hex>-<4 hex digits>: at most 14 characters (a
// link name has at most 15).
func bridgeName(pid int, rnd [2]byte) string { return fmt.Sprintf("de%x-%x", pid, rnd) }

var bridgeNameRE = regexp.MustCompile(`^de([0-9a-f]{1,8})-[0-9a-f]{4}$`)

// bridgeOwner returns the pid in a bridge name of bridgeName's form.
func bridgeOwner(link string) (int, bool) {
	m := bridgeNameRE.FindStringSubmatch(link)
	if m == nil {
		return 0, false
	}
	pid, err := strconv.ParseInt(m[1], 16, 64)
	return int(pid), err == nil
}

// removeStaleBridges deletes the bridges engineBridge made for processes
// that are gone (best effort: a bridge whose pid is alive again is kept).
func removeStaleBridges(ctx context.Context) {
	out, err := ip(ctx, "-o", "link", "show", "type", "bridge")
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		// "7: de1a2b-c3d4: <BROADCAST,...> ..."
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		link, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		if pid, ok := bridgeOwner(link); ok {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); errors.Is(err, os.ErrNotExist) {
				_ = deleteLink(link)
			}
		}
	}
}

// freeSubnet picks a random 10.x.y.1/24 that overlaps no route of the host
// (`ip -4 route show table all`), so the bridge takes no traffic meant for
// the host's own networks.
func freeSubnet(ctx context.Context) (string, error) {
	out, err := ip(ctx, "-4", "route", "show", "table", "all")
	if err != nil {
		return "", err
	}
	used := routePrefixes(string(out))
	for range 64 {
		var b [2]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("stack: %w", err)
		}
		cand := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 200 + b[0]%50, b[1], 0}), 24)
		if !slices.ContainsFunc(used, cand.Overlaps) {
			return netip.PrefixFrom(cand.Addr().Next(), 24).String(), nil
		}
	}
	return "", errors.New("stack: no free 10.x.y.0/24 for the engine's bridge: the host's routes cover them")
}

// routePrefixes returns the destination prefixes of `ip -4 route` lines
// (default is 0.0.0.0/0 and overlaps everything, so it is left out: a
// default route is what a more specific bridge route is meant to win over).
func routePrefixes(routes string) []netip.Prefix {
	var out []netip.Prefix
	for _, line := range strings.Split(routes, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		dst := f[0]
		if dst == "broadcast" || dst == "local" || dst == "unicast" || dst == "multicast" {
			if len(f) < 2 {
				continue
			}
			dst = f[1]
		}
		if dst == "default" {
			continue
		}
		if !strings.Contains(dst, "/") {
			dst += "/32"
		}
		if p, err := netip.ParsePrefix(dst); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}

// deleteLink deletes a network link engineBridge created.
func deleteLink(name string) error {
	_, err := ip(context.Background(), "link", "del", name)
	return err
}

// ip runs iproute2's ip with args and returns its standard output; an error
// names the command and carries what ip printed.
func ip(ctx context.Context, args ...string) ([]byte, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "ip", args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("stack: ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// startEngine starts a Docker Engine (Debian's dockerd) as root with its own
// data root, exec root, pid file and socket, a bridge of its own
// (engineBridge; none when it cannot be made), no iptables and no IP
// forwarding (nothing here needs container networking), its own empty
// daemon.json, docker.io mirrored to the Mirror registry and the three
// loopback registries as insecure. DockerHost then addresses it.
func (s *Stack) startEngine(ctx context.Context) error {
	if s.tools.Dockerd == "" {
		return errors.New("stack: Options.Engine needs dockerd: pass Options{Engine: true} to Provision too")
	}
	dir := filepath.Join(s.workDir, "engine")
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o711); err != nil {
		return fmt.Errorf("stack: %w", err)
	}
	conf := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(conf, []byte("{}\n"), 0o644); err != nil {
		return fmt.Errorf("stack: %w", err)
	}
	// The exec root holds containerd's socket: keep its path short.
	execRoot, err := os.MkdirTemp("", "de-")
	if err != nil {
		return fmt.Errorf("stack: %w", err)
	}
	s.tempDirs = append(s.tempDirs, execRoot)
	sock := filepath.Join(execRoot, "docker.sock")
	args := []string{
		"--config-file", conf, "--data-root", data, "--exec-root", execRoot,
		"--pidfile", filepath.Join(execRoot, "docker.pid"), "-H", "unix://" + sock,
		"--iptables=false", "--ip-forward=false", "--ip-masq=false",
		"--registry-mirror", "http://" + s.Mirror,
	}
	if br, err := engineBridge(ctx); err != nil {
		logf(s.log, "dockerd without a bridge (the docker driver's RUN steps and `docker run` need one): %v", err)
		args = append(args, "--bridge=none")
	} else {
		s.links = append(s.links, br)
		s.EngineBridge = br
		args = append(args, "--bridge", br)
	}
	for _, r := range []string{s.Hub, s.NGC, s.Mirror} {
		args = append(args, "--insecure-registry", r)
	}
	p, err := startProc(ctx, "dockerd", filepath.Join(dir, "dockerd.log"), nil, s.tools.Dockerd, args...)
	if err != nil {
		return err
	}
	s.procs = append(s.procs, p)
	s.mounts = append(s.mounts, data, execRoot)
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	err = waitFor(ctx, p, 60*time.Second, func() error {
		resp, err := client.Get("http://docker/_ping")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET /_ping: %s", resp.Status)
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.DockerHost = "unix://" + sock
	logf(s.log, "dockerd on %s (data root %s)", s.DockerHost, data)
	return nil
}

// unmountUnder unmounts whatever is still mounted below dir (deepest first),
// so that a daemon that died without cleaning up leaves no mount behind.
func unmountUnder(dir string) error {
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		return nil
	}
	defer f.Close()
	var under []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		mp := strings.ReplaceAll(fields[1], `\040`, " ")
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			under = append(under, mp)
		}
	}
	var errs []error
	for i := len(under) - 1; i >= 0; i-- {
		if err := syscall.Unmount(under[i], syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			errs = append(errs, fmt.Errorf("stack: unmount %s: %w", under[i], err))
		}
	}
	return errors.Join(errs...)
}

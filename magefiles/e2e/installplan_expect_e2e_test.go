//go:build e2e

package e2e

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/determined-ai/environments/magefiles/catalog"
	"github.com/determined-ai/environments/magefiles/plan"
	"github.com/determined-ai/environments/magefiles/variant"
)

// What the previous images had (../shared/reference/image-contents.md),
// as the install-plan test checks it.

// callsLog is where testdata/installplan/standin.sh records every call.
const callsLog = "/var/log/installplan/calls"

// call is one recorded call of a stand-in tool.
type call struct {
	tool, cwd string
	args      []string
	env       map[string]string
}

func (c call) String() string {
	return fmt.Sprintf("%s %s (in %s)", c.tool, strings.Join(c.args, " "), c.cwd)
}

func parseCalls(s string) []call {
	var out []call
	for _, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		f := strings.Split(line, "\t")
		if len(f) < 4 {
			continue
		}
		c := call{tool: f[0], cwd: f[1], env: map[string]string{}}
		if f[2] != "" {
			c.args = strings.Split(f[2], "\x1f")
		}
		for _, kv := range strings.Split(f[3], "\x1f") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				c.env[k] = v
			}
		}
		out = append(out, c)
	}
	return out
}

// pipInstall is a `python -m pip install` call with pip's own options and the
// constraints file taken out: what it installs.
type pipInstall struct {
	call
	reqs        []string
	constraints []string // base names of the --constraint files
}

func pipInstalls(calls []call) []pipInstall {
	var out []pipInstall
	for _, c := range calls {
		if (c.tool != "python" && c.tool != "python3") || len(c.args) < 3 || c.args[0] != "-m" || c.args[1] != "pip" || c.args[2] != "install" {
			continue
		}
		p := pipInstall{call: c}
		for i := 3; i < len(c.args); i++ {
			switch a := c.args[i]; a {
			case "--no-cache-dir", "--disable-pip-version-check":
			case "--constraint":
				if i+1 < len(c.args) {
					p.constraints = append(p.constraints, filepath.Base(c.args[i+1]))
					i++
				}
			default:
				p.reqs = append(p.reqs, a)
			}
		}
		out = append(out, p)
	}
	return out
}

// imageTree lists the paths of img's flattened filesystem with their headers.
func imageTree(t *testing.T, img v1.Image) map[string]*tar.Header {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	out := map[string]*tar.Header{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("reading the image filesystem: %v", err)
		}
		out[filepath.Clean("/"+strings.TrimPrefix(h.Name, "./"))] = h
	}
}

func pinsOf(img catalog.Image) map[string]string {
	m := map[string]string{}
	for _, a := range img.Pins {
		m[a.Name] = a.Value
	}
	return m
}

// armSpec is a *_PIP value as the previous images adapted it on arm64:
// tensorflow-cpu becomes tensorflow-aarch64, a +cpu local version is dropped.
func armSpec(spec, arch string) []string {
	words := strings.Fields(spec)
	if arch != "arm64" {
		return words
	}
	for i, w := range words {
		switch {
		case strings.HasPrefix(w, "tensorflow-cpu=="):
			words[i] = "tensorflow-aarch64==" + strings.TrimPrefix(w, "tensorflow-cpu==")
		case strings.Contains(w, "==") && strings.HasSuffix(w, "+cpu"):
			words[i] = strings.TrimSuffix(w, "+cpu")
		}
	}
	return words
}

var (
	baseAptPackages = strings.Fields("autoconf automake autotools-dev build-essential ca-certificates curl " +
		"daemontools libkrb5-dev libssl-dev libtool git krb5-user g++ cmake make openssh-client openssh-server " +
		"pkg-config wget nfs-common unattended-upgrades")
	numaPMIPackages = strings.Fields("libnuma1 libnuma-dev libpmi2-0-dev")
	cudaAptPackages = strings.Fields("ibverbs-providers libibverbs1 librdmacm1")
	ompiFlags       = strings.Fields("--prefix=/container/ompi --enable-shared --with-cma --with-pic --enable-mpi-cxx " +
		"--enable-mpi-thread-multiple --with-pmi --with-pmix=internal")
)

const (
	ucxLibs = "/usr/lib/libibverbs:/container/ucx/lib:/container/ucx/lib64:/container/ompi/lib:"
	ofiLibs = "/usr/lib/libibverbs:/container/ofi/lib:/container/ofi/lib64:/container/ompi/lib:"
)

// planCheck collects the differences of one image from the fact sheet.
type planCheck struct {
	t     *testing.T
	where string
	calls []call
	pips  []pipInstall
}

func (pc *planCheck) errorf(format string, args ...any) {
	pc.t.Helper()
	pc.t.Errorf("%s: "+format, append([]any{pc.where}, args...)...)
}

// find returns the index of the first call of tool at or after from whose
// args satisfy ok, or -1.
func (pc *planCheck) find(from int, tool string, ok func(call) bool) int {
	for i := max(from, 0); i < len(pc.calls); i++ {
		if pc.calls[i].tool == tool && ok(pc.calls[i]) {
			return i
		}
	}
	return -1
}

func hasArgs(want ...string) func(call) bool {
	return func(c call) bool {
		for _, w := range want {
			if !slices.Contains(c.args, w) {
				return false
			}
		}
		return true
	}
}

func (pc *planCheck) want(tool, why string, ok func(call) bool) int {
	pc.t.Helper()
	i := pc.find(0, tool, ok)
	if i < 0 {
		pc.errorf("no %s call: %s; the %s calls were:\n  %s", tool, why, tool, pc.callsOf(tool))
	}
	return i
}

func (pc *planCheck) none(tool, why string, ok func(call) bool) {
	pc.t.Helper()
	if i := pc.find(0, tool, ok); i >= 0 {
		pc.errorf("unexpected %v: %s", pc.calls[i], why)
	}
}

func (pc *planCheck) callsOf(tool string) string {
	var out []string
	for _, c := range pc.calls {
		if c.tool == tool {
			out = append(out, c.String())
		}
	}
	return strings.Join(out, "\n  ")
}

// pip returns the first pip install of exactly reqs (in this order).
func (pc *planCheck) pip(why string, reqs ...string) *pipInstall {
	pc.t.Helper()
	for i := range pc.pips {
		if slices.Equal(pc.pips[i].reqs, reqs) {
			return &pc.pips[i]
		}
	}
	var seen []string
	for _, p := range pc.pips {
		seen = append(seen, strings.Join(p.reqs, " "))
	}
	pc.errorf("no pip install of %q (%s); pip installed:\n  %s", strings.Join(reqs, " "), why, strings.Join(seen, "\n  "))
	return nil
}

func (pc *planCheck) envIs(p *pipInstall, key, want string) {
	pc.t.Helper()
	if p == nil {
		return
	}
	if got, ok := p.env[key]; !ok || got != want {
		pc.errorf("pip install %s ran with %s=%q (set: %v), want %q", strings.Join(p.reqs, " "), key, got, ok, want)
	}
}

func (pc *planCheck) envUnset(p *pipInstall, key string) {
	pc.t.Helper()
	if p == nil {
		return
	}
	if got, ok := p.env[key]; ok {
		pc.errorf("pip install %s ran with %s=%q, want it unset", strings.Join(p.reqs, " "), key, got)
	}
}

// checkInstallPlan compares one built stand-in image with the fact sheet.
func checkInstallPlan(t *testing.T, sp plan.Spec, s variant.Settings, platform string, img v1.Image) {
	t.Helper()
	arch := platform[strings.LastIndex(platform, "/")+1:]
	files := imageFiles(t, img, callsLog, "/etc/passwd", "/etc/group", "/etc/nsswitch.conf",
		"/etc/apt/sources.list.d/google-cloud-sdk.list", "/var/lib/installplan/python-version",
		"/var/lib/installplan/site/pillow", "/var/lib/installplan/site/pydantic")
	tree := imageTree(t, img)
	calls := parseCalls(files[callsLog])
	pc := &planCheck{t: t, where: sp.Image.Name + " " + platform, calls: calls, pips: pipInstalls(calls)}
	if len(calls) == 0 {
		t.Fatalf("%s: no calls recorded in %s", pc.where, callsLog)
	}
	im := sp.Image
	pins := pinsOf(im)
	cuda, rocm := im.Accel == catalog.CUDA, im.Accel == catalog.ROCm
	mpi := s.MPI && !rocm
	// The fabric as the previous images had it: OFI only in the CPU bases
	// and the CUDA 11.3 base (the other CUDA bases' -mpi-ofi tags are UCX
	// builds), NCCL only from the CUDA 11.3 base, the AWS plugin only in
	// tf2-gpu.
	cuda113 := im.Name == "gpu-cuda-113-base" || im.Base == "gpu-cuda-113-base"
	ofi := mpi && s.OFI && (im.Accel == catalog.CPU || cuda113)
	nccl := cuda && s.NCCL && s.MPI && cuda113
	aws := ofi && nccl && im.Name == "tf2-gpu"
	basePins := pins
	if im.Base != "" {
		b, err := catalog.Lookup(im.Base)
		if err != nil {
			t.Fatal(err)
		}
		basePins = pinsOf(b)
	}

	// OS packages, the upgrade, ssh host keys, users, the NSS module.
	want := slices.Clone(baseAptPackages)
	switch {
	case rocm:
		want = append(want, "g++-4.8")
	case cuda:
		want = append(want, numaPMIPackages...)
		want = append(want, cudaAptPackages...)
	default:
		want = append(want, numaPMIPackages...)
	}
	if i := pc.want("apt-get", "the OS packages", hasArgs("install")); i >= 0 {
		for _, p := range want {
			if !slices.Contains(calls[i].args, p) {
				pc.errorf("the OS packages lack %s: %v", p, calls[i])
			}
		}
		if rocm {
			for _, p := range numaPMIPackages {
				if slices.Contains(calls[i].args, p) {
					pc.errorf("the ROCm image installs %s, which the previous one did not", p)
				}
			}
		}
	}
	pc.want("unattended-upgrade", "one unattended-upgrade run", func(call) bool { return true })
	for _, k := range []string{"rsa", "ecdsa", "ed25519"} {
		key := "/etc/ssh/ssh_host_" + k + "_key"
		if _, ok := tree[key]; ok {
			pc.errorf("%s is in the image: every container would share it", key)
		}
		if _, ok := tree[key+".pub"]; !ok {
			pc.errorf("%s.pub was removed (the previous images kept the public keys)", key)
		}
	}
	for _, d := range []string{"/var/run/sshd", "/tmp/det-nobody"} {
		if h, ok := tree[d]; !ok || h.Typeflag != tar.TypeDir {
			pc.errorf("%s is not a directory in the image", d)
		}
	}
	for p := range tree {
		if strings.HasPrefix(p, "/tmp/") && p != "/tmp/det-nobody" && !strings.HasPrefix(p, "/tmp/det-nobody/") {
			pc.errorf("%s is left in /tmp (the previous images ended with rm -r /tmp/*)", p)
		}
	}
	if !strings.Contains(files["/etc/passwd"], "det-nobody:x:65533:65533::/tmp/det-nobody:/bin/bash\n") {
		pc.errorf("/etc/passwd has no det-nobody 65533:65533 with home /tmp/det-nobody and /bin/bash:\n%s", files["/etc/passwd"])
	}
	if !strings.Contains(files["/etc/group"], "det-nobody:x:65533:") {
		pc.errorf("/etc/group has no det-nobody 65533:\n%s", files["/etc/group"])
	}
	for _, db := range []string{"passwd", "group", "shadow"} {
		// First, as in the 0.22.1 images (OpenShift's appended UID must
		// not win over Determined's entry).
		if !strings.Contains(files["/etc/nsswitch.conf"], db+": ") ||
			!strings.HasPrefix(strings.TrimSpace(strings.SplitN(strings.SplitN(files["/etc/nsswitch.conf"], db+":", 2)[1], "\n", 2)[0]), "determined ") {
			pc.errorf("/etc/nsswitch.conf does not list determined first for %s:\n%s", db, files["/etc/nsswitch.conf"])
		}
	}
	if cuda {
		if _, ok := tree["/etc/apt/sources.list.d/cuda.list"]; ok {
			pc.errorf("the CUDA image's stale NVIDIA apt list is still there")
		}
	}

	// Python: conda in /opt/conda (the ROCm image brings its own).
	if !rocm {
		url := "https://repo.anaconda.com/miniconda/Miniconda3-py39_4.10.3-Linux-x86_64.sh"
		if arch == "arm64" {
			url = "https://github.com/conda-forge/miniforge/releases/download/4.10.3-10/Miniforge3-4.10.3-10-Linux-aarch64.sh"
		}
		pc.want("curl", "the conda installer", func(c call) bool { return len(c.args) > 0 && c.args[0] == url })
		if arch == "amd64" {
			pc.want("sha256sum", "the Miniconda installer's checksum", func(c call) bool {
				return strings.Contains(strings.Join(c.args, " "), "1ea2f885b4dbc3098662845560bc64271eb17085387a70c2ba3f29fff6f8d52f")
			})
		} else {
			pc.want("md5sum", "the Miniforge installer's checksum (the previous images checked its md5)", func(c call) bool {
				return strings.Contains(strings.Join(c.args, " "), "85d7ea630bb91259bf09f6d52a5ec1c4")
			})
		}
		pc.want("conda-installer", "conda installed into /opt/conda", hasArgs("-b", "-p", "/opt/conda"))
		pc.want("conda", "conda's Python pinned", hasArgs("install", "-y", "python="+basePins["PYTHON_VERSION"]))
		pc.want("conda", "conda update --all", hasArgs("update", "-y", "--all"))
		pc.want("conda", "conda clean", hasArgs("clean", "--all", "-f", "-y"))
		// The stand-in conda's update --all moves Python to the newest patch
		// unless it is pinned, as conda 4.10's solver does.
		if got := strings.TrimSpace(files["/var/lib/installplan/python-version"]); got != basePins["PYTHON_VERSION"] {
			pc.errorf("conda's Python is %q after conda update --all, want %s", got, basePins["PYTHON_VERSION"])
		}
		if _, ok := tree["/opt/conda/conda-meta/pinned"]; ok {
			pc.errorf("/opt/conda/conda-meta/pinned stays in the image (the previous images had none)")
		}
		if h, ok := tree["/etc/determined/conda.d"]; !ok || h.Typeflag != tar.TypeDir {
			pc.errorf("/etc/determined/conda.d is missing")
		}
		if cuda {
			pc.want("curl", "libffi7 3.3-4", func(c call) bool {
				return len(c.args) > 0 && strings.HasSuffix(c.args[0], "/libffi7_3.3-4_amd64.deb")
			})
			pc.want("dpkg", "libffi7 installed", hasArgs("-i"))
		}
	} else {
		pc.none("conda-installer", "the ROCm image brings its own Python", func(call) bool { return true })
	}

	// Determined's harness dependencies and Jupyter.
	pc.pip("the determined trick: its dependencies stay", "determined")
	if pc.find(0, "python", hasArgs("-m", "pip", "uninstall", "-y", "determined")) < 0 {
		pc.errorf("determined is not uninstalled after its dependencies are installed")
	}
	pc.pip("JupyterLab as the previous images had it", "jupyterlab~=3.5.0", "jupyter-archive~=3.2", "jupyterlab-server~=2.10,<=2.16.5")
	for _, p := range pc.pips {
		if slices.Contains(p.reqs, "--upgrade") && strings.HasPrefix(strings.Join(p.reqs, " "), "--upgrade pip==") {
			continue // pip itself, before any package
		}
		if !slices.Contains(p.constraints, "pip-constraints.txt") {
			pc.errorf("pip install %s runs without pip-constraints.txt (protobuf would not be capped)", strings.Join(p.reqs, " "))
		}
	}

	// MPI, fabric, NCCL.
	ubuntu := basePins["UBUNTU_VERSION"]
	mofed := "MLNX_OFED_LINUX-5.4-3.4.0.0-" + ubuntu + "-x86_64"
	isURL := func(u string) func(call) bool {
		return func(c call) bool { return len(c.args) > 0 && c.args[0] == u }
	}
	ompiURL := "https://download.open-mpi.org/release/open-mpi/v4.1/openmpi-4.1.0.tar.gz"
	switch {
	case !mpi:
		pc.none("curl", "no MPI without WITH_MPI=1", isURL(ompiURL))
	case ofi:
		pc.want("curl", "libfabric 1.15.1", isURL("https://github.com/ofiwg/libfabric/releases/download/v1.15.1/libfabric-1.15.1.tar.bz2"))
		pc.want("configure", "libfabric into /container/ofi, without verbs and EFA as before", func(c call) bool {
			return filepath.Base(c.cwd) == "libfabric-1.15.1" && slices.Equal(c.args, []string{"--prefix=/container/ofi", "--disable-verbs", "--disable-efa"})
		})
		pc.none("curl", "no MOFED with OFI", isURL("https://content.mellanox.com/ofed/MLNX_OFED-5.4-3.4.0.0/"+mofed+".tgz"))
	default:
		pc.want("curl", "MLNX OFED 5.4-3.4.0.0 for "+ubuntu, isURL("https://content.mellanox.com/ofed/MLNX_OFED-5.4-3.4.0.0/"+mofed+".tgz"))
		pc.want("mlnxofedinstall", "MOFED user space", func(c call) bool {
			return filepath.Base(c.cwd) != "" && slices.Equal(c.args, strings.Fields("--user-space-only --without-fw-update --all --force --skip-unsupported-devices-check"))
		})
		pc.want("curl", "UCX 1.10.1", isURL("https://github.com/openucx/ucx/releases/download/v1.10.1/ucx-1.10.1.tar.gz"))
		pc.want("configure-release", "UCX into /container/ucx, multi-threaded", func(c call) bool {
			return filepath.Base(c.cwd) == "ucx-1.10.1" && slices.Equal(c.args, []string{"--prefix=/container/ucx", "--enable-mt"})
		})
	}
	if mpi {
		flags := slices.Clone(ompiFlags)
		if cuda {
			flags = append(flags, "--with-cuda")
		}
		if ofi {
			flags = append(flags, "--enable-orterun-prefix-by-default", "--with-libfabric=/container/ofi", "--without-ucx")
		} else {
			flags = append(flags, "--with-verbs", "--with-platform=contrib/platform/mellanox/optimized", "--with-ucx=/container/ucx")
		}
		pc.want("curl", "Open MPI 4.1.0", isURL(ompiURL))
		pc.want("configure", "Open MPI "+strings.Join(flags, " "), func(c call) bool {
			return filepath.Base(c.cwd) == "openmpi-4.1.0" && slices.Equal(c.args, flags)
		})
		pc.want("make", "Open MPI installed", func(c call) bool {
			return filepath.Base(c.cwd) == "openmpi-4.1.0" && slices.Contains(c.args, "install")
		})
	}
	if nccl {
		pc.want("git", "NCCL v2.15.5-1", hasArgs("clone", "--branch", "v2.15.5-1", "https://github.com/NVIDIA/nccl.git"))
		pc.want("make", "NCCL for sm_80", hasArgs("src.build", "NVCC_GENCODE=-gencode=arch=compute_80,code=sm_80"))
		pc.want("make", "NCCL into /container/nccl", hasArgs("install", "PREFIX=/container/nccl"))
		pc.want("curl", "GDRCopy 2.3", isURL("https://github.com/NVIDIA/gdrcopy/archive/refs/tags/v2.3.tar.gz"))
	} else {
		pc.none("git", "no NCCL build without WITH_NCCL=1 on the CUDA 11.3 base", hasArgs("https://github.com/NVIDIA/nccl.git"))
	}
	{
		pluginURL := isURL("https://github.com/aws/aws-ofi-nccl/archive/refs/tags/v1.4.0.tar.gz")
		if aws {
			pc.want("curl", "the AWS OFI-NCCL plugin v1.4.0 (not v1.4.0-aws)", pluginURL)
			flags := []string{"--prefix=/container/aws", "--with-libfabric=/container/ofi", "--with-nccl=/container/nccl",
				"--with-mpi=/container/ompi", "--with-gdrcopy=/usr", "--with-cuda=/usr/local/cuda/targets/x86_64-linux"}
			pc.want("configure", "the plugin "+strings.Join(flags, " "), func(c call) bool {
				return filepath.Base(c.cwd) == "plugin" && slices.Equal(c.args, flags)
			})
			pc.want("apt-get", "tcsh for the plugin", hasArgs("install", "tcsh"))
		} else {
			pc.none("curl", "the AWS plugin only in tf2-gpu with WITH_OFI=1 WITH_NCCL=1", func(c call) bool {
				return len(c.args) > 0 && strings.Contains(c.args[0], "aws-ofi-nccl")
			})
			pc.none("configure", "the AWS plugin only in tf2-gpu", func(c call) bool { return filepath.Base(c.cwd) == "plugin" })
		}
	}

	// The framework stages.
	if im.Stage == "framework" || rocm {
		pc.want("apt-get", "the Google Cloud SDK (google-cloud-cli: google-cloud-sdk has no installation candidate)", hasArgs("install", "google-cloud-cli"))
		pc.want("gpg", "Google's apt key as a keyring", hasArgs("--dearmor", "-o", "/usr/share/keyrings/cloud.google.gpg"))
		if !strings.Contains(files["/etc/apt/sources.list.d/google-cloud-sdk.list"],
			"deb [signed-by=/usr/share/keyrings/cloud.google.gpg] https://packages.cloud.google.com/apt cloud-sdk main") {
			pc.errorf("no signed Google Cloud SDK apt source: %q", files["/etc/apt/sources.list.d/google-cloud-sdk.list"])
		}
		for _, k := range []string{"TENSORFLOW_PIP", "TORCH_PIP", "TORCHVISION_PIP", "TORCH_TB_PROFILER_PIP"} {
			if v := pins[k]; v != "" {
				pc.pip(k, armSpec(v, arch)...)
			}
		}
		if rocm {
			pc.pip("protobuf 3.20.1 for google-api-python-client, Horovod and tensorflow-rocm", "protobuf==3.20.1")
			pc.none("python", "no additional requirements in the ROCm image", func(c call) bool {
				return strings.HasSuffix(strings.Join(c.args, " "), "additional-requirements.txt")
			})
		} else {
			pc.want("python", "the additional requirements", func(c call) bool {
				return len(c.args) > 1 && c.args[len(c.args)-2] == "-r" && filepath.Base(c.args[len(c.args)-1]) == "additional-requirements.txt"
			})
		}
		// torch 1.10 and 1.12's TensorBoard image summaries call
		// Image.ANTIALIAS, which Pillow 10 removed.
		if strings.Contains(pins["TORCH_PIP"], "torch==1.1") {
			if v := strings.TrimSpace(files["/var/lib/installplan/site/pillow"]); v == "" || !versionBelow(v, 10) {
				pc.errorf("Pillow %q is installed with %s, want below 10", v, strings.Fields(pins["TORCH_PIP"])[0])
			}
		}
		checkHorovod(pc, pins, cuda, rocm, mpi, nccl, s.NCCL)
		if v := pins["APEX_GIT"]; v != "" {
			p := pc.pip("apex with its C++ and CUDA extensions", "--no-build-isolation",
				"--global-option=--cpp_ext", "--global-option=--cuda_ext", "git+"+v)
			pc.envIs(p, "TORCH_CUDA_ARCH_LIST", pins["TORCH_CUDA_ARCH_LIST"])
		}
		if v := pins["DEEPSPEED_PIP"]; v != "" {
			pc.want("apt-get", "pdsh and libaio for DeepSpeed", hasArgs("install", "pdsh", "libaio-dev"))
			pc.pip("triton for sparse attention", "triton==1.0.0")
			p := pc.pip("DeepSpeed with all ops prebuilt", append([]string{"--no-binary", "deepspeed"}, strings.Fields(v)...)...)
			pc.envIs(p, "DS_BUILD_OPS", "1")
			if p != nil && !slices.Contains(p.constraints, "deepspeed-constraints.txt") {
				pc.errorf("DeepSpeed is installed without deepspeed-constraints.txt (pydantic 2 would come): %v", p.constraints)
			}
			if v := strings.TrimSpace(files["/var/lib/installplan/site/pydantic"]); v == "" || !strings.HasPrefix(v, "1.") {
				pc.errorf("pydantic %q is installed with DeepSpeed, want 1.x (deepspeed 0.8.3 fails to import with pydantic 2)", v)
			}
			pc.envIs(p, "TORCH_CUDA_ARCH_LIST", pins["TORCH_CUDA_ARCH_LIST"])
			pc.want("python", "DeepSpeed's env report", hasArgs("-m", "deepspeed.env_report"))
		} else {
			pc.none("apt-get", "pdsh only with DeepSpeed", hasArgs("pdsh"))
		}
	}

	checkConfig(pc, sp, s, img, tree, cuda, rocm, mpi, ofi, nccl, aws)
}

// checkHorovod: nccl is NCCL built into the image's base, ncclVariant
// WITH_NCCL=1, which decides Horovod's GPU operations in MPI mode (NCCL, else
// MPI) for every CUDA image, as the old Makefile passed it.
func checkHorovod(pc *planCheck, pins map[string]string, cuda, rocm, mpi, nccl, ncclVariant bool) {
	pc.t.Helper()
	spec := pins["HOROVOD_PIP"]
	if spec == "" {
		pc.none("horovodrun", "no Horovod without HOROVOD_PIP", func(call) bool { return true })
		return
	}
	pc.pip("Horovod's build dependencies", "cmake==3.22.4", "protobuf==3.20.3")
	p := pc.pip("Horovod", append([]string{"--no-build-isolation"}, strings.Fields(spec)...)...)
	with := func(name string, on bool) {
		if on {
			pc.envIs(p, "HOROVOD_WITH_"+name, "1")
			pc.envUnset(p, "HOROVOD_WITHOUT_"+name)
		} else {
			pc.envIs(p, "HOROVOD_WITHOUT_"+name, "1")
			pc.envUnset(p, "HOROVOD_WITH_"+name)
		}
	}
	with("TENSORFLOW", pins["TENSORFLOW_PIP"] != "")
	with("PYTORCH", pins["HOROVOD_WITH_PYTORCH"] != "0")
	with("MXNET", false)
	with("MPI", mpi)
	ops := "GLOO"
	if mpi {
		ops = "MPI"
	}
	pc.envIs(p, "HOROVOD_CPU_OPERATIONS", ops)
	switch {
	case rocm:
		pc.envIs(p, "HOROVOD_GPU", "ROCM")
		pc.envIs(p, "HOROVOD_NCCL_HOME", "/opt/rocm/rccl")
		pc.envIs(p, "HOROVOD_GPU_OPERATIONS", "NCCL")
	case cuda:
		pc.envIs(p, "HOROVOD_GPU", "CUDA")
		gpuOps := "NCCL"
		if mpi && !ncclVariant {
			gpuOps = "MPI"
		}
		pc.envIs(p, "HOROVOD_GPU_OPERATIONS", gpuOps)
		if nccl {
			pc.envIs(p, "HOROVOD_NCCL_HOME", "/container/nccl")
		}
		stubs := pc.find(0, "ldconfig", hasArgs("/usr/local/cuda/targets/x86_64-linux/lib/stubs"))
		if stubs < 0 {
			pc.errorf("Horovod is not linked against the CUDA driver stubs (ldconfig .../stubs)")
		} else if pc.find(stubs+1, "ldconfig", func(c call) bool { return len(c.args) == 0 }) < 0 {
			pc.errorf("the CUDA driver stubs stay in the loader cache after Horovod's build")
		}
	default:
		pc.envUnset(p, "HOROVOD_GPU")
	}
	pc.want("horovodrun", "Horovod's build check", hasArgs("--check-build"))
}

func envMap(env []string) map[string]string {
	m := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

func checkConfig(pc *planCheck, sp plan.Spec, s variant.Settings, img v1.Image, tree map[string]*tar.Header, cuda, rocm, mpi, ofi, nccl, aws bool) {
	pc.t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		pc.t.Fatal(err)
	}
	cfg := cf.Config
	env := envMap(cfg.Env)
	want := map[string]string{
		"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "PYTHONUNBUFFERED": "1",
		"JUPYTER_CONFIG_DIR":  "/run/determined/jupyter/config",
		"JUPYTER_DATA_DIR":    "/run/determined/jupyter/data",
		"JUPYTER_RUNTIME_DIR": "/run/determined/jupyter/runtime",
	}
	basePath := envMap(standinEnv(kindOf(buildArgOfBase(pc.t, sp))))["PATH"]
	if rocm {
		want["LD_LIBRARY_PATH"] = "/opt/rocm/lib:/opt/rocm/hip/lib"
		want["HOROVOD_GPU_BROADCAST"] = ""
		want["HOROVOD_GPU_ALLREDUCE"] = ""
		want["PATH"] = basePath
	} else {
		for k, v := range map[string]string{"PIP_NO_CACHE_DIR": "1", "PYTHONFAULTHANDLER": "1", "PYTHONHASHSEED": "0",
			"UCX_LIBS": ucxLibs, "OFI_LIBS": ofiLibs} {
			want[k] = v
		}
		extra := ucxLibs
		if ofi {
			extra = ofiLibs
		}
		want["EXTRA_LIBS"] = extra
		path := "/opt/conda/bin:" + basePath
		ld := ""
		on := ""
		if mpi {
			on = "1"
			ld = extra
			if ofi {
				path += ":/container/ofi/bin:/container/ompi/bin"
			} else {
				path += ":/container/ucx/bin:/container/ompi/bin"
			}
		}
		want["PATH"] = path
		want["OMPI_ALLOW_RUN_AS_ROOT"] = on
		want["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = on
		if cuda {
			pre := ""
			if aws {
				pre = "/container/aws/lib:"
			}
			if nccl {
				pre += "/container/nccl/lib:"
			}
			ld = pre + ld + "/usr/local/nvidia/lib:/usr/local/nvidia/lib64"
			// Every CUDA framework image names /container/nccl for
			// Horovod, NCCL built or not; the bases do not.
			if !sp.Image.IsBase() {
				link := ""
				if nccl {
					link = "SHARED"
				}
				want["HOROVOD_NCCL_HOME"], want["NCCL_LIB_DIR"], want["HOROVOD_NCCL_LINK"] = "/container/nccl", "/container/nccl/lib", link
			} else {
				for _, k := range []string{"HOROVOD_NCCL_HOME", "NCCL_LIB_DIR", "HOROVOD_NCCL_LINK"} {
					if v, ok := env[k]; ok {
						pc.errorf("ENV %s=%q in a base (the previous CUDA bases had none)", k, v)
					}
				}
			}
		}
		want["LD_LIBRARY_PATH"] = ld
	}
	for k, v := range want {
		if got, ok := env[k]; !ok || got != v {
			pc.errorf("ENV %s=%q (set: %v), want %q", k, got, ok, v)
		}
	}
	for k := range env {
		if strings.HasPrefix(k, "HOROVOD_") && k != "HOROVOD_NCCL_HOME" && k != "HOROVOD_NCCL_LINK" && !rocm {
			pc.errorf("ENV %s is set; Horovod settings are build arguments only", k)
		}
	}

	var entry, cmd []string
	user := ""
	switch {
	case cuda:
		entry, cmd = []string{"/container/bin/scrape_libs.sh"}, []string{"/bin/bash"}
		if h, ok := tree["/container/bin/scrape_libs.sh"]; !ok || h.Mode&0o111 == 0 {
			pc.errorf("/container/bin/scrape_libs.sh is missing or not executable")
		}
	case rocm:
		// ENTRYPOINT [] also clears the inherited CMD (BuildKit does so for
		// an ENTRYPOINT without a CMD in the same stage, as the previous
		// recipe had it).
		user = "root"
	default:
		cmd = []string{"/bin/bash"} // the base image's, inherited
	}
	if !slices.Equal(cfg.Entrypoint, entry) {
		pc.errorf("ENTRYPOINT %q, want %q", cfg.Entrypoint, entry)
	}
	if !slices.Equal(cfg.Cmd, cmd) {
		pc.errorf("CMD %q, want %q", cfg.Cmd, cmd)
	}
	if cfg.User != user {
		pc.errorf("USER %q, want %q", cfg.User, user)
	}
	for k, v := range map[string]string{
		"org.opencontainers.image.revision": s.Hash,
		"org.opencontainers.image.version":  s.Version,
		"org.opencontainers.image.source":   plan.SourceURL,
		plan.InputsLabel:                    sp.InputsDigest,
	} {
		if got := cfg.Labels[k]; got != v {
			pc.errorf("label %s=%q, want %q", k, got, v)
		}
	}
}

// buildArgOfBase is the external image the image's chain starts FROM.
func buildArgOfBase(t *testing.T, sp plan.Spec) string {
	t.Helper()
	img := sp.Image
	for img.Base != "" {
		b, err := catalog.Lookup(img.Base)
		if err != nil {
			t.Fatal(err)
		}
		img = b
	}
	return img.From
}

// versionBelow reports whether version's major number is below major.
func versionBelow(version string, major int) bool {
	var m int
	if _, err := fmt.Sscanf(version, "%d", &m); err != nil {
		return false
	}
	return m < major
}

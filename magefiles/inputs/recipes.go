package inputs

import (
	"errors"
	"fmt"

	"github.com/determined-ai/environments/magefiles/catalog"
)

// What the scripts in dockerfile_scripts/ fetch themselves. Every URL,
// checksum, git ref, pip pin and apt package a script names is here; the
// drift test (recipes_test.go) reads the scripts and fails on anything
// missing or stale, so a change to a script must change this file too.
const (
	scripts = "dockerfile_scripts/"

	minicondaURL = "https://repo.anaconda.com/miniconda/Miniconda3-py39_4.10.3-Linux-x86_64.sh"
	minicondaSum = "sha256:1ea2f885b4dbc3098662845560bc64271eb17085387a70c2ba3f29fff6f8d52f"
	miniforgeURL = "https://github.com/conda-forge/miniforge/releases/download/4.10.3-10/Miniforge3-4.10.3-10-Linux-aarch64.sh"
	// install_python.sh checks the Miniforge installer's md5, the only
	// checksum published for it (as the previous images did).
	miniforgeSum = "md5:85d7ea630bb91259bf09f6d52a5ec1c4"
	// The channels conda installs Python from: Miniconda's defaults, Miniforge's conda-forge.
	condaDefaults   = "https://repo.anaconda.com/pkgs/main/linux-64"
	condaForgeArm64 = "https://conda.anaconda.org/conda-forge/linux-aarch64"
	libffi7URL      = "http://archive.ubuntu.com/ubuntu/pool/main/libf/libffi/libffi7_3.3-4_amd64.deb"

	openMPIURL  = "https://download.open-mpi.org/release/open-mpi/v4.1/openmpi-4.1.0.tar.gz"
	ucxURL      = "https://github.com/openucx/ucx/releases/download/v1.10.1/ucx-1.10.1.tar.gz"
	mofedURL    = "https://content.mellanox.com/ofed/MLNX_OFED-5.4-3.4.0.0/MLNX_OFED_LINUX-5.4-3.4.0.0-%s-x86_64.tgz"
	libfabric   = "https://github.com/ofiwg/libfabric/releases/download/v1.15.1/libfabric-1.15.1.tar.bz2"
	ncclGit     = "https://github.com/NVIDIA/nccl.git"
	ncclRef     = "v2.15.5-1"
	gdrcopyURL  = "https://github.com/NVIDIA/gdrcopy/archive/refs/tags/v2.3.tar.gz"
	awsOFINCCL  = "https://github.com/aws/aws-ofi-nccl/archive/refs/tags/v1.4.0.tar.gz"
	gcloudKey   = "https://packages.cloud.google.com/apt/doc/apt-key.gpg"
	gcloudSuite = "cloud-sdk"
)

// Apt packages, by the script that installs them.
var (
	debPackages = []string{"autoconf", "automake", "autotools-dev", "build-essential", "bzip2",
		"ca-certificates", "cmake", "curl", "daemontools", "git", "krb5-user",
		"libkrb5-dev", "libssl-dev", "libtool", "make", "nfs-common",
		"openssh-client", "openssh-server", "pkg-config", "unattended-upgrades", "wget"}
	debROCm       = []string{"g++", "g++-4.8"}
	debNotROCm    = []string{"g++", "libnuma1", "libnuma-dev", "libpmi2-0-dev"}
	debCUDA       = []string{"ibverbs-providers", "libibverbs1", "librdmacm1"}
	gcloudPrereqs = []string{"apt-transport-https", "ca-certificates", "gnupg"}
	gcloudPackage = "google-cloud-cli"
	awsPluginDebs = []string{"tcsh"}
	deepspeedDebs = []string{"pdsh", "libaio-dev"}
)

// Pip requirements, by the file that names them. Each is a requirement as
// written in the recipe.
var (
	pythonPips           = []string{"pip==23.0.1", "setuptools==67.6.1", "wheel==0.40.0"}
	harnessPips          = []string{"determined", "jupyterlab~=3.5.0", "jupyter-archive~=3.2", "jupyterlab-server~=2.10,<=2.16.5"}
	horovodPips          = []string{"cmake==3.22.4", "protobuf==3.20.3"}
	deepspeedPips        = []string{"triton==1.0.0"}
	rocmPips             = []string{"protobuf==3.20.1"}
	constraints          = []string{"protobuf<=3.20.3", "Pillow<10"}
	deepspeedConstraints = []string{"pydantic<2"}
	additional           = []string{"attrdict", "pandas", "matplotlib", "tensorflow-datasets==1.3.2",
		"Keras-Preprocessing[image]", "petname", "azure-storage-blob", "Pillow>=8.3.2",
		"analytics-python", "nvidia-ml-py", "protobuf<=3.20.3"}
)

// Ubuntu's components, as the images' sources.list has them.
var ubuntuComponents = []string{"main", "restricted", "universe", "multiverse"}

// recipeInputs is what the scripts of st's stage fetch.
func recipeInputs(st stage) ([]Input, error) {
	var out []Input
	var errs []error
	add := func(ins ...Input) { out = append(out, ins...) }
	pips := func(reqs []string, where string) []Input {
		ins, err := pipList(reqs, where)
		errs = append(errs, err)
		return ins
	}
	switch st.name {
	case "base":
		debs := append(append([]string{}, debPackages...), debNotROCm...)
		if st.accel == catalog.CUDA {
			debs = append(debs, debCUDA...)
		}
		add(ubuntuDebs(st, debs, scripts+"install_deb_packages.sh", "")...)
		add(condaInstallers(st)...)
		add(pips(pythonPips, scripts+"install_python.sh")...)
		if st.accel == catalog.CUDA {
			add(fileAt(libffi7URL, "", scripts+"install_python.sh", "", "amd64"))
		}
		add(pips(harnessPips, scripts+"install_harness_deps.sh")...)
		add(mpiInputs(st)...)
		if st.accel == catalog.CUDA && st.img.Fabric.NCCL {
			add(ncclInputs(st)...)
		}
	case "framework":
		add(gcloudInputs(st)...)
		if st.img.Fabric.AWSPlugin {
			add(awsPluginInputs(st)...)
		}
		if st.has("HOROVOD_PIP") {
			add(pips(horovodPips, scripts+"install_horovod.sh")...)
		}
		add(pips(additional, scripts+"additional-requirements.txt")...)
		if st.has("DEEPSPEED_PIP") {
			add(ubuntuDebs(st, deepspeedDebs, scripts+"install_deepspeed.sh", "")...)
			add(pips(deepspeedPips, scripts+"install_deepspeed.sh")...)
			for _, c := range pips(deepspeedConstraints, scripts+"deepspeed-constraints.txt") {
				c.Constraint = true
				add(c)
			}
		}
	case "rocm":
		debs := append(append([]string{}, debPackages...), debROCm...)
		add(ubuntuDebs(st, debs, scripts+"install_deb_packages.sh", "")...)
		add(pips(harnessPips, scripts+"install_harness_deps.sh")...)
		add(gcloudInputs(st)...)
		add(pips(rocmPips, catalog.RecipeGPU)...)
		if st.has("HOROVOD_PIP") {
			add(pips(horovodPips, scripts+"install_horovod.sh")...)
		}
	}
	for _, c := range pips(constraints, scripts+"pip-constraints.txt") {
		c.Constraint = true
		add(c)
	}
	return out, errors.Join(errs...)
}

func condaInstallers(st stage) []Input {
	var out []Input
	python := st.args["PYTHON_VERSION"]
	for _, arch := range st.arches {
		url, sum, channel := minicondaURL, minicondaSum, condaDefaults
		if arch == "arm64" {
			url, sum, channel = miniforgeURL, miniforgeSum, condaForgeArm64
		}
		out = append(out, fileAt(url, sum, scripts+"install_python.sh", "", arch))
		if python != "" {
			out = append(out, Input{Kind: Conda, Name: "python", Version: python, Source: channel, Arch: arch,
				Where: "catalog " + st.img.Name + " PYTHON_VERSION"})
		}
	}
	return out
}

// mpiInputs: install_mpi.sh and install_libfabric.sh (amd64 only); libfabric
// only in the bases that take OFI (catalog.Fabric), the others build UCX
// under WITH_OFI=1 too.
func mpiInputs(st stage) []Input {
	mpi := scripts + "install_mpi.sh"
	ucx := "WITH_MPI=1"
	out := []Input{fileAt(openMPIURL, "", mpi, "WITH_MPI=1", "")}
	if st.img.Fabric.OFI {
		ucx = "WITH_MPI=1 WITH_OFI=0"
		out = append(out, fileAt(libfabric, "", scripts+"install_libfabric.sh", "WITH_MPI=1 WITH_OFI=1", ""))
	}
	out = append(out, fileAt(ucxURL, "", mpi, ucx, ""))
	if ubuntu := st.ubuntuVersion(); ubuntu != "" {
		out = append(out, fileAt(fmt.Sprintf(mofedURL, ubuntu), "", mpi, ucx, ""))
	}
	return out
}

// ncclInputs: install_nccl.sh (the CUDA bases that take NCCL).
func ncclInputs(st stage) []Input {
	nccl := scripts + "install_nccl.sh"
	return []Input{
		{Kind: Git, Name: ncclGit, Version: ncclRef, Source: hostOf(ncclGit), Where: nccl, When: "WITH_NCCL=1"},
		fileAt(gdrcopyURL, "", nccl, "WITH_NCCL=1", ""),
	}
}

// awsPluginInputs: install_aws_ofi_nccl.sh (tf2-gpu). With the secret
// INTERNAL_AWS_DS the plugin comes from an internal store named only by
// BuildKit secrets, which is not declared.
func awsPluginInputs(st stage) []Input {
	where := scripts + "install_aws_ofi_nccl.sh"
	const when = "WITH_MPI=1 WITH_OFI=1 WITH_NCCL=1"
	return append([]Input{fileAt(awsOFINCCL, "", where, when, "")}, ubuntuDebs(st, awsPluginDebs, where, when)...)
}

func gcloudInputs(st stage) []Input {
	where := scripts + "install_google_cloud_sdk.sh"
	out := ubuntuDebs(st, gcloudPrereqs, where, "")
	out = append(out, fileAt(gcloudKey, "", where, "", ""))
	for _, arch := range st.arches {
		out = append(out, Input{Kind: Apt, Name: gcloudPackage, Source: GoogleCloud, Suite: gcloudSuite,
			Components: []string{"main"}, Arch: arch, Where: where})
	}
	return out
}

// ubuntuDebs are packages from the image's Ubuntu release, per architecture
// (amd64 from the archive, arm64 from the ports archive).
func ubuntuDebs(st stage, names []string, where, when string) []Input {
	var out []Input
	for _, arch := range st.arches {
		if when != "" && arch != "amd64" {
			continue // MPI, NCCL: linux/amd64 only
		}
		repo := UbuntuArchive
		if arch == "arm64" {
			repo = UbuntuPorts
		}
		for _, n := range names {
			out = append(out, Input{Kind: Apt, Name: n, Source: repo, Suite: st.suite, Components: ubuntuComponents,
				Arch: arch, Where: where, When: when})
		}
	}
	return out
}

// pipList reads requirements as the recipe file where writes them.
func pipList(reqs []string, where string) ([]Input, error) {
	var out []Input
	for _, r := range reqs {
		in, err := pipRequirement(r, where)
		if err != nil {
			return nil, fmt.Errorf("declared inputs: %w", err)
		}
		out = append(out, in)
	}
	return out, nil
}

func fileAt(url, sum, where, when, arch string) Input {
	in := fileInput(url, sum, where)
	in.When, in.Arch = when, arch
	return in
}

// ubuntuVersion is the image's UBUNTU_VERSION build argument ("ubuntu20.04").
func (s stage) ubuntuVersion() string {
	if v := s.args["UBUNTU_VERSION"]; v != "" {
		return v
	}
	for v, suite := range ubuntuSuites {
		if suite == s.suite {
			return "ubuntu" + v
		}
	}
	return ""
}

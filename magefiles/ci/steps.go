package ci

import (
	"slices"
	"strings"
)

// Step is one step of a job or of a command; exactly one field is set.
type Step struct {
	// Use names a command of the config's commands section, or CircleCI's
	// own "checkout".
	Use            string
	Run            *Run
	StoreArtifacts string
	RestoreCache   []string // keys, most specific first
	SaveCache      *Cache
}

// Run is a run step: a bash script (CircleCI runs it with -eo pipefail).
type Run struct {
	Name, Command string
	// When is "always" for a step that runs after a failed one.
	When            string
	NoOutputTimeout string
}

// Cache is a save_cache step.
type Cache struct {
	Key   string
	Paths []string
}

// Command is a reusable command of the config (commands:).
type Command struct {
	Name  string
	Steps []Step
}

// Pinned tools of the jobs. Each is fetched at exactly this version and
// verified before it is used.
const (
	// GoVersion is go.mod's go line (a unit test holds them together). The
	// toolchain comes from the Go module proxy as the module
	// golang.org/toolchain, the way the go command itself switches
	// toolchains: the go command checks it against the checksum database,
	// and the step checks the h1: sum again against GoToolchainSum.
	GoVersion         = "1.26.8"
	GoToolchainModule = "golang.org/toolchain@v0.0.1-go" + GoVersion + ".linux-amd64"
	GoToolchainSum    = "h1:ZOmGe1OnfREDMIdb1Qi4G9JSuDPBLGExZMQ4nis1RXM="
	// DockerVersion is the Docker Engine and CLI installed from Docker's apt
	// repository for Ubuntu 24.04 (noble), as the old jobs did; apt checks
	// every package against the repository's signed index, and the step
	// checks the signing key's fingerprint first.
	DockerVersion        = "29.8.2"
	DockerAptVersion     = "5:" + DockerVersion + "-1~ubuntu.24.04~noble"
	DockerKeyFingerprint = "9DC858229FC7DD38854AE2D88D81803C0EBFCD88"
	// BuildxModule is built from tools/go.mod at its pinned version (go.sum
	// checks every module), as the tests build it.
	BuildxModule = "github.com/docker/buildx"
	// BinfmtImage registers QEMU's arm64 handlers, by digest.
	BinfmtImage = "tonistiigi/binfmt@sha256:400a4873b838d1b89194d982c45e5fb3cda4593fbfd7e08a02e76b03b21166f0"
	// GoCacheKey caches GoCachePaths per go.sum of both modules.
	GoCacheKey = `go-v1-{{ arch }}-{{ checksum "go.sum" }}-{{ checksum "tools/go.sum" }}`
)

// GoCachePaths are what the Go cache holds: modules (the toolchain among
// them), the build cache, mage's compiled tool and the built buildx.
var GoCachePaths = []string{"~/go/pkg/mod", "~/.cache/go-build", "~/.magefile", "~/.cache/determined-environments"}

// Commands are the config's reusable commands, in order.
func Commands() []Command {
	run := func(name, title, script string) Command {
		return Command{Name: name, Steps: []Step{{Run: &Run{Name: title, Command: script}}}}
	}
	return []Command{
		{Name: "restore-go-cache", Steps: []Step{{RestoreCache: []string{GoCacheKey, "go-v1-{{ arch }}-"}}}},
		run("install-go", "Install Go "+GoVersion+" (module "+GoToolchainModule+", checksum verified)", installGo),
		run("install-docker", "Install Docker Engine "+DockerVersion+" (Docker's apt repository, key fingerprint checked)", installDocker),
		run("install-buildx", "Build buildx at the version of tools/go.mod (go.sum verified)", installBuildx),
		{Name: "save-go-cache", Steps: []Step{{SaveCache: &Cache{Key: GoCacheKey, Paths: GoCachePaths}}}},
		run("docker-login", "Log in to Docker Hub", dockerLogin),
		run("ngc-login", "Log in to NGC", ngcLogin),
		run("arm64-emulation", "Register arm64 emulation (QEMU, pinned by digest)", arm64Emulation),
		run("signing-key", "Write the image signing key (SIGNING_KEY, docs/supply-chain.md)", signingKey),
		// -trimpath: the compiled packages do not depend on where the
		// checkout is, so the restored build cache serves them.
		run("compile-tool", "Compile the tool once ("+Tool+")", "GOFLAGS=-trimpath go run magefile.go -compile "+Tool),
		run("builder", "Create the buildx builder", Tool+" builder"),
		{Name: "report", Steps: []Step{{Run: &Run{
			Name: "Publish report (" + ReportPath + ", not an artifact)", When: "always",
			Command: "cat " + ReportPath + ` 2>/dev/null || echo "no report: the publish stopped before its first build"`,
		}}}},
	}
}

// Steps are the job's steps, in order: checkout, the installs (Go cache
// restored first, saved once the tool is compiled), the logins, arm64
// emulation where the job builds arm64, the builder, the publish, the
// report and the artifact. One more step is one more entry here (and its
// command in Commands).
func (j Job) Steps() []Step {
	use := func(names ...string) []Step {
		var out []Step
		for _, n := range names {
			out = append(out, Step{Use: n})
		}
		return out
	}
	steps := use("checkout", "restore-go-cache", "install-go", "install-docker", "install-buildx", "docker-login")
	if !j.Dev {
		steps = append(steps, use("ngc-login")...)
	}
	if j.Arm64 {
		steps = append(steps, use("arm64-emulation")...)
	}
	steps = append(steps, use("signing-key", "compile-tool", "builder", "save-go-cache")...)
	what := j.Image
	if j.Base != "" {
		what += " and its base " + j.Base
	}
	steps = append(steps, Step{Run: &Run{Name: "Publish " + what + " (WITH_MPI=" + j.MPI + ")", NoOutputTimeout: "3h", Command: j.Command()}})
	steps = append(steps, use("report")...)
	return append(steps, Step{StoreArtifacts: ArtifactsDir})
}

// UsedCommands are the names of the commands the jobs use.
func UsedCommands(jobs []Job) []string {
	var out []string
	for _, j := range jobs {
		for _, s := range j.Steps() {
			if s.Use != "" && s.Use != "checkout" && !slices.Contains(out, s.Use) {
				out = append(out, s.Use)
			}
		}
	}
	return out
}

// The scripts of the commands. Each starts with `set -euo pipefail` so it
// behaves the same in CircleCI (bash -eo pipefail) and in the tests' job
// runner.
var (
	installGo = lines(
		`set -euo pipefail`,
		`mod=`+GoToolchainModule,
		`want='`+GoToolchainSum+`'`,
		`command -v go >/dev/null || { echo "install-go: no go command on the machine to fetch $mod with" >&2; exit 1; }`,
		`info=$(cd "$(mktemp -d)" && GOTOOLCHAIN=local GOFLAGS= go mod download -json "$mod")`,
		`sum=$(printf '%s\n' "$info" | sed -n 's/^[[:space:]]*"Sum": "\(.*\)",*$/\1/p')`,
		`dir=$(printf '%s\n' "$info" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')`,
		`if [ "$sum" != "$want" ]; then echo "install-go: $mod has checksum ${sum:-none}, want $want" >&2; exit 1; fi`,
		`# The module cache keeps no execute bits: set them, as the go command does when it switches to a downloaded toolchain.`,
		`chmod a+x "$dir"/bin/* "$dir"/pkg/tool/linux_amd64/*`,
		`"$dir/bin/go" version | grep -q " go`+GoVersion+` " || { echo "install-go: $dir/bin/go is not go`+GoVersion+`" >&2; exit 1; }`,
		`echo "export PATH=\"$dir/bin:\$PATH\" GOTOOLCHAIN=local" >> "$BASH_ENV"`,
	)
	installDocker = lines(
		`set -euo pipefail`,
		`key=$(mktemp)`,
		`curl -fsSL https://download.docker.com/linux/ubuntu/gpg -o "$key"`,
		`fpr=$(gpg --show-keys --with-colons "$key" | awk -F: '/^fpr/{print $10; exit}')`,
		`if [ "$fpr" != `+DockerKeyFingerprint+` ]; then echo "install-docker: Docker's apt key has fingerprint ${fpr:-none}, want `+DockerKeyFingerprint+`" >&2; exit 1; fi`,
		`sudo install -m 0755 -d /etc/apt/keyrings`,
		`sudo install -m 0644 "$key" /etc/apt/keyrings/docker.asc`,
		`echo "deb [arch=amd64 signed-by=/etc/apt/keyrings/docker.asc] https://download.docker.com/linux/ubuntu noble stable" | sudo tee /etc/apt/sources.list.d/docker.list`,
		`sudo apt-get update -qq`,
		`sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --allow-downgrades docker-ce='`+DockerAptVersion+`' docker-ce-cli='`+DockerAptVersion+`' containerd.io`,
		`sudo systemctl restart docker`,
		`got=$(docker version --format '{{.Server.Version}} {{.Client.Version}}')`,
		`if [ "$got" != "`+DockerVersion+` `+DockerVersion+`" ]; then echo "install-docker: engine and CLI are $got, want `+DockerVersion+`" >&2; exit 1; fi`,
	)
	// The binary is kept in the cache by version (built once per cache key,
	// then copied), so the jobs of a release do not each link it.
	installBuildx = lines(
		`set -euo pipefail`,
		`v=$(cd tools && GOWORK=off GOFLAGS=-mod=readonly go list -m -f '{{.Version}}' `+BuildxModule+`)`,
		`bin="$HOME/.cache/determined-environments/docker-buildx-$v/docker-buildx"`,
		`if [ ! -x "$bin" ]; then`,
		`  mkdir -p "$(dirname "$bin")"`,
		`  (cd tools && GOWORK=off GOFLAGS='-mod=readonly -buildvcs=false' go build -trimpath -ldflags "-s -w -X `+BuildxModule+`/version.Version=$v" -o "$bin.$$" `+BuildxModule+`/cmd/buildx)`,
		`  mv "$bin.$$" "$bin"`,
		`fi`,
		`mkdir -p "$HOME/.docker/cli-plugins"`,
		`cp "$bin" "$HOME/.docker/cli-plugins/docker-buildx"`,
		`docker buildx version | grep -q " $v " || { echo "install-buildx: docker buildx version is not $v: $(docker buildx version)" >&2; exit 1; }`,
	)
	// The logins go to the registry hosts of DOCKERHUB_REGISTRY and
	// NGC_REGISTRY (unset in CI: Docker Hub and nvcr.io).
	dockerLogin = lines(
		`set -euo pipefail`,
		`host=${DOCKERHUB_REGISTRY:-determinedai}; host=${host%%/*}`,
		`case "$host" in *.*|*:*|localhost) ;; *) host= ;; esac`,
		`echo "$DOCKER_PASS" | docker login -u "$DOCKER_USER" --password-stdin ${host:+"$host"}`,
	)
	ngcLogin = lines(
		`set -euo pipefail`,
		`host=${NGC_REGISTRY:-nvcr.io/isv-ngc-partner/determined}; host=${host%%/*}`,
		`echo "$NGC_API_KEY" | docker login -u "$NGC_API_USERNAME" --password-stdin "$host"`,
	)
	// The key publish signs every image with comes from the context's
	// ENVIRONMENTS_SIGNING_KEY (the PEM text); the file is the job's only.
	// Keyless signing (CircleCI's OIDC token for sigstore) is not
	// implemented: docs/supply-chain.md.
	signingKey = lines(
		`set -euo pipefail`,
		`if [ -z "${ENVIRONMENTS_SIGNING_KEY:-}" ]; then echo "signing-key: ENVIRONMENTS_SIGNING_KEY (the PEM ECDSA P-256 key every published image is signed with, docs/supply-chain.md) is not set in the job's context" >&2; exit 1; fi`,
		`key="$HOME/.environments-signing.pem"`,
		`(umask 077 && printf '%s\n' "$ENVIRONMENTS_SIGNING_KEY" > "$key")`,
		`echo "export SIGNING_KEY=\"$key\"" >> "$BASH_ENV"`,
	)
	arm64Emulation = lines(
		`set -euo pipefail`,
		`docker run --privileged --rm `+BinfmtImage+` --install arm64`,
		`grep -qx enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 || { echo "arm64-emulation: no qemu-aarch64 handler registered" >&2; exit 1; }`,
	)
)

func lines(l ...string) string { return strings.Join(l, "\n") + "\n" }

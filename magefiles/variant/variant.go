// Package variant reads the build settings (the variant flags of the old
// Makefile plus where images go) once from the environment into a struct, and
// validates them before anything is built or pushed.
package variant

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Defaults of the old Makefile.
const (
	DefaultDockerhubRegistry = "determinedai"
	DefaultRegistryRepo      = "environments"
	DefaultNGCRegistry       = "nvcr.io/isv-ngc-partner/determined"
	DefaultArtifactsDir      = "/tmp/artifacts"
	// ReportName is the file name of the publish report, which goes beside
	// ARTIFACTS_DIR (never into it) unless PUBLISH_REPORT says where.
	ReportName = "publish-report.json"
	// DefaultBuilder is the buildx builder used (and created when missing)
	// when BUILDX_BUILDER is not set.
	DefaultBuilder = "determined-environments"
)

// Settings is everything a plan depends on besides the catalog.
type Settings struct {
	// Variant flags.
	MPI, OFI, NCCL, AWSTrace bool
	// NGCPublish is true unless NGC_PUBLISH is set to the empty string (or 0).
	NGCPublish bool
	// Where images go.
	DockerhubRegistry, RegistryRepo, NGCRegistry string
	// ArtifactsDir receives the publish artifact files, and nothing else.
	ArtifactsDir string
	// Report is the path of the publish report (PUBLISH_REPORT); default
	// publish-report.json in ArtifactsDir's parent directory.
	Report string
	// Version is the contents of VERSION, Hash the short git commit.
	Version, Hash string

	// Behaviour of the run.
	DryRun     bool   // DRY_RUN=1: print, run nothing
	Push       bool   // PUSH=1: `build` pushes every platform instead of loading one into the Docker Engine
	Force      bool   // FORCE=1: publish rebuilds images that are up to date
	AllowDirty bool   // ALLOW_DIRTY=1: publish (or PUSH=1 build) from a worktree with changes
	Jobs       int    // JOBS: images built at once
	Cache      string // CACHE: "" or "registry"
	RecipesDir string // RECIPES_DIR: where Dockerfile.cpu/gpu and dockerfile_scripts live
	Builder    string // BUILDX_BUILDER: the buildx builder to use
	// BuilderExplicit is true when BUILDX_BUILDER was set: that builder must
	// exist and is never created by the tool.
	BuilderExplicit bool
	// Platform is the one platform of a local build (PLATFORM, default the
	// host's); PlatformExplicit is true when PLATFORM was set.
	Platform         string
	PlatformExplicit bool
	// Mirrors (REGISTRY_MIRRORS) maps a registry host to the mirror external
	// base images are resolved through, as the builder pulls them.
	Mirrors map[string]string
	// CheckInputs (CHECK_INPUTS=1): publish first asks every source whether
	// the external inputs of the images it builds still exist (`mage inputs
	// -check`) and stops before any build if one does not.
	CheckInputs bool

	// Supply chain (docs/supply-chain.md). SBOMGenerator (SBOM_GENERATOR) is
	// the SBOM generator image a publish build runs, pinned by digest and
	// pulled through the builder's mirrors like the bases. SigningKey
	// (SIGNING_KEY) is the private key file publish signs with; VerifyKey
	// (VERIFY_KEY) the public key `mage verify` checks with (default: the
	// public half of SIGNING_KEY).
	SBOMGenerator, SigningKey, VerifyKey string
}

// DefaultSBOMGenerator is BuildKit's SBOM generator (Syft), pinned by digest.
const DefaultSBOMGenerator = "docker.io/docker/buildkit-syft-scanner@sha256:ae4f3b554449e7e25548e7d8ccc029d17357348e30c6e3df01b92bc93654d6a9"

// Variables lists every environment variable Parse reads, for documentation
// and for `mage settings`.
var Variables = []string{
	"WITH_MPI", "WITH_OFI", "WITH_NCCL", "WITH_AWS_TRACE", "NGC_PUBLISH",
	"DOCKERHUB_REGISTRY", "REGISTRY_REPO", "NGC_REGISTRY", "ARTIFACTS_DIR", "PUBLISH_REPORT",
	"DRY_RUN", "PUSH", "FORCE", "ALLOW_DIRTY", "JOBS", "CACHE", "RECIPES_DIR", "BUILDX_BUILDER",
	"PLATFORM",
	"REGISTRY_MIRRORS",
	"CHECK_INPUTS",
	"SBOM_GENERATOR", "SIGNING_KEY", "VERIFY_KEY",
}

// Lookup is os.LookupEnv's shape, so tests can pass a map.
type Lookup func(key string) (string, bool)

// MapLookup turns a map into a Lookup.
func MapLookup(m map[string]string) Lookup {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// Parse reads the settings from env; version is the contents of the VERSION
// file and hash the short commit. Every problem is reported, each naming the
// bad value and what would be valid.
func Parse(env Lookup, version, hash string) (Settings, error) {
	var errs []error
	flag := func(key string) bool {
		v, _ := env(key)
		switch strings.TrimSpace(v) {
		case "", "0":
			return false
		case "1":
			return true
		}
		errs = append(errs, fmt.Errorf("%s=%q: must be 0 or 1 (or unset)", key, v))
		return false
	}
	str := func(key, def string) string {
		if v, ok := env(key); ok && v != "" {
			return v
		}
		return def
	}
	s := Settings{
		MPI: flag("WITH_MPI"), OFI: flag("WITH_OFI"), NCCL: flag("WITH_NCCL"), AWSTrace: flag("WITH_AWS_TRACE"),
		DockerhubRegistry: str("DOCKERHUB_REGISTRY", DefaultDockerhubRegistry),
		RegistryRepo:      str("REGISTRY_REPO", DefaultRegistryRepo),
		NGCRegistry:       str("NGC_REGISTRY", DefaultNGCRegistry),
		ArtifactsDir:      str("ARTIFACTS_DIR", DefaultArtifactsDir),
		DryRun:            flag("DRY_RUN"), Push: flag("PUSH"), Force: flag("FORCE"), AllowDirty: flag("ALLOW_DIRTY"),
		RecipesDir: str("RECIPES_DIR", "."),
		Builder:    str("BUILDX_BUILDER", DefaultBuilder),
		Version:    strings.TrimSpace(version),
		Hash:       strings.TrimSpace(hash),
	}
	if v, ok := env("BUILDX_BUILDER"); ok && v != "" {
		s.BuilderExplicit = true
	}
	s.CheckInputs = flag("CHECK_INPUTS")
	s.Report = str("PUBLISH_REPORT", DefaultReport(s.ArtifactsDir))
	// NGC publishing is on unless NGC_PUBLISH is set to the empty string.
	switch v, ok := env("NGC_PUBLISH"); {
	case !ok || v == "1":
		s.NGCPublish = true
	case v == "" || v == "0":
		s.NGCPublish = false
	default:
		errs = append(errs, fmt.Errorf("NGC_PUBLISH=%q: must be 1 (publish to NGC, the default when unset) or empty/0 (no NGC)", v))
	}
	s.Jobs = DefaultJobs
	if v, ok := env("JOBS"); ok && v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxJobs {
			errs = append(errs, fmt.Errorf("JOBS=%q: must be a whole number from 1 to %d (unset: %d, every image whose base is done at once)", v, MaxJobs, DefaultJobs))
		} else {
			s.Jobs = n
		}
	}
	switch v, _ := env("CACHE"); v {
	case "", "registry":
		s.Cache = v
	default:
		errs = append(errs, fmt.Errorf("CACHE=%q: must be empty (no external cache) or registry (--cache-from/--cache-to type=registry)", v))
	}
	var err error
	if s.Platform, s.PlatformExplicit, err = parsePlatform(env); err != nil {
		errs = append(errs, err)
	}
	if v, _ := env("REGISTRY_MIRRORS"); v != "" {
		m, err := parseMirrors(v)
		if err != nil {
			errs = append(errs, err)
		}
		s.Mirrors = m
	}
	s.SBOMGenerator = str("SBOM_GENERATOR", DefaultSBOMGenerator)
	if !pinnedRE.MatchString(s.SBOMGenerator) {
		errs = append(errs, fmt.Errorf("SBOM_GENERATOR=%q: must be an image pinned by digest, <image>@sha256:<64 hex digits> (unset: %s)", s.SBOMGenerator, DefaultSBOMGenerator))
	}
	s.SigningKey, s.VerifyKey = str("SIGNING_KEY", ""), str("VERIFY_KEY", "")
	errs = append(errs, s.validate()...)
	if len(errs) > 0 {
		return s, fmt.Errorf("invalid settings:\n  %w", joinIndented(errs))
	}
	return s, nil
}

// DefaultReport is where the report goes when PUBLISH_REPORT is not set:
// publish-report.json beside the artifacts directory (/tmp/publish-report.json
// for the default /tmp/artifacts), so that ARTIFACTS_DIR, which CI stores
// whole, holds nothing but artifact files.
func DefaultReport(artifactsDir string) string {
	return filepath.Join(filepath.Dir(filepath.Clean(artifactsDir)), ReportName)
}

var (
	pinnedRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9._:/-]*(:[A-Za-z0-9_.-]+)?@sha256:[0-9a-f]{64}$`)
	versionRE = regexp.MustCompile(`^v?[0-9]+(\.[0-9]+){1,3}([.-][0-9A-Za-z][0-9A-Za-z.-]*)?$`)
	hashRE    = regexp.MustCompile(`^[0-9a-f]{4,40}$`)
	repoRE    = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)
)

func (s Settings) validate() []error {
	var errs []error
	if s.OFI && !s.MPI {
		errs = append(errs, errors.New("WITH_OFI=1 needs WITH_MPI=1 (OFI replaces UCX in the MPI build)"))
	}
	if s.NCCL && !s.MPI {
		errs = append(errs, errors.New("WITH_NCCL=1 needs WITH_MPI=1 (without MPI, Horovod already uses NCCL)"))
	}
	if s.AWSTrace && !(s.MPI && s.OFI && s.NCCL) {
		errs = append(errs, errors.New("WITH_AWS_TRACE=1 needs WITH_MPI=1, WITH_OFI=1 and WITH_NCCL=1 (it traces the AWS OFI-NCCL plugin, built only with all three, in tf2-gpu)"))
	}
	if within(s.Report, s.ArtifactsDir) {
		errs = append(errs, fmt.Errorf("PUBLISH_REPORT=%q is inside ARTIFACTS_DIR=%q, which must hold nothing but artifact files; put the report elsewhere (default %s)", s.Report, s.ArtifactsDir, DefaultReport(s.ArtifactsDir)))
	}
	if s.Version == "" {
		errs = append(errs, errors.New("VERSION is missing or empty: put a version such as 0.26.4 in the VERSION file"))
	} else if !versionRE.MatchString(s.Version) {
		errs = append(errs, fmt.Errorf("VERSION %q is not a version: want digits and dots like 0.26.4 (optionally -rc1)", s.Version))
	}
	if !hashRE.MatchString(s.Hash) {
		errs = append(errs, fmt.Errorf("commit hash %q is not a short git hash (is this a git checkout with a commit?)", s.Hash))
	}
	errs = append(errs, checkRepository("DOCKERHUB_REGISTRY", s.DockerhubRegistry)...)
	errs = append(errs, checkRepository("NGC_REGISTRY", s.NGCRegistry)...)
	if !repoRE.MatchString(s.RegistryRepo) {
		errs = append(errs, fmt.Errorf("REGISTRY_REPO=%q: must be a lower-case repository name (letters, digits, . _ - and /), like environments or environments-dev", s.RegistryRepo))
	}
	return errs
}

// checkRepository validates a registry setting: an optional registry host
// (with port) followed by a namespace path, as in determinedai or
// nvcr.io/isv-ngc-partner/determined.
func checkRepository(key, v string) []error {
	bad := func(why string) []error {
		return []error{fmt.Errorf("%s=%q: %s; want a registry host and/or namespace like determinedai, nvcr.io/org/team or 127.0.0.1:5000/team", key, v, why)}
	}
	switch {
	case strings.Contains(v, "://"):
		return bad("no URL scheme allowed")
	case strings.ContainsAny(v, " \t\n"):
		return bad("contains white space")
	case strings.HasSuffix(v, "/") || strings.HasPrefix(v, "/"):
		return bad("leading or trailing slash")
	}
	host, path, found := strings.Cut(v, "/")
	if !found || !(strings.ContainsAny(host, ".:") || host == "localhost") {
		host, path = "", v
	}
	if host != "" {
		if _, err := name.NewRegistry(host, name.StrictValidation); err != nil {
			return bad(fmt.Sprintf("bad registry host %q", host))
		}
	}
	if path != "" && !repoRE.MatchString(path) {
		return bad("the namespace must be lower case (letters, digits, . _ -)")
	}
	if _, err := name.NewRepository(v+"/x", name.StrictValidation); err != nil && host != "" {
		return bad(err.Error())
	}
	return nil
}

// within reports whether path is dir or below it (lexically).
func within(path, dir string) bool {
	if path == "" || dir == "" {
		return false
	}
	rel, err := filepath.Rel(filepath.Clean(dir), filepath.Clean(path))
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

func joinIndented(errs []error) error {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return errors.New(strings.Join(msgs, "\n  "))
}

// Flavour is what the tag suffix encodes: "", "mpi" or "mpi-ofi".
func (s Settings) Flavour() string {
	switch {
	case s.MPI && s.OFI:
		return "mpi-ofi"
	case s.MPI:
		return "mpi"
	}
	return ""
}

// MPIDigit is the <M> of the artifact files: 1 with WITH_MPI=1, else 0.
func (s Settings) MPIDigit() string {
	if s.MPI {
		return "1"
	}
	return "0"
}

// Describe lists the resolved settings, one "KEY=value" a line.
func (s Settings) Describe() []string {
	b := func(v bool) string {
		if v {
			return "1"
		}
		return "0"
	}
	ngc := "1"
	if !s.NGCPublish {
		ngc = ""
	}
	return []string{
		"WITH_MPI=" + b(s.MPI), "WITH_OFI=" + b(s.OFI), "WITH_NCCL=" + b(s.NCCL), "WITH_AWS_TRACE=" + b(s.AWSTrace),
		"NGC_PUBLISH=" + ngc, "DOCKERHUB_REGISTRY=" + s.DockerhubRegistry, "REGISTRY_REPO=" + s.RegistryRepo,
		"NGC_REGISTRY=" + s.NGCRegistry, "ARTIFACTS_DIR=" + s.ArtifactsDir, "PUBLISH_REPORT=" + s.Report, "VERSION=" + s.Version, "HASH=" + s.Hash,
		"DRY_RUN=" + b(s.DryRun), "PUSH=" + b(s.Push), "FORCE=" + b(s.Force), "ALLOW_DIRTY=" + b(s.AllowDirty),
		"JOBS=" + strconv.Itoa(s.Jobs), "CACHE=" + s.Cache, "RECIPES_DIR=" + s.RecipesDir, "BUILDX_BUILDER=" + s.Builder,
		"PLATFORM=" + s.Platform,
		"REGISTRY_MIRRORS=" + describeMirrors(s.Mirrors),
		"CHECK_INPUTS=" + b(s.CheckInputs),
		"SBOM_GENERATOR=" + s.SBOMGenerator, "SIGNING_KEY=" + s.SigningKey, "VERIFY_KEY=" + s.VerifyKey,
	}
}

// Combo is one variant of the publish matrix, as environment settings.
type Combo struct {
	Name string
	Env  map[string]string
	// CI is true for the variants the CircleCI workflows publish (`mage
	// ciConfig`, one job per framework image); the others are published by
	// hand only.
	CI bool
}

// Matrix is the list of variants the tool publishes and the tests check
// (`mage ciMatrix` prints the CI jobs made from it), so the matrix is kept in
// one place.
//
// CI publishes what the old CI published: WITH_MPI 0 and 1, no OFI, no NCCL.
// Both write publish-<image>-<M> files, M being the WITH_MPI value, so they
// cannot collide. The OFI flavour (with NCCL, the AWS EFA stack) is published
// by hand only: its artifact files would have the same names and keys as the
// mpi ones (the contract's <M> is the WITH_MPI value), so it never enters CI.
// WITH_NCCL and WITH_AWS_TRACE do not change tags either, so each tag flavour
// is published with one NCCL setting: none with -mpi, NCCL with -mpi-ofi.
func Matrix() []Combo {
	return []Combo{
		{Name: "default", Env: map[string]string{}, CI: true},
		{Name: "mpi", Env: map[string]string{"WITH_MPI": "1"}, CI: true},
		{Name: "mpi-ofi", Env: map[string]string{"WITH_MPI": "1", "WITH_OFI": "1", "WITH_NCCL": "1"}},
	}
}

// MPIDigit is the WITH_MPI value of the combo, "0" or "1": the <M> of its
// artifact files and of its CI job names.
func (c Combo) MPIDigit() string {
	if c.Env["WITH_MPI"] == "1" {
		return "1"
	}
	return "0"
}

// Words renders the combo as KEY=VALUE words in a fixed order.
func (c Combo) Words() []string {
	var out []string
	for _, k := range []string{"WITH_MPI", "WITH_OFI", "WITH_NCCL", "WITH_AWS_TRACE"} {
		if v, ok := c.Env[k]; ok {
			out = append(out, k+"="+v)
		}
	}
	return out
}

package builder

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// DefaultContext is the docker context the CLI uses when none is chosen; its
// engine is DOCKER_HOST's, or the local socket.
const DefaultContext = "default"

// ContextName is the docker context the docker CLI talks to, resolved as the
// CLI resolves it: DOCKER_HOST set means the default context, else
// DOCKER_CONTEXT, else the config file's currentContext (`docker context
// use`), else "default". buildx gives every context a builder of the same
// name with the docker driver: the engine's own BuildKit.
func ContextName(dockerHost, dockerContext, current string) string {
	switch {
	case dockerHost != "":
		return DefaultContext
	case dockerContext != "":
		return dockerContext
	case current != "":
		return current
	}
	return DefaultContext
}

// CurrentContext reads currentContext from config.json in the docker CLI's
// configuration directory; "" when there is no such file or key.
func CurrentContext(configDir string) (string, error) {
	path := filepath.Join(configDir, "config.json")
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading the docker CLI's configuration: %w", err)
	}
	var cfg struct {
		CurrentContext string `json:"currentContext"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return "", fmt.Errorf("reading the docker CLI's configuration %s: %w (docker itself cannot use it; fix or remove it)", path, err)
	}
	return cfg.CurrentContext, nil
}

// EngineBuilder names the builder of the current docker context (the
// engine's own, docker driver) from the environment (getenv) and the docker
// CLI's configuration (DOCKER_CONFIG, default ~/.docker).
func EngineBuilder(getenv func(string) string) (string, error) {
	host, named := getenv("DOCKER_HOST"), getenv("DOCKER_CONTEXT")
	if host != "" || named != "" {
		return ContextName(host, named, ""), nil
	}
	dir := getenv("DOCKER_CONFIG")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return DefaultContext, nil // no home: no config file, the CLI uses the default context
		}
		dir = filepath.Join(home, ".docker")
	}
	current, err := CurrentContext(dir)
	if err != nil {
		return "", err
	}
	return ContextName("", "", current), nil
}

// LocalFacts is what the runner found out before a local build, all that
// ChooseLocal decides from.
type LocalFacts struct {
	// Named is BUILDX_BUILDER ("" when unset).
	Named string
	// Engine is the current docker context's builder (EngineBuilder) and
	// what `docker buildx inspect` says about it, or why it could not say.
	Engine    string
	EngineIs  Info
	EngineErr error
	// Want are the platforms the build loads into the engine.
	Want []string
	// Fallback is the builder used when the engine's cannot build Want
	// (the one `mage builder` creates).
	Fallback string
}

// LocalChoice is the builder a local build runs on.
type LocalChoice struct {
	Builder string
	// Named: BUILDX_BUILDER chose it; it must exist and is never created.
	Named bool
	// Engine: the engine's own builder (docker driver), which writes the
	// images straight into the engine's image store (no tarball, no copy).
	Engine bool
	// Why says, in one line, why the build falls back to Builder with
	// --load ("" unless it does).
	Why string
}

// ChooseLocal picks the builder of a local build: BUILDX_BUILDER when set;
// else the engine's own builder when it is a docker-driver builder that
// builds every wanted platform; else the fallback builder, saying why.
func ChooseLocal(f LocalFacts) LocalChoice {
	if f.Named != "" {
		return LocalChoice{Builder: f.Named, Named: true}
	}
	why := engineUnfit(f)
	if why == "" {
		return LocalChoice{Builder: f.Engine, Engine: true}
	}
	return LocalChoice{Builder: f.Fallback, Why: fmt.Sprintf(
		"building on builder %s with --load (each image exported from it and loaded into the engine, slower): %s", f.Fallback, why)}
}

// engineUnfit says why the engine's builder cannot do the build ("" when it can).
func engineUnfit(f LocalFacts) string {
	switch {
	case f.EngineErr != nil:
		return fmt.Sprintf("the Docker Engine's own builder %q could not be inspected (%s)", f.Engine, firstLine(f.EngineErr.Error()))
	case f.EngineIs.Driver != "docker":
		return fmt.Sprintf("builder %q of the docker context has driver %q, not the engine's own (docker)", f.Engine, f.EngineIs.Driver)
	}
	missing := Missing(f.EngineIs.Platforms, f.Want)
	if len(missing) == 0 {
		return ""
	}
	have := strings.Join(f.EngineIs.Platforms, ", ")
	if have == "" {
		have = "none"
	}
	return fmt.Sprintf("the Docker Engine's own builder %q cannot build %s (it lists %s; with emulation of that platform it could)",
		f.Engine, strings.Join(missing, ", "), have)
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return strings.TrimSpace(s[:i]) + " …"
	}
	return s
}

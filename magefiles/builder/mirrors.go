package builder

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// BuildkitdConfig is the buildkitd.toml of a builder that pulls each
// registry's images through its mirror (REGISTRY_MIRRORS: registry host ->
// mirror host[:port]): one [registry."REGISTRY"] table per registry, sorted,
// with mirrors = ["MIRROR"]. BuildKit asks the mirror first and falls back
// to the registry.
func BuildkitdConfig(mirrors map[string]string) string {
	var b strings.Builder
	for i, reg := range slices.Sorted(maps.Keys(mirrors)) {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "[registry.%s]\n  mirrors = [%s]\n", tomlString(reg), tomlString(mirrors[reg]))
	}
	return b.String()
}

// tomlString is s as a TOML basic string: quotes and backslashes escaped,
// control characters as \uXXXX (Go's own escapes, like \x00, are not TOML).
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteRune(c)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, "\\u%04X", c)
		default:
			b.WriteRune(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// CreateArgs is the command that creates the builder name with the default
// driver; config is the buildkitd.toml it is created with ("" for none).
// buildx copies the file into the builder's definition at create time.
func CreateArgs(name, config string) []string {
	args := []string{"docker", "buildx", "create", "--name", name, "--driver", DefaultDriver}
	if config != "" {
		args = append(args, "--buildkitd-config", config)
	}
	return append(args, "--bootstrap")
}

// ConfiguredMirrors reads the registry mirrors of the BuildKit config a
// builder was created with from `docker buildx inspect` output, which
// prints each file of the builder as a "File#NAME:" line followed by its
// lines, each after "> ". buildx re-encodes the file it was given (v0.38:
// no indentation, 'literal' strings, a bare [registry] table first), so
// both TOML string forms are read. Registry host -> its mirrors; empty
// when the builder has no config file.
func ConfiguredMirrors(inspect string) map[string][]string {
	out := map[string][]string{}
	inFile, reg := false, ""
	for _, line := range strings.Split(inspect, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "File#") {
			inFile, reg = true, ""
			continue
		}
		content, ok := strings.CutPrefix(line, ">")
		if !ok {
			inFile = false
			continue
		}
		if !inFile {
			continue
		}
		content = strings.TrimSpace(content)
		if strings.HasPrefix(content, "[") {
			reg = ""
			if q, ok := strings.CutPrefix(content, "[registry."); ok {
				if r, ok := tomlUnquote(strings.TrimSuffix(q, "]")); ok {
					reg = r
				}
			}
			continue
		}
		key, val, ok := strings.Cut(content, "=")
		if !ok || reg == "" || strings.TrimSpace(key) != "mirrors" {
			continue
		}
		val = strings.Trim(strings.TrimSpace(val), "[]")
		for _, m := range strings.Split(val, ",") {
			if u, ok := tomlUnquote(strings.TrimSpace(m)); ok {
				out[reg] = append(out[reg], u)
			}
		}
	}
	return out
}

// MirrorsWarning says, in one line, which of the wanted mirrors
// (REGISTRY_MIRRORS) the builder name was not created with: a builder
// keeps the BuildKit config it was created with, so its builds would pull
// those registries directly. "" when it has them all, when none is wanted,
// or for a builder named by BUILDX_BUILDER (explicit), whose BuildKit is
// configured by whoever runs it.
func MirrorsWarning(name string, explicit bool, info Info, want map[string]string) string {
	if explicit || info.Driver != DefaultDriver {
		return ""
	}
	var lack []string
	for _, reg := range slices.Sorted(maps.Keys(want)) {
		if !slices.Contains(info.Mirrors[reg], want[reg]) {
			lack = append(lack, reg+"="+want[reg])
		}
	}
	if len(lack) == 0 {
		return ""
	}
	return fmt.Sprintf("builder %s was created without the registry mirror %s of REGISTRY_MIRRORS and keeps the BuildKit config it was created with, so it pulls from the registry itself; recreate it with the mirrors: `docker buildx rm %s && mage builder`",
		name, strings.Join(lack, ", "), name)
}

// tomlUnquote is the value of a TOML literal ('...') or basic ("...") string.
func tomlUnquote(s string) (string, bool) {
	if len(s) >= 2 && s[0] == '\'' && s[len(s)-1] == '\'' {
		return s[1 : len(s)-1], true
	}
	if u, err := strconv.Unquote(s); err == nil && strings.HasPrefix(s, `"`) {
		return u, true
	}
	return "", false
}

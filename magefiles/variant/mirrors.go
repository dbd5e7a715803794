package variant

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// parseMirrors reads REGISTRY_MIRRORS: comma-separated REGISTRY=MIRROR pairs
// of registry hosts, e.g. "docker.io=mirror.example:5000". External base
// images of REGISTRY are resolved to digests through MIRROR first, as a
// BuildKit configured with that mirror pulls them.
func parseMirrors(v string) (map[string]string, error) {
	out := map[string]string{}
	for _, pair := range strings.Split(v, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		reg, mirror, ok := strings.Cut(pair, "=")
		if !ok || reg == "" || mirror == "" {
			return nil, fmt.Errorf("REGISTRY_MIRRORS=%q: %q is not REGISTRY=MIRROR (for example docker.io=mirror.example:5000)", v, pair)
		}
		for _, h := range []string{reg, mirror} {
			if _, err := name.NewRegistry(h); err != nil || strings.Contains(h, "/") {
				return nil, fmt.Errorf("REGISTRY_MIRRORS=%q: %q is not a registry host[:port]", v, h)
			}
		}
		out[reg] = mirror
	}
	return out, nil
}

func describeMirrors(m map[string]string) string {
	var pairs []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		pairs = append(pairs, k+"="+m[k])
	}
	return strings.Join(pairs, ",")
}

package variant

import (
	"fmt"
	"runtime"
	"strings"
)

// LocalPlatforms are the values PLATFORM accepts: the platforms the catalog
// builds.
var LocalPlatforms = []string{"linux/amd64", "linux/arm64"}

// HostPlatform is the platform of a local build when PLATFORM is not set:
// linux/ plus this machine's architecture (a Mac's Docker runs a Linux VM of
// the same architecture).
func HostPlatform() string { return "linux/" + runtime.GOARCH }

// parsePlatform reads PLATFORM, the one platform a local build (build without
// PUSH=1) loads into the Docker Engine. Unset or empty means the host's.
func parsePlatform(env Lookup) (platform string, explicit bool, err error) {
	v, ok := env("PLATFORM")
	v = strings.TrimSpace(v)
	if !ok || v == "" {
		return HostPlatform(), false, nil
	}
	for _, p := range LocalPlatforms {
		if v == p {
			return v, true, nil
		}
	}
	return "", false, fmt.Errorf("PLATFORM=%q: must be one of %s (the one platform a local build loads into the Docker Engine; unset means this machine's, %s)",
		v, strings.Join(LocalPlatforms, ", "), HostPlatform())
}

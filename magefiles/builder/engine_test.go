package builder

import "testing"

func TestDriverOfEachKindOfBuilder(t *testing.T) {
	for want, out := range map[string]string{
		"docker":           "Name:          desktop-linux\nDriver:        docker\nLast Activity: 2026-11-27\n\nNodes:\nName:      desktop-linux\nEndpoint:  desktop-linux\nStatus:    running\nPlatforms: linux/arm64, linux/amd64\n",
		"docker-container": "Name:          determined-environments\nDriver:        docker-container\n\nNodes:\nName:      determined-environments0\nEndpoint:  unix:///var/run/docker.sock\nDriver Options: network=\"host\"\nPlatforms: linux/amd64\n",
		"remote":           "Name:   e2e\nDriver: remote\nNodes:\nName: e2e0\nEndpoint: unix:///tmp/bk.sock\n",
		"kubernetes":       "Name:          k8s\nDriver:        kubernetes\n",
		"":                 "Name: broken\nStatus: inactive\n",
	} {
		if got := Driver(out); got != want {
			t.Errorf("Driver(%q) = %q, want %q", out, got, want)
		}
	}
}

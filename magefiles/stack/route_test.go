package stack

import (
	"net/netip"
	"slices"
	"testing"
)

func TestRoutePrefixes(t *testing.T) {
	routes := `default via 192.0.2.1 dev eth0
192.0.2.0/24 dev eth0 proto kernel scope link src 192.0.2.2
10.200.0.0/16 via 192.0.2.9 dev eth0
local 127.0.0.0/8 dev lo table local proto kernel scope host src 127.0.0.1
local 192.0.2.2 dev eth0 table local proto kernel scope host src 192.0.2.2
broadcast 192.0.2.255 dev eth0 table local proto kernel scope link src 192.0.2.2
`
	got := routePrefixes(routes)
	want := []string{"192.0.2.0/24", "10.200.0.0/16", "127.0.0.0/8", "192.0.2.2/32", "192.0.2.255/32"}
	var gotS []string
	for _, p := range got {
		gotS = append(gotS, p.String())
	}
	if !slices.Equal(gotS, want) {
		t.Fatalf("routePrefixes = %v, want %v", gotS, want)
	}
	// A bridge subnet inside a routed network overlaps it; one beside it does not.
	inside := netip.MustParsePrefix("10.200.7.0/24")
	beside := netip.MustParsePrefix("10.201.7.0/24")
	if !slices.ContainsFunc(got, inside.Overlaps) || slices.ContainsFunc(got, beside.Overlaps) {
		t.Errorf("overlap: %s %v, %s %v", inside, slices.ContainsFunc(got, inside.Overlaps), beside, slices.ContainsFunc(got, beside.Overlaps))
	}
}

func TestBridgeNames(t *testing.T) {
	for _, pid := range []int{1, 4194304, 0x7fffffff} {
		n := bridgeName(pid, [2]byte{0xab, 0x01})
		if len(n) > 15 {
			t.Errorf("bridgeName(%d) = %q: longer than a link name may be", pid, n)
		}
		if got, ok := bridgeOwner(n); !ok || got != pid {
			t.Errorf("bridgeOwner(%q) = %d, %v; want %d", n, got, ok, pid)
		}
	}
	for _, other := range []string{"docker0", "de-abcdef", "deadbeef", "de12-xyz1", "br-0123456789ab"} {
		if pid, ok := bridgeOwner(other); ok {
			t.Errorf("bridgeOwner(%q) = %d: not one of the stack's bridges", other, pid)
		}
	}
}

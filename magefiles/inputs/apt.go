package inputs

import (
	"bufio"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// aptIndex is one Packages index: package -> versions ("" when the
// repository has no such index).
type aptIndex struct {
	url      string
	packages map[string][]string
	absent   bool
}

// checkApt reads the repository's Packages indexes
// (dists/SUITE/COMPONENT/binary-ARCH/Packages.gz, or Packages), component
// by component until one lists the package (and the version, when one is
// declared). A suite with no index at all is gone from the repository (an
// Ubuntu release past its end of life moves to old-releases).
func (c *Checker) checkApt(ctx context.Context, r *Result) {
	in := r.Input
	arch := in.Arch
	if arch == "" {
		arch = "amd64"
	}
	base := strings.TrimSuffix(c.Sources.URL(in.Source), "/")
	absent := 0
	var asked []string
	for _, comp := range in.Components {
		idx, err := c.aptIndex(ctx, fmt.Sprintf("%s/dists/%s/%s/binary-%s/Packages", base, in.Suite, comp, arch))
		if err != nil {
			r.Status, r.Detail, r.Asked = Unreachable, err.Error(), strings.Join(append(asked, fmt.Sprintf("%s/dists/%s/%s", base, in.Suite, comp)), " ")
			return
		}
		asked = append(asked, idx.url)
		if idx.absent {
			absent++
			continue
		}
		versions, ok := idx.packages[in.Name]
		if !ok {
			continue
		}
		r.Asked = idx.url
		if in.Version == "" {
			r.Status, r.Detail = OK, comp+" has "+strings.Join(versions, ", ")
			return
		}
		for _, v := range versions {
			if v == in.Version {
				r.Status, r.Detail = OK, comp+" has "+v
				return
			}
		}
		r.Status, r.Detail = Missing, fmt.Sprintf("%s has %s only %s, not %s", comp, in.Name, strings.Join(versions, ", "), in.Version)
		return
	}
	r.Asked = strings.Join(asked, " ")
	if absent == len(in.Components) {
		r.Status, r.Detail = Missing, fmt.Sprintf("the repository %s has no suite %s for %s any more (no Packages index)", in.Source, in.Suite, arch)
		return
	}
	r.Status, r.Detail = Missing, fmt.Sprintf("no package %s in %s %s (%s) for %s", in.Name, in.Source, in.Suite, strings.Join(in.Components, ", "), arch)
}

// aptIndex reads one Packages index once (Packages.gz, else Packages).
func (c *Checker) aptIndex(ctx context.Context, u string) (*aptIndex, error) {
	v, err := c.cached("apt "+u, func() (any, error) {
		for _, try := range []string{u + ".gz", u} {
			body, code, err := c.get(ctx, try)
			if err != nil {
				return nil, err
			}
			if code == http.StatusNotFound || code == http.StatusGone {
				continue
			}
			if code != http.StatusOK {
				return nil, fmt.Errorf("GET %s: HTTP %d %s", try, code, http.StatusText(code))
			}
			defer body.Close()
			var rd io.Reader = body
			if strings.HasSuffix(try, ".gz") {
				gz, err := gzip.NewReader(body)
				if err != nil {
					return nil, fmt.Errorf("GET %s: %w", try, err)
				}
				rd = gz
			}
			pk, err := parsePackages(rd)
			if err != nil {
				return nil, fmt.Errorf("GET %s: %w", try, err)
			}
			return &aptIndex{url: try, packages: pk}, nil
		}
		return &aptIndex{url: u, absent: true}, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*aptIndex), nil
}

// parsePackages reads the Package and Version fields of a Packages file.
func parsePackages(r io.Reader) (map[string][]string, error) {
	out := map[string][]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	pkg := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			pkg = ""
		case strings.HasPrefix(line, "Package:"):
			pkg = strings.TrimSpace(strings.TrimPrefix(line, "Package:"))
			if _, ok := out[pkg]; !ok {
				out[pkg] = nil
			}
		case strings.HasPrefix(line, "Version:") && pkg != "":
			out[pkg] = append(out[pkg], strings.TrimSpace(strings.TrimPrefix(line, "Version:")))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading the Packages index: %w", err)
	}
	return out, nil
}

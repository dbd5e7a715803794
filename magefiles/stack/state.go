package stack

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// RegistryState lists every repository:tag of the given loopback
// registries ("127.0.0.1:PORT") with the digest it points at, one a line,
// sorted: two states are equal when no tag was added, removed or moved. A
// repository whose tags were all deleted lists none.
func RegistryState(ctx context.Context, regs ...string) (string, error) {
	var lines []string
	for _, r := range regs {
		reg, err := name.NewRegistry(r, name.Insecure)
		if err != nil {
			return "", fmt.Errorf("stack: %w", err)
		}
		repos, err := remote.Catalog(ctx, reg)
		if err != nil {
			return "", fmt.Errorf("stack: catalog %s: %w", r, err)
		}
		for _, repo := range repos {
			rp, err := name.NewRepository(r+"/"+repo, name.Insecure)
			if err != nil {
				return "", fmt.Errorf("stack: %w", err)
			}
			tags, err := remote.List(rp, remote.WithContext(ctx))
			var te *transport.Error
			if err != nil && !(errors.As(err, &te) && te.StatusCode == http.StatusNotFound) {
				return "", fmt.Errorf("stack: list %s: %w", rp, err)
			}
			for _, tg := range tags {
				d, err := remote.Head(rp.Tag(tg), remote.WithContext(ctx))
				if err != nil {
					return "", fmt.Errorf("stack: head %s:%s: %w", rp, tg, err)
				}
				lines = append(lines, rp.String()+":"+tg+" "+d.Digest.String())
			}
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n"), nil
}

// Package protocols holds Aura's protocol definitions as .choreo files
// compiled into the binary, so a daemon runs exactly the protocols it was
// built with and a peer cannot be talked into a different version at run
// time. Each file is self-contained: a do statement may only name a
// protocol of the same file.
//
// Costs and journal facts follow aura-notes §6 (and §4.4 for epoch
// rotation). Capability names not given there (guardian:*, consensus:witness,
// recovery:distribute|approve|complete, epoch:*, transport:ping) are Aura's
// "area:verb" convention applied by us.
package protocols

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/aura-p2p/aura/internal/choreo"
	"github.com/aura-p2p/aura/internal/core"
)

//go:embed *.choreo
var files embed.FS

// FS returns the embedded .choreo files.
func FS() fs.FS { return files }

// Files lists the embedded file names, sorted.
func Files() []string {
	entries, err := files.ReadDir(".")
	if err != nil {
		return nil // cannot happen with an embed.FS root
	}
	var out []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".choreo") {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out
}

// LoadFile parses, checks and projects one embedded file.
func LoadFile(name string) (*choreo.File, []*choreo.Projection, error) {
	src, err := files.ReadFile(path.Clean(name))
	if err != nil {
		return nil, nil, fmt.Errorf("protocol file %s: %w", name, core.ErrNotFound)
	}
	f, ps, err := choreo.Load(src)
	if err != nil {
		// "file:line:col: message", the usual compiler form.
		return nil, nil, fmt.Errorf("%s:%w", name, err)
	}
	return f, ps, nil
}

// Lookup finds the projection of the protocol called name in any embedded
// file. Protocol names are unique across files (a test checks it).
func Lookup(name string) (*choreo.Projection, error) {
	for _, file := range Files() {
		_, ps, err := LoadFile(file)
		if err != nil {
			return nil, err
		}
		for _, p := range ps {
			if p.Protocol.Name == name {
				return p, nil
			}
		}
	}
	return nil, fmt.Errorf("protocol %s: %w", name, choreo.ErrUnknown)
}

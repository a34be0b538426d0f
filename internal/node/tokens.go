package node

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/aura-p2p/aura/internal/core"
	"github.com/aura-p2p/aura/internal/rpc"
)

// The control token file (control.token_file) holds the bearer tokens of the
// TCP control listener, one per line:
//
//	TOKEN LEVEL NAME
//
// LEVEL is read, write or admin and NAME tells tokens apart in refusals;
// blank lines and lines starting with # are ignored. A line holding only a
// token is an admin token, so a file in the original single-token format
// keeps working unchanged. aurad reads the file at start only.

// minTokenLen keeps hand-written tokens out of guessing range.
const minTokenLen = 16

// tokenBytes is the entropy of a token `aurad token create` makes.
const tokenBytes = 32

var tokenNameRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

const tokenFileHeader = `# aurad control tokens, one per line: TOKEN LEVEL NAME, where LEVEL is read,
# write or admin. A line holding only a token is an admin token.
# aurad reads this file at start: restart it after a change.
`

// ReadTokenFile reads and checks the token file at path: owner-only, every
// line well formed, no token or name twice, at least one token.
func ReadTokenFile(path string) ([]rpc.Token, error) {
	if err := checkSecretFile(path); err != nil {
		return nil, fmt.Errorf("control token file: %w", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("control token file: %w: %w", err, core.ErrInvalidArgument)
	}
	toks, err := parseTokens(path, b)
	if err != nil {
		return nil, err
	}
	if len(toks) == 0 {
		return nil, fmt.Errorf("control token file %s holds no token (add one with `aurad token create`): %w", path, core.ErrInvalidArgument)
	}
	return toks, nil
}

func parseTokens(path string, b []byte) ([]rpc.Token, error) {
	var toks []rpc.Token
	secretLine := map[string]int{}
	nameLine := map[string]int{}
	for i, line := range strings.Split(string(b), "\n") {
		n := i + 1
		fields := strings.Fields(line)
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		// Errors name the line, never the secret: they end up in logs.
		t := rpc.Token{Secret: fields[0], Level: rpc.Admin}
		switch len(fields) {
		case 1:
		case 3:
			level, err := rpc.ParsePermission(fields[1])
			if err != nil {
				return nil, fmt.Errorf("control token file %s line %d: %w", path, n, err)
			}
			t.Level, t.Name = level, fields[2]
			if !tokenNameRE.MatchString(t.Name) {
				return nil, fmt.Errorf("control token file %s line %d: name %q is not 1-64 letters, digits, '.', '_' or '-': %w", path, n, t.Name, core.ErrInvalidArgument)
			}
			if prev, dup := nameLine[t.Name]; dup {
				return nil, fmt.Errorf("control token file %s lines %d and %d both name a token %q: %w", path, prev, n, t.Name, core.ErrInvalidArgument)
			}
			nameLine[t.Name] = n
		default:
			return nil, fmt.Errorf("control token file %s line %d has %d fields; want TOKEN LEVEL NAME, or a lone TOKEN for an admin token: %w", path, n, len(fields), core.ErrInvalidArgument)
		}
		if len(t.Secret) < minTokenLen {
			return nil, fmt.Errorf("control token file %s line %d: token is shorter than %d characters: %w", path, n, minTokenLen, core.ErrInvalidArgument)
		}
		if prev, dup := secretLine[t.Secret]; dup {
			return nil, fmt.Errorf("control token file %s lines %d and %d hold the same token: %w", path, prev, n, core.ErrInvalidArgument)
		}
		secretLine[t.Secret] = n
		toks = append(toks, t)
	}
	return toks, nil
}

// CreateToken adds a new random token with level and name (a free name is
// made up when empty) to the token file at path, creating the file if
// needed, and returns it. The file is rewritten atomically and fsynced, so a
// crash leaves either the old tokens or all of them; a file that does not
// parse is left as it is.
func CreateToken(path string, level rpc.Permission, name string, random io.Reader) (rpc.Token, error) {
	if !level.Valid() {
		return rpc.Token{}, fmt.Errorf("level %s: %w", level, core.ErrInvalidArgument)
	}
	if name != "" && !tokenNameRE.MatchString(name) {
		return rpc.Token{}, fmt.Errorf("token name %q is not 1-64 letters, digits, '.', '_' or '-': %w", name, core.ErrInvalidArgument)
	}
	// Rewrite where a symlinked file points, not the link.
	target, err := filepath.EvalSymlinks(path)
	var old []byte
	switch {
	case errors.Is(err, fs.ErrNotExist):
		target = path
		old = []byte(tokenFileHeader)
	case err != nil:
		return rpc.Token{}, fmt.Errorf("control token file: %w", err)
	default:
		if err := checkSecretFile(target); err != nil {
			return rpc.Token{}, fmt.Errorf("control token file: %w", err)
		}
		if old, err = os.ReadFile(target); err != nil {
			return rpc.Token{}, fmt.Errorf("control token file: %w", err)
		}
	}
	existing, err := parseTokens(path, old)
	if err != nil {
		return rpc.Token{}, fmt.Errorf("%w; fix the file before adding a token", err)
	}
	names := map[string]bool{}
	for _, t := range existing {
		names[t.Name] = true
	}
	if name == "" {
		for i := len(existing) + 1; ; i++ {
			if name = fmt.Sprintf("%s-%d", level, i); !names[name] {
				break
			}
		}
	} else if names[name] {
		return rpc.Token{}, fmt.Errorf("control token file %s already has a token named %q: %w", path, name, core.ErrAlreadyExists)
	}
	raw := make([]byte, tokenBytes)
	if _, err := io.ReadFull(random, raw); err != nil {
		return rpc.Token{}, fmt.Errorf("token randomness: %w", err)
	}
	tok := rpc.Token{Name: name, Level: level, Secret: base64.RawURLEncoding.EncodeToString(raw)}
	var buf bytes.Buffer
	buf.Write(old)
	if len(old) > 0 && old[len(old)-1] != '\n' {
		buf.WriteByte('\n')
	}
	fmt.Fprintf(&buf, "%s %s %s\n", tok.Secret, tok.Level, tok.Name)
	if err := writeFileAtomic(target, buf.Bytes()); err != nil {
		return rpc.Token{}, fmt.Errorf("control token file: %w", err)
	}
	return tok, nil
}

// writeFileAtomic replaces path with b, mode 0600, through a fsynced
// temporary file in the same directory.
func writeFileAtomic(path string, b []byte) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

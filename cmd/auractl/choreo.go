package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/aura-p2p/aura/internal/choreo"
	"github.com/aura-p2p/aura/internal/core"
)

// The choreo commands work on protocol files alone and never dial aurad: a
// protocol author checks a file before any daemon runs it.
//
// Their -o json output has no response message to mirror, so its shape is
// defined here, with proto-style field names:
//
//	check:   {"file": F, "protocols": [{"name": N, "roles": [R...], "attributes": {K: V}}]}
//	project: {"file": F, "protocols": [{"name": N, "roles": [{"role": R,
//	          "local_type": "<one-line form>", "local": <choreo.LocalNode>}]}]}
//
// Attribute values are strings as written (quotes removed); a bare #[flag]
// has the value "". choreo.LocalNode documents the tree of "local".

func newChoreoCmd(a *app) *cobra.Command {
	cmd := groupCmd("choreo", "Check protocol files and print their projections (no daemon needed)")
	cmd.AddCommand(newChoreoCheckCmd(a), newChoreoProjectCmd(a))
	return cmd
}

func newChoreoCheckCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "check FILE",
		Short: "Parse a protocol file, check it and project every protocol",
		Long: `Parse a protocol file, check its well-formedness and project every protocol
in it onto every role. Prints one "ok: protocol NAME, roles A, B" line per
protocol, or the first problem as FILE:LINE:COL: message (exit 4). FILE "-"
reads standard input. No daemon is needed.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, ps, err := loadChoreo(a, args[0])
			if err != nil {
				return err
			}
			out := checkOutput{File: args[0], Protocols: []checkedProtocol{}}
			for _, p := range ps {
				cp := checkedProtocol{Name: p.Protocol.Name, Roles: p.Protocol.RoleNames(), Attributes: map[string]string{}}
				for _, at := range p.Protocol.Attrs {
					cp.Attributes[at.Key] = at.Value.Text
				}
				out.Protocols = append(out.Protocols, cp)
			}
			if a.output == outputJSON {
				return writeJSON(a.out, out)
			}
			var b strings.Builder
			for _, p := range out.Protocols {
				fmt.Fprintf(&b, "ok: protocol %s, roles %s\n", p.Name, strings.Join(p.Roles, ", "))
			}
			return writeString(a.out, b.String())
		},
	}
}

func newChoreoProjectCmd(a *app) *cobra.Command {
	var role, protocol string
	cmd := &cobra.Command{
		Use:   "project FILE",
		Short: "Print the local type of each role of each protocol in a file",
		Long: `Print the local type (session type) of each role of each protocol in a
protocol file: what the role sends and receives, where it decides and where
it is told, and where it loops. --role and --protocol narrow the output; a
role or protocol that is not there is reported as not found (exit 5). An
invalid file is reported as with check (exit 4). No daemon is needed.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, ps, err := loadChoreo(a, args[0])
			if err != nil {
				return err
			}
			out := projectOutput{File: args[0], Protocols: []projectedProtocol{}}
			for _, p := range ps {
				if protocol != "" && p.Protocol.Name != protocol {
					continue
				}
				pp := projectedProtocol{Name: p.Protocol.Name, Roles: []projectedRole{}}
				for _, r := range p.Roles {
					if role != "" && r.Role != role {
						continue
					}
					pp.Roles = append(pp.Roles, projectedRole{
						Role: r.Role, LocalType: choreo.LocalString(r.Type), Local: choreo.Node(r.Type), lt: r.Type,
					})
				}
				if len(pp.Roles) > 0 {
					out.Protocols = append(out.Protocols, pp)
				}
			}
			if len(out.Protocols) == 0 {
				return choreoNotFound(args[0], protocol, role)
			}
			if a.output == outputJSON {
				return writeJSON(a.out, out)
			}
			var b strings.Builder
			for i, p := range out.Protocols {
				if i > 0 {
					b.WriteByte('\n')
				}
				fmt.Fprintf(&b, "protocol %s\n", p.Name)
				for _, r := range p.Roles {
					fmt.Fprintf(&b, "%s:\n%s\n", r.Role, choreo.FormatLocal(r.lt, 1))
				}
			}
			return writeString(a.out, b.String())
		},
	}
	cmd.Flags().StringVar(&role, "role", "", "print only this role")
	cmd.Flags().StringVar(&protocol, "protocol", "", "print only this protocol of the file")
	return cmd
}

type checkOutput struct {
	File      string            `json:"file"`
	Protocols []checkedProtocol `json:"protocols"`
}

type checkedProtocol struct {
	Name       string            `json:"name"`
	Roles      []string          `json:"roles"`
	Attributes map[string]string `json:"attributes"`
}

type projectOutput struct {
	File      string              `json:"file"`
	Protocols []projectedProtocol `json:"protocols"`
}

type projectedProtocol struct {
	Name  string          `json:"name"`
	Roles []projectedRole `json:"roles"`
}

type projectedRole struct {
	Role      string            `json:"role"`
	LocalType string            `json:"local_type"`
	Local     *choreo.LocalNode `json:"local"`
	lt        choreo.Local
}

// loadChoreo reads and compiles a protocol file, turning failures into the
// statuses auractl maps to exit codes: an invalid protocol is
// InvalidArgument with the positioned message, a missing file NotFound.
func loadChoreo(a *app, path string) (*choreo.File, []*choreo.Projection, error) {
	var src []byte
	var err error
	if path == "-" {
		src, err = io.ReadAll(a.in)
	} else {
		src, err = os.ReadFile(path)
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil, status.Error(codes.NotFound, err.Error())
	case errors.Is(err, fs.ErrPermission):
		return nil, nil, status.Error(codes.PermissionDenied, err.Error())
	case err != nil:
		return nil, nil, fmt.Errorf("read %s: %w", path, err)
	}
	f, ps, err := choreo.Load(src)
	if err != nil {
		code := codes.InvalidArgument
		if !errors.Is(err, core.ErrInvalidArgument) {
			code = codes.Internal
		}
		// path:line:col: message, as compilers print it.
		return nil, nil, status.Error(code, path+":"+err.Error())
	}
	return f, ps, nil
}

func choreoNotFound(file, protocol, role string) error {
	switch {
	case protocol != "" && role != "":
		return status.Errorf(codes.NotFound, "%s: no protocol %s with role %s", file, protocol, role)
	case protocol != "":
		return status.Errorf(codes.NotFound, "%s: no protocol %s", file, protocol)
	default:
		return status.Errorf(codes.NotFound, "%s: no protocol has role %s", file, role)
	}
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode json: %w", err)
	}
	return writeString(w, string(b)+"\n")
}

func writeString(w io.Writer, s string) error {
	if _, err := io.WriteString(w, s); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

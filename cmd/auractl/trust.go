package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	wotv1 "github.com/aura-p2p/aura/api/proto/aura/wot/v1"
)

func levelName(l wotv1.TrustLevel) string {
	return strings.ToLower(strings.TrimPrefix(l.String(), "TRUST_LEVEL_"))
}

func parseLevel(cmd *cobra.Command, s string) (wotv1.TrustLevel, error) {
	v, ok := wotv1.TrustLevel_value["TRUST_LEVEL_"+strings.ToUpper(s)]
	if !ok {
		return 0, usagef("%s: trust level %q: want none, low, medium, high or full", cmd.CommandPath(), s)
	}
	return wotv1.TrustLevel(v), nil
}

func newTrustCmd(a *app) *cobra.Command {
	cmd := groupCmd("trust", "State trust in devices and compute transitive trust with its evidence")
	client := func(cc grpc.ClientConnInterface) wotv1.TrustServiceClient { return wotv1.NewTrustServiceClient(cc) }

	var shareWith []string
	var shareAll bool
	set := &cobra.Command{
		Use:   "set DEVICE LEVEL",
		Short: "State this device's trust in DEVICE (a device id or a contact): none, low, medium, high, full",
		Long: `State how much this device trusts DEVICE (a device id, or a contact's name or
id prefix). The edge is kept in this device's account; nobody else sees it
unless you share it: --share-with CONTACT,... copies it into the contexts of
those contacts, --share-all into every contact's. Transitive trust is
computed over the edges a device can see, so sharing is what lets your
contacts' devices reach through you.`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := parseLevel(cmd, args[1])
			if err != nil {
				return err
			}
			if shareAll && len(shareWith) > 0 {
				return usagef("%s: --share-with and --share-all exclude each other", cmd.CommandPath())
			}
			req := &wotv1.SetTrustRequest{To: args[0], Level: l, ShareWith: shareWith, ShareAll: shareAll}
			resp, err := unary(cmd.Context(), a, func(ctx context.Context, cc grpc.ClientConnInterface) (*wotv1.SetTrustResponse, error) {
				return client(cc).SetTrust(ctx, req)
			})
			if err != nil {
				return err
			}
			return a.printer().message(resp, func(w io.Writer) error {
				e := resp.GetEdge()
				_, err := fmt.Fprintf(w, "%s trusts %s: %s (version %d, shared into %d contexts)\n", shortHex(e.GetFromDeviceId(), shortIDLen),
					shortHex(e.GetToDeviceId(), shortIDLen), levelName(e.GetLevel()), e.GetSeq(), len(resp.GetSharedContexts()))
				return err
			})
		},
	}
	set.Flags().StringSliceVar(&shareWith, "share-with", nil, "contacts to share the edge with (comma-separated)")
	set.Flags().BoolVar(&shareAll, "share-all", false, "share the edge with every contact")

	list := &cobra.Command{
		Use:   "list",
		Short: "List the trust edges this device can see",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := unary(cmd.Context(), a, func(ctx context.Context, cc grpc.ClientConnInterface) (*wotv1.ListTrustResponse, error) {
				return client(cc).ListTrust(ctx, &wotv1.ListTrustRequest{})
			})
			if err != nil {
				return err
			}
			return a.printer().message(resp, func(w io.Writer) error {
				fmt.Fprintln(w, "FROM\tTO\tLEVEL\tVERSION")
				for _, e := range resp.GetEdges() {
					fmt.Fprintf(w, "%s\t%s\t%s\t%d\n", shortHex(e.GetFromDeviceId(), shortIDLen), shortHex(e.GetToDeviceId(), shortIDLen), levelName(e.GetLevel()), e.GetSeq())
				}
				return nil
			})
		},
	}

	var maxHops uint32
	var minLevel string
	show := &cobra.Command{
		Use:   "show FROM TO",
		Short: "How much FROM trusts TO, and the path that says so (self, device ids or contacts)",
		Long: `Compute the transitive trust of FROM in TO over the edges this device can see:
along a path the weakest edge, lowered one level per hop beyond the first;
the best over paths of at most --max-hops (default 4). With --min LEVEL it
is an authorization decision: allowed with the evidence path, or denied
(exit 9) with the trust found.`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if maxHops > 4 {
				return usagef("%s: --max-hops %d: at most 4", cmd.CommandPath(), maxHops)
			}
			if minLevel != "" {
				l, err := parseLevel(cmd, minLevel)
				if err != nil {
					return err
				}
				resp, err := unary(cmd.Context(), a, func(ctx context.Context, cc grpc.ClientConnInterface) (*wotv1.AuthorizeResponse, error) {
					return client(cc).Authorize(ctx, &wotv1.AuthorizeRequest{From: args[0], To: args[1], MinLevel: l, MaxHops: maxHops})
				})
				if err != nil {
					return err
				}
				if err := a.printer().message(resp, func(w io.Writer) error {
					verdict := "allowed"
					if !resp.GetAllowed() {
						verdict = "denied: " + resp.GetReason()
					}
					return writeKVs(w, []kv{{"decision", verdict}, {"level", levelName(resp.GetLevel())}, {"path", pathText(resp.GetPath())}})
				}); err != nil {
					return err
				}
				if !resp.GetAllowed() {
					return status.Errorf(codes.PermissionDenied, "trust of %s in %s is %s: %s", args[0], args[1], levelName(resp.GetLevel()), resp.GetReason())
				}
				return nil
			}
			resp, err := unary(cmd.Context(), a, func(ctx context.Context, cc grpc.ClientConnInterface) (*wotv1.ComputeTrustResponse, error) {
				return client(cc).ComputeTrust(ctx, &wotv1.ComputeTrustRequest{From: args[0], To: args[1], MaxHops: maxHops})
			})
			if err != nil {
				return err
			}
			return a.printer().message(resp, func(w io.Writer) error {
				return writeKVs(w, []kv{{"level", levelName(resp.GetLevel())}, {"path", pathText(resp.GetPath())}})
			})
		},
	}
	show.Flags().Uint32Var(&maxHops, "max-hops", 0, "longest path considered, 1 to 4 (default 4)")
	show.Flags().StringVar(&minLevel, "min", "", "decide: allowed if the trust is at least this level")
	cmd.AddCommand(set, list, show)
	return cmd
}

func pathText(p []string) string {
	if len(p) == 0 {
		return "-"
	}
	parts := make([]string, len(p))
	for i, d := range p {
		parts[i] = shortHex(d, shortIDLen)
	}
	return strings.Join(parts, " -> ")
}

// readToken takes a token argument: its text, or - for stdin.
func readToken(a *app, cmd *cobra.Command, arg string) ([]byte, error) {
	if arg == "-" {
		b, err := io.ReadAll(io.LimitReader(a.in, 1<<16))
		if err != nil {
			return nil, err
		}
		arg = string(b)
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimSpace(arg))
	if err != nil || len(b) == 0 {
		return nil, usagef("%s: the token is not the base64url text auractl cap prints", cmd.CommandPath())
	}
	return b, nil
}

func writeToken(w io.Writer, t *wotv1.TokenResponse) error {
	if _, err := fmt.Fprintln(w, t.GetText()); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nBLOCK\tHOLDER\tCAPABILITIES\tSCOPE\tNOT AFTER")
	for _, b := range t.GetBlocks() {
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\n", b.GetIndex(), shortHex(b.GetHolderDeviceId(), shortIDLen), strings.Join(b.GetCapabilities(), ","), b.GetScope(), formatTime(b.GetNotAfter()))
	}
	return nil
}

func newCapCmd(a *app) *cobra.Command {
	cmd := groupCmd("cap", "Capability tokens: issue, attenuate, inspect, verify, revoke")
	client := func(cc grpc.ClientConnInterface) wotv1.TrustServiceClient { return wotv1.NewTrustServiceClient(cc) }
	grantFlags := func(c *cobra.Command, holder *string, caps *[]string, scope *string, expires *time.Duration) {
		c.Flags().StringVar(holder, "holder", "", "device that will hold the token: self, a device id or a contact")
		c.Flags().StringSliceVar(caps, "cap", nil, "capabilities (comma-separated), e.g. chat:send,group:invite")
		c.Flags().StringVar(scope, "scope", "any", "any, authority/<id> or context/<id>")
		c.Flags().DurationVar(expires, "expires", 24*time.Hour, "validity from now")
		_ = c.MarkFlagRequired("holder")
		_ = c.MarkFlagRequired("cap")
	}
	var (
		holder  string
		caps    []string
		scope   string
		expires time.Duration
	)
	notAfter := func(cmd *cobra.Command) (*timestamppb.Timestamp, error) {
		if expires <= 0 {
			return nil, usagef("%s: --expires must be positive", cmd.CommandPath())
		}
		return timestamppb.New(time.Now().Add(expires)), nil
	}
	issue := &cobra.Command{
		Use:   "issue --holder DEVICE --cap CAP,...",
		Short: "Issue a token rooted in this device's account",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			na, err := notAfter(cmd)
			if err != nil {
				return err
			}
			resp, err := unary(cmd.Context(), a, func(ctx context.Context, cc grpc.ClientConnInterface) (*wotv1.TokenResponse, error) {
				return client(cc).IssueToken(ctx, &wotv1.IssueTokenRequest{Holder: holder, Capabilities: caps, Scope: scope, NotAfter: na})
			})
			if err != nil {
				return err
			}
			return a.printer().message(resp, func(w io.Writer) error { return writeToken(w, resp) })
		},
	}
	grantFlags(issue, &holder, &caps, &scope, &expires)
	attenuate := &cobra.Command{
		Use:   "attenuate TOKEN --holder DEVICE --cap CAP,...",
		Short: "Delegate a token this device holds, narrowed (TOKEN: its text, or - for stdin)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			tok, err := readToken(a, cmd, args[0])
			if err != nil {
				return err
			}
			na, err := notAfter(cmd)
			if err != nil {
				return err
			}
			resp, err := unary(cmd.Context(), a, func(ctx context.Context, cc grpc.ClientConnInterface) (*wotv1.TokenResponse, error) {
				return client(cc).AttenuateToken(ctx, &wotv1.AttenuateTokenRequest{Token: tok, Holder: holder, Capabilities: caps, Scope: scope, NotAfter: na})
			})
			if err != nil {
				return err
			}
			return a.printer().message(resp, func(w io.Writer) error { return writeToken(w, resp) })
		},
	}
	grantFlags(attenuate, &holder, &caps, &scope, &expires)
	inspect := &cobra.Command{
		Use:   "inspect TOKEN",
		Short: "Show a token's blocks without verifying it",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			tok, err := readToken(a, cmd, args[0])
			if err != nil {
				return err
			}
			resp, err := unary(cmd.Context(), a, func(ctx context.Context, cc grpc.ClientConnInterface) (*wotv1.TokenResponse, error) {
				return client(cc).InspectToken(ctx, &wotv1.InspectTokenRequest{Token: tok})
			})
			if err != nil {
				return err
			}
			return a.printer().message(resp, func(w io.Writer) error { return writeToken(w, resp) })
		},
	}
	verify := &cobra.Command{
		Use:   "verify TOKEN",
		Short: "Verify a token offline: signatures, attenuation, expiry, revocation (exit 9 if refused)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			tok, err := readToken(a, cmd, args[0])
			if err != nil {
				return err
			}
			resp, err := unary(cmd.Context(), a, func(ctx context.Context, cc grpc.ClientConnInterface) (*wotv1.VerifyTokenResponse, error) {
				return client(cc).VerifyToken(ctx, &wotv1.VerifyTokenRequest{Token: tok})
			})
			if err != nil {
				return err
			}
			return a.printer().message(resp, func(w io.Writer) error {
				return writeKVs(w, []kv{
					{"valid", "yes"}, {"issuer", resp.GetIssuerAuthorityId()}, {"holder", resp.GetHolderDeviceId()},
					{"capabilities", strings.Join(resp.GetCapabilities(), ",")}, {"scope", resp.GetScope()},
					{"not after", formatTime(resp.GetNotAfter())}, {"depth", fmt.Sprint(resp.GetDepth())},
				})
			})
		},
	}
	var block uint32
	revoke := &cobra.Command{
		Use:   "revoke TOKEN [--block N]",
		Short: "Revoke a token this account issued, and every token delegated from it",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			tok, err := readToken(a, cmd, args[0])
			if err != nil {
				return err
			}
			resp, err := unary(cmd.Context(), a, func(ctx context.Context, cc grpc.ClientConnInterface) (*wotv1.RevokeTokenResponse, error) {
				return client(cc).RevokeToken(ctx, &wotv1.RevokeTokenRequest{Token: tok, Block: block})
			})
			if err != nil {
				return err
			}
			return a.printer().message(resp, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "revoked block %s\n", resp.GetBlockId())
				return err
			})
		},
	}
	revoke.Flags().Uint32Var(&block, "block", 0, "which block to revoke (0, the root, revokes the whole chain)")
	cmd.AddCommand(issue, attenuate, inspect, verify, revoke)
	return cmd
}

package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"

	ceremonyv1 "github.com/aura-p2p/aura/api/proto/aura/ceremony/v1"
	contextv1 "github.com/aura-p2p/aura/api/proto/aura/context/v1"
)

// Relationships: invitations and the contact ceremony, ceremony records,
// contacts and their relational contexts.
func newRelationshipCmds(a *app) []*cobra.Command {
	return []*cobra.Command{newInviteCmd(a), newAcceptCmd(a), newDeclineCmd(a), newCeremonyCmd(a), newContactCmd(a), newContextCmd(a), newTrustCmd(a), newCapCmd(a)}
}

func newInviteCmd(a *app) *cobra.Command {
	var (
		expires time.Duration
		message string
	)
	cmd := &cobra.Command{
		Use:   "invite",
		Short: "Make an invitation code that turns its receiver into a contact",
		Long: `Make a one-time invitation and print its code: one line holding this device's
id and reachable addresses, a secret, the expiry and a signature. Pass it to
the person you invite by any channel you trust; they run
'auractl accept CODE'. The contact exists only once the ceremony commits on
both sides. 'auractl invite list' shows your invitations and
'auractl invite cancel ID' withdraws one.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flag("expires").Changed && expires <= 0 {
				return usagef("%s: --expires must be positive", cmd.CommandPath())
			}
			req := &ceremonyv1.CreateInvitationRequest{Message: message}
			if expires > 0 {
				req.Expires = durationpb.New(expires)
			}
			resp, err := unary(cmd.Context(), a, func(ctx context.Context, cc grpc.ClientConnInterface) (*ceremonyv1.CreateInvitationResponse, error) {
				return ceremonyv1.NewCeremonyServiceClient(cc).CreateInvitation(ctx, req)
			})
			if err != nil {
				return err
			}
			return a.printer().message(resp, func(w io.Writer) error {
				_, err := fmt.Fprintln(w, resp.GetCode())
				return err
			})
		},
	}
	cmd.Flags().DurationVar(&expires, "expires", 0, "how long the code can be accepted (default 168h; 1m to 720h)")
	cmd.Flags().StringVar(&message, "message", "", "a note shown to the invitee (at most 280 bytes)")
	cmd.AddCommand(newInviteListCmd(a), newInviteCancelCmd(a))
	return cmd
}

func invitationStateName(s ceremonyv1.InvitationState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "INVITATION_STATE_"))
}

func newInviteListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List this device's invitations, newest first",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := unary(cmd.Context(), a, func(ctx context.Context, cc grpc.ClientConnInterface) (*ceremonyv1.ListInvitationsResponse, error) {
				return ceremonyv1.NewCeremonyServiceClient(cc).ListInvitations(ctx, &ceremonyv1.ListInvitationsRequest{})
			})
			if err != nil {
				return err
			}
			return a.printer().message(resp, func(w io.Writer) error {
				fmt.Fprintln(w, "ID\tSTATE\tCREATED\tEXPIRES\tINVITEE\tMESSAGE")
				for _, iv := range resp.GetInvitations() {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", shortHex(iv.GetId(), shortIDLen), invitationStateName(iv.GetState()),
						formatTime(iv.GetCreated()), formatTime(iv.GetExpires()), dash(shortHex(iv.GetInviteeDeviceId(), shortIDLen)), dash(iv.GetMessage()))
				}
				return nil
			})
		},
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newInviteCancelCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "cancel ID",
		Short: "Withdraw a pending invitation (its id or a prefix of 8+ hex digits)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			resp, err := unary(cmd.Context(), a, func(ctx context.Context, cc grpc.ClientConnInterface) (*ceremonyv1.CancelInvitationResponse, error) {
				return ceremonyv1.NewCeremonyServiceClient(cc).CancelInvitation(ctx, &ceremonyv1.CancelInvitationRequest{Id: args[0]})
			})
			if err != nil {
				return err
			}
			return a.printer().message(resp, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "invitation %s %s\n", resp.GetInvitation().GetId(), invitationStateName(resp.GetInvitation().GetState()))
				return err
			})
		},
	}
}

func newAcceptCmd(a *app) *cobra.Command {
	var nickname string
	cmd := &cobra.Command{
		Use:   "accept CODE",
		Short: "Accept an invitation code: run the contact ceremony with its inviter",
		Long: `Reach the inviter at the addresses in CODE, prove this device holds the code's
secret and run the contact ceremony. It ends committed (both sides hold the
same new relational context and a contact for each other) or aborted with
the reason (expired, cancelled, already accepted, ...), leaving nothing
behind. An inviter that cannot be reached exits 13.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			resp, err := unary(cmd.Context(), a, func(ctx context.Context, cc grpc.ClientConnInterface) (*ceremonyv1.AcceptInvitationResponse, error) {
				return ceremonyv1.NewCeremonyServiceClient(cc).AcceptInvitation(ctx, &ceremonyv1.AcceptInvitationRequest{Code: args[0], Nickname: nickname})
			})
			if err != nil {
				return err
			}
			return a.printer().message(resp, func(w io.Writer) error { return writeCeremony(w, resp.GetCeremony()) })
		},
	}
	cmd.Flags().StringVar(&nickname, "nickname", "", "local name for the new contact")
	return cmd
}

func newDeclineCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "decline CODE",
		Short: "Decline an invitation code; the inviter is told and the code is spent",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			resp, err := unary(cmd.Context(), a, func(ctx context.Context, cc grpc.ClientConnInterface) (*ceremonyv1.DeclineInvitationResponse, error) {
				return ceremonyv1.NewCeremonyServiceClient(cc).DeclineInvitation(ctx, &ceremonyv1.DeclineInvitationRequest{Code: args[0]})
			})
			if err != nil {
				return err
			}
			return a.printer().message(resp, func(w io.Writer) error { return writeCeremony(w, resp.GetCeremony()) })
		},
	}
}

func ceremonyStateName(s ceremonyv1.CeremonyState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "CEREMONY_STATE_"))
}

func writeCeremony(w io.Writer, c *ceremonyv1.Ceremony) error {
	rows := []kv{
		{"ceremony", c.GetId()},
		{"operation", c.GetOperation()},
		{"role", c.GetRole()},
		{"peer", c.GetPeerDeviceId()},
		{"invitation", c.GetInvitationId()},
		{"state", ceremonyStateName(c.GetState())},
	}
	if c.GetReason() != "" {
		rows = append(rows, kv{"reason", c.GetReason() + ": " + c.GetDetail()})
	}
	if c.GetContextId() != "" {
		rows = append(rows, kv{"context", "context/" + c.GetContextId()})
	}
	if c.GetRole() == "Inviter" && c.GetState() == ceremonyv1.CeremonyState_CEREMONY_STATE_COMMITTED {
		rows = append(rows, kv{"confirmed", fmt.Sprint(c.GetConfirmed())})
	}
	rows = append(rows, kv{"started", formatTime(c.GetStarted())}, kv{"updated", formatTime(c.GetUpdated())})
	return writeKVs(w, rows)
}

const ceremonyHeader = "ID\tOPERATION\tROLE\tPEER\tSTATE\tREASON\tSTARTED"

func ceremonyLine(w io.Writer, c *ceremonyv1.Ceremony) {
	fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", shortHex(c.GetId(), shortIDLen), c.GetOperation(), c.GetRole(),
		shortHex(c.GetPeerDeviceId(), shortIDLen), ceremonyStateName(c.GetState()), dash(c.GetReason()), formatTime(c.GetStarted()))
}

func newCeremonyCmd(a *app) *cobra.Command {
	cmd := groupCmd("ceremony", "Follow consensus-gated operations (contact invitations)")
	list := &cobra.Command{
		Use:   "list",
		Short: "List ceremonies this device took part in, newest first",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := unary(cmd.Context(), a, func(ctx context.Context, cc grpc.ClientConnInterface) (*ceremonyv1.ListCeremoniesResponse, error) {
				return ceremonyv1.NewCeremonyServiceClient(cc).ListCeremonies(ctx, &ceremonyv1.ListCeremoniesRequest{})
			})
			if err != nil {
				return err
			}
			return a.printer().message(resp, func(w io.Writer) error {
				fmt.Fprintln(w, ceremonyHeader)
				for _, c := range resp.GetCeremonies() {
					ceremonyLine(w, c)
				}
				return nil
			})
		},
	}
	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show one ceremony (its id or a prefix of 8+ hex digits)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			resp, err := unary(cmd.Context(), a, func(ctx context.Context, cc grpc.ClientConnInterface) (*ceremonyv1.GetCeremonyResponse, error) {
				return ceremonyv1.NewCeremonyServiceClient(cc).GetCeremony(ctx, &ceremonyv1.GetCeremonyRequest{Id: args[0]})
			})
			if err != nil {
				return err
			}
			return a.printer().message(resp, func(w io.Writer) error { return writeCeremony(w, resp.GetCeremony()) })
		},
	}
	watch := &cobra.Command{
		Use:   "watch",
		Short: "Print a line each time a ceremony starts or changes state",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			p := a.printer()
			if !p.json {
				fmt.Fprintln(a.out, strings.ReplaceAll(ceremonyHeader, "\t", " "))
			}
			return stream(cmd.Context(), a, func(ctx context.Context, cc grpc.ClientConnInterface) (grpc.ServerStreamingClient[ceremonyv1.Ceremony], error) {
				return ceremonyv1.NewCeremonyServiceClient(cc).WatchCeremonies(ctx, &ceremonyv1.WatchCeremoniesRequest{})
			}, func(c *ceremonyv1.Ceremony) error {
				return p.streamed(c, func(w io.Writer) error {
					var b strings.Builder
					ceremonyLine(&b, c)
					_, err := io.WriteString(w, strings.ReplaceAll(b.String(), "\t", " "))
					return err
				})
			})
		},
	}
	cmd.AddCommand(list, show, watch)
	return cmd
}

const contactHeader = "NAME\tAUTHORITY\tDEVICE\tCONTEXT\tBLOCKED"

func contactLine(w io.Writer, c *contextv1.Contact) {
	fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%v\n", c.GetName(), shortHex(c.GetAuthorityId(), shortIDLen), shortHex(c.GetDeviceId(), shortIDLen),
		shortHex(c.GetContextId(), shortIDLen), c.GetBlocked())
}

func writeContact(w io.Writer, c *contextv1.Contact) error {
	return writeKVs(w, []kv{
		{"name", c.GetName()},
		{"nickname", dash(c.GetNickname())},
		{"authority", c.GetAuthorityId()},
		{"device", c.GetDeviceId()},
		{"context", "context/" + c.GetContextId()},
		{"blocked", fmt.Sprint(c.GetBlocked())},
	})
}

func newContactCmd(a *app) *cobra.Command {
	cmd := groupCmd("contact", "List, rename and block contacts")
	client := func(cc grpc.ClientConnInterface) contextv1.ContextServiceClient {
		return contextv1.NewContextServiceClient(cc)
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List contacts by name",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := unary(cmd.Context(), a, func(ctx context.Context, cc grpc.ClientConnInterface) (*contextv1.ListContactsResponse, error) {
				return client(cc).ListContacts(ctx, &contextv1.ListContactsRequest{})
			})
			if err != nil {
				return err
			}
			return a.printer().message(resp, func(w io.Writer) error {
				fmt.Fprintln(w, contactHeader)
				for _, c := range resp.GetContacts() {
					contactLine(w, c)
				}
				return nil
			})
		},
	}
	show := &cobra.Command{
		Use:   "show CONTACT",
		Short: "Show a contact (a name or a prefix of 8+ hex digits of its context, account or device id)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			resp, err := unary(cmd.Context(), a, func(ctx context.Context, cc grpc.ClientConnInterface) (*contextv1.GetContactResponse, error) {
				return client(cc).GetContact(ctx, &contextv1.GetContactRequest{Contact: args[0]})
			})
			if err != nil {
				return err
			}
			return a.printer().message(resp, func(w io.Writer) error { return writeContact(w, resp.GetContact()) })
		},
	}
	rename := &cobra.Command{
		Use:   "rename CONTACT NAME",
		Short: "Give a contact a local name",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			resp, err := unary(cmd.Context(), a, func(ctx context.Context, cc grpc.ClientConnInterface) (*contextv1.RenameContactResponse, error) {
				return client(cc).RenameContact(ctx, &contextv1.RenameContactRequest{Contact: args[0], Nickname: args[1]})
			})
			if err != nil {
				return err
			}
			return a.printer().message(resp, func(w io.Writer) error { return writeContact(w, resp.GetContact()) })
		},
	}
	block := &cobra.Command{
		Use:   "block CONTACT",
		Short: "Refuse every message to and from a contact's devices, from now on",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			resp, err := unary(cmd.Context(), a, func(ctx context.Context, cc grpc.ClientConnInterface) (*contextv1.BlockContactResponse, error) {
				return client(cc).BlockContact(ctx, &contextv1.BlockContactRequest{Contact: args[0]})
			})
			if err != nil {
				return err
			}
			return a.printer().message(resp, func(w io.Writer) error { return writeContact(w, resp.GetContact()) })
		},
	}
	unblock := &cobra.Command{
		Use:   "unblock CONTACT",
		Short: "Let a blocked contact's messages through again",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			resp, err := unary(cmd.Context(), a, func(ctx context.Context, cc grpc.ClientConnInterface) (*contextv1.UnblockContactResponse, error) {
				return client(cc).UnblockContact(ctx, &contextv1.UnblockContactRequest{Contact: args[0]})
			})
			if err != nil {
				return err
			}
			return a.printer().message(resp, func(w io.Writer) error { return writeContact(w, resp.GetContact()) })
		},
	}
	cmd.AddCommand(list, show, rename, block, unblock)
	return cmd
}

func newContextCmd(a *app) *cobra.Command {
	cmd := groupCmd("context", "List relational contexts: the namespaces this device shares with contacts")
	list := &cobra.Command{
		Use:   "list",
		Short: "List relational contexts",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := unary(cmd.Context(), a, func(ctx context.Context, cc grpc.ClientConnInterface) (*contextv1.ListContextsResponse, error) {
				return contextv1.NewContextServiceClient(cc).ListContexts(ctx, &contextv1.ListContextsRequest{})
			})
			if err != nil {
				return err
			}
			return a.printer().message(resp, func(w io.Writer) error {
				fmt.Fprintln(w, "CONTEXT\tCLASS\tMEMBERS\tFACTS")
				for _, c := range resp.GetContexts() {
					fmt.Fprintf(w, "%s\t%s\t%d\t%d\n", shortHex(c.GetId(), shortIDLen), c.GetClass(), len(c.GetMembers()), c.GetFactCount())
				}
				return nil
			})
		},
	}
	show := &cobra.Command{
		Use:   "show CONTEXT",
		Short: "Show a context (context/<id>, its id or a prefix of 8+ hex digits)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			resp, err := unary(cmd.Context(), a, func(ctx context.Context, cc grpc.ClientConnInterface) (*contextv1.GetContextResponse, error) {
				return contextv1.NewContextServiceClient(cc).GetContext(ctx, &contextv1.GetContextRequest{Id: args[0]})
			})
			if err != nil {
				return err
			}
			return a.printer().message(resp, func(w io.Writer) error {
				c := resp.GetContext()
				rows := []kv{
					{"context", "context/" + c.GetId()},
					{"class", c.GetClass()},
					{"ceremony", c.GetCeremonyId()},
					{"facts", fmt.Sprint(c.GetFactCount())},
					{"contact", resp.GetContact().GetName()},
				}
				for _, m := range c.GetMembers() {
					rows = append(rows, kv{"member", m})
				}
				return writeKVs(w, rows)
			})
		},
	}
	cmd.AddCommand(list, show)
	return cmd
}

package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	crdtv1 "github.com/aura-p2p/aura/api/proto/aura/crdt/v1"
	"github.com/aura-p2p/aura/internal/rpc/safetext"
)

// crdtCmds carries what every crdt subcommand shares: the app and the
// --namespace flag declared once on the crdt noun.
type crdtCmds struct {
	app       *app
	namespace string
}

func newCrdtCmd(a *app) *cobra.Command {
	c := &crdtCmds{app: a}
	cmd := groupCmd("crdt", "Update, read and watch replicated objects (counter, register, set, map)")
	cmd.Long = `Named replicated objects in a namespace. Every update is a signed fact carrying
a delta; an object's state is the reduction of its facts. An object takes the
kind of its first update, and operations of another kind are refused.

Without --namespace objects live in this device's authority namespace.

Updates print the object's new value; -o json prints the UpdateResponse.`
	cmd.PersistentFlags().StringVar(&c.namespace, "namespace", "", "namespace (default: this device's authority namespace)")
	cmd.AddCommand(
		c.newCounterCmd(),
		c.newSetCmd(),
		c.newRegisterCmd(),
		c.newMapCmd(),
		c.newListCmd(),
		c.newWatchCmd(),
	)
	return cmd
}

func (c *crdtCmds) newCounterCmd() *cobra.Command {
	cmd := groupCmd("counter", "PN-counter: increments and decrements from every device add up")
	var incrBy, decrBy int64
	incr := &cobra.Command{
		Use:   "incr NAME [--by N]",
		Short: "Add N (default 1, may be negative) to a counter",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if incrBy == 0 {
				return usagef("--by must not be 0")
			}
			return c.update(cmd, args[0], &crdtv1.UpdateRequest{Op: &crdtv1.UpdateRequest_CounterAdd{CounterAdd: &crdtv1.CounterAdd{Delta: incrBy}}})
		},
	}
	incr.Flags().Int64Var(&incrBy, "by", 1, "amount to add; negative decrements")
	decr := &cobra.Command{
		Use:   "decr NAME [--by N]",
		Short: "Subtract N (default 1) from a counter",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if decrBy == 0 {
				return usagef("--by must not be 0")
			}
			if decrBy == math.MinInt64 {
				return usagef("--by %d cannot be negated", decrBy)
			}
			return c.update(cmd, args[0], &crdtv1.UpdateRequest{Op: &crdtv1.UpdateRequest_CounterAdd{CounterAdd: &crdtv1.CounterAdd{Delta: -decrBy}}})
		},
	}
	decr.Flags().Int64Var(&decrBy, "by", 1, "amount to subtract")
	get := &cobra.Command{
		Use:   "get NAME",
		Short: "Print a counter's value",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.get(cmd, args[0], crdtv1.ObjectKind_OBJECT_KIND_COUNTER)
		},
	}
	cmd.AddCommand(incr, decr, get)
	return cmd
}

func (c *crdtCmds) newSetCmd() *cobra.Command {
	cmd := groupCmd("set", "Add-wins set of strings")
	add := &cobra.Command{
		Use:   "add NAME ELEM",
		Short: "Add an element to a set",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.update(cmd, args[0], &crdtv1.UpdateRequest{Op: &crdtv1.UpdateRequest_SetAdd{SetAdd: &crdtv1.SetAdd{Element: args[1]}}})
		},
	}
	rm := &cobra.Command{
		Use:   "rm NAME ELEM",
		Short: "Remove an element from a set",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.update(cmd, args[0], &crdtv1.UpdateRequest{Op: &crdtv1.UpdateRequest_SetRemove{SetRemove: &crdtv1.SetRemove{Element: args[1]}}})
		},
	}
	get := &cobra.Command{
		Use:   "get NAME",
		Short: "Print a set's elements, one per line, sorted",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.get(cmd, args[0], crdtv1.ObjectKind_OBJECT_KIND_SET)
		},
	}
	cmd.AddCommand(add, rm, get)
	return cmd
}

func (c *crdtCmds) newRegisterCmd() *cobra.Command {
	cmd := groupCmd("register", "Last-writer-wins register holding a string")
	set := &cobra.Command{
		Use:   "set NAME VALUE",
		Short: "Write a register",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.update(cmd, args[0], &crdtv1.UpdateRequest{Op: &crdtv1.UpdateRequest_RegisterSet{RegisterSet: &crdtv1.RegisterSet{Value: args[1]}}})
		},
	}
	get := &cobra.Command{
		Use:   "get NAME",
		Short: "Print a register's value",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.get(cmd, args[0], crdtv1.ObjectKind_OBJECT_KIND_REGISTER)
		},
	}
	cmd.AddCommand(set, get)
	return cmd
}

func (c *crdtCmds) newMapCmd() *cobra.Command {
	cmd := groupCmd("map", "Map of string keys to last-writer-wins string values")
	set := &cobra.Command{
		Use:   "set NAME KEY VALUE",
		Short: "Set a key",
		Args:  exactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.update(cmd, args[0], &crdtv1.UpdateRequest{Op: &crdtv1.UpdateRequest_MapSet{MapSet: &crdtv1.MapSet{Key: args[1], Value: args[2]}}})
		},
	}
	rm := &cobra.Command{
		Use:   "rm NAME KEY",
		Short: "Remove a key",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.update(cmd, args[0], &crdtv1.UpdateRequest{Op: &crdtv1.UpdateRequest_MapRemove{MapRemove: &crdtv1.MapRemove{Key: args[1]}}})
		},
	}
	get := &cobra.Command{
		Use:   "get NAME [KEY]",
		Short: "Print a map's entries, or the value of one key",
		Long: `Print a map's entries as KEY VALUE lines sorted by key, or only the value of
KEY. With KEY and -o json the output is the MapEntry; a missing key is
NotFound (exit 5).`,
		Args: rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				return c.get(cmd, args[0], crdtv1.ObjectKind_OBJECT_KIND_MAP)
			}
			return c.getMapKey(cmd, args[0], args[1])
		},
	}
	cmd.AddCommand(set, rm, get)
	return cmd
}

func (c *crdtCmds) newListCmd() *cobra.Command {
	var req crdtv1.ListRequest
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the objects in a namespace, one page at a time",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a := c.app
			req.Namespace = c.namespace
			resp, err := unary(cmd.Context(), a, func(ctx context.Context, cc grpc.ClientConnInterface) (*crdtv1.ListResponse, error) {
				return crdtv1.NewCrdtServiceClient(cc).List(ctx, &req)
			})
			if err != nil {
				return err
			}
			if err := a.printer().message(resp, func(w io.Writer) error {
				if _, err := fmt.Fprintln(w, "NAME\tKIND\tUPDATES"); err != nil {
					return err
				}
				for _, o := range resp.GetObjects() {
					if _, err := fmt.Fprintf(w, "%s\t%s\t%d\n", o.GetName(), kindName(o.GetKind()), o.GetUpdates()); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				return err
			}
			if tok := resp.GetNextPageToken(); tok != "" && a.output == outputTable {
				fmt.Fprintf(a.err, "more objects: repeat with --page-token %s\n", safetext.Escape(tok, ""))
			}
			return nil
		},
	}
	cmd.Flags().Uint32Var(&req.PageSize, "limit", 0, "page size; 0 means aurad's default (100), at most 1000")
	cmd.Flags().StringVar(&req.PageToken, "page-token", "", "continue from a previous page's next_page_token")
	return cmd
}

func (c *crdtCmds) newWatchCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "watch NAME",
		Short: "Stream an object's state after each change until interrupted",
		Long: `Stream an object's state, first as it is now, then after each change, until
interrupted or until aurad ends the stream; --timeout does not apply.

The table shows the fact that caused each state ("-" for the initial one) and
the value; with -o json each WatchResponse is one line of compact JSON.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p := c.app.printer()
			req := &crdtv1.WatchRequest{Namespace: c.namespace, Name: args[0]}
			headerDone := false
			return stream(cmd.Context(), c.app, func(ctx context.Context, cc grpc.ClientConnInterface) (grpc.ServerStreamingClient[crdtv1.WatchResponse], error) {
				return crdtv1.NewCrdtServiceClient(cc).Watch(ctx, req)
			}, func(m *crdtv1.WatchResponse) error {
				return p.streamed(m, func(w io.Writer) error {
					if !headerDone {
						headerDone = true
						if _, err := fmt.Fprintln(w, textCell("FACT", shortIDLen)+"  VALUE"); err != nil {
							return err
						}
					}
					fact := shortHex(m.GetFactId(), shortIDLen)
					if fact == "" {
						fact = "-"
					}
					_, err := fmt.Fprintln(w, textCell(fact, shortIDLen)+"  "+summary(m.GetObject()))
					return err
				})
			})
		},
	}
}

func (c *crdtCmds) update(cmd *cobra.Command, name string, req *crdtv1.UpdateRequest) error {
	a := c.app
	req.Namespace = c.namespace
	req.Name = name
	resp, err := unary(cmd.Context(), a, func(ctx context.Context, cc grpc.ClientConnInterface) (*crdtv1.UpdateResponse, error) {
		return crdtv1.NewCrdtServiceClient(cc).Update(ctx, req)
	})
	if err != nil {
		return err
	}
	return a.printer().message(resp, func(w io.Writer) error {
		return writeValue(w, resp.GetObject())
	})
}

func (c *crdtCmds) fetch(cmd *cobra.Command, name string, want crdtv1.ObjectKind) (*crdtv1.GetResponse, error) {
	resp, err := unary(cmd.Context(), c.app, func(ctx context.Context, cc grpc.ClientConnInterface) (*crdtv1.GetResponse, error) {
		return crdtv1.NewCrdtServiceClient(cc).Get(ctx, &crdtv1.GetRequest{Namespace: c.namespace, Name: name})
	})
	if err != nil {
		return nil, err
	}
	// Get cannot know which kind the caller expects; without this check
	// `counter get` on a set would print a misleading 0.
	if k := resp.GetObject().GetKind(); k != want && k != crdtv1.ObjectKind_OBJECT_KIND_UNSPECIFIED {
		return nil, status.Errorf(codes.FailedPrecondition, "%s is a %s, not a %s", name, kindName(k), kindName(want))
	}
	return resp, nil
}

func (c *crdtCmds) get(cmd *cobra.Command, name string, want crdtv1.ObjectKind) error {
	resp, err := c.fetch(cmd, name, want)
	if err != nil {
		return err
	}
	return c.app.printer().message(resp, func(w io.Writer) error {
		return writeValue(w, resp.GetObject())
	})
}

func (c *crdtCmds) getMapKey(cmd *cobra.Command, name, key string) error {
	resp, err := c.fetch(cmd, name, crdtv1.ObjectKind_OBJECT_KIND_MAP)
	if err != nil {
		return err
	}
	for _, e := range resp.GetObject().GetEntries() {
		if e.GetKey() == key {
			return c.app.printer().message(e, func(w io.Writer) error {
				_, err := fmt.Fprintln(w, e.GetValue())
				return err
			})
		}
	}
	return status.Errorf(codes.NotFound, "map %s has no key %q", name, key)
}

// writeValue prints an object's value bare, so `$(auractl crdt counter get n)`
// is the number itself: a counter's value, a register's string, a set's
// elements one per line, a map's entries as KEY VALUE lines.
func writeValue(w io.Writer, o *crdtv1.Object) error {
	var err error
	switch o.GetKind() {
	case crdtv1.ObjectKind_OBJECT_KIND_COUNTER:
		_, err = fmt.Fprintln(w, o.GetCounter())
	case crdtv1.ObjectKind_OBJECT_KIND_REGISTER:
		_, err = fmt.Fprintln(w, o.GetRegister())
	case crdtv1.ObjectKind_OBJECT_KIND_SET:
		for _, e := range o.GetElements() {
			if _, err = fmt.Fprintln(w, e); err != nil {
				break
			}
		}
	case crdtv1.ObjectKind_OBJECT_KIND_MAP:
		for _, e := range o.GetEntries() {
			if _, err = fmt.Fprintf(w, "%s\t%s\n", e.GetKey(), e.GetValue()); err != nil {
				break
			}
		}
	default:
		// An object that was never written has no kind and no value.
	}
	return err
}

// summary renders an object's value on one line, for the watch table.
func summary(o *crdtv1.Object) string {
	switch o.GetKind() {
	case crdtv1.ObjectKind_OBJECT_KIND_COUNTER:
		return strconv.FormatInt(o.GetCounter(), 10)
	case crdtv1.ObjectKind_OBJECT_KIND_REGISTER:
		return strconv.Quote(o.GetRegister())
	case crdtv1.ObjectKind_OBJECT_KIND_SET:
		q := make([]string, len(o.GetElements()))
		for i, e := range o.GetElements() {
			q[i] = strconv.Quote(e)
		}
		return "{" + strings.Join(q, ", ") + "}"
	case crdtv1.ObjectKind_OBJECT_KIND_MAP:
		q := make([]string, len(o.GetEntries()))
		for i, e := range o.GetEntries() {
			q[i] = strconv.Quote(e.GetKey()) + ": " + strconv.Quote(e.GetValue())
		}
		return "{" + strings.Join(q, ", ") + "}"
	default:
		return "(empty)"
	}
}

// kindName is the short lowercase name users type: OBJECT_KIND_COUNTER → counter.
func kindName(k crdtv1.ObjectKind) string {
	return strings.ToLower(strings.TrimPrefix(k.String(), "OBJECT_KIND_"))
}

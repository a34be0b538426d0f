package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	journalv1 "github.com/aura-p2p/aura/api/proto/aura/journal/v1"
	"github.com/aura-p2p/aura/internal/rpc/safetext"
)

// maxPayloadRead caps what `fact append` reads from a file or stdin. aurad's own
// limit is far lower (64 KiB) and it explains it better than we could; the cap
// only keeps an endless pipe from eating memory.
const maxPayloadRead = 1 << 20

func newFactCmd(a *app) *cobra.Command {
	cmd := groupCmd("fact", "Append, read and watch signed facts in the journal")
	cmd.AddCommand(
		newFactAppendCmd(a),
		newFactGetCmd(a),
		newFactListCmd(a),
		newFactWatchCmd(a),
	)
	return cmd
}

func newFactAppendCmd(a *app) *cobra.Command {
	var (
		typeID    string
		payload   string
		namespace string
		schema    uint32
		lines     bool
	)
	cmd := &cobra.Command{
		Use:   "append --type T --payload STRING|@FILE|- [--lines]",
		Short: "Sign a new fact (or one a line) as this device and append it; prints its id",
		Long: `Sign a new fact as this device and append it to the journal. The command
returns once the fact is durable and prints its id.

--payload takes the bytes literally, or from a file with @FILE, or from stdin
with -. Without --namespace the fact goes to this device's authority namespace.

With --lines, each line of the payload (usually - or @FILE) is the payload of
a fact of its own, all with the same --type, --namespace and
--schema-version. A line ends at LF, which is not part of the payload, nor is
a CR before it; an empty line is a fact with an empty payload. The facts are
streamed to aurad in order and each is printed once it is durable: its id, or
with -o json one line of JSON (index counts lines from 0). At the first fact
that fails, the command stops with an error naming its line: every line
before it was appended, none after it. --timeout does not apply.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !utf8.ValidString(typeID) || !utf8.ValidString(namespace) {
				return usagef("--type and --namespace must be valid UTF-8")
			}
			if lines {
				r, name, closeFn, err := openPayload(payload, a.in)
				if err != nil {
					return err
				}
				defer closeFn()
				tmpl := &journalv1.AppendFactsRequest{Namespace: namespace, TypeId: typeID, SchemaVersion: schema}
				return appendLines(cmd.Context(), a, r, name, tmpl)
			}
			body, err := readPayload(payload, a.in)
			if err != nil {
				return err
			}
			req := &journalv1.AppendFactRequest{
				Namespace:     namespace,
				TypeId:        typeID,
				SchemaVersion: schema,
				Payload:       body,
			}
			resp, err := unary(cmd.Context(), a, func(ctx context.Context, cc grpc.ClientConnInterface) (*journalv1.AppendFactResponse, error) {
				return journalv1.NewJournalServiceClient(cc).AppendFact(ctx, req)
			})
			if err != nil {
				return err
			}
			return a.printer().message(resp, func(w io.Writer) error {
				_, err := fmt.Fprintln(w, resp.GetId())
				return err
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&typeID, "type", "", "fact type id (required)")
	f.StringVar(&payload, "payload", "", "payload: a literal string, @FILE to read a file, - to read stdin (required)")
	f.StringVar(&namespace, "namespace", "", "namespace (default: this device's authority namespace)")
	f.Uint32Var(&schema, "schema-version", 0, "schema version of the payload; 0 leaves it unset")
	f.BoolVar(&lines, "lines", false, "append one fact per line of the payload")
	_ = cmd.MarkFlagRequired("type")
	_ = cmd.MarkFlagRequired("payload")
	return cmd
}

// readPayload resolves --payload: "-" is stdin, "@path" a file, anything else
// the bytes of the argument itself.
func readPayload(arg string, stdin io.Reader) ([]byte, error) {
	r, name, closeFn, err := openPayload(arg, stdin)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	return readLimited(r, name)
}

// openPayload opens what --payload names and says what to call it in errors.
func openPayload(arg string, stdin io.Reader) (r io.Reader, name string, closeFn func(), err error) {
	switch {
	case arg == "-":
		return stdin, "stdin", func() {}, nil
	case strings.HasPrefix(arg, "@"):
		path := arg[1:]
		if path == "" {
			return nil, "", nil, usagef("--payload @ needs a file name, as in @payload.bin")
		}
		f, err := os.Open(path)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
				// The command line names a file we cannot use: the user's
				// mistake, not the daemon's.
				return nil, "", nil, usageError{fmt.Errorf("payload file: %w", err)}
			}
			return nil, "", nil, fmt.Errorf("payload file: %w", err)
		}
		return f, path, func() { f.Close() }, nil
	default:
		return strings.NewReader(arg), "--payload", func() {}, nil
	}
}

// appendLines appends each line of r as a fact over one AppendFacts stream:
// a goroutine sends the lines while this one prints the acknowledgements,
// so that aurad has many facts in flight and commits them together.
func appendLines(ctx context.Context, a *app, r io.Reader, name string, tmpl *journalv1.AppendFactsRequest) error {
	conn, err := a.dial()
	if err != nil {
		return err
	}
	// Cancelling on return ends the stream, and with it the sender, when
	// we stop early.
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := journalv1.NewJournalServiceClient(conn).AppendFacts(sctx)
	if err != nil {
		return a.rpcError(ctx, err)
	}
	sent := make(chan error, 1)
	go func() { sent <- sendLines(s, r, name, tmpl) }()
	p := a.printer()
	acked := 0
	for {
		ack, err := s.Recv()
		if errors.Is(err, io.EOF) {
			// aurad ends the stream well only once we closed our side:
			// every line read was acknowledged, and sent says whether
			// reading stopped early.
			return <-sent
		}
		if err != nil {
			return lineError(a.rpcError(ctx, err), acked)
		}
		acked++
		if err := p.streamed(ack, func(w io.Writer) error {
			_, err := fmt.Fprintln(w, ack.GetId())
			return err
		}); err != nil {
			return err
		}
	}
}

// sendLines sends one request a line of r and closes the sending side. Its
// error is for reading r; a failed Send means the stream ended, which Recv
// reports.
func sendLines(s grpc.BidiStreamingClient[journalv1.AppendFactsRequest, journalv1.AppendFactsResponse], r io.Reader, name string, tmpl *journalv1.AppendFactsRequest) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxPayloadRead)
	line := 0
	for sc.Scan() {
		line++
		// Send encodes the request before it returns, so the scanner may
		// reuse its buffer for the next line.
		req := &journalv1.AppendFactsRequest{
			Namespace: tmpl.Namespace, TypeId: tmpl.TypeId, SchemaVersion: tmpl.SchemaVersion, Payload: sc.Bytes(),
		}
		if err := s.Send(req); err != nil {
			return nil
		}
	}
	_ = s.CloseSend()
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return status.Errorf(codes.InvalidArgument, "line %d of %s is over %d bytes", line+1, name, maxPayloadRead)
		}
		return fmt.Errorf("read %s after line %d: %w", name, line, err)
	}
	return nil
}

// lineError names the line whose fact ended the stream: the first one not
// acknowledged, since aurad acknowledges in order. aurad's own "fact N: "
// (N counting from 0) gives way to the line number.
func lineError(err error, acked int) error {
	st, ok := grpcStatus(err)
	if !ok {
		return err
	}
	msg := strings.TrimPrefix(st.Message(), fmt.Sprintf("fact %d: ", acked))
	return status.Errorf(st.Code(), "line %d: %s", acked+1, msg)
}

func readLimited(r io.Reader, name string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxPayloadRead+1))
	if err != nil {
		return nil, fmt.Errorf("read payload from %s: %w", name, err)
	}
	if len(b) > maxPayloadRead {
		return nil, status.Errorf(codes.InvalidArgument, "payload from %s is over %d bytes", name, maxPayloadRead)
	}
	return b, nil
}

func newFactGetCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "get ID",
		Short: "Show one fact by its hex id",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			resp, err := unary(cmd.Context(), a, func(ctx context.Context, cc grpc.ClientConnInterface) (*journalv1.GetFactResponse, error) {
				return journalv1.NewJournalServiceClient(cc).GetFact(ctx, &journalv1.GetFactRequest{Id: args[0]})
			})
			if err != nil {
				return err
			}
			return a.printer().message(resp, func(w io.Writer) error {
				return writeFact(w, resp.GetFact())
			})
		},
	}
}

func writeFact(w io.Writer, f *journalv1.Fact) error {
	payload := bytesText(f.GetPayload())
	if strings.ContainsAny(payload, "\n\r\t") {
		// Quoted, so the payload stays on its line of the table.
		payload = strconv.Quote(payload)
	}
	return writeKVs(w, []kv{
		{"id", f.GetId()},
		{"namespace", f.GetNamespace()},
		{"type", f.GetTypeId()},
		{"schema version", strconv.FormatUint(uint64(f.GetSchemaVersion()), 10)},
		{"author", f.GetAuthor()},
		{"lamport", strconv.FormatUint(f.GetLamport(), 10)},
		{"created at", formatTime(f.GetCreatedAt())},
		{"seq", strconv.FormatUint(f.GetSeq(), 10)},
		{"signature", hex.EncodeToString(f.GetSignature())},
		{"payload", payload},
	})
}

func newFactListCmd(a *app) *cobra.Command {
	var req journalv1.ListFactsRequest
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List facts, one page at a time",
		Long: `List facts: in (lamport, id) order within one namespace, or in this device's
commit order across all namespaces when --namespace is not given.

--limit sets the page size. When more facts follow, the table output ends
with a hint on stderr giving the --page-token for the next page; with -o json
the token is the response's next_page_token.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !utf8.ValidString(req.TypeId) || !utf8.ValidString(req.Namespace) {
				return usagef("--type and --namespace must be valid UTF-8")
			}
			resp, err := unary(cmd.Context(), a, func(ctx context.Context, cc grpc.ClientConnInterface) (*journalv1.ListFactsResponse, error) {
				return journalv1.NewJournalServiceClient(cc).ListFacts(ctx, &req)
			})
			if err != nil {
				return err
			}
			if err := a.printer().message(resp, func(w io.Writer) error {
				return writeFactTable(w, resp.GetFacts())
			}); err != nil {
				return err
			}
			if tok := resp.GetNextPageToken(); tok != "" && a.output == outputTable {
				fmt.Fprintf(a.err, "more facts: repeat with --page-token %s\n", safetext.Escape(tok, ""))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.TypeId, "type", "", "only facts of this type id")
	f.StringVar(&req.Namespace, "namespace", "", "only facts of this namespace")
	f.Uint32Var(&req.PageSize, "limit", 0, "page size; 0 means aurad's default (100), at most 1000")
	f.StringVar(&req.PageToken, "page-token", "", "continue from a previous page's next_page_token")
	return cmd
}

const factTableHeader = "SEQ\tID\tTYPE\tLAMPORT\tAUTHOR\tPAYLOAD"

func factRow(f *journalv1.Fact) string {
	return fmt.Sprintf("%d\t%s\t%s\t%d\t%s\t%s",
		f.GetSeq(),
		shortHex(f.GetId(), shortIDLen),
		f.GetTypeId(),
		f.GetLamport(),
		shortHex(f.GetAuthor(), shortAuthorLen),
		preview(f.GetPayload(), previewRunes))
}

func writeFactTable(w io.Writer, facts []*journalv1.Fact) error {
	if _, err := fmt.Fprintln(w, factTableHeader); err != nil {
		return err
	}
	for _, f := range facts {
		if _, err := fmt.Fprintln(w, factRow(f)); err != nil {
			return err
		}
	}
	return nil
}

func newFactWatchCmd(a *app) *cobra.Command {
	var req journalv1.WatchFactsRequest
	cmd := &cobra.Command{
		Use:   "watch",
		Short: "Stream facts in commit order until interrupted",
		Long: `Stream facts in this device's commit order, first those already stored after
--after (all of them by default), then each new one as it commits. Runs until
interrupted or until aurad ends the stream; --timeout does not apply.

With -o json each fact is one line of compact JSON.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !utf8.ValidString(req.TypeId) || !utf8.ValidString(req.Namespace) {
				return usagef("--type and --namespace must be valid UTF-8")
			}
			p := a.printer()
			// Rows arrive one at a time, so tabwriter cannot align them:
			// the columns have fixed widths (see textCell).
			headerDone := false
			return stream(cmd.Context(), a, func(ctx context.Context, cc grpc.ClientConnInterface) (grpc.ServerStreamingClient[journalv1.WatchFactsResponse], error) {
				return journalv1.NewJournalServiceClient(cc).WatchFacts(ctx, &req)
			}, func(m *journalv1.WatchFactsResponse) error {
				return p.streamed(m, func(w io.Writer) error {
					if !headerDone {
						headerDone = true
						if _, err := fmt.Fprintln(w, watchLine("SEQ", "ID", "TYPE", "LAMPORT", "AUTHOR", "PAYLOAD")); err != nil {
							return err
						}
					}
					f := m.GetFact()
					_, err := fmt.Fprintln(w, watchLine(
						strconv.FormatUint(f.GetSeq(), 10),
						shortHex(f.GetId(), shortIDLen),
						f.GetTypeId(),
						strconv.FormatUint(f.GetLamport(), 10),
						shortHex(f.GetAuthor(), shortAuthorLen),
						preview(f.GetPayload(), previewRunes)))
					return err
				})
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.TypeId, "type", "", "only facts of this type id")
	f.StringVar(&req.Namespace, "namespace", "", "only facts of this namespace")
	f.Uint64Var(&req.AfterSeq, "after", 0, "start after this seq, at most the last one; 0 replays everything")
	f.BoolVar(&req.FromNow, "from-now", false, "skip stored facts and stream only new ones")
	cmd.MarkFlagsMutuallyExclusive("after", "from-now")
	return cmd
}

func watchLine(seq, id, typ, lamport, author, payload string) string {
	return strings.Join([]string{
		numberCell(seq, watchSeqWidth), textCell(id, shortIDLen), textCell(typ, watchTypeWidth),
		numberCell(lamport, watchSeqWidth), textCell(author, shortAuthorLen), payload,
	}, "  ")
}

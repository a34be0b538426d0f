package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/aura-p2p/aura/internal/buildinfo"
	"github.com/aura-p2p/aura/internal/core"
)

// envSocket overrides the control socket path, below an explicit --socket or
// --datadir.
const envSocket = "AURACTL_SOCKET"

// aurad's own variables for its socket and data dir (node.Config's socket and
// data_dir, as AURAD_*): the systemd unit sets them, and an operator who
// exports them for aurad reaches the same daemon with auractl.
const (
	envDaemonSocket  = "AURAD_SOCKET"
	envDaemonDataDir = "AURAD_DATADIR"
)

// systemSocket is where deploy/aurad.service has aurad listen
// (RuntimeDirectory=aurad, AURAD_SOCKET); auractl falls back to it when the
// user's own data dir has no socket. unit_test.go checks the unit agrees.
const systemSocket = "/run/aurad/aurad.sock"

// probeTimeout bounds the check that tells "nothing listens on the socket" from
// "aurad answered Unavailable".
const probeTimeout = time.Second

// app is everything a command needs: the global flags, the streams it talks on,
// and the one connection to aurad. Commands receive it from their constructor,
// so tests run the whole CLI in-process with their own streams and environment.
type app struct {
	in     io.Reader
	out    io.Writer
	err    io.Writer
	getenv func(string) string
	// systemSocket is the last place the socket is looked for; tests point
	// it elsewhere.
	systemSocket string

	datadir    string
	datadirSet bool
	socket     string
	timeout    time.Duration
	output     string
	hex        bool

	// started is set once cobra has parsed the flags and validated the
	// arguments: an error before it is the user's command line, an error after
	// it comes from running the command.
	started bool

	sockPath string
	conn     *grpc.ClientConn
}

// run executes one auractl invocation and returns its exit code. ctx is
// cancelled on SIGINT/SIGTERM, which ends watch streams.
func run(ctx context.Context, args []string, in io.Reader, out, errw io.Writer, getenv func(string) string) int {
	return runApp(ctx, &app{in: in, out: out, err: errw, getenv: getenv, systemSocket: systemSocket}, args)
}

func runApp(ctx context.Context, a *app, args []string) int {
	root := newRootCmd(a)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if cerr := a.close(); err == nil && cerr != nil {
		err = cerr
	}
	if err == nil {
		return ExitOK
	}
	if !a.started {
		err = usageError{err}
	}
	fmt.Fprintln(a.err, errorLine(err))
	return exitCode(err)
}

func newRootCmd(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "auractl",
		Short: "Control a running aurad",
		Long: `auractl talks to a running aurad over its control socket.

  status               the device, its account, addresses and journal counts
  fact                 the signed fact journal: append, get, list, watch
  crdt                 replicated objects (counter, register, set, map)
  peer                 devices aurad talks to: add, rm, list, connect, ping
  sync                 anti-entropy: reconciliation status per peer, sync now
  budget               flow budgets per context and peer, their receipts, limits
  leakage              metadata leakage charged per observer class
  session              start, list, show and watch sessions of embedded protocols
  choreo               check protocol files and print projections (no daemon)
  invite               make an invitation code; invite list, invite cancel
  accept               answer an invitation code yes: run the contact ceremony
  decline              answer an invitation code no; the code is spent
  ceremony             list, show and watch contact ceremonies
  contact              contacts: list, show, rename, block, unblock
  context              relational contexts shared with contacts: list, show
  device               devices of this account: invite a new one, join an account, list, remove
  tree                 the account's commitment tree: state, ops, group key fingerprint, update
  trust                the web of trust: set, list, show (with evidence)
  cap                  capability tokens: issue, attenuate, inspect, verify, revoke
  backup               consistent snapshot of the journal while aurad runs
  stop                 drain and stop aurad, as SIGTERM does
  log-level            show or change aurad's log level while it runs
  version              auractl's and aurad's versions
  completion           shell completion for bash, zsh, fish or powershell

"auractl COMMAND --help" tells more about each.

Output is a human table by default. -o json prints the daemon's response
message as protojson (the proto3 JSON mapping), indented, or one compact
object per line for streams: proto field names (device_id); every field
present, zero values included ("", 0, false, []), an unset message as null,
of a oneof only the field that is set; 64-bit integers as strings ("42");
enums by name (OBJECT_KIND_COUNTER); Timestamps as RFC 3339 in UTC,
Durations as seconds ("1.500s"); bytes fields (payload, signature) as
standard base64, or lowercase hex with --hex. Ids are hex strings either way.
Errors are one line on stderr.

The control socket is the first of: --socket; <--datadir>/aurad.sock when
--datadir is given; $AURACTL_SOCKET; $AURAD_SOCKET (aurad's own variable, set
by the systemd unit); <datadir>/aurad.sock, the data dir being $AURAD_DATADIR,
$AURA_DATADIR, $XDG_DATA_HOME/aura or ~/.local/share/aura; and, when that
socket does not exist, ` + systemSocket + ` (the systemd unit's, for members
of the aurad group).

` + exitCodeHelp,
		Version:           buildinfo.Version(),
		Args:              cobra.NoArgs,
		SilenceUsage:      true,
		SilenceErrors:     true,
		PersistentPreRunE: a.preRun,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%s: %w", cmd.CommandPath(), err)}
	})
	root.SetIn(a.in)
	root.SetOut(a.out)
	root.SetErr(a.err)

	defaultDataDir := a.getenv(envDaemonDataDir)
	if defaultDataDir == "" {
		var err error
		if defaultDataDir, err = core.DefaultDataDir(a.getenv); err != nil {
			// Only commands that need the socket fail, and they say how to fix it.
			defaultDataDir = ""
		}
	}
	pf := root.PersistentFlags()
	pf.StringVar(&a.datadir, "datadir", defaultDataDir, "aurad's data directory (env "+envDaemonDataDir+" or "+core.EnvDataDir+")")
	pf.StringVar(&a.socket, "socket", "", "control socket (env "+envSocket+" or "+envDaemonSocket+"; default <datadir>/"+core.SocketName+", else "+systemSocket+")")
	pf.DurationVar(&a.timeout, "timeout", 5*time.Second, "deadline for each command; 0 waits forever; watch commands ignore it")
	pf.StringVarP(&a.output, "output", "o", outputTable, "output format: table or json")
	pf.BoolVar(&a.hex, "hex", false, "with -o json, print bytes fields as lowercase hex instead of base64")
	_ = root.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(
		[]string{outputTable, outputJSON}, cobra.ShellCompDirectiveNoFileComp))

	root.AddCommand(
		newStatusCmd(a),
		newFactCmd(a),
		newCrdtCmd(a),
		newChoreoCmd(a),
		newSessionCmd(a),
		newPeerCmd(a),
		newSyncCmd(a),
		newBudgetCmd(a),
		newLeakageCmd(a),
		newStopCmd(a),
		newLogLevelCmd(a),
		newVersionCmd(a),
	)
	root.AddCommand(newRelationshipCmds(a)...)
	root.AddCommand(newDeviceCmd(a), newTreeCmd(a))
	root.AddCommand(newBackupCmd(a), newManCmd(a))
	// cobra adds its completion command (bash, zsh, fish, powershell) only
	// once it executes; adding it here puts it in the man pages and lets it
	// refuse an unknown shell as the other nouns refuse an unknown command.
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
		}
	}
	return root
}

// preRun runs after cobra validated flags and arguments, before any command.
func (a *app) preRun(cmd *cobra.Command, _ []string) error {
	// cobra checks required flags only after this hook; checking here keeps
	// every command-line mistake on the usage path.
	if err := cmd.ValidateRequiredFlags(); err != nil {
		return usageError{fmt.Errorf("%s: %w", cmd.CommandPath(), err)}
	}
	if err := cmd.ValidateFlagGroups(); err != nil {
		return usageError{fmt.Errorf("%s: %w", cmd.CommandPath(), err)}
	}
	switch a.output {
	case outputTable, outputJSON:
	default:
		return usagef("invalid --output %q: want %s or %s", a.output, outputTable, outputJSON)
	}
	if a.timeout < 0 {
		return usagef("invalid --timeout %s: must not be negative", a.timeout)
	}
	a.datadirSet = cmd.Flags().Changed("datadir")
	a.started = true
	return nil
}

func (a *app) printer() printer {
	return printer{w: a.out, json: a.output == outputJSON, hex: a.hex}
}

// socketPath resolves the control socket in the order the root help gives:
// --socket, else an explicit --datadir's socket, else $AURACTL_SOCKET, else
// $AURAD_SOCKET, else the data dir's socket, else, when that does not exist,
// the systemd unit's. Flags beat the environment field by field, as in aurad.
func (a *app) socketPath() (string, error) {
	if a.sockPath != "" {
		return a.sockPath, nil
	}
	p := a.socket
	if p == "" && !a.datadirSet {
		p = a.getenv(envSocket)
		if p == "" {
			p = a.getenv(envDaemonSocket)
		}
	}
	if p == "" && !a.datadirSet {
		p = a.defaultSocket()
	}
	if p == "" {
		if a.datadir == "" {
			return "", usagef("no control socket: set --socket, --datadir, %s or HOME", core.EnvDataDir)
		}
		p = filepath.Join(a.datadir, core.SocketName)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("resolve socket path %s: %w", p, err)
	}
	a.sockPath = abs
	return abs, nil
}

// defaultSocket is the data dir's socket, or the system daemon's when the
// data dir has none and the system's exists; "" when there is no data dir
// and no system daemon. A socket that is missing in both places is reported
// at the data dir, where the user's own aurad would be.
func (a *app) defaultSocket() string {
	var own string
	if a.datadir != "" {
		own = filepath.Join(a.datadir, core.SocketName)
		if _, err := os.Lstat(own); !errors.Is(err, fs.ErrNotExist) {
			return own
		}
	}
	if a.systemSocket != "" {
		// Permission denied too: "permission denied" at the system
		// socket says more than "not running" at the user's.
		if _, err := os.Lstat(a.systemSocket); err == nil || errors.Is(err, fs.ErrPermission) {
			return a.systemSocket
		}
	}
	return own
}

// dial returns the connection to aurad, creating it on first use. grpc.NewClient
// does not connect, so a missing socket file is checked here to give the plain
// answer at once; a socket nobody listens on is caught when the first call fails.
func (a *app) dial() (*grpc.ClientConn, error) {
	if a.conn != nil {
		return a.conn, nil
	}
	sock, err := a.socketPath()
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(sock); errors.Is(err, fs.ErrNotExist) {
		return nil, &notRunningError{socket: sock}
	}
	if err := checkSocket(sock, os.Geteuid()); err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("connect to aurad at %s: %w", sock, err)
	}
	a.conn = conn
	return conn, nil
}

func (a *app) close() error {
	if a.conn == nil {
		return nil
	}
	err := a.conn.Close()
	a.conn = nil
	if err != nil {
		return fmt.Errorf("close connection to aurad: %w", err)
	}
	return nil
}

// commandContext applies --timeout to one command.
func (a *app) commandContext(parent context.Context) (context.Context, context.CancelFunc) {
	if a.timeout == 0 {
		return context.WithCancel(parent)
	}
	return context.WithTimeout(parent, a.timeout)
}

// probe connects to the socket once, without gRPC, to learn why a call could
// not reach aurad; nil means something accepts connections there.
func (a *app) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", a.sockPath)
	if err != nil {
		return err
	}
	_ = c.Close()
	return nil
}

func (a *app) daemonListening(ctx context.Context) bool {
	return a.probe(ctx) == nil
}

// rpcError turns the failures of a call into the errors users should see: a
// refused connection becomes "aurad is not running", a socket we may not open
// says so, and our own deadline says which deadline it was rather than
// "context deadline exceeded".
func (a *app) rpcError(ctx context.Context, err error) error {
	st, ok := grpcStatus(err)
	if !ok {
		return err
	}
	switch st.Code() {
	case codes.Unavailable:
		if peerUnreachable(st) {
			// aurad answered: a peer is what could not be reached.
			return err
		}
		// aurad also answers Unavailable while starting or stopping; only a
		// socket that accepts nothing means it is not running.
		perr := a.probe(context.WithoutCancel(ctx))
		switch {
		case perr == nil:
		case errors.Is(perr, fs.ErrPermission):
			// The socket is mode 0600 and owned by aurad's user; "not
			// running" would send the user looking in the wrong place.
			return status.Errorf(codes.PermissionDenied, "cannot connect to aurad at %s: permission denied", a.sockPath)
		default:
			return &notRunningError{socket: a.sockPath}
		}
	case codes.DeadlineExceeded:
		if ownDeadlinePassed(ctx) {
			return status.Errorf(codes.DeadlineExceeded, "no answer from aurad at %s within %s", a.sockPath, a.timeout)
		}
	}
	return err
}

// deadlineSlack covers aurad seeing our deadline, which gRPC sends along, a
// moment before our own timer fires: its answer can arrive first.
const deadlineSlack = 50 * time.Millisecond

// ownDeadlinePassed tells a DeadlineExceeded caused by --timeout from one that
// aurad raised for reasons of its own.
func ownDeadlinePassed(ctx context.Context) bool {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && time.Until(dl) <= deadlineSlack
}

// unary makes one call to aurad under the command's deadline.
func unary[R any](ctx context.Context, a *app, call func(ctx context.Context, cc grpc.ClientConnInterface) (R, error)) (R, error) {
	var zero R
	conn, err := a.dial()
	if err != nil {
		return zero, err
	}
	ctx, cancel := a.commandContext(ctx)
	defer cancel()
	resp, err := call(ctx, conn)
	if err != nil {
		return zero, a.rpcError(ctx, err)
	}
	return resp, nil
}

// stream opens a server stream and hands each message to each until the
// server ends it or the user interrupts. Streams are not bound by --timeout:
// watching is meant to last.
func stream[R any](ctx context.Context, a *app, open func(ctx context.Context, cc grpc.ClientConnInterface) (grpc.ServerStreamingClient[R], error), each func(*R) error) error {
	conn, err := a.dial()
	if err != nil {
		return err
	}
	// Cancelling on return releases the stream when we stop reading early,
	// say because stdout went away.
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := open(sctx, conn)
	if err != nil {
		return a.streamError(ctx, err)
	}
	for {
		m, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return a.streamError(ctx, err)
		}
		if err := each(m); err != nil {
			return err
		}
	}
}

func (a *app) streamError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		// Interrupting a watch is how it normally ends.
		return nil
	}
	return a.rpcError(ctx, err)
}

// Argument validators: cobra's counts, plus a check that each argument can
// travel in a proto string field. Their errors name the command, since the
// usage text that would otherwise say which one is not printed.

func exactArgs(n int) cobra.PositionalArgs {
	return withPath(cobra.MatchAll(cobra.ExactArgs(n), utf8Args))
}

func rangeArgs(lo, hi int) cobra.PositionalArgs {
	return withPath(cobra.MatchAll(cobra.RangeArgs(lo, hi), utf8Args))
}

func withPath(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usageError{fmt.Errorf("%s: %w", cmd.CommandPath(), err)}
		}
		return nil
	}
}

func utf8Args(_ *cobra.Command, args []string) error {
	for i, s := range args {
		if !utf8.ValidString(s) {
			return fmt.Errorf("argument %d is not valid UTF-8", i+1)
		}
	}
	return nil
}

// groupCmd is a noun that only holds subcommands. It is runnable so that an
// unknown subcommand is a usage error; cobra would otherwise print help and
// exit 0.
func groupCmd(use, short string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
}

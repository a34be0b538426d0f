package bench

// Device enrollment from two to three devices (issue 14, "Figures"): three
// real aurad processes on loopback (default config, each on its own data
// dir), driven as auractl and any other local client drive them.
//
//	go test -run '^$' -bench DeviceEnrollment -benchtime 3x ./bench/

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	nodev1 "github.com/aura-p2p/aura/api/proto/aura/node/v1"
	treev1 "github.com/aura-p2p/aura/api/proto/aura/tree/v1"
)

const (
	// enrollPoll is the pause between two looks at whether a daemon shows
	// the enrollment yet: the resolution of the figures that follow the
	// ceremony.
	enrollPoll = 2 * time.Millisecond
	// statusAttempt bounds one GetStatus on a daemon that may be in the
	// middle of its restart, where a call can hang until the old server
	// is gone.
	statusAttempt = time.Second
	// enrollGuard bounds the timed region, so an enrollment that never
	// shows fails the benchmark instead of stalling it.
	enrollGuard = 2 * time.Minute
)

// enrollRun is what one enrollment of a third device measured, each from
// the JoinAccount call on the new device C.
type enrollRun struct {
	ceremony time.Duration // until JoinAccount returned: committed on both sides
	status   time.Duration // until C, restarted, answers GetStatus as the account's device
	listedA  time.Duration // until A's Show lists three devices
	listedB  time.Duration // until B's Show lists three devices
}

// BenchmarkDeviceEnrollment: A is a one-device account, B joins it (setup,
// as `auractl device invite` on A and `auractl device join CODE` on B do),
// then C, a fresh one-device daemon, joins with a code from the inviter.
// The timed region starts with TreeService.JoinAccount on C and ends once C
// answers NodeService.GetStatus with the account's authority (the daemon
// restarts itself after joining) and both A's and B's TreeService.Show list
// three devices. Every op runs on three new daemons, so each is an
// enrollment from two devices to three; nothing but the JoinAccount call
// and what follows it is timed.
//
// With inviter=A the device that commits the AddLeaf is A; with inviter=B it
// is B, and A learns of it through B's announcement in the account context.
func BenchmarkDeviceEnrollment(b *testing.B) {
	for _, inviter := range []string{"A", "B"} {
		b.Run("inviter="+inviter, func(b *testing.B) { benchEnroll(b, inviter == "B") })
	}
}

func benchEnroll(b *testing.B, byB bool) {
	b.StopTimer()
	aurad, auractl := buildSyncBinaries(b)
	var sum enrollRun
	for range b.N {
		r := enrollOnce(b, byB, aurad, auractl)
		sum.ceremony += r.ceremony
		sum.status += r.status
		sum.listedA += r.listedA
		sum.listedB += r.listedB
	}
	ms := func(d time.Duration) float64 { return d.Seconds() * 1000 / float64(b.N) }
	b.ReportMetric(ms(sum.ceremony), "ceremony-ms")
	b.ReportMetric(ms(sum.status), "C-status-ms")
	b.ReportMetric(ms(sum.status-sum.ceremony), "C-restart-ms")
	b.ReportMetric(ms(sum.listedA), "A-lists-3-ms")
	b.ReportMetric(ms(sum.listedB), "B-lists-3-ms")
}

func enrollOnce(b *testing.B, byB bool, aurad, auractl string) enrollRun {
	b.Helper()
	work, err := os.MkdirTemp(os.Getenv(benchDirEnv), "ae")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(work) })
	a := newDaemon(b, "A", work, aurad, auractl)
	bd := newDaemon(b, "B", work, aurad, auractl)
	c := newDaemon(b, "C", work, aurad, auractl)
	all := []*daemon{a, bd, c}
	defer func() {
		if b.Failed() {
			for _, d := range all {
				b.Log(d.logTail())
			}
		}
	}()
	ctx := context.Background()
	account := a.authority(ctx)

	var inv struct {
		Code string `json:"code"`
	}
	a.ctl(&inv, "device", "invite")
	// auractl returns once B's daemon answers as the account's device.
	bd.ctl(nil, "device", "join", inv.Code)
	bd.redial()
	for _, d := range []*daemon{a, bd} {
		if n := len(d.devices(ctx)); n != 2 {
			b.Fatalf("%s lists %d devices after B joined, want 2", d.name, n)
		}
	}
	inviter := a
	if byB {
		inviter = bd
	}
	code, err := treev1.NewTreeServiceClient(inviter.conn).InviteDevice(ctx, &treev1.InviteDeviceRequest{})
	if err != nil {
		b.Fatalf("%s: InviteDevice: %v", inviter.name, err)
	}
	// B's restart starts sessions with A; let them end, so the timed region
	// has the daemons to itself.
	time.Sleep(settleIdle)

	tctx, cancel := context.WithTimeout(ctx, enrollGuard)
	defer cancel()
	var r enrollRun
	b.StartTimer()
	t0 := time.Now()
	joined, err := treev1.NewTreeServiceClient(c.conn).JoinAccount(tctx, &treev1.JoinAccountRequest{Code: code.GetCode()})
	r.ceremony = time.Since(t0)
	if err != nil {
		b.Fatalf("C: JoinAccount: %v", err)
	}
	// The rest is polled only from here, so the polling takes nothing from
	// the ceremony: a daemon that showed the enrollment before JoinAccount
	// returned counts as showing it at the first look.
	var (
		wg               sync.WaitGroup
		errC, errA, errB error
	)
	wg.Go(func() { r.status, errC = pollUntil(tctx, t0, answersAs(c, account)) })
	wg.Go(func() { r.listedA, errA = pollUntil(tctx, t0, showsDevices(a, 3)) })
	wg.Go(func() { r.listedB, errB = pollUntil(tctx, t0, showsDevices(bd, 3)) })
	wg.Wait()
	b.StopTimer()
	for _, err := range []error{errC, errA, errB} {
		if err != nil {
			b.Fatal(err)
		}
	}
	v := joined.GetView()
	if v.GetAuthorityId() != account || len(v.GetDevices()) != 3 {
		b.Fatalf("C: JoinAccount returned account %s with %d devices, want %s with 3", v.GetAuthorityId(), len(v.GetDevices()), account)
	}
	b.Logf("C joins with a code from %s: ceremony %v; C answers as the account's device after %v (restart %v); A lists 3 devices after %v, B after %v",
		inviter.name, r.ceremony.Round(time.Microsecond), r.status.Round(time.Microsecond), (r.status - r.ceremony).Round(time.Microsecond),
		r.listedA.Round(time.Microsecond), r.listedB.Round(time.Microsecond))

	c.redial()
	self := false
	for _, dev := range c.devices(ctx) {
		self = self || (dev.GetSelf() && dev.GetDeviceId() == c.ready.DeviceID)
	}
	if !self {
		b.Fatalf("C, restarted, does not list itself (%s) among its account's devices", c.ready.DeviceID)
	}
	for _, d := range all {
		d.stop()
	}
	for _, d := range all {
		if lines := d.logErrors(); len(lines) > 0 {
			b.Errorf("%s logged errors:\n%v", d.name, lines)
		}
	}
	os.RemoveAll(work)
	return r
}

// pollUntil asks seen every enrollPoll until it says yes and returns the
// time from t0 then. seen's error ends the wait at once; its state, what
// it saw last, goes into the error when ctx ends first.
func pollUntil(ctx context.Context, t0 time.Time, seen func(context.Context) (ok bool, state string, err error)) (time.Duration, error) {
	for {
		ok, state, err := seen(ctx)
		if ok {
			return time.Since(t0), nil
		}
		if err != nil {
			return 0, err
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("%s after %v: %w", state, time.Since(t0).Round(time.Millisecond), ctx.Err())
		case <-time.After(enrollPoll):
		}
	}
}

// showsDevices is whether d's account, by its Show, has n devices.
func showsDevices(d *daemon, n int) func(context.Context) (bool, string, error) {
	tc := treev1.NewTreeServiceClient(d.conn)
	return func(ctx context.Context) (bool, string, error) {
		resp, err := tc.Show(ctx, &treev1.ShowRequest{})
		if err != nil {
			return false, "", fmt.Errorf("%s: Show: %w", d.name, err)
		}
		got := len(resp.GetView().GetDevices())
		return got == n, fmt.Sprintf("%s lists %d devices, want %d", d.name, got, n), nil
	}
}

// answersAs is whether d answers GetStatus as a device of authority. It
// dials afresh each time, as auractl does after a join: the restarted
// daemon's socket is a new file, and a fresh connection does not sit out
// gRPC's reconnect backoff. Until the restart is over there may be no
// socket, no listener or an Unavailable answer; each is a look that says
// no, not an error.
func answersAs(d *daemon, authority string) func(context.Context) (bool, string, error) {
	return func(ctx context.Context) (bool, string, error) {
		conn, err := dial(d.ready.Socket)
		if err != nil {
			return false, "", fmt.Errorf("%s: %w", d.name, err)
		}
		defer conn.Close()
		actx, cancel := context.WithTimeout(ctx, statusAttempt)
		defer cancel()
		st, err := nodev1.NewNodeServiceClient(conn).GetStatus(actx, &nodev1.GetStatusRequest{})
		if err != nil {
			return false, fmt.Sprintf("%s: last GetStatus: %v", d.name, err), nil
		}
		return st.GetAuthorityId() == authority, fmt.Sprintf("%s answers as account %s", d.name, st.GetAuthorityId()), nil
	}
}

// authority is the account d answers as.
func (d *daemon) authority(ctx context.Context) string {
	d.b.Helper()
	st, err := nodev1.NewNodeServiceClient(d.conn).GetStatus(ctx, &nodev1.GetStatusRequest{})
	if err != nil {
		d.b.Fatalf("%s: GetStatus: %v", d.name, err)
	}
	return st.GetAuthorityId()
}

// devices are the devices of d's account, by its Show.
func (d *daemon) devices(ctx context.Context) []*treev1.Device {
	d.b.Helper()
	resp, err := treev1.NewTreeServiceClient(d.conn).Show(ctx, &treev1.ShowRequest{})
	if err != nil {
		d.b.Fatalf("%s: Show: %v", d.name, err)
	}
	return resp.GetView().GetDevices()
}

// redial replaces d's connection after the daemon restarted itself (same
// process, same socket path): the old one would wait out gRPC's reconnect
// backoff.
func (d *daemon) redial() {
	b := d.b
	b.Helper()
	d.conn.Close()
	conn, err := dial(d.ready.Socket)
	if err != nil {
		b.Fatal(err)
	}
	d.conn = conn
	b.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), daemonGuard)
	defer cancel()
	if _, err := nodev1.NewNodeServiceClient(conn).GetStatus(ctx, &nodev1.GetStatusRequest{}, grpc.WaitForReady(true)); err != nil {
		b.Fatalf("%s: GetStatus: %v\n%s", d.name, err, d.logTail())
	}
}

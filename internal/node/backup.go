package node

import (
	"context"
	"io"
	"time"

	"go.uber.org/zap"

	"github.com/aura-p2p/aura/internal/journal"
)

// Backup implements noderpc.Daemon: a hot snapshot of the journal, which holds
// everything the device knows besides its keys (facts, the authority record,
// budgets, receipts, peers), taken in one read transaction while appends go on.
func (n *Node) Backup(ctx context.Context, w io.Writer, begin func(journal.SnapshotInfo) error) (int64, error) {
	s, err := n.journal.Snapshot(ctx)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	info := s.Info()
	if err := begin(info); err != nil {
		return 0, err
	}
	start := n.clock.Now()
	written, err := s.WriteTo(ctx, w, nil)
	took := n.clock.Now().Sub(start)
	fields := []zap.Field{
		zap.Int64("bytes", written), zap.Int64("size", info.Size), zap.Uint64("last_seq", info.LastSeq),
		zap.Uint64("facts", info.Facts), zap.Duration("took", took.Round(time.Millisecond)),
	}
	switch {
	case err != nil && ctx.Err() != nil:
		// The client left or aurad is stopping: nothing is wrong here.
		n.log.Info("backup cancelled", append(fields, zap.Error(err))...)
		return written, err
	case err != nil:
		n.log.Warn("backup failed", append(fields, zap.Error(err))...)
		return written, err
	}
	n.log.Info("backup taken", fields...)
	return written, nil
}

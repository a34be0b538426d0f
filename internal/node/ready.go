package node

import (
	"encoding/json"
	"os"
	"path/filepath"
)

// ReadyFileName is written into the data dir once aurad listens, so scripts
// and test harnesses find its bound addresses without port files.
const ReadyFileName = "ready.json"

// ReadyInfo is the content of ready.json.
type ReadyInfo struct {
	PID         int      `json:"pid"`
	Socket      string   `json:"socket"`
	DeviceID    string   `json:"device_id"`
	PeerID      string   `json:"peer_id"`
	ListenAddrs []string `json:"listen_addrs"`
	// MetricsAddr is the bound Prometheus listener, when [metrics] listen
	// is set.
	MetricsAddr string `json:"metrics_addr,omitempty"`
}

// writeReady replaces ready.json atomically.
func writeReady(dir string, info ReadyInfo) error {
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, ReadyFileName+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, ReadyFileName))
}

func removeReady(dir string) { _ = os.Remove(filepath.Join(dir, ReadyFileName)) }

package replica

import (
	"syscall"

	"github.com/poste-io/poste/internal/vfs"
)

// osFS reports whether partitions live on the operating system's filesystem, where
// statfs describes the disks.
func (m *Manager) osFS() bool { return m.fs == vfs.Default }

// diskSpace returns the size of the filesystem holding dir and the bytes available to an
// unprivileged process (Kafka's total and usable bytes), or -1, -1.
func diskSpace(dir string) (total, usable int64) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return -1, -1
	}
	return int64(st.Blocks) * int64(st.Bsize), int64(st.Bavail) * int64(st.Bsize)
}

//go:build !linux

package replica

// osFS reports whether disk space can be asked for: only on Linux.
func (m *Manager) osFS() bool { return false }

func diskSpace(string) (int64, int64) { return -1, -1 }

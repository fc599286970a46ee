package cli

import (
	"os"
	"syscall"
	"time"
)

// directIO says whether the direct+fsync probe runs here.
const directIO = true

// reopenDirect opens f's file again with O_DIRECT for writing; the caller closes both.
func reopenDirect(f *os.File) (*os.File, error) {
	return os.OpenFile(f.Name(), os.O_WRONLY|syscall.O_DIRECT, 0)
}

// processCPU is the user plus system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

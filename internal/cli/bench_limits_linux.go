package cli

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// reopenDirect opens f's file again with O_DIRECT for writing; the caller closes both. A
// file system that refuses O_DIRECT (EINVAL, tmpfs among them) gives errNoDirectIO.
func reopenDirect(f *os.File) (*os.File, error) {
	d, err := os.OpenFile(f.Name(), os.O_WRONLY|syscall.O_DIRECT, 0)
	if errors.Is(err, syscall.EINVAL) {
		return nil, fmt.Errorf("%w: %v", errNoDirectIO, err)
	}
	return d, err
}

// processCPU is the user plus system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

package vfs

import (
	"errors"
	"os"
	"strconv"
	"syscall"
)

// fallocKeepSize is FALLOC_FL_KEEP_SIZE: reserve blocks, leave the size.
const fallocKeepSize = 0x1

func datasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
		}
		return nil
	}
}

func preallocate(f *os.File, off, length int64) error {
	if length <= 0 {
		return nil
	}
	for {
		err := syscall.Fallocate(int(f.Fd()), fallocKeepSize, off, length)
		switch {
		case err == nil:
			return nil
		case err == syscall.EINTR:
			continue
		case errors.Is(err, syscall.EOPNOTSUPP), errors.Is(err, syscall.ENOSYS):
			// The filesystem cannot reserve blocks: writes still work.
			return nil
		default:
			return &os.PathError{Op: "fallocate", Path: f.Name(), Err: err}
		}
	}
}

// openDirect opens f's file again for writing with O_DIRECT, through /proc/self/fd so that
// it is the same file even if its name changed since f was opened.
func openDirect(f *os.File) (*os.File, error) {
	return os.OpenFile("/proc/self/fd/"+strconv.Itoa(int(f.Fd())), os.O_WRONLY|syscall.O_DIRECT, 0)
}

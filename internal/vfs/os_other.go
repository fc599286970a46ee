//go:build !linux

package vfs

import (
	"errors"
	"os"
)

func datasync(f *os.File) error { return f.Sync() }

// preallocate does nothing where fallocate is not available.
func preallocate(*os.File, int64, int64) error { return nil }

// openDirect refuses: direct writes are plain writes here.
func openDirect(*os.File) (*os.File, error) { return nil, errors.ErrUnsupported }

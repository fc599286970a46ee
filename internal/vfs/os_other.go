//go:build !linux

package vfs

import "os"

func datasync(f *os.File) error { return f.Sync() }

// preallocate does nothing where fallocate is not available.
func preallocate(*os.File, int64, int64) error { return nil }

// Package vfs is the small filesystem interface every file access of the
// Poste log goes through, with three implementations:
//
//   - Default, the operating system's filesystem;
//   - MemFS, an in-memory filesystem that remembers what was made durable
//     (file Sync, directory SyncDir) so that CrashClone can show what a power
//     loss would leave behind;
//   - NewErrorFS, a wrapper that injects errors (ENOSPC, EIO …) into chosen
//     operations.
//
// Paths are slash- or OS-separated and cleaned; MemFS treats every path as
// rooted at "/".
package vfs

import (
	"io"
	"os"
)

// FS is the filesystem seen by the log. Implementations are safe for use by
// concurrent goroutines.
type FS interface {
	// Create opens name read-write, creating it if missing and truncating it.
	Create(name string) (File, error)
	// OpenReadWrite opens name read-write, creating it if missing, without
	// truncating it.
	OpenReadWrite(name string) (File, error)
	// Open opens name read-only.
	Open(name string) (File, error)
	// Remove removes a file or an empty directory.
	Remove(name string) error
	// RemoveAll removes dir and everything below it; a missing dir is not an
	// error.
	RemoveAll(dir string) error
	// Rename atomically replaces newname by oldname.
	Rename(oldname, newname string) error
	// MkdirAll creates dir and any missing parents.
	MkdirAll(dir string, perm os.FileMode) error
	// List returns the names of the entries of dir, sorted.
	List(dir string) ([]string, error)
	// Stat describes name.
	Stat(name string) (os.FileInfo, error)
	// SyncDir makes the creates, renames and removes done in dir durable.
	SyncDir(dir string) error
}

// File is an open file. Read and Write use and move the file's position;
// ReadAt and WriteAt do not and may be called concurrently with each other and
// with Sync. A File must not be used after Close.
type File interface {
	io.Reader
	io.ReaderAt
	io.Writer
	io.WriterAt
	io.Closer
	// Sync makes the file's data durable (fdatasync on Linux).
	Sync() error
	// Truncate changes the size of the file.
	Truncate(size int64) error
	// Stat describes the file.
	Stat() (os.FileInfo, error)
	// Preallocate reserves disk blocks for [off, off+length) without changing
	// the file size, where the filesystem supports it; otherwise it does
	// nothing.
	Preallocate(off, length int64) error
	// Fd is the OS file descriptor, for sendfile, or InvalidFd when the file
	// is not an OS file.
	Fd() uintptr
	// WriteDirectAt appends p at off, the file's logical end, bypassing the
	// page cache where the filesystem allows it (O_DIRECT on Linux; elsewhere
	// it is WriteAt). The bytes from off+len(p) up to the next multiple of
	// DirectBlock may be overwritten with zeros, and the file may grow to
	// that boundary: the caller keeps the logical end and truncates the file
	// to it once it stops appending. What it wrote is durable after Sync, as
	// for WriteAt. Calls that write the file (WriteDirectAt, Write, WriteAt,
	// Truncate) must not run concurrently with a WriteDirectAt.
	WriteDirectAt(p []byte, off int64) (int, error)
}

// DirectBlock is the alignment of direct writes: offsets, lengths and buffer
// addresses are multiples of it (every common device's logical block size
// divides it).
const DirectBlock = 4096

// InvalidFd is what File.Fd returns for a file that has no OS descriptor.
const InvalidFd = ^uintptr(0)

// Default is the operating system's filesystem.
var Default FS = osFS{}

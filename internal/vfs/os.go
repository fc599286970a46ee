package vfs

import (
	"os"
	"sort"
)

// osFS is the operating system's filesystem. It holds no state.
type osFS struct{}

func (osFS) Create(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	return newOSFile(f), nil
}

func (osFS) OpenReadWrite(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	return newOSFile(f), nil
}

func (osFS) Open(name string) (File, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	return newOSFile(f), nil
}

func (osFS) Remove(name string) error                    { return os.Remove(name) }
func (osFS) RemoveAll(dir string) error                  { return os.RemoveAll(dir) }
func (osFS) Rename(oldname, newname string) error        { return os.Rename(oldname, newname) }
func (osFS) MkdirAll(dir string, perm os.FileMode) error { return os.MkdirAll(dir, perm) }
func (osFS) Stat(name string) (os.FileInfo, error)       { return os.Stat(name) }

func (osFS) List(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	return names, nil
}

func (osFS) SyncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	// A directory's entries are metadata: a full fsync is needed, not
	// fdatasync.
	serr := f.Sync()
	cerr := f.Close()
	if serr != nil {
		return serr
	}
	return cerr
}

// osFile is an *os.File with the platform's Sync, Preallocate and direct
// writes.
type osFile struct {
	*os.File
	direct directState
}

func newOSFile(f *os.File) *osFile { return &osFile{File: f} }

func (f *osFile) Sync() error                         { return datasync(f.File) }
func (f *osFile) Preallocate(off, length int64) error { return preallocate(f.File, off, length) }
func (f *osFile) Fd() uintptr                         { return f.File.Fd() }

// Write, WriteAt and Truncate forget the block that direct writes remember:
// they may have changed it.
func (f *osFile) Write(p []byte) (int, error) {
	f.direct.forget()
	return f.File.Write(p)
}

func (f *osFile) WriteAt(p []byte, off int64) (int, error) {
	f.direct.forget()
	return f.File.WriteAt(p, off)
}

// Truncate also closes the O_DIRECT descriptor, if any (directState.end).
func (f *osFile) Truncate(size int64) error {
	if err := f.direct.end(); err != nil {
		return err
	}
	return f.File.Truncate(size)
}

func (f *osFile) WriteDirectAt(p []byte, off int64) (int, error) {
	return f.direct.write(f.File, p, off)
}

func (f *osFile) Close() error {
	derr := f.direct.close()
	if err := f.File.Close(); err != nil {
		return err
	}
	return derr
}

// OSFile returns the *os.File behind f, if f is a file of Default.
func OSFile(f File) (*os.File, bool) {
	of, ok := f.(*osFile)
	if !ok {
		return nil, false
	}
	return of.File, true
}

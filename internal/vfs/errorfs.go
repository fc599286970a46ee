package vfs

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
)

// OpKind names an operation of FS or File, for error injection.
type OpKind int

// The operations an Injector is asked about.
const (
	OpCreate OpKind = iota
	OpOpenReadWrite
	OpOpen
	OpRemove
	OpRemoveAll
	OpRename
	OpMkdirAll
	OpList
	OpStat
	OpSyncDir
	OpRead  // File.Read and File.ReadAt
	OpWrite // File.Write and File.WriteAt
	OpSync
	OpTruncate
	OpFileStat
	OpPreallocate
	OpClose
)

var opNames = [...]string{
	OpCreate: "create", OpOpenReadWrite: "openrw", OpOpen: "open", OpRemove: "remove",
	OpRemoveAll: "removeall", OpRename: "rename", OpMkdirAll: "mkdirall", OpList: "list",
	OpStat: "stat", OpSyncDir: "syncdir", OpRead: "read", OpWrite: "write", OpSync: "sync",
	OpTruncate: "truncate", OpFileStat: "fstat", OpPreallocate: "preallocate", OpClose: "close",
}

func (k OpKind) String() string {
	if k >= 0 && int(k) < len(opNames) {
		return opNames[k]
	}
	return fmt.Sprintf("op(%d)", int(k))
}

// Op describes one operation about to run under an ErrorFS.
type Op struct {
	Kind OpKind
	// Path is the file or directory operated on (for Rename, the old name;
	// for File operations, the name the file was opened with).
	Path string
	// Offset is the position of a ReadAt or WriteAt (-1 for Read and Write),
	// the size of a Truncate, the offset of a Preallocate.
	Offset int64
	// Len is the number of bytes a read or write asks for.
	Len int
}

// Injector decides, before each operation of an ErrorFS, whether it fails.
// MaybeError is called from whichever goroutines use the filesystem, so
// implementations must be goroutine-safe. A nil result lets the operation
// run. For OpWrite, a *ShortWrite result writes a prefix first.
type Injector interface {
	MaybeError(op Op) error
}

// InjectorFunc adapts a function to Injector.
type InjectorFunc func(op Op) error

// MaybeError implements Injector.
func (f InjectorFunc) MaybeError(op Op) error { return f(op) }

// ShortWrite, returned by an Injector for an OpWrite, makes the ErrorFS write
// the first N bytes and then fail with Err, as a disk that fills up mid-write
// does.
type ShortWrite struct {
	N   int
	Err error
}

func (e *ShortWrite) Error() string { return fmt.Sprintf("short write of %d bytes: %v", e.N, e.Err) }
func (e *ShortWrite) Unwrap() error { return e.Err }

// ErrInjected is a generic injected error for tests that need no errno.
var ErrInjected = errors.New("vfs: injected error")

// NewErrorFS returns inner with errors injected where inj says. Injected
// errors come back wrapped in *os.PathError, so errors.Is finds the errno.
func NewErrorFS(inner FS, inj Injector) FS {
	return &errorFS{inner: inner, inj: inj}
}

type errorFS struct {
	inner FS
	inj   Injector
}

// check asks the injector about op; a short write counts as a failure here.
func (fs *errorFS) check(op Op) error {
	err := fs.inj.MaybeError(op)
	if err == nil {
		return nil
	}
	var sw *ShortWrite
	if errors.As(err, &sw) {
		err = sw.Err
	}
	return &os.PathError{Op: op.Kind.String(), Path: op.Path, Err: err}
}

func (fs *errorFS) wrap(f File, err error, name string) (File, error) {
	if err != nil {
		return nil, err
	}
	return &errorFile{fs: fs, inner: f, name: name}, nil
}

func (fs *errorFS) Create(name string) (File, error) {
	if err := fs.check(Op{Kind: OpCreate, Path: name}); err != nil {
		return nil, err
	}
	f, err := fs.inner.Create(name)
	return fs.wrap(f, err, name)
}

func (fs *errorFS) OpenReadWrite(name string) (File, error) {
	if err := fs.check(Op{Kind: OpOpenReadWrite, Path: name}); err != nil {
		return nil, err
	}
	f, err := fs.inner.OpenReadWrite(name)
	return fs.wrap(f, err, name)
}

func (fs *errorFS) Open(name string) (File, error) {
	if err := fs.check(Op{Kind: OpOpen, Path: name}); err != nil {
		return nil, err
	}
	f, err := fs.inner.Open(name)
	return fs.wrap(f, err, name)
}

func (fs *errorFS) Remove(name string) error {
	if err := fs.check(Op{Kind: OpRemove, Path: name}); err != nil {
		return err
	}
	return fs.inner.Remove(name)
}

func (fs *errorFS) RemoveAll(dir string) error {
	if err := fs.check(Op{Kind: OpRemoveAll, Path: dir}); err != nil {
		return err
	}
	return fs.inner.RemoveAll(dir)
}

func (fs *errorFS) Rename(oldname, newname string) error {
	if err := fs.check(Op{Kind: OpRename, Path: oldname}); err != nil {
		return err
	}
	return fs.inner.Rename(oldname, newname)
}

func (fs *errorFS) MkdirAll(dir string, perm os.FileMode) error {
	if err := fs.check(Op{Kind: OpMkdirAll, Path: dir}); err != nil {
		return err
	}
	return fs.inner.MkdirAll(dir, perm)
}

func (fs *errorFS) List(dir string) ([]string, error) {
	if err := fs.check(Op{Kind: OpList, Path: dir}); err != nil {
		return nil, err
	}
	return fs.inner.List(dir)
}

func (fs *errorFS) Stat(name string) (os.FileInfo, error) {
	if err := fs.check(Op{Kind: OpStat, Path: name}); err != nil {
		return nil, err
	}
	return fs.inner.Stat(name)
}

func (fs *errorFS) SyncDir(dir string) error {
	if err := fs.check(Op{Kind: OpSyncDir, Path: dir}); err != nil {
		return err
	}
	return fs.inner.SyncDir(dir)
}

// errorFile is a File of an errorFS.
type errorFile struct {
	fs    *errorFS
	inner File
	name  string
}

func (f *errorFile) Read(p []byte) (int, error) {
	if err := f.fs.check(Op{Kind: OpRead, Path: f.name, Offset: -1, Len: len(p)}); err != nil {
		return 0, err
	}
	return f.inner.Read(p)
}

func (f *errorFile) ReadAt(p []byte, off int64) (int, error) {
	if err := f.fs.check(Op{Kind: OpRead, Path: f.name, Offset: off, Len: len(p)}); err != nil {
		return 0, err
	}
	return f.inner.ReadAt(p, off)
}

// write runs one Write, WriteAt or WriteDirectAt (off < 0 means Write),
// honouring short writes.
func (f *errorFile) write(p []byte, off int64, direct bool) (int, error) {
	op := Op{Kind: OpWrite, Path: f.name, Offset: off, Len: len(p)}
	ierr := f.fs.inj.MaybeError(op)
	if ierr == nil {
		switch {
		case off < 0:
			return f.inner.Write(p)
		case direct:
			return f.inner.WriteDirectAt(p, off)
		}
		return f.inner.WriteAt(p, off)
	}
	n := 0
	var sw *ShortWrite
	if errors.As(ierr, &sw) {
		n = min(max(sw.N, 0), len(p))
		ierr = sw.Err
	}
	if n > 0 {
		var err error
		switch {
		case off < 0:
			n, err = f.inner.Write(p[:n])
		case direct:
			n, err = f.inner.WriteDirectAt(p[:n], off)
		default:
			n, err = f.inner.WriteAt(p[:n], off)
		}
		if err != nil {
			return n, err
		}
	}
	return n, &os.PathError{Op: "write", Path: f.name, Err: ierr}
}

func (f *errorFile) Write(p []byte) (int, error)              { return f.write(p, -1, false) }
func (f *errorFile) WriteAt(p []byte, off int64) (int, error) { return f.write(p, off, false) }
func (f *errorFile) WriteDirectAt(p []byte, off int64) (int, error) {
	return f.write(p, off, true)
}

func (f *errorFile) Close() error {
	if err := f.fs.check(Op{Kind: OpClose, Path: f.name}); err != nil {
		// The descriptor is released anyway, as close(2) does.
		_ = f.inner.Close()
		return err
	}
	return f.inner.Close()
}

func (f *errorFile) Sync() error {
	if err := f.fs.check(Op{Kind: OpSync, Path: f.name}); err != nil {
		return err
	}
	return f.inner.Sync()
}

func (f *errorFile) Truncate(size int64) error {
	if err := f.fs.check(Op{Kind: OpTruncate, Path: f.name, Offset: size}); err != nil {
		return err
	}
	return f.inner.Truncate(size)
}

func (f *errorFile) Stat() (os.FileInfo, error) {
	if err := f.fs.check(Op{Kind: OpFileStat, Path: f.name}); err != nil {
		return nil, err
	}
	return f.inner.Stat()
}

func (f *errorFile) Preallocate(off, length int64) error {
	if err := f.fs.check(Op{Kind: OpPreallocate, Path: f.name, Offset: off, Len: int(length)}); err != nil {
		return err
	}
	return f.inner.Preallocate(off, length)
}

func (f *errorFile) Fd() uintptr { return f.inner.Fd() }

// WriteBudget is an Injector that lets writes through until a number of bytes
// has been written, then fails every later write with Err, writing what still
// fits first (a disk filling up). Other operations are not affected. It is
// goroutine-safe.
type WriteBudget struct {
	err error
	mu  struct {
		sync.Mutex
		left int64
	}
}

// FailWritesAfter returns a WriteBudget of n bytes failing with err.
func FailWritesAfter(n int64, err error) *WriteBudget {
	b := &WriteBudget{err: err}
	b.mu.left = n
	return b
}

// Reset gives the budget n more bytes from now on.
func (b *WriteBudget) Reset(n int64) {
	b.mu.Lock()
	b.mu.left = n
	b.mu.Unlock()
}

// MaybeError implements Injector.
func (b *WriteBudget) MaybeError(op Op) error {
	if op.Kind != OpWrite {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if int64(op.Len) <= b.mu.left {
		b.mu.left -= int64(op.Len)
		return nil
	}
	n := int(b.mu.left)
	b.mu.left = 0
	return &ShortWrite{N: n, Err: b.err}
}

// OneShot is an Injector that fails the next operation of one of its kinds,
// once, and then lets
// everything through until armed again. It is goroutine-safe.
type OneShot struct {
	err   error
	kinds []OpKind
	mu    struct {
		sync.Mutex
		armed bool
		fired int
	}
}

// FailNext returns an armed OneShot failing with err.
func FailNext(err error, kinds ...OpKind) *OneShot {
	o := &OneShot{err: err, kinds: kinds}
	o.mu.armed = true
	return o
}

// Arm makes the OneShot fail the next matching operation again.
func (o *OneShot) Arm() {
	o.mu.Lock()
	o.mu.armed = true
	o.mu.Unlock()
}

// Fired reports how many operations the OneShot has failed.
func (o *OneShot) Fired() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.mu.fired
}

// MaybeError implements Injector.
func (o *OneShot) MaybeError(op Op) error {
	if !slices.Contains(o.kinds, op.Kind) {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.mu.armed {
		return nil
	}
	o.mu.armed = false
	o.mu.fired++
	return o.err
}

// Always returns an Injector failing every operation of the given kinds.
func Always(err error, kinds ...OpKind) Injector {
	return InjectorFunc(func(op Op) error {
		if slices.Contains(kinds, op.Kind) {
			return err
		}
		return nil
	})
}

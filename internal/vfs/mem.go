package vfs

import (
	"bytes"
	"io"
	"math/rand"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// MemFS is an in-memory FS that tracks durability, for tests.
//
// Invariants:
//   - every path is rooted at "/", which always exists and is durable;
//   - a file node keeps its current bytes (data) and the bytes it had at its
//     last Sync (synced); a directory node keeps its current entries
//     (children) and the entries it had at its last SyncDir (syncedChildren);
//   - synced may share its backing array with data: data is copied before any
//     in-place change below len(synced) (copy on write), so synced never
//     changes between two Syncs.
//
// CrashClone builds, from the durable half of every node, the filesystem a
// power loss would leave. All methods of MemFS and of its files may be called
// from any goroutine; one mutex serialises them.
type MemFS struct {
	mu struct {
		sync.Mutex
		root *memNode
	}
}

// memNode is a file or a directory; its fields are guarded by MemFS.mu.
type memNode struct {
	isDir   bool
	modTime time.Time

	// Files.
	data   []byte
	synced []byte
	shared bool // data and synced share a backing array

	// Directories.
	children       map[string]*memNode
	syncedChildren map[string]*memNode
}

func newDirNode() *memNode {
	return &memNode{
		isDir:          true,
		modTime:        time.Now(),
		children:       map[string]*memNode{},
		syncedChildren: map[string]*memNode{},
	}
}

// NewMem returns an empty in-memory filesystem.
func NewMem() *MemFS {
	fs := &MemFS{}
	fs.mu.root = newDirNode()
	return fs
}

// CrashOption changes what CrashClone keeps.
type CrashOption func(*crashConfig)

type crashConfig struct {
	rng *rand.Rand
}

// KeepRandomUnsyncedTail makes CrashClone keep, for each file that was only
// appended to since its last Sync, a prefix of random length (drawn from rng)
// of the bytes written after that Sync: a disk may persist part of an
// unsynced write. Without it every unsynced byte is lost.
func KeepRandomUnsyncedTail(rng *rand.Rand) CrashOption {
	return func(c *crashConfig) { c.rng = rng }
}

// CrashClone returns a new MemFS holding what a power loss at this instant
// would leave: per file only its bytes at its last Sync (plus, with
// KeepRandomUnsyncedTail, part of an appended unsynced tail), and per
// directory only the entries present at its last SyncDir. Files open in fs
// are not open in the clone. fs itself is unchanged and stays usable.
func (fs *MemFS) CrashClone(opts ...CrashOption) *MemFS {
	var cfg crashConfig
	for _, o := range opts {
		o(&cfg)
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	memo := map[*memNode]*memNode{}
	var clone func(n *memNode) *memNode
	clone = func(n *memNode) *memNode {
		if c, ok := memo[n]; ok {
			return c
		}
		c := &memNode{isDir: n.isDir, modTime: n.modTime}
		memo[n] = c
		if n.isDir {
			c.children = make(map[string]*memNode, len(n.syncedChildren))
			c.syncedChildren = make(map[string]*memNode, len(n.syncedChildren))
			// Sorted so that draws from the random source are reproducible.
			names := make([]string, 0, len(n.syncedChildren))
			for name := range n.syncedChildren {
				names = append(names, name)
			}
			sort.Strings(names)
			for _, name := range names {
				cc := clone(n.syncedChildren[name])
				c.children[name] = cc
				c.syncedChildren[name] = cc
			}
			return c
		}
		keep := len(n.synced)
		if cfg.rng != nil && len(n.data) > len(n.synced) && bytes.HasPrefix(n.data, n.synced) {
			keep += cfg.rng.Intn(len(n.data) - len(n.synced) + 1)
			c.data = bytes.Clone(n.data[:keep])
		} else {
			c.data = bytes.Clone(n.synced)
		}
		c.synced = c.data
		c.shared = true
		return c
	}
	out := &MemFS{}
	out.mu.root = clone(fs.mu.root)
	return out
}

// cleanPath returns name as a clean absolute slash path.
func cleanPath(name string) string {
	return path.Clean("/" + filepath.ToSlash(name))
}

// splitPath returns the parent directory and base name of a clean path.
func splitPath(p string) (dir, base string) {
	i := strings.LastIndexByte(p, '/')
	if i == 0 {
		return "/", p[1:]
	}
	return p[:i], p[i+1:]
}

func pathErr(op, name string, err error) error {
	return &os.PathError{Op: op, Path: name, Err: err}
}

// lookupLocked finds the node at the clean path p.
func (fs *MemFS) lookupLocked(p string) (*memNode, error) {
	n := fs.mu.root
	if p == "/" {
		return n, nil
	}
	for _, part := range strings.Split(p[1:], "/") {
		if !n.isDir {
			return nil, syscall.ENOTDIR
		}
		c, ok := n.children[part]
		if !ok {
			return nil, os.ErrNotExist
		}
		n = c
	}
	return n, nil
}

// parentLocked finds the directory that holds the clean path p.
func (fs *MemFS) parentLocked(p string) (dir *memNode, base string, err error) {
	if p == "/" {
		return nil, "", syscall.EINVAL
	}
	d, base := splitPath(p)
	dn, err := fs.lookupLocked(d)
	if err != nil {
		return nil, "", err
	}
	if !dn.isDir {
		return nil, "", syscall.ENOTDIR
	}
	return dn, base, nil
}

func (fs *MemFS) openFile(op, name string, create, truncate, readOnly bool) (File, error) {
	p := cleanPath(name)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	dir, base, err := fs.parentLocked(p)
	if err != nil {
		return nil, pathErr(op, name, err)
	}
	n, ok := dir.children[base]
	switch {
	case ok && n.isDir:
		return nil, pathErr(op, name, syscall.EISDIR)
	case !ok && !create:
		return nil, pathErr(op, name, os.ErrNotExist)
	case !ok:
		n = &memNode{modTime: time.Now()}
		dir.children[base] = n
		dir.modTime = n.modTime
	case truncate:
		n.truncateLocked(0)
	}
	return &memFile{fs: fs, n: n, name: name, readOnly: readOnly}, nil
}

// Create implements FS.
func (fs *MemFS) Create(name string) (File, error) {
	return fs.openFile("create", name, true, true, false)
}

// OpenReadWrite implements FS.
func (fs *MemFS) OpenReadWrite(name string) (File, error) {
	return fs.openFile("open", name, true, false, false)
}

// Open implements FS.
func (fs *MemFS) Open(name string) (File, error) {
	return fs.openFile("open", name, false, false, true)
}

// Remove implements FS.
func (fs *MemFS) Remove(name string) error {
	p := cleanPath(name)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	dir, base, err := fs.parentLocked(p)
	if err != nil {
		return pathErr("remove", name, err)
	}
	n, ok := dir.children[base]
	if !ok {
		return pathErr("remove", name, os.ErrNotExist)
	}
	if n.isDir && len(n.children) > 0 {
		return pathErr("remove", name, syscall.ENOTEMPTY)
	}
	delete(dir.children, base)
	return nil
}

// RemoveAll implements FS.
func (fs *MemFS) RemoveAll(name string) error {
	p := cleanPath(name)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if p == "/" {
		fs.mu.root.children = map[string]*memNode{}
		return nil
	}
	dir, base, err := fs.parentLocked(p)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return pathErr("removeall", name, err)
	}
	delete(dir.children, base)
	return nil
}

// Rename implements FS.
func (fs *MemFS) Rename(oldname, newname string) error {
	op, np := cleanPath(oldname), cleanPath(newname)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	odir, obase, err := fs.parentLocked(op)
	if err != nil {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: err}
	}
	n, ok := odir.children[obase]
	if !ok {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: os.ErrNotExist}
	}
	ndir, nbase, err := fs.parentLocked(np)
	if err != nil {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: err}
	}
	if op == np {
		return nil
	}
	if t, ok := ndir.children[nbase]; ok && t.isDir != n.isDir {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: syscall.EEXIST}
	}
	if n.isDir && strings.HasPrefix(np, op+"/") {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: syscall.EINVAL}
	}
	delete(odir.children, obase)
	ndir.children[nbase] = n
	return nil
}

// MkdirAll implements FS.
func (fs *MemFS) MkdirAll(name string, _ os.FileMode) error {
	p := cleanPath(name)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	n := fs.mu.root
	if p == "/" {
		return nil
	}
	for _, part := range strings.Split(p[1:], "/") {
		c, ok := n.children[part]
		if !ok {
			c = newDirNode()
			n.children[part] = c
		} else if !c.isDir {
			return pathErr("mkdir", name, syscall.ENOTDIR)
		}
		n = c
	}
	return nil
}

// List implements FS.
func (fs *MemFS) List(name string) ([]string, error) {
	p := cleanPath(name)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	n, err := fs.lookupLocked(p)
	if err != nil {
		return nil, pathErr("open", name, err)
	}
	if !n.isDir {
		return nil, pathErr("readdirent", name, syscall.ENOTDIR)
	}
	names := make([]string, 0, len(n.children))
	for k := range n.children {
		names = append(names, k)
	}
	sort.Strings(names)
	return names, nil
}

// Stat implements FS.
func (fs *MemFS) Stat(name string) (os.FileInfo, error) {
	p := cleanPath(name)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	n, err := fs.lookupLocked(p)
	if err != nil {
		return nil, pathErr("stat", name, err)
	}
	_, base := splitPath(p)
	return n.infoLocked(base), nil
}

// SyncDir implements FS.
func (fs *MemFS) SyncDir(name string) error {
	p := cleanPath(name)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	n, err := fs.lookupLocked(p)
	if err != nil {
		return pathErr("open", name, err)
	}
	if !n.isDir {
		return pathErr("sync", name, syscall.ENOTDIR)
	}
	n.syncedChildren = make(map[string]*memNode, len(n.children))
	for k, v := range n.children {
		n.syncedChildren[k] = v
	}
	return nil
}

func (n *memNode) infoLocked(base string) os.FileInfo {
	fi := memFileInfo{name: base, size: int64(len(n.data)), modTime: n.modTime, mode: 0o644}
	if n.isDir {
		fi.mode = os.ModeDir | 0o755
		fi.size = 0
	}
	return fi
}

// unshareBelowLocked copies data before an in-place change at or after off
// if that change would be seen through synced.
func (n *memNode) unshareBelowLocked(off int64) {
	if n.shared && off < int64(len(n.synced)) {
		n.data = bytes.Clone(n.data)
		n.shared = false
	}
}

func (n *memNode) writeAtLocked(p []byte, off int64) {
	end := off + int64(len(p))
	n.unshareBelowLocked(off)
	if end > int64(len(n.data)) {
		n.truncateLocked(end)
	}
	copy(n.data[off:], p)
	n.modTime = time.Now()
}

func (n *memNode) truncateLocked(size int64) {
	cur := int64(len(n.data))
	switch {
	case size < cur:
		n.data = n.data[:size]
	case size > cur:
		// Growing writes bytes at [cur, size) in place within the capacity.
		n.unshareBelowLocked(cur)
		if size <= int64(cap(n.data)) {
			n.data = n.data[:size]
			clear(n.data[cur:])
		} else {
			n.data = append(n.data, make([]byte, size-cur)...)
		}
	}
	n.modTime = time.Now()
}

// memFile is an open MemFS file. Its position and closed flag are guarded by
// MemFS.mu, like its node.
type memFile struct {
	fs       *MemFS
	n        *memNode
	name     string
	readOnly bool
	pos      int64
	closed   bool
}

func (f *memFile) checkLocked(op string, write bool) error {
	if f.closed {
		return pathErr(op, f.name, os.ErrClosed)
	}
	if write && f.readOnly {
		return pathErr(op, f.name, syscall.EBADF)
	}
	return nil
}

func (f *memFile) Read(p []byte) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("read", false); err != nil {
		return 0, err
	}
	if f.pos >= int64(len(f.n.data)) {
		return 0, io.EOF
	}
	k := copy(p, f.n.data[f.pos:])
	f.pos += int64(k)
	return k, nil
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("read", false); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, pathErr("read", f.name, syscall.EINVAL)
	}
	if off >= int64(len(f.n.data)) {
		return 0, io.EOF
	}
	k := copy(p, f.n.data[off:])
	if k < len(p) {
		return k, io.EOF
	}
	return k, nil
}

func (f *memFile) Write(p []byte) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("write", true); err != nil {
		return 0, err
	}
	f.n.writeAtLocked(p, f.pos)
	f.pos += int64(len(p))
	return len(p), nil
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) { return f.writeAt(p, off, false) }

// WriteDirectAt is WriteAt followed by what a direct write may leave after p: zeros up to
// the next multiple of DirectBlock, so that tests see the padding the log must cope with.
func (f *memFile) WriteDirectAt(p []byte, off int64) (int, error) { return f.writeAt(p, off, true) }

func (f *memFile) writeAt(p []byte, off int64, pad bool) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("write", true); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, pathErr("write", f.name, syscall.EINVAL)
	}
	f.n.writeAtLocked(p, off)
	end := off + int64(len(p))
	if n := -end & (DirectBlock - 1); pad && n > 0 {
		f.n.writeAtLocked(make([]byte, n), end)
	}
	return len(p), nil
}

func (f *memFile) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return pathErr("close", f.name, os.ErrClosed)
	}
	f.closed = true
	return nil
}

func (f *memFile) Sync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("sync", false); err != nil {
		return err
	}
	// Share instead of copying; the capacity cap keeps appends to data from
	// ever writing into what synced can see.
	f.n.synced = f.n.data[:len(f.n.data):len(f.n.data)]
	f.n.shared = true
	return nil
}

func (f *memFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("truncate", true); err != nil {
		return err
	}
	if size < 0 {
		return pathErr("truncate", f.name, syscall.EINVAL)
	}
	f.n.truncateLocked(size)
	return nil
}

func (f *memFile) Stat() (os.FileInfo, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("stat", false); err != nil {
		return nil, err
	}
	return f.n.infoLocked(path.Base(cleanPath(f.name))), nil
}

func (f *memFile) Preallocate(off, length int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	return f.checkLocked("fallocate", true)
}

func (f *memFile) Fd() uintptr { return InvalidFd }

// memFileInfo implements os.FileInfo for MemFS.
type memFileInfo struct {
	name    string
	size    int64
	mode    os.FileMode
	modTime time.Time
}

func (fi memFileInfo) Name() string       { return fi.name }
func (fi memFileInfo) Size() int64        { return fi.size }
func (fi memFileInfo) Mode() os.FileMode  { return fi.mode }
func (fi memFileInfo) ModTime() time.Time { return fi.modTime }
func (fi memFileInfo) IsDir() bool        { return fi.mode.IsDir() }
func (fi memFileInfo) Sys() any           { return nil }

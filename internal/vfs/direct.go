package vfs

import (
	"errors"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// directBufSize is the size of the aligned buffers direct writes copy through: an append
// larger than this goes to the device in several writes.
const directBufSize = 1 << 20

// directBufs recycles the aligned buffers (*[]byte of directBufSize bytes).
var directBufs = sync.Pool{New: func() any {
	b := make([]byte, directBufSize+DirectBlock)
	skip := int(-uintptr(unsafe.Pointer(&b[0])) & (DirectBlock - 1))
	b = b[skip : skip+directBufSize : skip+directBufSize]
	return &b
}}

// directState is what an OS file's direct writes keep between calls: a second descriptor
// of the same file opened with O_DIRECT, and the block at the logical end that the last
// direct write left partly filled, which the next one rewrites whole.
//
// Invariants (under mu): fd is nil until the first direct write, then open, unless refused
// is set (the filesystem or the system refused O_DIRECT), after which direct writes are
// plain WriteAt; when tailOK, tail[:tailLen] are the file's bytes [tailAt, tailAt+tailLen)
// and tailAt is a multiple of DirectBlock. Any other write or truncation clears tailOK.
type directState struct {
	mu      sync.Mutex
	fd      *os.File
	refused bool
	tail    []byte // DirectBlock bytes, once used
	tailAt  int64
	tailLen int
	tailOK  bool
}

// forget drops the remembered block.
func (d *directState) forget() {
	d.mu.Lock()
	d.tailOK = false
	d.mu.Unlock()
}

// end drops the remembered block and closes the O_DIRECT descriptor (the next direct write
// opens it again): a truncated file is usually done with appends — a sealed segment — and
// must not hold a second descriptor for the rest of its life.
func (d *directState) end() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.tailOK = false
	if d.fd == nil {
		return nil
	}
	err := d.fd.Close()
	d.fd = nil
	return err
}

func (d *directState) close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fd == nil {
		return nil
	}
	err := d.fd.Close()
	d.fd = nil
	return err
}

// write is WriteDirectAt for f: it copies the start of the block holding off and p into
// aligned buffers, pads the last block with zeros and writes whole blocks through the
// O_DIRECT descriptor, so the kernel moves the bytes to the device without a page-cache copy.
func (d *directState) write(f *os.File, p []byte, off int64) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.refused && d.fd == nil {
		fd, err := openDirect(f)
		switch {
		case err == nil:
			d.fd = fd
		case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE), errors.Is(err, syscall.ENOMEM):
			// Out of descriptors or memory for now: this write goes through the page
			// cache, the next one tries again.
		default:
			d.refused = true // tmpfs and some others refuse O_DIRECT: the page cache it is
		}
	}
	if d.fd == nil { // refused, or the open failed for now (out of descriptors): plain write
		d.tailOK = false
		return f.WriteAt(p, off)
	}
	bp := directBufs.Get().(*[]byte)
	defer directBufs.Put(bp)
	buf := *bp
	head := off &^ (DirectBlock - 1)
	n := int(off - head)
	if n > 0 {
		if d.tailOK && d.tailAt == head && d.tailLen >= n {
			copy(buf, d.tail[:n])
		} else if _, err := f.ReadAt(buf[:n], head); err != nil {
			return 0, err
		}
	}
	d.tailOK = false // until the block at the end is known again
	pos, done := head, 0
	for {
		c := copy(buf[n:], p[done:])
		n += c
		done += c
		if done == len(p) {
			break
		}
		if _, err := d.fd.WriteAt(buf[:n], pos); err != nil {
			return d.failed(f, p, off, pos == head, err)
		}
		pos += int64(n)
		n = 0
	}
	end := (n + DirectBlock - 1) &^ (DirectBlock - 1)
	clear(buf[n:end])
	if _, err := d.fd.WriteAt(buf[:end], pos); err != nil {
		return d.failed(f, p, off, pos == head, err)
	}
	if d.tail == nil {
		d.tail = make([]byte, DirectBlock)
	}
	last := n &^ (DirectBlock - 1)
	d.tailLen = copy(d.tail, buf[last:n])
	d.tailAt = pos + int64(last)
	d.tailOK = true
	return len(p), nil
}

// failed handles a direct write's error. EINVAL on the first write of a call means the
// device wants a larger alignment than DirectBlock: nothing was written, so the call and
// every later one write through the page cache.
func (d *directState) failed(f *os.File, p []byte, off int64, first bool, err error) (int, error) {
	if first && errors.Is(err, syscall.EINVAL) {
		d.refused = true
		return f.WriteAt(p, off)
	}
	return 0, err
}

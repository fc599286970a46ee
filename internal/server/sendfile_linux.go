package server

import (
	"errors"
	"io"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// sendFile sends n bytes of src from offset off to the TCP connection with sendfile(2), so
// record bytes go from the page cache to the socket without a user-space copy. The positioned
// form leaves the file's own offset alone, so concurrent fetches of one segment never
// interfere, and the file descriptor is used only inside src.Control, which keeps it from being
// closed (and its number reused) while sendfile runs. handled is false when the connection is
// not TCP; the caller then reads the bytes instead.
func sendFile(c net.Conn, src syscall.RawConn, off int64, n int) (handled bool, err error) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return false, nil
	}
	dst, err := tc.SyscallConn()
	if err != nil {
		return false, nil
	}
	var werr error
	err = dst.Write(func(sock uintptr) bool {
		again := false
		cerr := src.Control(func(fd uintptr) {
			for n > 0 {
				w, err := unix.Sendfile(int(sock), int(fd), &off, n)
				if w > 0 {
					n -= w
				}
				switch {
				case errors.Is(err, unix.EAGAIN):
					again = true // wait until the socket is writable, then continue
					return
				case errors.Is(err, unix.EINTR):
					continue
				case err != nil:
					werr = err
					return
				case w == 0:
					werr = io.ErrUnexpectedEOF // the file is shorter than the range
					return
				}
			}
		})
		if cerr != nil && werr == nil {
			werr = cerr
		}
		return !again || werr != nil
	})
	if err == nil {
		err = werr
	}
	return true, err
}

package server

import (
	"errors"
	"io"
	"net"

	"golang.org/x/sys/unix"
)

// sendFile sends n bytes of the file descriptor fd from offset off to the TCP connection with
// sendfile(2), so record bytes go from the page cache to the socket without a user-space
// copy. The positioned form leaves the file's own offset alone, so concurrent fetches of the
// same segment never interfere. It reports handled=false when the connection is not a TCP
// connection, and the caller falls back to reading the bytes.
func sendFile(c net.Conn, fd uintptr, off int64, n int) (handled bool, err error) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return false, nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return false, nil
	}
	var werr error
	err = rc.Write(func(sock uintptr) bool {
		for n > 0 {
			w, err := unix.Sendfile(int(sock), int(fd), &off, n)
			if w > 0 {
				n -= w
			}
			switch {
			case errors.Is(err, unix.EAGAIN):
				return false // wait until the socket is writable, then continue
			case errors.Is(err, unix.EINTR):
				continue
			case err != nil:
				werr = err
				return true
			case w == 0:
				werr = io.ErrUnexpectedEOF // the file is shorter than the range
				return true
			}
		}
		return true
	})
	if err == nil {
		err = werr
	}
	return true, err
}

// Go's net.UnixConn: WriteMsgUnix and ReadMsgUnix with syscall.UnixRights,
// syscall.ParseSocketControlMessage and syscall.ParseUnixRights, on a socket
// fd wrapped the way a Go program wraps one it was handed: os.NewFile, then
// net.FileConn. FileConn dups the fd and puts the dup in the runtime's
// poller, non-blocking; that is the library's own behaviour, kept as it is.

package main

import (
	"fmt"
	"net"
	"os"
	"syscall"
)

var implementation = map[string]string{
	"name":     "go-net",
	"language": "Go 1.19",
	"library":  "net.UnixConn (Go standard library)",
	"version":  "go1.19",
	"homepage": "https://pkg.go.dev/net#UnixConn",
}

// ReadMsgUnix hands back the kernel's msg_flags.
const truncation = "attribute"

// WriteMsgUnix and ReadMsgUnix take no flags. A net.Conn has no
// non-blocking mode: every call waits in the runtime's poller for readiness
// (only a deadline ends the wait), whatever the socket's O_NONBLOCK says.
var unsupported = []string{"flags", "blocking-mode"}

// files holds the *os.File of each fd the suite handed over, as a Go program
// holds the File it wrapped: a File left to the garbage collector closes its
// fd, which belongs to the suite until it sends close.
var files = map[int]*os.File{}

// release closes an fd the suite took or received, through its File if one wraps it.
func release(fd int) error {
	if f, ok := files[fd]; ok {
		delete(files, fd)
		return f.Close()
	}
	return syscall.Close(fd)
}

func file(fd int) *os.File {
	f, ok := files[fd]
	if !ok {
		f = os.NewFile(uintptr(fd), fmt.Sprintf("fd %d", fd))
		files[fd] = f
	}
	return f
}

// unixConn wraps fd as a Go program does; the caller closes the conn (its dup).
func unixConn(fd int) (*net.UnixConn, error) {
	c, err := net.FileConn(file(fd))
	if err != nil {
		return nil, err
	}
	u, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("net.FileConn gave a %T, which has no WriteMsgUnix/ReadMsgUnix", c)
	}
	return u, nil
}

func sendfds(sock int, msg []byte, flags int, fds []int) (int, error) {
	c, err := unixConn(sock)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return send(c, msg, fds)
}

func send(c *net.UnixConn, msg []byte, fds []int) (int, error) {
	var oob []byte // zero fds: a plain message, no control data
	if len(fds) > 0 {
		oob = syscall.UnixRights(fds...)
	}
	n, _, err := c.WriteMsgUnix(msg, oob, nil)
	return n, err
}

func recvfds(sock, length, flags, numfds int) (received, error) {
	c, err := unixConn(sock)
	if err != nil {
		return received{}, err
	}
	defer c.Close()
	return receive(c, length, numfds)
}

func receive(c *net.UnixConn, length, numfds int) (received, error) {
	buf := make([]byte, length)
	oob := make([]byte, syscall.CmsgSpace(numfds*4))
	n, oobn, recvflags, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return received{}, err
	}
	msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return received{}, err
	}
	fds := []int{}
	for i := range msgs {
		// Only SCM_RIGHTS carries fds for this call; the rest is left alone.
		if m := &msgs[i]; m.Header.Level == syscall.SOL_SOCKET && m.Header.Type == syscall.SCM_RIGHTS {
			got, err := syscall.ParseUnixRights(m)
			if err != nil {
				return received{}, err
			}
			fds = append(fds, got...)
		}
	}
	return fromFlags(buf[:n], fds, recvflags), nil
}

// bench wraps each socket once, as a Go program would, and loops on the conns.
func bench(sendSock, recvSock, fd, payload, rounds int) (int64, error) {
	out, err := unixConn(sendSock)
	if err != nil {
		return 0, err
	}
	defer out.Close()
	in, err := unixConn(recvSock)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	send := func(msg []byte, fds []int) (int, error) { return send(out, msg, fds) }
	recv := func(length, numfds int) (received, error) { return receive(in, length, numfds) }
	return benchLoop(send, recv, fd, payload, rounds)
}

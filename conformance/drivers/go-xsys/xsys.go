// golang.org/x/sys/unix: unix.SendmsgN and unix.Recvmsg with unix.UnixRights,
// unix.ParseSocketControlMessage and unix.ParseUnixRights, the way its
// documentation and Go programs use them.

package main

import "golang.org/x/sys/unix"

var implementation = map[string]string{
	"name":     "go-xsys",
	"language": "Go 1.19",
	"library":  "golang.org/x/sys/unix",
	"version":  "0.3.0",
	"homepage": "https://pkg.go.dev/golang.org/x/sys/unix",
}

// Recvmsg hands back the kernel's msg_flags.
const truncation = "attribute"

var unsupported = []string{}

// release closes an fd the suite took or received.
func release(fd int) error { return unix.Close(fd) }

func sendfds(sock int, msg []byte, flags int, fds []int) (int, error) {
	var oob []byte // zero fds: a plain message, no control data
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	// SendmsgN is Sendmsg with the byte count, which the caller needs.
	return unix.SendmsgN(sock, msg, oob, nil, flags)
}

func recvfds(sock, length, flags, numfds int) (received, error) {
	buf := make([]byte, length)
	oob := make([]byte, unix.CmsgSpace(numfds*4))
	n, oobn, recvflags, _, err := unix.Recvmsg(sock, buf, oob, flags)
	if err != nil {
		return received{}, err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return received{}, err
	}
	fds := []int{}
	for i := range msgs {
		// Only SCM_RIGHTS carries fds for this call; the rest is left alone.
		if m := &msgs[i]; m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_RIGHTS {
			got, err := unix.ParseUnixRights(m)
			if err != nil {
				return received{}, err
			}
			fds = append(fds, got...)
		}
	}
	return fromFlags(buf[:n], fds, recvflags), nil
}

func bench(sendSock, recvSock, fd, payload, rounds int) (int64, error) {
	send := func(msg []byte, fds []int) (int, error) { return sendfds(sendSock, msg, 0, fds) }
	recv := func(length, numfds int) (received, error) { return recvfds(recvSock, length, 0, numfds) }
	return benchLoop(send, recv, fd, payload, rounds)
}

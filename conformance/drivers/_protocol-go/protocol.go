// The driver protocol (docs/drivers.md, version 1) for a Go driver: the
// request loop, the fd plumbing (pidfd_open/pidfd_getfd as raw system calls,
// never the code under test) and the replies. A driver's build copies it
// beside its own file, which names the implementation and supplies release,
// sendfds, recvfds and bench, each calling its library the way a user would.

package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"syscall"
	"time"
)

// The protocol version this driver speaks.
const protocolVersion = 1

// x86_64 system call numbers (the standard library's syscall package predates them).
const (
	sysPidfdOpen  = 434
	sysPidfdGetfd = 438
)

func init() {
	// Rule 2: every call of the implementation runs on the main thread.
	runtime.LockOSThread()
}

// received is what a receive of the implementation gave back.
type received struct {
	msg          []byte
	fds          []int
	truncated    *bool // MSG_CTRUNC, nil where the implementation does not say
	msgTruncated *bool // MSG_TRUNC, nil where the implementation does not say
}

type request struct {
	Cmd      string `json:"cmd"`
	Version  int    `json:"version"`
	SuitePid int    `json:"suite_pid"`
	Fds      []int  `json:"fds"`
	Sock     int    `json:"sock"`
	Msg      []byte `json:"msg"` // base64 in JSON
	Flags    int    `json:"flags"`
	Len      int    `json:"len"`
	Numfds   int    `json:"numfds"`
	SendSock int    `json:"send_sock"`
	RecvSock int    `json:"recv_sock"`
	Fd       int    `json:"fd"`
	Payload  int    `json:"payload"`
	Rounds   int    `json:"rounds"`
}

type reply map[string]interface{}

// suitePidfd is the pidfd of the suite, opened at start.
var suitePidfd = -1

func flag(b bool) *bool { return &b }

// fromFlags is a receive's result, its truncation read from the msg_flags it returned.
func fromFlags(msg []byte, fds []int, msgFlags int) received {
	return received{
		msg:          msg,
		fds:          fds,
		truncated:    flag(msgFlags&syscall.MSG_CTRUNC != 0),
		msgTruncated: flag(msgFlags&syscall.MSG_TRUNC != 0),
	}
}

// failure is the reply for an error: its errno where it carries one.
func failure(err error) reply {
	r := reply{"ok": false, "errno": nil, "error": err.Error()}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		r["errno"] = int(errno)
	}
	if errors.Is(err, io.EOF) {
		r["eof"] = true
	}
	return r
}

func rawSyscall(trap, a1, a2, a3 uintptr) (int, error) {
	r, _, errno := syscall.Syscall(trap, a1, a2, a3)
	if errno != 0 {
		return -1, errno
	}
	return int(r), nil
}

// start answers the handshake; a version it does not speak ends the driver.
func start(req request) (reply, bool) {
	if req.Version != protocolVersion {
		return reply{"ok": false, "errno": nil,
			"error": fmt.Sprintf("this driver speaks protocol version %d, not %d", protocolVersion, req.Version)}, true
	}
	pidfd, err := rawSyscall(sysPidfdOpen, uintptr(req.SuitePid), 0, 0)
	if err != nil {
		return failure(fmt.Errorf("pidfd_open(%d): %w", req.SuitePid, err)), false
	}
	suitePidfd = pidfd
	return reply{"ok": true, "version": protocolVersion, "implementation": implementation,
		"truncation": truncation, "unsupported": unsupported}, false
}

func take(fds []int) reply {
	taken := []int{}
	for _, fd := range fds {
		got, err := rawSyscall(sysPidfdGetfd, uintptr(suitePidfd), uintptr(fd), 0)
		if err != nil {
			for _, t := range taken {
				syscall.Close(t)
			}
			return failure(fmt.Errorf("pidfd_getfd(%d): %w", fd, err))
		}
		taken = append(taken, got)
	}
	return reply{"ok": true, "fds": taken}
}

func closeFds(fds []int) reply {
	for _, fd := range fds {
		if err := release(fd); err != nil {
			return failure(fmt.Errorf("close(%d): %w", fd, err))
		}
	}
	return reply{"ok": true}
}

// benchLoop times rounds of a send of payload bytes with fd, a receive of
// them and a close of the fd received, on the monotonic clock.
func benchLoop(send func(msg []byte, fds []int) (int, error), recv func(length, numfds int) (received, error),
	fd, payload, rounds int) (int64, error) {
	msg := make([]byte, payload)
	began := time.Now()
	for i := 0; i < rounds; i++ {
		if _, err := send(msg, []int{fd}); err != nil {
			return 0, err
		}
		got, err := recv(payload, 1)
		if err != nil {
			return 0, err
		}
		for _, r := range got.fds {
			if err := syscall.Close(r); err != nil {
				return 0, err
			}
		}
	}
	return time.Since(began).Nanoseconds(), nil
}

func handle(req request) (r reply, stop bool) {
	defer func() {
		// A panic of the implementation (or of Go's runtime under it) is its failure.
		if p := recover(); p != nil {
			r = reply{"ok": false, "errno": nil, "error": fmt.Sprintf("panic: %v", p)}
		}
	}()
	switch req.Cmd {
	case "start":
		return start(req)
	case "take":
		return take(req.Fds), false
	case "sendfds":
		if req.Fds == nil {
			req.Fds = []int{}
		}
		sent, err := sendfds(req.Sock, req.Msg, req.Flags, req.Fds)
		if err != nil {
			return failure(err), false
		}
		return reply{"ok": true, "sent": sent}, false
	case "recvfds":
		got, err := recvfds(req.Sock, req.Len, req.Flags, req.Numfds)
		if err != nil {
			return failure(err), false
		}
		if got.fds == nil {
			got.fds = []int{}
		}
		if got.msg == nil {
			got.msg = []byte{}
		}
		return reply{"ok": true, "msg": got.msg, "fds": got.fds,
			"truncated": got.truncated, "msg_truncated": got.msgTruncated}, false
	case "close":
		return closeFds(req.Fds), false
	case "bench":
		ns, err := bench(req.SendSock, req.RecvSock, req.Fd, req.Payload, req.Rounds)
		if err != nil {
			return failure(err), false
		}
		return reply{"ok": true, "ns": ns}, false
	case "stop":
		return reply{"ok": true}, true
	}
	return reply{"ok": false, "errno": nil, "error": "unknown cmd " + req.Cmd}, false
}

// startPoller makes Go's runtime open its poller (an epoll fd and a wake-up
// pipe, kept for the process's life) now, before the start reply (rule 3).
// Left alone, the runtime opens it the first time it needs a timer or a
// pollable file: for go-xsys that is the garbage collector's scavenger, at
// some call deep into a long run, where the suite would count the three fds
// as that call's leak.
func startPoller() {
	r, w, err := os.Pipe() // a pollable file: the poller starts
	if err != nil {
		fmt.Fprintln(os.Stderr, "cannot start Go's poller:", err)
		os.Exit(1)
	}
	r.Close()
	w.Close()
}

func main() {
	startPoller()
	in := bufio.NewReader(os.Stdin)
	for {
		line, err := in.ReadBytes('\n')
		if len(line) == 0 && err != nil {
			os.Exit(0) // end of file: rule 5
		}
		var req request
		var r reply
		stop := false
		if err := json.Unmarshal(line, &req); err != nil {
			r = reply{"ok": false, "errno": nil, "error": "bad request: " + err.Error()}
		} else {
			r, stop = handle(req)
		}
		out, err := json.Marshal(r)
		if err != nil {
			out, _ = json.Marshal(reply{"ok": false, "errno": nil, "error": "cannot encode the reply: " + err.Error()})
		}
		if _, err := os.Stdout.Write(append(out, '\n')); err != nil {
			os.Exit(1)
		}
		if stop {
			os.Exit(0)
		}
	}
}

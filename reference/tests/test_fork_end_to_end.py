"""End to end across fork, in the style of fdsend 0.3's own test: a child
serves a path socket and sends a str message with an open file."""

from __future__ import annotations

import os
import select
import socket

import fdsend
from fdsend_conformance.harness.processes import fork_call, reap
from fdsend_conformance.harness.sockets import set_io_timeout


def test_child_sends_an_open_file_to_the_parent(tmp_path, closer):
    path = str(tmp_path / "fdsend.sock")
    data = tmp_path / "data.txt"
    data.write_bytes(b"0123456789")
    ready_read, ready_write = os.pipe()

    def child() -> None:
        os.close(ready_read)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
            server.bind(path)
            server.listen(1)
            server.settimeout(10)
            os.write(ready_write, b"!")  # listening: the parent may connect
            conn, _ = server.accept()
            with conn, open(data, "rb") as file:
                file.seek(4)
                fdsend.sendfds(conn, "hello from the child", fds=[file])

    pid = fork_call(child)
    os.close(ready_write)
    closer.fds(ready_read)
    try:
        assert select.select([ready_read], [], [], 10)[0], "child never started listening"
        assert os.read(ready_read, 1) == b"!"
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            set_io_timeout(client)
            client.connect(path)
            msg, fds = fdsend.recvfds(client, 100, numfds=64)
    finally:  # the child is reaped whatever happened
        status = reap(pid)
    assert status == 0
    assert msg == b"hello from the child"
    closer.fds(*fds)
    [fd] = fds
    assert os.lseek(fd, 0, os.SEEK_CUR) == 4  # the child's offset, shared
    assert os.read(fd, 100) == b"456789"
    assert os.pread(fd, 4, 0) == b"0123"

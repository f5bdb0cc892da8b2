"""KERNEL: an io_uring fd cannot be passed with SCM_RIGHTS."""

from __future__ import annotations

import errno
import os

import pytest

from fdsend_conformance.harness.cmsg import send_fds
from fdsend_conformance.harness.fdtable import at_eof
from fdsend_conformance.harness.kernel import open_io_uring
from fdsend_conformance.harness.sockets import UNIX_TYPES, pending, unix_pair

pytestmark = pytest.mark.kernel


@pytest.mark.clause("KERNEL-24")
@pytest.mark.parametrize("beside", [False, True], ids=["alone", "beside-a-pipe"])
@pytest.mark.parametrize("kind", UNIX_TYPES)
def test_io_uring_fd_is_refused_with_einval(closer, kind, beside):
    ring = open_io_uring()
    closer.fds(ring)
    assert os.readlink(f"/proc/self/fd/{ring}") == "anon_inode:[io_uring]"
    a, b = unix_pair(closer.objects, UNIX_TYPES[kind])
    read_end, write_end = os.pipe()
    closer.fds(read_end, write_end)
    with pytest.raises(OSError) as info:
        send_fds(a, b"ring", [write_end, ring] if beside else [ring])
    assert info.value.errno == errno.EINVAL, os.strerror(info.value.errno or 0)
    closer.close(write_end)
    assert not pending(b), "the refused send queued something"
    assert at_eof(read_end), "an fd of the refused send is held in flight"
    a.sendall(b"after")
    assert b.recv(16) == b"after"

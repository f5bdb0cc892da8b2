"""KERNEL: SIOCATMARK, whether the next in-band byte is the out-of-band mark (Linux >= 5.15)."""

from __future__ import annotations

import errno
import socket

import pytest

from fdsend_conformance.harness.kernel import NO_UNIX_OOB, at_mark, oob_stream_pair
from fdsend_conformance.harness.kernel_fixes import known_bug
from fdsend_conformance.harness.sockets import UNIX_TYPES, unix_pair

pytestmark = pytest.mark.kernel

NON_STREAM_FIX = "af_unix: Reject SIOCATMARK on non-stream sockets"
CONSUMED_MARK_FIX = "af_unix: Fix wrong ioctl(SIOCATMARK) when consumed OOB skb is at the head."


def _require_stream_siocatmark(closer) -> None:
    """Skip where AF_UNIX answers SIOCATMARK on no socket type (no MSG_OOB)."""
    stream, _peer = unix_pair(closer.objects)
    try:
        at_mark(stream)
    except OSError as exc:
        pytest.skip(f"{NO_UNIX_OOB}: SIOCATMARK on SOCK_STREAM fails with {exc}")


@pytest.mark.clause("KERNEL-31")
@pytest.mark.parametrize("kind", ["seqpacket", "dgram"])
@pytest.mark.parametrize("queued", [None, b"", b"abc"], ids=["empty", "empty-message", "message"])
@known_bug(NON_STREAM_FIX)
def test_siocatmark_is_refused_off_sock_stream(closer, kind, queued):
    _require_stream_siocatmark(closer)
    a, b = unix_pair(closer.objects, UNIX_TYPES[kind])
    if queued is not None:
        assert a.send(queued) == len(queued)
    try:
        answer: bool | OSError = at_mark(b)
    except OSError as exc:
        answer = exc
    assert isinstance(answer, OSError), f"SIOCATMARK answered {int(answer)} without a mark"
    assert answer.errno == errno.EOPNOTSUPP, answer
    if queued is not None:
        assert b.recv(8) == queued  # the question took nothing


@pytest.mark.clause("KERNEL-31")
def test_siocatmark_answers_on_sock_stream(closer):
    _require_stream_siocatmark(closer)
    a, b = unix_pair(closer.objects)
    assert not at_mark(b), "at the mark with nothing sent"
    a.send(b"ab", socket.MSG_OOB)
    assert not at_mark(b), "at the mark with 'a' still to read before it"
    assert b.recv(2) == b"a"
    assert at_mark(b)


@pytest.mark.clause("KERNEL-38")
@known_bug(CONSUMED_MARK_FIX)
def test_reading_the_oob_byte_leaves_the_reader_at_the_mark(closer):
    a, b = oob_stream_pair(closer.objects)
    a.send(b"x", socket.MSG_OOB)
    assert at_mark(b)
    assert b.recv(1, socket.MSG_OOB) == b"x"
    assert at_mark(b), "reading the out-of-band byte moved the reader off the mark"
    a.send(b"y")
    assert at_mark(b), "in-band data after the mark moved the reader off it"
    assert b.recv(1) == b"y"
    assert not at_mark(b)

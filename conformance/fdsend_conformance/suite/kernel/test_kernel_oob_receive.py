"""KERNEL: the receive path around out-of-band data on SOCK_STREAM (Linux >= 5.15).

Each check is the shape of a fix to unix_stream_read_generic()/manage_oob()
(see kernel_fixes.json): a sequence of sends and receives whose outcome the
fix restored. Every receive is non-blocking (MSG_DONTWAIT), so nothing here
waits; the one that could loop in the kernel runs in a forked child.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

import pytest

from fdsend_conformance.harness.kernel import oob_stream_pair
from fdsend_conformance.harness.kernel_fixes import known_bug
from fdsend_conformance.harness.processes import call_in_child
from fdsend_conformance.harness.sockets import pending, set_io_timeout, unix_pair

pytestmark = pytest.mark.kernel

OOB = socket.MSG_OOB
PEEK = socket.MSG_PEEK
NOW = socket.MSG_DONTWAIT

ZERO_LENGTH_FIX = "af_unix: Return immediately when manage_oob() returns NULL for 0-length buffer."
CONSECUTIVE_FIX = "af_unix: Don't leave consecutive consumed OOB skbs."
ECONNRESET_FIX = "af_unix: Don't set -ECONNRESET for consumed OOB skb."
PEEK_LOOP_FIX = "af_unix: Read with MSG_PEEK loops if the first unread byte is OOB"


def _read(sock: socket.socket, size: int, flags: int = 0) -> bytes | int:
    """What one non-blocking ``recvmsg`` of ``size`` bytes gets: the bytes, or the errno."""
    try:
        data, ancdata, _flags, _addr = sock.recvmsg(size, 0, flags | NOW)
    except OSError as exc:
        return exc.errno if exc.errno is not None else -1
    assert ancdata == []
    return data


def _said(outcome: bytes | int) -> str:
    """A read's outcome in words: the bytes, or the errno's name."""
    return repr(outcome) if isinstance(outcome, bytes) else errno.errorcode.get(outcome, "?")


class Step:
    """One step of a sequence of sends and reads on an out-of-band stream pair."""


@dataclass(frozen=True)
class Send(Step):
    """A step: the writer sends ``data`` with ``flags``."""

    data: bytes
    flags: int = 0


@dataclass(frozen=True)
class Read(Step):
    """A step: a non-blocking read of ``size`` bytes with ``flags`` gets ``gets``
    (bytes, or an errno); ``why`` says what it means when it does not."""

    size: int
    flags: int
    gets: bytes | int
    why: str = ""


def _play(closer, steps: list[Step]) -> tuple[socket.socket, socket.socket]:
    """Play ``steps`` on a new out-of-band stream pair (no SO_OOBINLINE); returns it."""
    a, b = oob_stream_pair(closer.objects)
    for number, step in enumerate(steps, 1):
        if isinstance(step, Send):
            assert a.send(step.data, step.flags) == len(step.data)
            continue
        assert isinstance(step, Read)
        got = _read(b, step.size, step.flags)
        assert got == step.gets, (
            f"step {number}, {step}: got {_said(got)}, not {_said(step.gets)}. {step.why}"
        )
    return a, b


#: An out-of-band byte sent and read out of band: its (empty) skb stays queued.
OOB_X_READ: list[Step] = [Send(b"x", OOB), Read(1, OOB, b"x")]


#: Out-of-band data at the head of the queue when a zero-length receive
#: comes: by name, the steps before it, and its flags (a peek or not).
ZERO_LENGTH_CASES: dict[str, tuple[list[Step], int]] = {
    "unread-oob-byte": ([Send(b"x", OOB)], 0),
    "unread-oob-byte-peek": ([Send(b"x", OOB)], PEEK),
    "consumed-oob-byte": (OOB_X_READ, 0),
}


@pytest.mark.clause("KERNEL-30")
@pytest.mark.parametrize("case", ZERO_LENGTH_CASES)
@known_bug(ZERO_LENGTH_FIX)
def test_zero_length_receive_with_oob_data_queued_returns_0(closer, case):
    steps, flags = ZERO_LENGTH_CASES[case]
    _a, b = _play(closer, steps)
    got = _read(b, 0, flags)
    assert got == b"", f"a zero-length receive did not return 0 bytes: {_said(got)}"


@pytest.mark.clause("KERNEL-30")
def test_zero_length_receive_on_an_empty_queue_is_would_block(closer):
    # A plain pair: oob_stream_pair's probe leaves its read byte's skb queued.
    _a, b = unix_pair(closer.objects)
    assert _read(b, 0) == errno.EAGAIN


@pytest.mark.clause("KERNEL-34")
@known_bug(CONSECUTIVE_FIX)
def test_consumed_oob_bytes_never_come_in_band(closer):
    why = "an out-of-band byte already read came in-band"
    y_read = [Send(b"y", OOB), Read(1, OOB, b"y")]
    _a, b = _play(closer, [*OOB_X_READ, *y_read, Read(1, 0, errno.EAGAIN, why), Send(b"z")])
    assert _read(b, 5) == b"z"
    assert not pending(b)


@pytest.mark.clause("KERNEL-34")
@pytest.mark.parametrize("consumed", [1, 2])
@known_bug(ECONNRESET_FIX)
def test_consumed_oob_bytes_then_close_read_as_end_of_stream(closer, consumed):
    y_read = [Send(b"y", OOB), Read(1, OOB, b"y")]
    a, b = _play(closer, [*OOB_X_READ, *y_read][: 2 * consumed])
    a.close()
    assert _read(b, 1) == b"", "a consumed out-of-band byte made the read fail"
    assert _read(b, 1) == b""


@pytest.mark.clause("KERNEL-35")
@pytest.mark.parametrize("inline", [False, True], ids=["oob", "oobinline"])
@known_bug(PEEK_LOOP_FIX)
def test_peek_at_oob_data_returns(closer, inline):
    a, b = oob_stream_pair(closer.objects, inline=inline)
    a.send(b"x", OOB)
    # In a child: a kernel that loops in this peek never returns; the child
    # is killed and the test fails.
    peeked, read = call_in_child(lambda: (_read(b, 1, PEEK), _read(b, 1, 0 if inline else OOB)))
    assert peeked == (b"x" if inline else errno.EAGAIN)
    assert read == b"x"


PEEK_AT_MARK_FIX = "af_unix: Stop recv(MSG_PEEK) at consumed OOB skb."
READ_ON_FIX = "af_unix: Don't stop recv(MSG_DONTWAIT) if consumed OOB skb is at the head."
READ_ON = "the read stopped at the out-of-band byte already read"


@pytest.mark.clause("KERNEL-36")
@known_bug(PEEK_AT_MARK_FIX)
def test_peek_stops_at_a_mark_whose_byte_was_read(closer):
    why = "the peek ran past the out-of-band mark"
    sends = [Send(b"hello", OOB), Send(b"world"), Read(1, OOB, b"o")]
    _play(
        closer, [*sends, Read(9, PEEK, b"hell", why), Read(9, 0, b"hell"), Read(5, PEEK, b"world")]
    )


@pytest.mark.clause("KERNEL-37")
@known_bug(READ_ON_FIX)
def test_read_goes_on_past_a_read_oob_byte_at_the_head(closer):
    _play(closer, [*OOB_X_READ, Send(b"y"), Read(1, 0, b"y", READ_ON)])


@pytest.mark.clause("KERNEL-37")
@known_bug(READ_ON_FIX)
def test_read_goes_on_past_a_superseded_oob_byte(closer):
    # "r" is the mark once "wor" is sent; "o" is in-band again.
    sends = [Send(b"hello", OOB), Send(b"wor", OOB), Send(b"ld")]
    _play(
        closer, [*sends, Read(10, 0, b"hellowo"), Read(1, OOB, b"r"), Read(10, 0, b"ld", READ_ON)]
    )


@pytest.mark.clause("KERNEL-36")
@known_bug(PEEK_AT_MARK_FIX)
def test_peek_never_returns_the_next_oob_byte_in_band(closer):
    why = "the peek returned the out-of-band byte in-band"
    y_sent = [*OOB_X_READ, Send(b"y", OOB)]
    _play(closer, [*y_sent, Read(1, PEEK, errno.EAGAIN, why), Read(1, OOB, b"y")])


LAST_SKB_FIX = "af_unix: Update last skb marker in manage_oob()."

#: The receive timeout of KERNEL-39's blocking peek (its child is killed,
#: taken to spin in the kernel, after CHILD_TIMEOUT).
PEEK_TIMEOUT = 0.2


@pytest.mark.clause("KERNEL-39")
@known_bug(LAST_SKB_FIX)
def test_blocking_peek_behind_oob_bytes_times_out(closer):
    # Nothing in-band: the read out-of-band "x", then the mark "y".
    _a, b = _play(closer, [*OOB_X_READ, Send(b"y", OOB)])
    set_io_timeout(b, PEEK_TIMEOUT)

    def peek() -> int | None:
        try:
            b.recvmsg(1, 0, PEEK)
        except OSError as exc:
            return exc.errno
        return None

    # In a child: a kernel that spins here is killed, and the test fails.
    assert call_in_child(peek) == errno.EAGAIN
    assert _read(b, 1, OOB) == b"y"

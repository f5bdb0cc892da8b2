"""The Backend protocol: what the suite calls and what a backend declares.

A *backend* is any object (a module, a class instance) with two functions in
the shape of fdsend 0.3::

    sendfds(sock, msg, flags=0, fds=None) -> int
    recvfds(sock, len, flags=0, numfds=64) -> result

``sock`` is whatever the caller gives (socket object, int, object with
``fileno()``); ``fds`` is None or an iterable of fd-likes. ``result`` unpacks
as ``(msg, fds)``: the payload bytes and a sequence of the received fds (ints).

A backend may also carry these optional declarations (plain attributes):

``name`` / ``version`` (or ``__version__``)
    Shown in the report.
``truncation``
    How the backend tells its caller that fds were cut by a short control
    buffer (MSG_CTRUNC). One of :data:`TRUNCATION_STYLES`:

    - ``"attribute"`` (the default): the result has ``.truncated`` (true when
      fds were lost) and ``.msg_truncated`` (true when the payload was cut,
      MSG_TRUNC); the fds that did arrive are in the result.
    - ``"exception"``: the receive raises ``truncation_error`` (an exception
      type, default ``OSError``) after closing every fd it received.
    - ``"none"``: truncation is not reported. The truncation clauses fail.
``unsupported``
    An iterable of :class:`Feature` names the backend does not offer. Clauses
    that need them are reported UNSUPPORTED instead of FAIL.

An *adapter* for another library maps call shapes only: it never adds
behaviour the library lacks, so that the library's real behaviour shows.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["TRUNCATION_STYLES", "Backend", "Feature", "FlagsResult"]

TRUNCATION_STYLES = ("attribute", "exception", "none")


class Feature:
    """Optional features a backend may declare it lacks."""

    #: Carries caller-chosen payload bytes with the fds (``msg`` and ``len``).
    PAYLOAD = "payload"
    #: Honours the ``flags`` argument (MSG_PEEK, MSG_DONTWAIT, ...).
    FLAGS = "flags"
    #: Works on SOCK_SEQPACKET sockets.
    SEQPACKET = "seqpacket"
    #: Works on SOCK_DGRAM sockets.
    DGRAM = "dgram"

    ALL = frozenset({PAYLOAD, FLAGS, SEQPACKET, DGRAM})


class FlagsResult(tuple):  # type: ignore[type-arg]
    """A ``(msg, fds)`` result that also keeps the kernel's msg_flags.

    For adapters of libraries that hand back raw ``msg_flags``: the truncation
    attributes are read straight from the flags, nothing is added.
    """

    flags: int

    def __new__(cls, msg: bytes, fds: Sequence[int], flags: int) -> FlagsResult:
        self = super().__new__(cls, (msg, fds))
        self.flags = int(flags)
        return self

    @property
    def truncated(self) -> bool:
        """MSG_CTRUNC: control data (fds) was cut."""
        return bool(self.flags & socket.MSG_CTRUNC)

    @property
    def msg_truncated(self) -> bool:
        """MSG_TRUNC: the payload was cut."""
        return bool(self.flags & socket.MSG_TRUNC)


@dataclass(frozen=True)
class Backend:
    """A loaded backend with its declarations resolved, as the suite sees it."""

    name: str
    impl: Any
    origin: str
    version: str = "unknown"
    truncation: str = "attribute"
    truncation_error: type[BaseException] | tuple[type[BaseException], ...] = OSError
    unsupported: frozenset[str] = field(default_factory=frozenset)

    def sendfds(self, sock: Any, msg: Any, flags: int = 0, fds: Iterable[Any] | None = None) -> int:
        """Call the backend's ``sendfds``."""
        return int(self.impl.sendfds(sock, msg, flags, fds))

    def recvfds(self, sock: Any, len: int, flags: int = 0, numfds: int = 64) -> Any:
        """Call the backend's ``recvfds`` and return its result unchanged."""
        return self.impl.recvfds(sock, len, flags, numfds)

    def supports(self, feature: str) -> bool:
        """Whether the backend offers ``feature`` (see :class:`Feature`)."""
        return feature not in self.unsupported

    @classmethod
    def from_object(cls, name: str, impl: Any, origin: str) -> Backend:
        """Read the declarations of ``impl`` (see the module docstring)."""
        if not callable(getattr(impl, "sendfds", None)) or not callable(
            getattr(impl, "recvfds", None)
        ):
            raise TypeError(f"{origin} has no callable sendfds/recvfds")
        truncation = getattr(impl, "truncation", "attribute")
        if truncation not in TRUNCATION_STYLES:
            raise ValueError(
                f"{origin}: truncation must be one of {TRUNCATION_STYLES}, not {truncation!r}"
            )
        unsupported = frozenset(getattr(impl, "unsupported", ()))
        unknown = unsupported - Feature.ALL
        if unknown:
            raise ValueError(f"{origin}: unknown features {sorted(unknown)}")
        version = getattr(impl, "version", None) or getattr(impl, "__version__", None)
        return cls(
            name=str(getattr(impl, "name", None) or name),
            impl=impl,
            origin=origin,
            version=str(version or "unknown"),
            truncation=truncation,
            truncation_error=getattr(impl, "truncation_error", OSError),
            unsupported=unsupported,
        )

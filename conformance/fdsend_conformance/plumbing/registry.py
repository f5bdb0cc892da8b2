"""Find backends by name: entry points, or a module path ``module[:attr]``.

The built-in backends are registered in the ``fdsend.backends`` entry-point
group by this distribution itself, exactly as a third party registers its
own, so there is one lookup path for all of them.
"""

from __future__ import annotations

import importlib
import shlex
import sys
from dataclasses import dataclass
from typing import Any

from fdsend_conformance.backend import Backend
from fdsend_conformance.driver import named
from fdsend_conformance.driver.caller import DRIVER_PREFIX, DriverBackend
from fdsend_conformance.driver.client import DriverFailure

__all__ = [
    "ENTRY_POINT_GROUP",
    "Availability",
    "UnknownBackendError",
    "available_backends",
    "load_backend",
]

ENTRY_POINT_GROUP = "fdsend.backends"


class UnknownBackendError(LookupError):
    """No backend loads by that name; the message lists the available ones."""


@dataclass(frozen=True)
class Availability:
    """One registered backend: its version, or why it cannot be loaded."""

    name: str
    origin: str
    version: str | None
    error: str | None


def _entry_points() -> dict[str, Any]:
    if sys.version_info >= (3, 10):
        from importlib.metadata import entry_points

        found = entry_points(group=ENTRY_POINT_GROUP)
    else:  # pragma: no cover - Python 3.9
        from importlib.metadata import entry_points

        found = entry_points().get(ENTRY_POINT_GROUP, ())
    return {ep.name: ep for ep in found}


def _load_path(path: str) -> Any:
    module_name, _, attr = path.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    return obj


def load_backend(name: str) -> Backend:
    """Load the backend called ``name``.

    ``name`` is a registered entry-point name (built-in or third party) or a
    module, top-level or dotted, optionally with ``:attr``, naming an object
    with ``sendfds`` and ``recvfds`` (``mymodule``, ``package.module``,
    ``package.module:impl``), or ``driver:COMMAND``, a driver run as COMMAND
    (docs/drivers.md). Raises :class:`UnknownBackendError`, naming the available
    backends, when it is neither or cannot be imported.
    """
    if name.startswith(DRIVER_PREFIX):
        return _load_driver(name)
    entry_points = _entry_points()
    if name in entry_points:
        entry_point = entry_points[name]
        try:
            obj = entry_point.load()
        except ImportError as exc:  # an optional backend whose package is missing
            raise UnknownBackendError(
                f"backend {name!r} is unavailable here ({_reason(exc)}); {_choices()}"
            ) from exc
        return Backend.from_object(name, obj, origin=entry_point.value)
    try:
        obj = _load_path(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:  # a plain name that is no module either
            raise UnknownBackendError(
                f"unknown backend {name!r}: no registered backend has that name, and "
                f"importing it as a module failed ({_reason(exc)}); a module must be "
                f"importable: set PYTHONPATH to its folder or pip install it; {_choices()}"
            ) from exc
        raise UnknownBackendError(
            f"cannot load backend {name!r} ({_reason(exc)}); {_choices()}"
        ) from exc
    except (ImportError, AttributeError, ValueError) as exc:
        raise UnknownBackendError(
            f"cannot load backend {name!r} ({_reason(exc)}); {_choices()}"
        ) from exc
    return Backend.from_object(name, obj, origin=name)


def _load_driver(name: str) -> Backend:
    """The backend ``driver:COMMAND``: COMMAND (shell words) is started as a driver.

    COMMAND may be a driver's folder instead (``conformance/drivers/NAME``):
    it is built first (:mod:`fdsend_conformance.driver.named`).
    """
    command = name[len(DRIVER_PREFIX) :]
    expected = None
    folder = command.strip()
    driver_name = None
    if named.is_driver_folder(folder):  # a driver's folder: built (or found built) first
        try:
            built = named.build(folder)
        except named.BuildError as exc:
            raise UnknownBackendError(f"cannot build driver {folder!r}: {exc}") from None
        command, expected, driver_name = (
            shlex.quote(str(built.executable)),
            built.expected,
            built.name,
        )
    try:
        impl = DriverBackend(command, name=driver_name, expected_file=expected)
    except ValueError as exc:
        raise UnknownBackendError(f"cannot load backend {name!r} ({exc})") from exc
    except DriverFailure as exc:  # it would not start, or not speak version 1
        raise UnknownBackendError(f"cannot load backend {name!r}: {exc.msg}") from None
    return Backend.from_object(name, impl, origin=command)


def available_backends() -> list[Availability]:
    """Every registered backend, loaded to read its version."""
    result = []
    for name, entry_point in sorted(_entry_points().items()):
        try:
            backend = Backend.from_object(name, entry_point.load(), origin=entry_point.value)
        except Exception as exc:  # a broken third-party backend must not hide the rest
            result.append(Availability(name, entry_point.value, None, _reason(exc)))
        else:
            result.append(Availability(name, entry_point.value, backend.version, None))
    return result


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _choices() -> str:
    """What a usage error offers instead: the backends that load, and why others do not."""
    registered = available_backends()
    usable = [a.name for a in registered if a.error is None]
    parts = [f"available: {', '.join(usable) or '(none)'}"]
    unusable = [f"{a.name} ({a.error})" for a in registered if a.error is not None]
    if unusable:
        parts.append(f"unavailable here: {', '.join(unusable)}")
    parts.append("or give a module name, module.path or module:attr")
    return "; ".join(parts)

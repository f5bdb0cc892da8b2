"""The kernel's limits on fds in one message, and the control buffer they need."""

from __future__ import annotations

import socket

__all__ = ["INT_SIZE", "MAX_RIGHTS_SPACE", "SCM_MAX_FD"]

#: The kernel's limit of fds in one SCM_RIGHTS message (include/net/scm.h).
SCM_MAX_FD = 253

#: Bytes of one fd in an SCM_RIGHTS payload (a C int).
INT_SIZE = 4

#: Control-buffer bytes that hold the largest SCM_RIGHTS message.
MAX_RIGHTS_SPACE = socket.CMSG_SPACE(INT_SIZE * SCM_MAX_FD)

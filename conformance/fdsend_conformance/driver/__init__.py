"""Drivers: backends in any language, run as a child process (docs/drivers.md).

One idea a module:

- ``pidfd``: copying an fd out of another process (``pidfd_getfd``);
- ``proc``: another process's fd table and fd flags, read from /proc;
- ``client``: the driver process: start, one request and its reply, stop, and
  every way a driver can fail (:class:`~fdsend_conformance.driver.client.DriverFailure`);
- ``caller``: the backend the suite calls, mapping each call onto requests
  and mirroring what the driver's table shows back into the suite's;
- ``named``: drivers of this repository, built by name;
- ``reference``: the reference (fdsend) served through the protocol.
"""

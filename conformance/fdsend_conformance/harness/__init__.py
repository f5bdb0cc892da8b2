"""What the suite's tests use. Imports nothing from the plumbing or the tools
(conformance/tests/test_floors.py reads the imports to check).

One idea a module:

- ``sockets``: socket pairs with kernel timeouts, the AF_UNIX types, plain reads of a stream;
- ``fds``: fds of every kind, and telling one file from another;
- ``fdlikes``: the spellings of an fd the coercion clauses pass;
- ``closer``: what a test opened, closed at its teardown;
- ``fdtable``: the process's open fds, for leak checks;
- ``ownership``: OWN-1 around every backend call (the caller's socket and fds unchanged);
- ``limits``: fds per message and the control space they need;
- ``cmsg``: raw sendmsg/recvmsg and the control messages the KERNEL checks build;
- ``receive_options``: the socket options a receiver may switch on, and what each adds;
- ``timeouts``: every timeout of the suite, by what it bounds;
- ``processes``: forked and spawned children, RLIMIT_NOFILE;
- ``soak``: many fds between two processes, every one accounted for (LOAD-3, the soak tool);
- ``kernel``: the running kernel's version and features;
- ``privileges``: capabilities, user namespaces, the unprivileged cases;
- ``unix_gc``: the kernel's garbage collector of in-flight AF_UNIX sockets;
- ``proc_syscalls``: which system call a thread sleeps in, read from /proc;
- ``when_blocked``: acting on a call once it sleeps (signal it, wake it, fail it);
- ``checks``: assertions the tests share.
"""

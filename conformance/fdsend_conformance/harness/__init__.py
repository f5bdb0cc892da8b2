"""What the suite's tests use. Imports nothing from the plumbing.

One idea a module:

- ``sockets``: socket pairs with kernel timeouts, the AF_UNIX types, plain reads of a stream;
- ``fds``: fds of every kind, and telling one file from another;
- ``fdlikes``: the spellings of an fd the coercion clauses pass;
- ``fdtable``: the process's open fds, for leak checks;
- ``limits``: fds per message and the control space they need;
- ``timeouts``: every timeout, by what it bounds;
- ``processes``: forked and spawned children, RLIMIT_NOFILE;
- ``kernel``: raw sendmsg/recvmsg and privileges for the KERNEL checks;
- ``proc_syscalls``: which system call a thread sleeps in, read from /proc;
- ``when_blocked``: acting on a call once it sleeps (signal it, wake it, fail it);
- ``checks``: assertions the tests share.
"""

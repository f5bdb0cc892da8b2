/* The protocol side of a C driver (docs/drivers.md, version 1).
 *
 * protocol.c reads the requests, moves fds with pidfd_getfd(2), writes the
 * replies and runs the bench loop. A driver supplies `driver_info` and the
 * four functions below, each calling its library the way a user would and
 * reporting what the library says: nothing more.
 */
#ifndef FDSEND_DRIVER_H
#define FDSEND_DRIVER_H

#include <stddef.h>

/* What the start reply declares. */
struct driver_info {
    const char *name;
    const char *language;
    const char *library;
    const char *version;
    const char *homepage;
    const char *truncation;   /* "attribute", "exception" or "none" */
    const char *unsupported;  /* a JSON array, e.g. "[\"flags\"]" */
};

/* A failed call: the errno the library reported (-1 when it reports none)
 * and its message. */
struct failure {
    int errnum;
    char message[512];
};

/* A receive's outcome. The protocol sizes `msg` (len bytes) and `fds`
 * (room for every fd the kernel can install in one message). A flag is
 * 1/0, or -1 when the library does not report it. `has_credentials` is 1
 * when the library handed its caller the sender's SCM_CREDENTIALS, which
 * are then in `credentials` (pid, uid, gid). */
struct received {
    unsigned char *msg;
    size_t msg_len;
    int *fds;
    size_t nfds;
    int truncated;
    int msg_truncated;
    int has_credentials;
    long credentials[3];
};

extern const struct driver_info driver_info;

/* Send `len` bytes of `msg` and the `nfds` fds in `fds` on `sock`; store the
 * bytes sent in *sent. Returns 0, or -1 after filling *failure. */
int driver_sendfds(int sock, const unsigned char *msg, size_t len, int flags, const int *fds,
                   size_t nfds, long *sent, struct failure *failure);

/* Receive up to `len` bytes and up to `numfds` fds from `sock` into *out.
 * Returns 0, or -1 after filling *failure. */
int driver_recvfds(int sock, size_t len, int flags, size_t numfds, struct received *out,
                   struct failure *failure);

/* The suite closes `fd`. A driver that wrapped it in a library object
 * releases that object (which closes the fd) and returns 1; otherwise it
 * returns 0 and the protocol closes the fd. */
int driver_release(int fd);

#endif

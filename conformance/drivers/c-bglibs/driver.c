/* The bglibs driver: socket_sendfd(sock, fd) and socket_recvfd(sock).
 *
 * The calls carry exactly one fd and no payload of the caller's, take no
 * flags, and report nothing but the fd (or -1 with errno). The driver passes
 * the one fd on and hands back what socket_recvfd returns, as a caller
 * would use it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <bglibs/socket.h>

#include "driver.h"

const struct driver_info driver_info = {
    .name = "c-bglibs",
    .language = "C (gcc)",
    .library = "bglibs",
    .version = "2.04",
    .homepage = "https://untroubled.org/bglibs/",
    .truncation = "none",
    .unsupported = "[\"payload\",\"flags\",\"one-fd\"]",
};

/* A negative return: errno if the call set it (it is cleared before the
 * call), else none; socket_recvfd also returns a negative "fd" read from a
 * control buffer the kernel did not fill, without an error. */
static int failed(struct failure *failure, const char *call, int rc) {
    failure->errnum = errno ? errno : -1;
    snprintf(failure->message, sizeof failure->message, "%s returned %d: %s", call, rc,
             errno ? strerror(errno) : "no errno");
    return -1;
}

int driver_sendfds(int sock, const unsigned char *msg, size_t len, int flags, const int *fds,
                   size_t nfds, long *sent, struct failure *failure) {
    (void)msg, (void)len, (void)flags; /* socket_sendfd has neither payload nor flags */
    if (nfds != 1) {
        failure->errnum = -1;
        snprintf(failure->message, sizeof failure->message,
                 "socket_sendfd sends exactly one fd per call, not %zu", nfds);
        return -1;
    }
    errno = 0;
    int rc = socket_sendfd(sock, fds[0]);
    if (rc < 0) return failed(failure, "socket_sendfd", rc);
    *sent = rc;
    return 0;
}

int driver_recvfds(int sock, size_t len, int flags, size_t numfds, struct received *out,
                   struct failure *failure) {
    (void)len, (void)flags, (void)numfds; /* socket_recvfd takes none of them */
    errno = 0;
    int fd = socket_recvfd(sock);
    if (fd < 0) return failed(failure, "socket_recvfd", fd);
    out->fds[0] = fd;
    out->nfds = 1;
    return 0;
}

int driver_release(int fd) {
    (void)fd;
    return 0;
}

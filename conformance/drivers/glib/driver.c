/* The GLib driver: g_socket_send_message / g_socket_receive_message with a
 * GUnixFDMessage, on a GSocket made with g_socket_new_from_fd.
 *
 * As a GLib program does, the driver wraps a socket fd in one GSocket the
 * first time it is used and keeps that object until the suite closes the
 * fd; releasing the GSocket closes the fd. The GSocket has GLib's default
 * (blocking) mode, and g_socket_new_from_fd makes the fd itself
 * non-blocking: GLib keeps its own mode instead of the socket's.
 *
 * GLib reports a failed system call as a GError: a GIOErrorEnum code made
 * by g_io_error_from_errno, and a message ending in g_strerror of the errno.
 * The driver reports the errno both name; errno is null when none does.
 */
#define _GNU_SOURCE /* struct ucred */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <gio/gio.h>
#include <gio/gunixcredentialsmessage.h>
#include <gio/gunixfdmessage.h>

#include "driver.h"

const struct driver_info driver_info = {
    .name = "glib",
    .language = "C (gcc)",
    .library = "GLib (GIO)",
    .version = GLIB_VERSION_STRING,
    .homepage = "https://docs.gtk.org/gio/class.Socket.html",
    .truncation = "attribute",
    .unsupported = "[\"blocking-mode\"]",
};

/* The errnos looked up when mapping a GError back: Linux's are all below it. */
enum { LAST_ERRNO = 255 };

static GHashTable *sockets; /* fd -> GSocket */

static int errno_of(const GError *error) {
    if (error->domain != G_IO_ERROR) return -1;
    size_t length = strlen(error->message);
    for (int e = 1; e <= LAST_ERRNO; e++) {
        if ((int)g_io_error_from_errno(e) != error->code) continue;
        const char *text = g_strerror(e);
        size_t n = strlen(text);
        if (n <= length && !strcmp(error->message + length - n, text)) return e;
    }
    return -1;
}

static int failed(struct failure *failure, GError *error, const char *call) {
    failure->errnum = errno_of(error);
    snprintf(failure->message, sizeof failure->message, "%s: %s (GIOErrorEnum %d)", call,
             error->message, error->code);
    g_error_free(error);
    return -1;
}

static GSocket *wrapped(int fd, struct failure *failure) {
    if (!sockets) sockets = g_hash_table_new_full(NULL, NULL, NULL, g_object_unref);
    GSocket *socket = g_hash_table_lookup(sockets, GINT_TO_POINTER(fd));
    if (socket) return socket;
    GError *error = NULL;
    socket = g_socket_new_from_fd(fd, &error);
    if (!socket) {
        failed(failure, error, "g_socket_new_from_fd");
        return NULL;
    }
    g_hash_table_insert(sockets, GINT_TO_POINTER(fd), socket);
    return socket;
}

int driver_sendfds(int sock, const unsigned char *msg, size_t len, int flags, const int *fds,
                   size_t nfds, long *sent, struct failure *failure) {
    GSocket *socket = wrapped(sock, failure);
    if (!socket) return -1;
    GError *error = NULL;
    GSocketControlMessage *message = NULL;
    if (nfds) {
        message = g_unix_fd_message_new();
        for (size_t i = 0; i < nfds; i++) {
            if (!g_unix_fd_message_append_fd(G_UNIX_FD_MESSAGE(message), fds[i], &error)) {
                g_object_unref(message);
                return failed(failure, error, "g_unix_fd_message_append_fd");
            }
        }
    }
    GOutputVector vector = {msg, len};
    gssize n = g_socket_send_message(socket, NULL, &vector, 1, message ? &message : NULL,
                                     message ? 1 : 0, flags, NULL, &error);
    if (message) g_object_unref(message);
    if (n < 0) return failed(failure, error, "g_socket_send_message");
    *sent = (long)n;
    return 0;
}

int driver_recvfds(int sock, size_t len, int flags, size_t numfds, struct received *out,
                   struct failure *failure) {
    (void)numfds; /* g_socket_receive_message sizes its control buffer itself */
    GSocket *socket = wrapped(sock, failure);
    if (!socket) return -1;
    GError *error = NULL;
    GInputVector vector = {out->msg, len};
    GSocketControlMessage **messages = NULL;
    gint count = 0, msg_flags = flags;
    gssize n = g_socket_receive_message(socket, NULL, &vector, 1, &messages, &count, &msg_flags,
                                        NULL, &error);
    if (n < 0) return failed(failure, error, "g_socket_receive_message");
    for (gint i = 0; i < count; i++) {
        if (G_IS_UNIX_FD_MESSAGE(messages[i])) {
            gint stolen = 0;
            gint *fds = g_unix_fd_message_steal_fds(G_UNIX_FD_MESSAGE(messages[i]), &stolen);
            for (gint k = 0; k < stolen; k++) out->fds[out->nfds++] = fds[k];
            g_free(fds);
        } else if (G_IS_UNIX_CREDENTIALS_MESSAGE(messages[i])) {
            GCredentials *credentials = g_unix_credentials_message_get_credentials(
                G_UNIX_CREDENTIALS_MESSAGE(messages[i]));
            struct ucred *native =
                g_credentials_get_native(credentials, G_CREDENTIALS_TYPE_LINUX_UCRED);
            out->has_credentials = 1;
            out->credentials[0] = native->pid;
            out->credentials[1] = native->uid;
            out->credentials[2] = native->gid;
        }
        g_object_unref(messages[i]);
    }
    g_free(messages);
    out->msg_len = (size_t)n;
    out->truncated = (msg_flags & MSG_CTRUNC) != 0;
    out->msg_truncated = (msg_flags & MSG_TRUNC) != 0;
    return 0;
}

int driver_release(int fd) {
    /* Dropping the GSocket closes its fd (GSocket's finalize). */
    return sockets && g_hash_table_remove(sockets, GINT_TO_POINTER(fd));
}

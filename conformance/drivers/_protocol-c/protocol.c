/* The protocol side of a C driver: docs/drivers.md, version 1.
 *
 * One JSON request per line on standard input, one reply per line on
 * standard output. Fds cross between the suite and the driver with
 * pidfd_open(2)/pidfd_getfd(2) made as raw system calls, never through the
 * library under test. Everything runs on the main thread, and nothing here
 * keeps an fd open between requests except the suite's pidfd.
 *
 * The parser reads the flat objects the protocol sends: string, integer,
 * true/false/null and integer-array members. Anything else is a bad
 * request, answered as such.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "driver.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

enum { PROTOCOL_VERSION = 1, MAX_MEMBERS = 16, KEY_SIZE = 32 };
/* Room for the fds one receive can return: SCM_MAX_FD is 253 per message. */
enum { RECEIVE_FD_ROOM = 1024 };

/* ---- replies ---------------------------------------------------------- */

struct text {
    char *data;
    size_t len, cap;
};

static void text_add(struct text *t, const char *s, size_t n) {
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap < t->len + n + 1) cap *= 2;
        char *grown = realloc(t->data, cap);
        if (!grown) {
            fputs("driver: out of memory\n", stderr);
            exit(1);
        }
        t->data = grown;
        t->cap = cap;
    }
    memcpy(t->data + t->len, s, n);
    t->len += n;
    t->data[t->len] = '\0';
}

static void text_printf(struct text *t, const char *format, ...) {
    char small[128];
    va_list args;
    va_start(args, format);
    int n = vsnprintf(small, sizeof small, format, args);
    va_end(args);
    if (n < (int)sizeof small) {
        text_add(t, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) exit(1);
    va_start(args, format);
    vsnprintf(big, (size_t)n + 1, format, args);
    va_end(args);
    text_add(t, big, (size_t)n);
    free(big);
}

static void text_json_string(struct text *t, const char *s) {
    text_add(t, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char escaped[2] = {'\\', (char)c};
            text_add(t, escaped, 2);
        } else if (c < 0x20) {
            text_printf(t, "\\u%04x", c);
        } else {
            text_add(t, (const char *)&c, 1);
        }
    }
    text_add(t, "\"", 1);
}

static void text_fd_array(struct text *t, const int *fds, size_t n) {
    text_add(t, "[", 1);
    for (size_t i = 0; i < n; i++) text_printf(t, i ? ",%d" : "%d", fds[i]);
    text_add(t, "]", 1);
}

static void text_flag(struct text *t, int flag) {
    text_add(t, flag < 0 ? "null" : flag ? "true" : "false", flag < 0 ? 4 : flag ? 4 : 5);
}

static const char BASE64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void text_base64(struct text *t, const unsigned char *data, size_t n) {
    text_add(t, "\"", 1);
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)data[i] << 16;
        if (i + 1 < n) v |= (unsigned)data[i + 1] << 8;
        if (i + 2 < n) v |= data[i + 2];
        char quad[4] = {BASE64[v >> 18], BASE64[(v >> 12) & 63],
                        i + 1 < n ? BASE64[(v >> 6) & 63] : '=', i + 2 < n ? BASE64[v & 63] : '='};
        text_add(t, quad, 4);
    }
    text_add(t, "\"", 1);
}

static void send_reply(struct text *t) {
    text_add(t, "\n", 1);
    size_t done = 0;
    while (done < t->len) {
        ssize_t n = write(STDOUT_FILENO, t->data + done, t->len - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) exit(1);  /* the suite is gone */
        done += (size_t)n;
    }
    free(t->data);
}

static void reply_error(int errnum, const char *message) {
    struct text t = {0};
    text_add(&t, "{\"ok\":false,\"errno\":", 20);
    if (errnum < 0)
        text_add(&t, "null", 4);
    else
        text_printf(&t, "%d", errnum);
    text_add(&t, ",\"error\":", 9);
    text_json_string(&t, message);
    text_add(&t, "}", 1);
    send_reply(&t);
}

static void reply_failure(const struct failure *failure) {
    reply_error(failure->errnum, failure->message);
}

static void reply_ok(void) {
    struct text t = {0};
    text_add(&t, "{\"ok\":true}", 11);
    send_reply(&t);
}

/* ---- requests --------------------------------------------------------- */

enum kind { NUMBER, STRING, ARRAY, BOOLEAN, NONE };

struct member {
    char key[KEY_SIZE];
    enum kind kind;
    long number;
    char *string;
    long *items;
    size_t count;
};

struct request {
    struct member members[MAX_MEMBERS];
    size_t count;
};

static void request_free(struct request *r) {
    for (size_t i = 0; i < r->count; i++) {
        free(r->members[i].string);
        free(r->members[i].items);
    }
    r->count = 0;
}

static const char *skip_space(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
    return p;
}

/* A JSON string at *p (after its opening quote); NULL if malformed. */
static char *parse_string(const char **p) {
    const char *s = *p;
    size_t cap = strlen(s) + 1, n = 0;
    char *out = malloc(cap);
    if (!out) return NULL;
    for (; *s && *s != '"'; s++) {
        if (*s != '\\') {
            out[n++] = *s;
            continue;
        }
        s++;
        switch (*s) {
        case '"': case '\\': case '/': out[n++] = *s; break;
        case 'n': out[n++] = '\n'; break;
        case 't': out[n++] = '\t'; break;
        case 'r': out[n++] = '\r'; break;
        case 'b': out[n++] = '\b'; break;
        case 'f': out[n++] = '\f'; break;
        case 'u': {
            unsigned v = 0;
            for (int i = 1; i <= 4; i++) {
                char c = s[i];
                unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0')
                             : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                             : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10) : 99;
                if (d == 99) { free(out); return NULL; }
                v = v * 16 + d;
            }
            if (v > 0x7f) { free(out); return NULL; }  /* the protocol's strings are ASCII */
            out[n++] = (char)v;
            s += 4;
            break;
        }
        default: free(out); return NULL;
        }
    }
    if (*s != '"') { free(out); return NULL; }
    out[n] = '\0';
    *p = s + 1;
    return out;
}

static int parse_number(const char **p, long *value) {
    char *end;
    errno = 0;
    long v = strtol(*p, &end, 10);
    if (end == *p || errno || *end == '.' || *end == 'e' || *end == 'E') return -1;
    *value = v;
    *p = end;
    return 0;
}

/* Parse one request line; returns NULL, or the reason it is malformed. */
static const char *parse_request(const char *line, struct request *r) {
    const char *p = skip_space(line);
    r->count = 0;
    if (*p++ != '{') return "not a JSON object";
    p = skip_space(p);
    if (*p == '}') return *skip_space(p + 1) ? "text after the object" : NULL;
    for (;;) {
        if (r->count == MAX_MEMBERS) return "too many members";
        struct member *m = &r->members[r->count];
        memset(m, 0, sizeof *m);
        if (*p++ != '"') return "expected a member name";
        char *key = parse_string(&p);
        if (!key) return "malformed member name";
        snprintf(m->key, sizeof m->key, "%s", key);
        free(key);
        r->count++;
        p = skip_space(p);
        if (*p++ != ':') return "expected ':'";
        p = skip_space(p);
        if (*p == '"') {
            p++;
            m->kind = STRING;
            if (!(m->string = parse_string(&p))) return "malformed string";
        } else if (*p == '[') {
            m->kind = ARRAY;
            p = skip_space(p + 1);
            size_t cap = 8;
            m->items = malloc(cap * sizeof *m->items);
            if (!m->items) return "out of memory";
            while (*p != ']') {
                if (m->count == cap) {
                    long *grown = realloc(m->items, (cap *= 2) * sizeof *m->items);
                    if (!grown) return "out of memory";
                    m->items = grown;
                }
                if (parse_number(&p, &m->items[m->count++])) return "arrays hold integers only";
                p = skip_space(p);
                if (*p == ',') p = skip_space(p + 1);
                else if (*p != ']') return "expected ',' or ']'";
            }
            p++;
        } else if (!strncmp(p, "true", 4) || !strncmp(p, "false", 5)) {
            m->kind = BOOLEAN;
            m->number = *p == 't';
            p += *p == 't' ? 4 : 5;
        } else if (!strncmp(p, "null", 4)) {
            m->kind = NONE;
            p += 4;
        } else {
            m->kind = NUMBER;
            if (parse_number(&p, &m->number)) return "values are integers, strings, booleans or arrays";
        }
        p = skip_space(p);
        if (*p == ',') {
            p = skip_space(p + 1);
            continue;
        }
        if (*p++ != '}') return "expected ',' or '}'";
        return *skip_space(p) ? "text after the object" : NULL;
    }
}

static const struct member *member(const struct request *r, const char *key, enum kind kind) {
    for (size_t i = 0; i < r->count; i++)
        if (!strcmp(r->members[i].key, key) && r->members[i].kind == kind) return &r->members[i];
    return NULL;
}

/* Read integer member `key` into *value; on a missing one reply and return -1. */
static int need_number(const struct request *r, const char *key, long *value) {
    const struct member *m = member(r, key, NUMBER);
    if (!m) {
        char message[96];
        snprintf(message, sizeof message, "bad request: no integer \"%s\"", key);
        reply_error(-1, message);
        return -1;
    }
    *value = m->number;
    return 0;
}

static const struct member *need_array(const struct request *r, const char *key) {
    const struct member *m = member(r, key, ARRAY);
    if (!m) {
        char message[96];
        snprintf(message, sizeof message, "bad request: no integer array \"%s\"", key);
        reply_error(-1, message);
    }
    return m;
}

static int decode_base64(const char *s, unsigned char **out, size_t *len) {
    size_t n = strlen(s);
    if (n % 4) return -1;
    unsigned char *data = malloc(n / 4 * 3 + 1);
    if (!data) return -1;
    size_t k = 0;
    for (size_t i = 0; i < n; i += 4) {
        unsigned v = 0;
        int pad = 0;
        for (int j = 0; j < 4; j++) {
            const char *at = strchr(BASE64, s[i + j]);
            if (s[i + j] == '=' && i + 4 == n && j >= 2) {
                pad++;
                v <<= 6;
            } else if (s[i + j] && at && !pad) {
                v = (v << 6) | (unsigned)(at - BASE64);
            } else {
                free(data);
                return -1;
            }
        }
        data[k++] = (unsigned char)(v >> 16);
        if (pad < 2) data[k++] = (unsigned char)(v >> 8);
        if (pad < 1) data[k++] = (unsigned char)v;
    }
    *out = data;
    *len = k;
    return 0;
}

/* ---- commands --------------------------------------------------------- */

static int suite_pidfd = -1;

static void start(const struct request *r) {
    long version, suite_pid;
    if (need_number(r, "version", &version)) return;
    if (version != PROTOCOL_VERSION) {
        char message[96];
        snprintf(message, sizeof message, "this driver speaks protocol version %d, not %ld",
                 PROTOCOL_VERSION, version);
        reply_error(-1, message);
        exit(1);
    }
    if (need_number(r, "suite_pid", &suite_pid)) return;
    if (suite_pidfd < 0) {
        suite_pidfd = (int)syscall(SYS_pidfd_open, (int)suite_pid, 0);
        if (suite_pidfd < 0) {
            reply_error(errno, "pidfd_open of the suite failed");
            return;
        }
    }
    const struct driver_info *i = &driver_info;
    struct text t = {0};
    text_printf(&t, "{\"ok\":true,\"version\":%d,\"implementation\":{\"name\":", PROTOCOL_VERSION);
    text_json_string(&t, i->name);
    text_add(&t, ",\"language\":", 12);
    text_json_string(&t, i->language);
    text_add(&t, ",\"library\":", 11);
    text_json_string(&t, i->library);
    text_add(&t, ",\"version\":", 11);
    text_json_string(&t, i->version);
    text_add(&t, ",\"homepage\":", 12);
    text_json_string(&t, i->homepage);
    text_add(&t, "},\"truncation\":", 15);
    text_json_string(&t, i->truncation);
    text_printf(&t, ",\"unsupported\":%s}", i->unsupported);
    send_reply(&t);
}

static void take(const struct request *r) {
    const struct member *m = need_array(r, "fds");
    if (!m) return;
    if (suite_pidfd < 0) {
        reply_error(-1, "take before start");
        return;
    }
    int *taken = malloc((m->count + 1) * sizeof *taken);
    if (!taken) exit(1);
    for (size_t i = 0; i < m->count; i++) {
        taken[i] = (int)syscall(SYS_pidfd_getfd, suite_pidfd, (int)m->items[i], 0);
        if (taken[i] < 0) {
            int errnum = errno;
            char message[96];
            snprintf(message, sizeof message, "pidfd_getfd of the suite's fd %ld failed",
                     m->items[i]);
            for (size_t j = 0; j < i; j++) close(taken[j]);
            free(taken);
            reply_error(errnum, message);
            return;
        }
    }
    struct text t = {0};
    text_add(&t, "{\"ok\":true,\"fds\":", 17);
    text_fd_array(&t, taken, m->count);
    text_add(&t, "}", 1);
    free(taken);
    send_reply(&t);
}

static void close_fds(const struct request *r) {
    const struct member *m = need_array(r, "fds");
    if (!m) return;
    for (size_t i = 0; i < m->count; i++) {
        int fd = (int)m->items[i];
        if (!driver_release(fd) && close(fd) < 0) {
            char message[64];
            snprintf(message, sizeof message, "close(%d) failed", fd);
            reply_error(errno, message);
            return;
        }
    }
    reply_ok();
}

static void sendfds(const struct request *r) {
    long sock, flags;
    const struct member *msg = member(r, "msg", STRING), *fds;
    if (need_number(r, "sock", &sock) || need_number(r, "flags", &flags)) return;
    if (!(fds = need_array(r, "fds"))) return;
    unsigned char *data = NULL;
    size_t len = 0;
    if (!msg || decode_base64(msg->string, &data, &len)) {
        reply_error(-1, "bad request: \"msg\" is not base64");
        return;
    }
    int *given = malloc((fds->count + 1) * sizeof *given);
    if (!given) exit(1);
    for (size_t i = 0; i < fds->count; i++) given[i] = (int)fds->items[i];
    long sent = 0;
    struct failure failure = {-1, ""};
    int rc = driver_sendfds((int)sock, data, len, (int)flags, given, fds->count, &sent, &failure);
    free(given);
    free(data);
    if (rc) {
        reply_failure(&failure);
        return;
    }
    struct text t = {0};
    text_printf(&t, "{\"ok\":true,\"sent\":%ld}", sent);
    send_reply(&t);
}

static int receive_into(int sock, size_t len, int flags, size_t numfds, struct received *out,
                        struct failure *failure) {
    memset(out, 0, sizeof *out);
    out->msg = malloc(len + 1);
    out->fds = malloc(RECEIVE_FD_ROOM * sizeof *out->fds);
    if (!out->msg || !out->fds) exit(1);
    out->truncated = out->msg_truncated = -1;
    return driver_recvfds(sock, len, flags, numfds, out, failure);
}

static void recvfds(const struct request *r) {
    long sock, len, flags, numfds;
    if (need_number(r, "sock", &sock) || need_number(r, "len", &len) ||
        need_number(r, "flags", &flags) || need_number(r, "numfds", &numfds))
        return;
    if (len < 0 || numfds < 0) {
        reply_error(-1, "bad request: negative \"len\" or \"numfds\"");
        return;
    }
    struct received out;
    struct failure failure = {-1, ""};
    int rc = receive_into((int)sock, (size_t)len, (int)flags, (size_t)numfds, &out, &failure);
    if (rc) {
        reply_failure(&failure);
    } else {
        struct text t = {0};
        text_add(&t, "{\"ok\":true,\"msg\":", 17);
        text_base64(&t, out.msg, out.msg_len);
        text_add(&t, ",\"fds\":", 7);
        text_fd_array(&t, out.fds, out.nfds);
        text_add(&t, ",\"truncated\":", 13);
        text_flag(&t, out.truncated);
        text_add(&t, ",\"msg_truncated\":", 17);
        text_flag(&t, out.msg_truncated);
        if (out.has_credentials)
            text_printf(&t, ",\"credentials\":[%ld,%ld,%ld]", out.credentials[0],
                        out.credentials[1], out.credentials[2]);
        text_add(&t, "}", 1);
        send_reply(&t);
    }
    free(out.msg);
    free(out.fds);
}

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* The optional bench: `rounds` rounds of send, receive, close, timed here. */
static void bench(const struct request *r) {
    long send_sock, recv_sock, fd, payload, rounds;
    if (need_number(r, "send_sock", &send_sock) || need_number(r, "recv_sock", &recv_sock) ||
        need_number(r, "fd", &fd) || need_number(r, "payload", &payload) ||
        need_number(r, "rounds", &rounds))
        return;
    if (payload < 0 || rounds < 0) {
        reply_error(-1, "bad request: negative \"payload\" or \"rounds\"");
        return;
    }
    unsigned char *data = calloc(1, (size_t)payload + 1);
    if (!data) exit(1);
    int passed = (int)fd;
    struct failure failure = {-1, ""};
    struct received out = {0};
    long long begin = now_ns();
    for (long i = 0; i < rounds; i++) {
        long sent;
        if (driver_sendfds((int)send_sock, data, (size_t)payload, 0, &passed, 1, &sent, &failure))
            goto failed;
        int rc = receive_into((int)recv_sock, (size_t)payload, 0, 1, &out, &failure);
        for (size_t k = 0; !rc && k < out.nfds; k++) close(out.fds[k]);
        free(out.msg);
        free(out.fds);
        if (rc) goto failed;
    }
    long long elapsed = now_ns() - begin;
    free(data);
    struct text t = {0};
    text_printf(&t, "{\"ok\":true,\"ns\":%lld}", elapsed);
    send_reply(&t);
    return;
failed:
    free(data);
    reply_failure(&failure);
}

/* ---- the loop --------------------------------------------------------- */

/* The next line of standard input (without its newline), or NULL at end. */
static char *read_line(void) {
    static char *buffer;
    static size_t len, cap;
    static size_t consumed;
    if (consumed) {
        memmove(buffer, buffer + consumed, len - consumed);
        len -= consumed;
        consumed = 0;
    }
    for (;;) {
        char *newline = buffer ? memchr(buffer, '\n', len) : NULL;
        if (newline) {
            *newline = '\0';
            consumed = (size_t)(newline - buffer) + 1;
            return buffer;
        }
        if (len + 4096 > cap) {
            cap = cap ? cap * 2 : 65536;
            if (!(buffer = realloc(buffer, cap))) exit(1);
        }
        ssize_t n = read(STDIN_FILENO, buffer + len, cap - len - 1);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return NULL;
        len += (size_t)n;
    }
}

/* The commands, each answered by its handler; "stop" answers and ends the loop. */
static const struct command {
    const char *name;
    void (*handle)(const struct request *r);
} COMMANDS[] = {
    {"start", start},     {"take", take},   {"sendfds", sendfds}, {"recvfds", recvfds},
    {"close", close_fds}, {"bench", bench}, {"stop", NULL},
};

static const struct command *command_named(const char *name) {
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        if (!strcmp(COMMANDS[i].name, name)) return &COMMANDS[i];
    return NULL;
}

int main(void) {
    /* As in Python (which the in-process backends run in): a write to a
     * closed peer fails with EPIPE instead of killing the process. */
    signal(SIGPIPE, SIG_IGN);
    char *line;
    while ((line = read_line())) {
        struct request r;
        const char *bad = parse_request(line, &r);
        const struct member *cmd = bad ? NULL : member(&r, "cmd", STRING);
        const struct command *command = cmd ? command_named(cmd->string) : NULL;
        if (bad || !cmd) {
            char message[128];
            snprintf(message, sizeof message, "bad request: %s", bad ? bad : "no \"cmd\"");
            reply_error(-1, message);
        } else if (!command) {
            char message[96];
            snprintf(message, sizeof message, "unknown cmd %.64s", cmd->string);
            reply_error(-1, message);
        } else if (!command->handle) {
            reply_ok();
            request_free(&r);
            return 0;
        } else {
            command->handle(&r);
        }
        request_free(&r);
    }
    return 0;
}

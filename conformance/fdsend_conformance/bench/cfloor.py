"""The C floor: the same round in C, compiled at run time.

The program sends ``fds`` descriptors with a ``payload``-byte message over a
SOCK_STREAM socketpair, receives with MSG_CMSG_CLOEXEC, reads the rest of
the payload, closes the received fds, and prints the nanoseconds per round
of one timed batch. With ``fork`` the receiver is a child process that acks
each round with one byte.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig
import tempfile
from pathlib import Path

__all__ = ["CFloor", "compile_floor"]

SOURCE = r"""
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/wait.h>

static int receive_round(int sock, char *buf, size_t size, int nfds, char *control, size_t space) {
    struct iovec iov = { buf, size };
    struct msghdr msg = { 0 };
    msg.msg_iov = &iov; msg.msg_iovlen = 1;
    msg.msg_control = control; msg.msg_controllen = space;
    ssize_t got = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    if (got <= 0) return -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            int *fds = (int *)CMSG_DATA(c);
            size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < count; i++) close(fds[i]);
        }
    }
    size_t left = size - (size_t)got;
    while (left > 0) {
        ssize_t more = read(sock, buf, left);
        if (more <= 0) return -1;
        left -= (size_t)more;
    }
    (void)nfds;
    return 0;
}

static int send_round(int sock, char *buf, size_t size, int *fds, int nfds, char *control) {
    struct iovec iov = { buf, size };
    struct msghdr msg = { 0 };
    msg.msg_iov = &iov; msg.msg_iovlen = 1;
    msg.msg_control = control; msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET; c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    size_t left = size;
    ssize_t sent = sendmsg(sock, &msg, 0);
    if (sent < 0) return -1;
    left -= (size_t)sent;
    while (left > 0) {
        ssize_t more = write(sock, buf + (size - left), left);
        if (more < 0) return -1;
        left -= (size_t)more;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: floor NFDS PAYLOAD ROUNDS inproc|fork\n"); return 2; }
    int nfds = atoi(argv[1]); size_t size = (size_t)atol(argv[2]); long rounds = atol(argv[3]);
    int cross = strcmp(argv[4], "fork") == 0;
    int sv[2], pipefd[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) || pipe(pipefd)) { perror("setup"); return 1; }
    int *fds = malloc(sizeof(int) * nfds);
    for (int i = 0; i < nfds; i++) fds[i] = pipefd[0];
    char *sbuf = calloc(1, size), *rbuf = calloc(1, size);
    size_t space = CMSG_SPACE(sizeof(int) * nfds);
    char *scontrol = calloc(1, space), *rcontrol = calloc(1, space);
    struct timespec start, stop;
    if (!cross) {
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (long r = 0; r < rounds; r++) {
            if (send_round(sv[0], sbuf, size, fds, nfds, scontrol)) { perror("send"); return 1; }
            if (receive_round(sv[1], rbuf, size, nfds, rcontrol, space)) {
                perror("recv"); return 1;
            }
        }
        clock_gettime(CLOCK_MONOTONIC, &stop);
    } else {
        pid_t pid = fork();
        if (pid == 0) {
            close(sv[0]);
            for (long r = 0; r < rounds; r++) {
                if (receive_round(sv[1], rbuf, size, nfds, rcontrol, space)) _exit(1);
                if (write(sv[1], "k", 1) != 1) _exit(1);
            }
            _exit(0);
        }
        close(sv[1]);
        char ack;
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (long r = 0; r < rounds; r++) {
            if (send_round(sv[0], sbuf, size, fds, nfds, scontrol)) { perror("send"); return 1; }
            if (read(sv[0], &ack, 1) != 1) { perror("ack"); return 1; }
        }
        clock_gettime(CLOCK_MONOTONIC, &stop);
        int status; waitpid(pid, &status, 0);
    }
    double ns = (stop.tv_sec - start.tv_sec) * 1e9 + (stop.tv_nsec - start.tv_nsec);
    printf("%.1f\n", ns / rounds);
    return 0;
}
"""


class CFloor:
    """A compiled floor program."""

    def __init__(self, binary: Path) -> None:
        self.binary = binary

    def round_ns(self, fds: int, payload: int, rounds: int, cross_process: bool) -> float:
        """Nanoseconds per round of one batch of ``rounds``."""
        mode = "fork" if cross_process else "inproc"
        output = subprocess.run(
            [str(self.binary), str(fds), str(payload), str(rounds), mode],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
        return float(output)


def compile_floor(workdir: Path | None = None) -> tuple[CFloor | None, str]:
    """Compile the C floor; return (floor or None, a note saying what happened)."""
    compiler = shutil.which(os.environ.get("CC", "")) or shutil.which(
        str(sysconfig.get_config_var("CC") or "cc").split()[0]
    )
    compiler = compiler or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None, "no C compiler found: C floor skipped"
    directory = Path(workdir or tempfile.mkdtemp(prefix="fdsend-bench-"))
    source = directory / "floor.c"
    binary = directory / "floor"
    source.write_text(SOURCE)
    result = subprocess.run(
        [compiler, "-O2", "-o", str(binary), str(source)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if result.returncode != 0:
        error = result.stderr.strip()[:200]
        return None, f"C floor did not compile with {compiler}: {error}"
    return CFloor(binary), f"C floor compiled with {compiler} -O2"

"""(c) The C floor: the same rounds in C, compiled at run time.

The program does what :mod:`fdsend_conformance.tools.bench.rounds` defines as a
round: over a SOCK_STREAM socketpair it sends ``n`` fds (one pipe end,
repeated) with the payload, receives with MSG_CMSG_CLOEXEC (the rest of the
payload with ``read``), and closes the received fds. With ``fork`` the
receiver is a child process that acks each round with one byte on a pipe.
It runs ``warmup`` untimed rounds, then prints the nanoseconds per round of
``rounds`` timed ones. Each repetition is one run of the program.

It is compiled with the system's C compiler (``$CC``, Python's configured
``CC``, ``cc`` or ``gcc``, the first found) into a temporary directory.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sysconfig
import tempfile
from pathlib import Path

__all__ = ["SOURCE", "CFloor", "compile_floor", "find_compiler"]

#: Compiling the C floor, and one run of it.
BENCH_COMPILE_TIMEOUT = 120.0

SOURCE = r"""
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>

static int receive_round(int sock, char *buf, size_t size, char *control, size_t space) {
    struct iovec iov = { buf, size };
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = space;
    ssize_t got = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    if (got <= 0) return -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            int fd;
            for (size_t i = 0; i < count; i++) {
                memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                close(fd);
            }
        }
    }
    size_t left = size - (size_t)got;
    while (left > 0) {
        ssize_t more = read(sock, buf, left);
        if (more <= 0) return -1;
        left -= (size_t)more;
    }
    return 0;
}

static int send_round(int sock, const char *buf, size_t size, const int *fds, int nfds,
                      char *control) {
    struct iovec iov = { (void *)buf, size };
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
    ssize_t sent = sendmsg(sock, &msg, 0);
    if (sent < 0) return -1;
    size_t done = (size_t)sent;
    while (done < size) {
        ssize_t more = write(sock, buf + done, size - done);
        if (more < 0) return -1;
        done += (size_t)more;
    }
    return 0;
}

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: floor NFDS PAYLOAD ROUNDS WARMUP inproc|fork\n");
        return 2;
    }
    int nfds = atoi(argv[1]);
    size_t size = (size_t)atol(argv[2]);
    long rounds = atol(argv[3]), warmup = atol(argv[4]);
    int cross = strcmp(argv[5], "fork") == 0;
    if (nfds < 1 || nfds > 253 || size < 1 || rounds < 1 || warmup < 0) {
        fprintf(stderr, "floor: bad arguments\n");
        return 2;
    }
    int sv[2], passed[2], ack[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) || pipe(passed) || pipe(ack)) {
        perror("floor: setup");
        return 1;
    }
    int *fds = malloc(sizeof(int) * (size_t)nfds);
    for (int i = 0; i < nfds; i++) fds[i] = passed[0];
    char *sbuf = calloc(1, size), *rbuf = calloc(1, size);
    size_t space = CMSG_SPACE(sizeof(int) * (size_t)nfds);
    char *scontrol = calloc(1, space), *rcontrol = calloc(1, space);
    if (!fds || !sbuf || !rbuf || !scontrol || !rcontrol) return 1;
    double start = 0, stop = 0;
    if (!cross) {
        for (long r = 0; r < warmup + rounds; r++) {
            if (r == warmup) start = now_ns();
            if (send_round(sv[0], sbuf, size, fds, nfds, scontrol)) {
                perror("floor: send");
                return 1;
            }
            if (receive_round(sv[1], rbuf, size, rcontrol, space)) {
                perror("floor: receive");
                return 1;
            }
        }
        stop = now_ns();
    } else {
        pid_t pid = fork();
        if (pid < 0) {
            perror("floor: fork");
            return 1;
        }
        if (pid == 0) {
            close(sv[0]);
            close(ack[0]);
            for (long r = 0; r < warmup + rounds; r++) {
                if (receive_round(sv[1], rbuf, size, rcontrol, space)) _exit(1);
                if (write(ack[1], "k", 1) != 1) _exit(1);
            }
            _exit(0);
        }
        close(sv[1]);
        close(ack[1]);
        char byte;
        for (long r = 0; r < warmup + rounds; r++) {
            if (r == warmup) start = now_ns();
            if (send_round(sv[0], sbuf, size, fds, nfds, scontrol)) {
                perror("floor: send");
                return 1;
            }
            if (read(ack[0], &byte, 1) != 1) {
                fprintf(stderr, "floor: the receiving process stopped\n");
                return 1;
            }
        }
        stop = now_ns();
        int status;
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status)) {
            fprintf(stderr, "floor: the receiving process failed\n");
            return 1;
        }
    }
    printf("%.1f\n", (stop - start) / (double)rounds);
    return 0;
}
"""


def find_compiler() -> str | None:
    """The C compiler to use: ``$CC``, Python's ``CC``, ``cc``, ``gcc``; None if none."""
    candidates = [os.environ.get("CC", ""), str(sysconfig.get_config_var("CC") or ""), "cc", "gcc"]
    for candidate in candidates:
        words = shlex.split(candidate)
        if words:
            found = shutil.which(words[0])
            if found:
                return found
    return None


class CFloor:
    """The compiled floor program."""

    def __init__(self, binary: Path, compiler: str) -> None:
        self.binary = binary
        self.compiler = compiler

    def round_ns(
        self, fds: int, payload: int, rounds: int, cross_process: bool, warmup: int = 0
    ) -> float:
        """Nanoseconds per round of one batch of ``rounds``, after ``warmup`` rounds."""
        mode = "fork" if cross_process else "inproc"
        run = subprocess.run(
            [str(self.binary), str(fds), str(payload), str(rounds), str(warmup), mode],
            capture_output=True,
            text=True,
            check=False,
            timeout=BENCH_COMPILE_TIMEOUT,
        )
        if run.returncode != 0:
            raise RuntimeError(f"C floor exited with {run.returncode}: {run.stderr.strip()}")
        return float(run.stdout)


def compile_floor(directory: Path | None = None) -> tuple[CFloor | None, str]:
    """Compile the floor into ``directory`` (default: a new temporary one).

    Returns the floor, or None, and a note saying what happened. A temporary
    directory made here is the caller's to remove (``floor.binary.parent``).
    """
    compiler = find_compiler()
    if compiler is None:
        return None, "C floor skipped: no C compiler found ($CC, cc, gcc)"
    workdir = directory or Path(tempfile.mkdtemp(prefix="fdsend-bench-"))
    source = workdir / "floor.c"
    binary = workdir / "floor"
    source.write_text(SOURCE, encoding="utf-8")
    try:
        result = subprocess.run(
            [compiler, "-O2", "-o", str(binary), str(source)],
            capture_output=True,
            text=True,
            check=False,
            timeout=BENCH_COMPILE_TIMEOUT,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"C floor skipped: {compiler} failed to run: {exc}"
    if result.returncode != 0:
        error = " ".join(result.stderr.split())[:300]
        return None, f"C floor skipped: {compiler} could not compile it: {error}"
    return CFloor(binary, compiler), f"C floor compiled with {compiler} -O2"

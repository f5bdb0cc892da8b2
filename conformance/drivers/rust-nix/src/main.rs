//! fdsend conformance driver for the nix crate (docs/drivers.md, version 1).
//!
//! One JSON request per line on stdin, one reply per line on stdout. Fds
//! cross between the suite and this process with pidfd_open(2) and
//! pidfd_getfd(2), made as raw system calls: never through nix. Every call
//! runs on the main thread, and nothing here keeps an fd open between
//! requests but the suite's pidfd.

mod json;
mod library;

use std::io::{BufRead, Write};
use std::os::unix::io::RawFd;
use std::time::Instant;

use json::{Request, Value};
use library::Failure;

const PROTOCOL_VERSION: i64 = 1;

/// A reply line without its newline.
type Reply = String;

fn error(errno: Option<i32>, message: &str) -> Reply {
    let errno = errno.map_or("null".to_string(), |e| e.to_string());
    format!("{{\"ok\":false,\"errno\":{},\"error\":{}}}", errno, json::quote(message))
}

fn failed(failure: Failure) -> Reply {
    error(failure.errno, &failure.message)
}

fn int(request: &Request, key: &str) -> Result<i64, Reply> {
    match request.get(key) {
        Some(Value::Int(v)) => Ok(*v),
        _ => Err(error(None, &format!("bad request: no integer \"{}\"", key))),
    }
}

fn fd_list(request: &Request, key: &str) -> Result<Vec<RawFd>, Reply> {
    match request.get(key) {
        Some(Value::Ints(items)) => Ok(items.iter().map(|&i| i as RawFd).collect()),
        _ => Err(error(None, &format!("bad request: no integer array \"{}\"", key))),
    }
}

fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

struct Driver {
    suite_pidfd: Option<RawFd>,
}

impl Driver {
    fn start(&mut self, request: &Request) -> Result<Reply, Reply> {
        let version = int(request, "version")?;
        if version != PROTOCOL_VERSION {
            let message = format!("this driver speaks protocol version {}, not {}", PROTOCOL_VERSION, version);
            println!("{}", error(None, &message));
            std::process::exit(1);
        }
        let suite_pid = int(request, "suite_pid")?;
        if self.suite_pidfd.is_none() {
            let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, suite_pid as libc::pid_t, 0) };
            if pidfd < 0 {
                return Err(error(Some(last_errno()), "pidfd_open of the suite failed"));
            }
            self.suite_pidfd = Some(pidfd as RawFd);
        }
        Ok(format!(
            concat!(
                "{{\"ok\":true,\"version\":{},\"implementation\":{{\"name\":\"rust-nix\",",
                "\"language\":\"Rust (rustc {})\",\"library\":\"nix\",\"version\":\"{}\",",
                "\"homepage\":\"https://docs.rs/nix/0.26\"}},",
                "\"truncation\":\"attribute\",\"unsupported\":[]}}"
            ),
            PROTOCOL_VERSION,
            env!("DRIVER_RUSTC_VERSION"),
            env!("DRIVER_NIX_VERSION"),
        ))
    }

    fn take(&self, request: &Request) -> Result<Reply, Reply> {
        let pidfd = self.suite_pidfd.ok_or_else(|| error(None, "take before start"))?;
        let mut taken: Vec<RawFd> = Vec::new();
        for fd in fd_list(request, "fds")? {
            let copy = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd, fd, 0) };
            if copy < 0 {
                let errno = last_errno();
                for &t in &taken {
                    unsafe { libc::close(t) };
                }
                return Err(error(Some(errno), &format!("pidfd_getfd of the suite's fd {} failed", fd)));
            }
            taken.push(copy as RawFd);
        }
        Ok(format!("{{\"ok\":true,\"fds\":{}}}", json::ints(&taken)))
    }

    fn close(&self, request: &Request) -> Result<Reply, Reply> {
        for fd in fd_list(request, "fds")? {
            if unsafe { libc::close(fd) } < 0 {
                return Err(error(Some(last_errno()), &format!("close({}) failed", fd)));
            }
        }
        Ok("{\"ok\":true}".into())
    }
}

fn sendfds(request: &Request) -> Result<Reply, Reply> {
    let sock = int(request, "sock")? as RawFd;
    let flags = int(request, "flags")? as i32;
    let fds = fd_list(request, "fds")?;
    let msg = match request.get("msg") {
        Some(Value::Str(text)) => json::base64_decode(text),
        _ => None,
    }
    .ok_or_else(|| error(None, "bad request: \"msg\" is not base64"))?;
    let sent = library::send(sock, &msg, flags, &fds).map_err(failed)?;
    Ok(format!("{{\"ok\":true,\"sent\":{}}}", sent))
}

fn recvfds(request: &Request) -> Result<Reply, Reply> {
    let sock = int(request, "sock")? as RawFd;
    let len = int(request, "len")?;
    let flags = int(request, "flags")? as i32;
    let numfds = int(request, "numfds")?;
    if len < 0 || numfds < 0 {
        return Err(error(None, "bad request: negative \"len\" or \"numfds\""));
    }
    let got = library::receive(sock, len as usize, flags, numfds as usize).map_err(failed)?;
    let credentials = got
        .credentials
        .map_or("null".to_string(), |(pid, uid, gid)| format!("[{},{},{}]", pid, uid, gid));
    Ok(format!(
        "{{\"ok\":true,\"msg\":\"{}\",\"fds\":{},\"truncated\":{},\"msg_truncated\":{},\"credentials\":{}}}",
        json::base64_encode(&got.msg),
        json::ints(&got.fds),
        got.truncated,
        got.msg_truncated,
        credentials
    ))
}

/// The optional bench: `rounds` rounds of send, receive, close, timed here.
fn bench(request: &Request) -> Result<Reply, Reply> {
    let send_sock = int(request, "send_sock")? as RawFd;
    let recv_sock = int(request, "recv_sock")? as RawFd;
    let fd = int(request, "fd")? as RawFd;
    let payload = int(request, "payload")?;
    let rounds = int(request, "rounds")?;
    if payload < 0 || rounds < 0 {
        return Err(error(None, "bad request: negative \"payload\" or \"rounds\""));
    }
    let data = vec![0u8; payload as usize];
    let begin = Instant::now();
    for _ in 0..rounds {
        library::send(send_sock, &data, 0, &[fd]).map_err(failed)?;
        let got = library::receive(recv_sock, payload as usize, 0, 1).map_err(failed)?;
        for received in got.fds {
            unsafe { libc::close(received) };
        }
    }
    Ok(format!("{{\"ok\":true,\"ns\":{}}}", begin.elapsed().as_nanos()))
}

fn main() {
    let mut driver = Driver { suite_pidfd: None };
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    for line in stdin.lock().lines() {
        let line = match line {
            Ok(line) => line,
            Err(_) => break,
        };
        let mut stop = false;
        let reply = match json::parse(&line) {
            Err(why) => error(None, &format!("bad request: {}", why)),
            Ok(request) => {
                let outcome = match request.get("cmd") {
                    Some(Value::Str(cmd)) => match cmd.as_str() {
                        "start" => driver.start(&request),
                        "take" => driver.take(&request),
                        "close" => driver.close(&request),
                        "sendfds" => sendfds(&request),
                        "recvfds" => recvfds(&request),
                        "bench" => bench(&request),
                        "stop" => {
                            stop = true;
                            Ok("{\"ok\":true}".into())
                        }
                        other => Err(error(None, &format!("unknown cmd {}", other))),
                    },
                    _ => Err(error(None, "bad request: no \"cmd\"")),
                };
                outcome.unwrap_or_else(|reply| reply)
            }
        };
        let mut out = stdout.lock();
        if writeln!(out, "{}", reply).and_then(|_| out.flush()).is_err() || stop {
            break;
        }
    }
}

//! The calls under test: nix 0.26's `sendmsg` and `recvmsg` with
//! `ControlMessage::ScmRights`, as nix's documentation shows them.

use std::io::{IoSlice, IoSliceMut};
use std::os::unix::io::RawFd;

use nix::errno::Errno;
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};

/// A failed call: the errno nix reported (None if there is none) and a message.
pub struct Failure {
    pub errno: Option<i32>,
    pub message: String,
}

impl Failure {
    fn from_errno(call: &str, errno: Errno) -> Failure {
        Failure { errno: Some(errno as i32), message: format!("{}: {}", call, errno.desc()) }
    }
}

/// What a receive returned.
pub struct Received {
    pub msg: Vec<u8>,
    pub fds: Vec<RawFd>,
    pub truncated: bool,
    pub msg_truncated: bool,
    /// The `ScmCredentials` nix handed over, as (pid, uid, gid).
    pub credentials: Option<(i32, u32, u32)>,
}

/// nix takes its flags as `MsgFlags`; bits it does not name cannot be passed.
fn msg_flags(flags: i32) -> Result<MsgFlags, Failure> {
    MsgFlags::from_bits(flags).ok_or_else(|| Failure {
        errno: None,
        message: format!("nix's MsgFlags has no flag for the bits {:#x}", flags & !MsgFlags::all().bits()),
    })
}

/// `sendmsg(sock, &[IoSlice::new(msg)], &[ControlMessage::ScmRights(fds)], flags, None)`;
/// with no fds, no control message.
pub fn send(sock: RawFd, msg: &[u8], flags: i32, fds: &[RawFd]) -> Result<usize, Failure> {
    let flags = msg_flags(flags)?;
    let iov = [IoSlice::new(msg)];
    let rights = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &rights };
    sendmsg::<()>(sock, &iov, cmsgs, flags, None).map_err(|e| Failure::from_errno("sendmsg", e))
}

/// `recvmsg` into a `len`-byte buffer with the control buffer nix documents
/// for `numfds` fds, `cmsg_space!([RawFd; numfds])`: the macro needs a
/// constant, so its expansion is written out with `numfds`. The fds of every
/// `ScmRights`, and the `ScmCredentials` nix hands over; other control
/// messages are left alone, as nix leaves them to its caller.
pub fn receive(sock: RawFd, len: usize, flags: i32, numfds: usize) -> Result<Received, Failure> {
    let flags = msg_flags(flags)?;
    let mut buffer = vec![0u8; len];
    let space = unsafe { libc::CMSG_SPACE((numfds * std::mem::size_of::<RawFd>()) as libc::c_uint) };
    let mut cmsg_buffer: Vec<u8> = Vec::with_capacity(space as usize);
    let (bytes, fds, credentials, msg_flags) = {
        let mut iov = [IoSliceMut::new(&mut buffer)];
        let got = recvmsg::<()>(sock, &mut iov, Some(&mut cmsg_buffer), flags)
            .map_err(|e| Failure::from_errno("recvmsg", e))?;
        let mut fds = Vec::new();
        let mut credentials = None;
        for cmsg in got.cmsgs() {
            match cmsg {
                ControlMessageOwned::ScmRights(rights) => fds.extend(rights),
                ControlMessageOwned::ScmCredentials(c) => credentials = Some((c.pid(), c.uid(), c.gid())),
                _ => {}
            }
        }
        (got.bytes, fds, credentials, got.flags)
    };
    buffer.truncate(bytes);
    Ok(Received {
        msg: buffer,
        fds,
        truncated: msg_flags.contains(MsgFlags::MSG_CTRUNC),
        msg_truncated: msg_flags.contains(MsgFlags::MSG_TRUNC),
        credentials,
    })
}

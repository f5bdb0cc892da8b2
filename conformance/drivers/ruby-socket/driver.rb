# fdsend conformance driver for Ruby's socket standard library:
# BasicSocket#sendmsg / #recvmsg with Socket::AncillaryData.unix_rights.
# Protocol: docs/drivers.md (version 1). Maps call shapes only.
require 'socket'
require 'json'

PROTOCOL_VERSION = 1
# pidfd_open and pidfd_getfd are 434 and 438 on every Linux architecture.
SYS_PIDFD_OPEN = 434
SYS_PIDFD_GETFD = 438
# Linux's SCM_PIDFD (include/linux/socket.h); Ruby 3.1 has no constant for it.
SCM_PIDFD = 4

# CMSG_LEN(4 * n): Ruby has no CMSG_LEN, so a caller who wants at most n fds
# writes the size of one cmsghdr (size_t len, int level, int type), aligned
# to size_t, plus n ints. (CMSG_SPACE would round up to room for n + 1 fds
# when n is odd.)
SIZE_T = [0].pack('J').bytesize
def cmsg_align(n) = (n + SIZE_T - 1) & ~(SIZE_T - 1)
def cmsg_len(n) = cmsg_align(SIZE_T + 8) + n

$pidfd = nil

def reply(obj)
  STDOUT.write(JSON.generate(obj) + "\n")
  STDOUT.flush
end

def error_reply(e)
  errno = e.is_a?(SystemCallError) ? e.errno : nil
  { ok: false, errno: errno, error: "#{e.class}: #{e.message}" }
end

# The driver's own close(2) of an fd it holds (take's copies, received fds).
def close_fd(fd)
  IO.for_fd(fd, autoclose: true).close
end

# A Ruby socket object for the fd the suite names, that never closes it.
def socket_for(fd)
  s = Socket.for_fd(fd)
  s.autoclose = false
  s
end

def do_start(req)
  unless req['version'] == PROTOCOL_VERSION
    reply(ok: false, errno: nil, error: "protocol version #{req['version'].inspect} not spoken; this driver speaks #{PROTOCOL_VERSION}")
    exit 0
  end
  $pidfd = syscall(SYS_PIDFD_OPEN, req['suite_pid'], 0)
  {
    ok: true, version: PROTOCOL_VERSION,
    implementation: {
      name: 'ruby-socket', language: "Ruby #{RUBY_VERSION}",
      library: 'socket (Ruby standard library)',
      version: RUBY_VERSION,
      homepage: 'https://docs.ruby-lang.org/en/3.1/BasicSocket.html#method-i-recvmsg',
    },
    truncation: 'attribute',
    # recvmsg and sendmsg wait (in ppoll) whatever the fd's O_NONBLOCK:
    # Ruby's non-blocking calls are the separate *_nonblock methods.
    unsupported: ['blocking-mode'],
  }
end

def do_take(req)
  got = []
  begin
    req['fds'].each { |fd| got << syscall(SYS_PIDFD_GETFD, $pidfd, fd, 0) }
  rescue SystemCallError => e
    got.each { |fd| close_fd(fd) rescue nil }
    return error_reply(e)
  end
  { ok: true, fds: got }
end

def do_sendfds(req)
  sock = socket_for(req['sock'])
  controls = []
  unless req['fds'].empty?
    ios = req['fds'].map { |fd| IO.for_fd(fd, autoclose: false) }
    controls << Socket::AncillaryData.unix_rights(*ios)
  end
  sent = sock.sendmsg(req['msg'].unpack1('m0'), req['flags'], nil, *controls)
  { ok: true, sent: sent }
rescue StandardError => e
  error_reply(e)
end

def do_recvfds(req)
  sock = socket_for(req['sock'])
  numfds = req['numfds']
  controllen = numfds > 0 ? cmsg_len(4 * numfds) : numfds
  data, _addr, rflags, *controls = sock.recvmsg(req['len'], req['flags'], controllen, scm_rights: true)
  fds = []
  pidfd = nil
  creds = nil
  controls.each do |anc|
    if anc.cmsg_is?(:SOCKET, :RIGHTS)
      anc.unix_rights.each do |io|
        io.autoclose = false # the suite takes it, then asks the driver to close it
        fds << io.fileno
      end
    elsif anc.level == Socket::SOL_SOCKET && anc.type == SCM_PIDFD
      pidfd = anc.data.unpack1('i!')
    elsif anc.cmsg_is?(:SOCKET, :CREDENTIALS)
      creds = anc.data.unpack('i!I!I!') # struct ucred: pid, uid, gid
    end
  end
  {
    ok: true, msg: [data].pack('m0'), fds: fds,
    truncated: (rflags & Socket::MSG_CTRUNC) != 0,
    msg_truncated: (rflags & Socket::MSG_TRUNC) != 0,
    pidfd: pidfd, credentials: creds,
  }
rescue StandardError => e
  error_reply(e)
end

def do_close(req)
  req['fds'].each { |fd| close_fd(fd) }
  { ok: true }
rescue StandardError => e
  error_reply(e)
end

def do_bench(req)
  send_sock = socket_for(req['send_sock'])
  recv_sock = socket_for(req['recv_sock'])
  io = IO.for_fd(req['fd'], autoclose: false)
  payload = 'x' * req['payload']
  space = cmsg_len(4)
  t0 = Process.clock_gettime(Process::CLOCK_MONOTONIC, :nanosecond)
  req['rounds'].times do
    send_sock.sendmsg(payload, 0, nil, Socket::AncillaryData.unix_rights(io))
    _d, _a, _f, *ctl = recv_sock.recvmsg(req['payload'], 0, space, scm_rights: true)
    ctl.each { |anc| anc.unix_rights&.each(&:close) }
  end
  { ok: true, ns: Process.clock_gettime(Process::CLOCK_MONOTONIC, :nanosecond) - t0 }
rescue StandardError => e
  error_reply(e)
end

STDOUT.sync = true
while (line = STDIN.gets)
  begin
    req = JSON.parse(line)
  rescue JSON::ParserError => e
    reply(ok: false, errno: nil, error: "bad request: #{e.message}")
    next
  end
  case req['cmd']
  when 'start' then reply(do_start(req))
  when 'take' then reply(do_take(req))
  when 'sendfds' then reply(do_sendfds(req))
  when 'recvfds' then reply(do_recvfds(req))
  when 'close' then reply(do_close(req))
  when 'bench' then reply(do_bench(req))
  when 'stop'
    reply(ok: true)
    exit 0
  else
    reply(ok: false, errno: nil, error: "unknown cmd #{req['cmd']}")
  end
end
exit 0

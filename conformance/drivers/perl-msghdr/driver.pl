#!/usr/bin/perl
# A driver (docs/drivers.md, protocol version 1) for Perl's Socket::MsgHdr:
# sendmsg and recvmsg with a Socket::MsgHdr, SCM_RIGHTS packed and unpacked
# with cmsghdr() the way its documentation shows. The fd plumbing is
# pidfd_open/pidfd_getfd through Perl's syscall(), never the module.
use strict;
use warnings;

use Errno ();
use IO::Handle;
use JSON::PP ();
use MIME::Base64 qw(decode_base64 encode_base64);
use POSIX ();
use Socket qw(MSG_CTRUNC MSG_TRUNC SCM_RIGHTS SOL_SOCKET);
use Socket::MsgHdr;
use Time::HiRes qw(clock_gettime CLOCK_MONOTONIC);

use constant PROTOCOL_VERSION => 1;

# x86_64 system call numbers.
use constant SYS_PIDFD_OPEN  => 434;
use constant SYS_PIDFD_GETFD => 438;

# sizeof(struct cmsghdr) and its alignment on x86_64.
use constant CMSGHDR_SIZE => 16;
use constant CMSG_ALIGN   => 8;

my %IMPLEMENTATION = (
    name     => 'perl-msghdr',
    language => sprintf('Perl %vd', $^V),
    library  => 'Socket::MsgHdr',
    version  => $Socket::MsgHdr::VERSION,
    homepage => 'https://metacpan.org/pod/Socket::MsgHdr',
);

# Perl dies of SIGPIPE by default; a program that writes to sockets ignores
# it, as Python does for every program, so that sendmsg reports EPIPE.
$SIG{PIPE} = 'IGNORE';

my $json = JSON::PP->new->canonical;
my $suite_pidfd;

# The handle of each fd the suite handed over: sendmsg and recvmsg take a
# Perl handle, opened on the fd itself with "+<&=" (no dup). Closing a handle
# closes its fd, so each stays here until the suite sends close.
my %handles;

sub failure {
    my ($errno, $error) = @_;
    return { ok => JSON::PP::false, errno => $errno, error => $error };
}

sub os_failure {
    my ($what) = @_;
    return failure(0 + $!, "$what: $!");
}

sub handle_of {
    my ($fd) = @_;
    return $handles{$fd} if $handles{$fd};
    open(my $fh, '+<&=', $fd) or return;
    $handles{$fd} = $fh;
    return $fh;
}

# CMSG_SPACE(4 * n), the control buffer for n fds (Perl's Socket has no CMSG_SPACE).
sub cmsg_space {
    my ($numfds) = @_;
    my $data = 4 * $numfds;
    return CMSGHDR_SIZE + CMSG_ALIGN * int(($data + CMSG_ALIGN - 1) / CMSG_ALIGN);
}

sub start {
    my ($req) = @_;
    if (($req->{version} // -1) != PROTOCOL_VERSION) {
        return (failure(undef, 'this driver speaks protocol version ' . PROTOCOL_VERSION
            . ', not ' . ($req->{version} // 'none')), 1);
    }
    my $pidfd = syscall(SYS_PIDFD_OPEN, $req->{suite_pid} + 0, 0);
    return os_failure("pidfd_open($req->{suite_pid})") if $pidfd < 0;
    $suite_pidfd = $pidfd;
    return {
        ok             => JSON::PP::true,
        version        => PROTOCOL_VERSION,
        implementation => \%IMPLEMENTATION,
        truncation     => 'attribute',    # flags() & MSG_CTRUNC, as documented
        unsupported    => [],
    };
}

sub take {
    my ($req) = @_;
    my @taken;
    for my $fd (@{ $req->{fds} }) {
        my $got = syscall(SYS_PIDFD_GETFD, $suite_pidfd, $fd + 0, 0);
        if ($got < 0) {
            my $reply = os_failure("pidfd_getfd($fd)");
            POSIX::close($_) for @taken;
            return $reply;
        }
        push @taken, $got;
    }
    return { ok => JSON::PP::true, fds => \@taken };
}

sub release {
    my ($req) = @_;
    for my $fd (@{ $req->{fds} }) {
        my $fh = delete $handles{$fd};
        my $closed = $fh ? close($fh) : POSIX::close($fd);
        return os_failure("close($fd)") unless $closed;
    }
    return { ok => JSON::PP::true };
}

sub send_fds {
    my ($sock, $msg, $flags, $fds) = @_;
    my $fh = handle_of($sock) or return (undef, os_failure("open fd $sock"));
    my $hdr = Socket::MsgHdr->new(buf => $msg);
    $hdr->cmsghdr(SOL_SOCKET, SCM_RIGHTS, pack('i*', @$fds)) if @$fds;
    my $sent = sendmsg($fh, $hdr, $flags);
    return (undef, os_failure('sendmsg')) unless defined $sent;
    return (0 + $sent, undef);    # zero bytes come back as "0 but true"
}

sub recv_fds {
    my ($sock, $len, $flags, $numfds) = @_;
    my $fh = handle_of($sock) or return (undef, os_failure("open fd $sock"));
    my $hdr = Socket::MsgHdr->new(buflen => $len, controllen => cmsg_space($numfds));
    my $got = recvmsg($fh, $hdr, $flags);
    return (undef, os_failure('recvmsg')) unless defined $got;
    my @fds;
    my @cmsg = $hdr->cmsghdr();
    while (my ($level, $type, $data) = splice(@cmsg, 0, 3)) {
        next unless $level == SOL_SOCKET && $type == SCM_RIGHTS;
        push @fds, unpack('i*', $data);
    }
    my $received = {
        msg           => $hdr->buf,
        fds           => \@fds,
        truncated     => ($hdr->flags & MSG_CTRUNC) ? JSON::PP::true : JSON::PP::false,
        msg_truncated => ($hdr->flags & MSG_TRUNC) ? JSON::PP::true : JSON::PP::false,
    };
    return ($received, undef);
}

sub bench {
    my ($req) = @_;
    my $msg = "\0" x $req->{payload};
    my $began = clock_gettime(CLOCK_MONOTONIC);
    for (1 .. $req->{rounds}) {
        my (undef, $error) = send_fds($req->{send_sock}, $msg, 0, [ $req->{fd} ]);
        return $error if $error;
        (my $got, $error) = recv_fds($req->{recv_sock}, $req->{payload}, 0, 1);
        return $error if $error;
        for my $fd (@{ $got->{fds} }) {
            POSIX::close($fd) or return os_failure("close($fd)");
        }
    }
    my $ns = int((clock_gettime(CLOCK_MONOTONIC) - $began) * 1e9);
    return { ok => JSON::PP::true, ns => $ns };
}

# Returns the reply, and whether to exit after it.
sub dispatch {
    my ($req) = @_;
    my $cmd = $req->{cmd} // '';
    return start($req) if $cmd eq 'start';
    return take($req) if $cmd eq 'take';
    return release($req) if $cmd eq 'close';
    return bench($req) if $cmd eq 'bench';
    return ({ ok => JSON::PP::true }, 1) if $cmd eq 'stop';
    if ($cmd eq 'sendfds') {
        my ($sent, $error) = send_fds($req->{sock}, decode_base64($req->{msg} // ''),
            $req->{flags} // 0, $req->{fds} // []);
        return $error // { ok => JSON::PP::true, sent => $sent };
    }
    if ($cmd eq 'recvfds') {
        my ($got, $error) = recv_fds($req->{sock}, $req->{len}, $req->{flags} // 0,
            $req->{numfds});
        return $error if $error;
        $got->{ok} = JSON::PP::true;
        $got->{msg} = encode_base64($got->{msg}, '');
        return $got;
    }
    return failure(undef, "unknown cmd $cmd");
}

# JSON::PP is pure Perl and takes seconds over a payload of megabytes: the
# base64 of "msg" (no character of which needs a JSON escape) goes around it.
sub decode_request {
    my ($line) = @_;
    my $msg;
    $msg = $1 if $line =~ s/"msg"\s*:\s*"([A-Za-z0-9+\/=]*)"/"msg":""/;
    my $req = $json->decode($line);
    $req->{msg} = $msg if defined $msg && ref $req eq 'HASH';
    return $req;
}

sub encode_reply {
    my ($reply) = @_;
    my $msg = delete $reply->{msg};
    my $out = $json->encode($reply);
    $out =~ s/\}\z/,"msg":"$msg"}/ if defined $msg;
    return $out;
}

STDOUT->autoflush(1);
while (my $line = <STDIN>) {
    my ($reply, $last);
    my $req = eval { decode_request($line) };
    if (!defined $req || ref $req ne 'HASH') {
        $reply = failure(undef, 'bad request: ' . ($@ || 'not a JSON object'));
    } else {
        ($reply, $last) = eval { dispatch($req) };
        # A die inside the module (or Perl under it) is the call's failure.
        $reply = failure(undef, "died: $@") unless $reply;
    }
    print encode_reply($reply), "\n" or exit 1;
    exit 0 if $last;
}
exit 0;

# test/perl/CacheExt/TLS.pm - throwaway certificates and a TLS redis-server for TAP tests
#
#   use CacheExt::TLS;
#   my $pki = CacheExt::TLS::make_pki();           # CA, other CA, server and client certs
#   my $redis = CacheExt::TLS->new(pki => $pki, server => 'ip', auth_clients => 'no');
#   $redis->url;                                   # rediss://127.0.0.1:PORT/0
#   $redis->cli('DBSIZE');                         # redis-cli over TLS, with the client cert
#   $redis->handshake_errors;                      # failed handshakes in the server's log
#
# make_pki() runs the openssl command line in a temporary directory (no
# network).  Every key is EC P-256 and mode 0600; certificates are valid for
# two days.  It returns a hash of file names:
#   ca_crt, ca_key          the test CA
#   other_ca_crt            a second CA that signed nothing we use
#   ip_crt, ip_key          server certificate for 127.0.0.1 (IP SAN only)
#   name_crt, name_key      server certificate for localhost (DNS SAN only)
#   client_crt, client_key  client certificate (clientAuth), signed by the CA
#   other_client_crt, other_client_key  the same, signed by the other CA
#   dir                     where they are
#
# CacheExt::TLS is a CacheExt::Redis whose server listens only on a TLS port
# (--port 0 --tls-port PORT) on 127.0.0.1: stop, kill9, pause, resume,
# restart and the END-block cleanup (by PID) are CacheExt::Redis's.  The
# server logs at verbose level, which is where redis 7.0 reports failed
# handshakes.

package CacheExt::TLS;

use strict;
use warnings FATAL => 'all';

use Carp;
use File::Spec;
use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;

use parent 'CacheExt::Redis';

# Run the openssl command line; die with its output if it fails.
sub _openssl
{
	my ($dir, @args) = @_;
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run([ 'openssl', @args ], '<', \'', '>', \$out, '2>', \$err,
		init => sub { chdir $dir or die "chdir $dir: $!" });
	croak "openssl @args failed: $err$out" unless $ok;
	return;
}

sub _write
{
	my ($path, $text) = @_;
	open(my $fh, '>', $path) or croak "cannot write $path: $!";
	print $fh $text;
	close($fh) or croak "cannot write $path: $!";
	return;
}

# A key pair and a certificate signed by the CA in $dir, with $ext lines.
sub _issue
{
	my ($dir, $name, $cn, $ext, $ca) = @_;
	$ca //= 'ca';
	_write("$dir/$name.ext", $ext);
	_openssl($dir, 'req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
		'-nodes', '-keyout', "$name.key", '-out', "$name.csr", '-subj', "/CN=$cn");
	_openssl($dir, 'x509', '-req', '-in', "$name.csr", '-CA', "$ca.crt", '-CAkey', "$ca.key",
		'-set_serial', int(rand(2**31)), '-days', '2', '-sha256',
		'-extfile', "$name.ext", '-out', "$name.crt");
	chmod 0600, "$dir/$name.key";
	return;
}

# A self-signed CA in $dir/$name.{crt,key}.
sub _make_ca
{
	my ($dir, $name, $cn) = @_;
	_openssl($dir, 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
		'-nodes', '-keyout', "$name.key", '-out', "$name.crt", '-days', '2', '-sha256',
		'-subj', "/CN=$cn",
		'-addext', 'basicConstraints=critical,CA:TRUE',
		'-addext', 'keyUsage=critical,keyCertSign,cRLSign');
	chmod 0600, "$dir/$name.key";
	return;
}

=pod

=head1 FUNCTIONS

=over

=item CacheExt::TLS::make_pki()

Create the certificates described above in a new temporary directory and
return the hash of their file names.

=cut

sub make_pki
{
	my $dir = PostgreSQL::Test::Utils::tempdir('pki');
	_make_ca($dir, 'ca', 'cache_ext test CA');
	_make_ca($dir, 'other_ca', 'cache_ext other CA');
	my $server_ext = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
	  . "extendedKeyUsage=serverAuth\n";
	_issue($dir, 'ip', '127.0.0.1', $server_ext . "subjectAltName=IP:127.0.0.1\n");
	_issue($dir, 'name', 'localhost', $server_ext . "subjectAltName=DNS:localhost\n");
	my $client_ext = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
	  . "extendedKeyUsage=clientAuth\n";
	_issue($dir, 'client', 'cache_ext client', $client_ext);
	_issue($dir, 'other_client', 'cache_ext client', $client_ext, 'other_ca');
	my %pki = (dir => $dir);
	foreach my $f (qw(ca other_ca ip name client other_client))
	{
		$pki{"${f}_crt"} = "$dir/$f.crt";
		$pki{"${f}_key"} = "$dir/$f.key";
	}
	return \%pki;
}

=pod

=back

=head1 METHODS

=over

=item CacheExt::TLS->new(pki => $pki, server => 'ip' | 'name', auth_clients => 'no' | 'yes', name => ...)

Start a TLS-only redis-server with the 'ip' (127.0.0.1) or 'name'
(localhost) certificate, trusting the test CA for client certificates, and
wait until it answers PING over TLS.

=cut

# new() of CacheExt::Redis starts the server before it returns: start()
# finds its TLS parameters here.
our $starting;

sub new
{
	my ($class, %params) = @_;
	croak 'CacheExt::TLS->new needs pki' unless $params{pki};
	local $starting = {
		pki          => $params{pki},
		server       => $params{server} // 'ip',
		auth_clients => $params{auth_clients} // 'no',
	};
	# the other parameters (extra_args, ...) are CacheExt::Redis's
	return $class->SUPER::new(%params, name => $params{name} // 'redis_tls',
		verbose => $params{verbose} // 1);
}

sub url
{
	my ($self, $host) = @_;
	$host //= '127.0.0.1';
	return "rediss://$host:$self->{port}/0";
}

sub start
{
	my $self = shift;
	$self->{tls} //= $starting;
	return $self->SUPER::start();
}

# TLS only: the plain port is closed.
sub _listen_args
{
	my $self = shift;
	my $tls = $self->{tls};
	my $pki = $tls->{pki};
	return (
		'--port' => '0',
		'--tls-port' => $self->{port},
		'--tls-cert-file' => $pki->{"$tls->{server}_crt"},
		'--tls-key-file' => $pki->{"$tls->{server}_key"},
		'--tls-ca-cert-file' => $pki->{ca_crt},
		'--tls-auth-clients' => $tls->{auth_clients},
		'--loglevel' => 'verbose');
}

sub _listen_description
{
	my $self = shift;
	my $tls = $self->{tls};
	return "with TLS ($tls->{server} certificate, auth-clients $tls->{auth_clients}) "
	  . "on 127.0.0.1:$self->{port}";
}

# redis-cli over TLS, verifying the server against the test CA by its
# certificate's name, and presenting the client certificate (and the
# password given to new(), if any, as CacheExt::Redis does).
sub _run_cli
{
	my ($self, $timeout, @args) = @_;
	my $tls = $self->{tls};
	my $pki = $tls->{pki};
	my ($in, $out, $err) = ('', '', '');
	my @cmd = (
		'redis-cli', '-h', ($tls->{server} eq 'ip' ? '127.0.0.1' : 'localhost'),
		'-p', $self->{port},
		'--tls', '--cacert', $pki->{ca_crt},
		'--cert', $pki->{client_crt}, '--key', $pki->{client_key},
		(defined $self->{params}{password}
			? ('--no-auth-warning', '-a', $self->{params}{password}) : ()),
		@args);
	my ($status, $h);
	my $ok = eval {
		$h = IPC::Run::start(\@cmd, '<', \$in, '>', \$out, '2>', \$err,
			IPC::Run::timeout($timeout));
		$h->finish;
		$status = $h->full_result(0);
		1;
	};
	if (!$ok)
	{
		my $why = $@;
		eval { $h->kill_kill if $h; };
		return (undef, $why);
	}
	return ($out, $err, $status);
}

=pod

=item $redis->handshake_errors()

The lines of the server's log that report a connection whose TLS handshake
failed ("Error accepting a client connection: ..."), in order.

=cut

sub handshake_errors
{
	my $self = shift;
	my $log = $self->logfile;
	return () unless -f $log;
	return grep { /Error accepting a client connection/ } split /\n/, slurp_file($log);
}

=pod

=back

=cut

1;

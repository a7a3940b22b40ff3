# test/t/160_settings.pl - every user-settable setting has a verdict, and the
# key follows it
#
# docs/settings.md lists every setting a session may change (pg_settings with
# context user or superuser) as **keyed** or not keyed.  This test checks
# that the list is complete for the server under test, and that changing a
# keyed setting changes the entry key (cache_explain's "key") while changing
# any other leaves it alone.  A setting whose value cannot be changed to
# another valid one here is counted and reported, never silently passed.

use strict;
use warnings FATAL => 'all';

use File::Basename qw(dirname);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use CacheExt::Redis qw(cache_ext_node);

my $redis = CacheExt::Redis->new;
my $node = cache_ext_node('main', $redis);

# ---- the document ----------------------------------------------------------
my $doc = dirname(__FILE__) . '/../../docs/settings.md';
open(my $fh, '<', $doc) or die "cannot read $doc: $!";
my %verdict;
while (my $line = <$fh>)
{
	next unless $line =~ /^\| `([^`]+)` \| (\w+) \| ([^|]+?) \|/;
	my ($name, $v) = ($1, $3);
	$verdict{$name} = ($v =~ /\*\*keyed\*\*/) ? 'keyed' : 'not keyed';
}
close $fh;
ok(scalar(keys %verdict) > 100, 'docs/settings.md has a table of settings');

my @settings = split /\n/, $node->safe_psql('postgres', q{
SELECT name || '|' || vartype || '|' || coalesce(setting, '') || '|' ||
       coalesce(min_val, '') || '|' || coalesce(max_val, '') || '|' ||
       coalesce(array_to_string(enumvals, ','), '')
  FROM pg_settings WHERE context IN ('user', 'superuser') ORDER BY name});
# cache_ext's own settings are documented in docs/reference.md
@settings = grep { !/^cache_ext\./ } @settings;
my @missing = grep { my ($n) = split /\|/; !exists $verdict{$n} } @settings;
is_deeply(\@missing, [], 'every user-settable setting of this server has a verdict in docs/settings.md');

# ---- the key follows the verdict --------------------------------------------
my %string_value = (
	DateStyle => 'SQL, DMY', TimeZone => 'Asia/Tokyo',
	application_name => 'settings_test', backtrace_functions => 'int4in',
	default_tablespace => 'pg_default', temp_tablespaces => 'pg_default',
	default_text_search_config => 'pg_catalog.simple',
	dynamic_library_path => '$libdir:/nonexistent', extension_destdir => '/nonexistent',
	lc_messages => 'POSIX', lc_monetary => 'POSIX', lc_numeric => 'POSIX', lc_time => 'POSIX',
	search_path => 'public', timezone_abbreviations => 'Australia',
	restrict_nonsystem_relation_kind => 'view', client_encoding => 'LATIN1',
	wal_consistency_checking => 'heap', default_table_access_method => 'heap',
	local_preload_libraries => '', session_preload_libraries => '');
# a different value would stop the test itself from running, or cannot be
# set inside a transaction
my %unchangeable = map { $_ => 1 } qw(transaction_isolation transaction_read_only
  transaction_deferrable default_transaction_read_only exit_on_error
  debug_discard_caches zero_damaged_pages);

sub other_value
{
	my ($name, $type, $cur, $min, $max, $enums) = @_;
	return $cur eq 'on' ? 'off' : 'on' if $type eq 'bool';
	if ($type eq 'enum')
	{
		my ($v) = grep { lc($_) ne lc($cur) } split /,/, $enums;
		return $v;
	}
	if ($type eq 'integer' || $type eq 'real')
	{
		# (max_stack_depth only down: the OS stack limit bounds it)
		my $v = ($cur == 0 || $cur == -1) ? 1000 : $name eq 'max_stack_depth' ? $cur / 2 : $cur * 2;
		$v = $cur / 2 if $max ne '' && $v > $max;
		$v = $max / 2 if $max ne '' && $cur == 0 && $v == 0;
		$v = int($v) if $type eq 'integer';
		$v = $min if $min ne '' && $v < $min;
		return $v == $cur ? undef : $v;
	}
	my $v = $string_value{$name};
	return (defined $v && $v ne $cur) ? $v : undef;
}

my $base = $node->safe_psql('postgres', q{SELECT cache_explain('SELECT 1')->>'key'});
my (@checked, @skipped, @wrong);
for my $row (@settings)
{
	my ($name, $type, $cur, $min, $max, $enums) = split /\|/, $row, -1;
	next unless exists $verdict{$name};
	my $v = $unchangeable{$name} ? undef : other_value($name, $type, $cur, $min, $max, $enums);
	if (!defined $v)
	{
		push @skipped, $name;
		next;
	}
	my $quoted = $v;
	$quoted =~ s/'/''/g;
	my ($rc, $key, $err) = $node->psql('postgres',
		"BEGIN; SET LOCAL \"$name\" = '$quoted'; SELECT cache_explain('SELECT 1')->>'key'; ROLLBACK;");
	if ($rc != 0 || $key eq '')
	{
		push @skipped, "$name (SET failed: " . (split /\n/, $err)[0] . ')';
		next;
	}
	push @checked, $name;
	my $changed = $key ne $base;
	push @wrong, "$name: key " . ($changed ? 'changed' : 'unchanged') . ", documented $verdict{$name}"
	  if $changed != ($verdict{$name} eq 'keyed');
}
note('settings checked: ' . scalar(@checked) . '; not changeable here: ' . join(', ', @skipped));
cmp_ok(scalar(@checked), '>=', 150, 'most settings were changed and checked');
is_deeply(\@wrong, [], 'exactly the settings documented as keyed change the key');

# keyed settings the test could not change are still in the key material:
# each is known to cache_ext's list by name
my @keyed_skipped = grep { my $n = (split / /)[0]; ($verdict{$n} // '') eq 'keyed' } @skipped;
is_deeply(\@keyed_skipped, [], 'every keyed setting was checked');

$node->stop;
$redis->stop;
done_testing();

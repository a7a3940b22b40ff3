# test/perl/CacheExt/Locale.pm - a locale whose messages are not English
#
#   my ($name, $locpath) = CacheExt::Locale::foreign_messages_locale();
#   $ENV{LOCPATH} = $locpath if $locpath;      # before the server starts
#   ... SET lc_messages = '$name' ...
#
# For tests that must not depend on the language of strerror() (which
# follows lc_messages).  An installed German, French or Spanish UTF-8
# locale is used as is.  Otherwise, when the locale sources (Debian's
# "locales") and glibc's translations ("libc-l10n") are there, de_DE.UTF-8
# is compiled with localedef into a private directory, which the server
# must then find through LOCPATH: that needs no root and changes nothing on
# the machine.  With LOCPATH set glibc looks nowhere else, so the
# directory also links the system's compiled locale directories (C.utf8),
# and it is only offered when the locale the cluster will be created with
# is among them (or C/POSIX).  Returns an empty list when no such locale
# can be had.

package CacheExt::Locale;

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Utils;

my $SYSTEM_LOCALES = '/usr/lib/locale';

# glibc's directory name for a locale name: the codeset lower case,
# without punctuation (C.UTF-8 -> C.utf8).
sub _normalized
{
	my ($name) = @_;
	my ($lang, $codeset, $rest) = $name =~ /^([^.@]*)(?:\.([^@]*))?(@.*)?$/;
	return $name unless defined $codeset;
	$codeset = lc($codeset);
	$codeset =~ s/[^a-z0-9]//g;
	return $lang . '.' . $codeset . ($rest // '');
}

# Whether the locale initdb will pick from the environment exists under
# a LOCPATH made of the system's compiled locale directories.
sub _cluster_locale_survives
{
	for my $var (qw(LC_ALL LC_COLLATE LC_CTYPE LANG))
	{
		my $v = $ENV{$var};
		next unless defined $v && $v ne '';
		return 1 if $v eq 'C' || $v eq 'POSIX';
		return (-d "$SYSTEM_LOCALES/$v" || -d ("$SYSTEM_LOCALES/" . _normalized($v))) ? 1 : 0;
	}
	return 1;    # nothing set: C
}

sub foreign_messages_locale
{
	my @have = split /\n/, `locale -a 2>/dev/null` // '';
	for my $l (@have)
	{
		return ($l) if $l =~ /^(de_DE|fr_FR|es_ES)\.utf-?8$/i;
	}

	my $localedef = '/usr/bin/localedef';
	return ()
	  unless -x $localedef
	  && -e '/usr/share/i18n/locales/de_DE'
	  && -e '/usr/share/locale/de/LC_MESSAGES/libc.mo'
	  && _cluster_locale_survives();

	my $dir = PostgreSQL::Test::Utils::tempdir('locales');
	system($localedef, '-i', 'de_DE', '-f', 'UTF-8', "$dir/de_DE.UTF-8");
	return () unless -e "$dir/de_DE.UTF-8/LC_MESSAGES";
	if (opendir(my $dh, $SYSTEM_LOCALES))
	{
		for my $e (readdir($dh))
		{
			next if $e =~ /^\./ || !-d "$SYSTEM_LOCALES/$e";
			symlink("$SYSTEM_LOCALES/$e", "$dir/$e");
		}
		closedir($dh);
	}
	return ('de_DE.UTF-8', $dir);
}

1;

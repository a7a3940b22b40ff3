/*-------------------------------------------------------------------------
 *
 * text.c
 *	  Make text that came from Redis safe to show: printable ASCII only.
 *
 * Error replies, INFO fields and everything else a Redis server says are
 * untrusted bytes in no known encoding.  Before any of it reaches a
 * message, a log line, cache_status(), cache_health() or last_error, it
 * goes through RedisSafeText(): bytes outside printable ASCII, and the
 * backslash itself, become \xNN, so that the result is valid in every
 * server and client encoding and cannot fake a line of the log.
 *
 * Like the other parsers of untrusted bytes, this file needs nothing from
 * a backend and allocates nothing, so that the fuzz target links it.
 *
 *-------------------------------------------------------------------------
 */
#include "c.h"

#include "redis/redis_text.h"

size_t
RedisSafeText(char *dst, size_t dstlen, const char *src, size_t srclen)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (dstlen == 0)
		return 0;
	for (size_t i = 0; i < srclen; i++)
	{
		unsigned char c = (unsigned char) src[i];

		if (c >= 0x20 && c <= 0x7e && c != '\\')
		{
			if (o + 1 >= dstlen)
				break;
			dst[o++] = (char) c;
		}
		else
		{
			/* whole escapes only: a cut one would run into what follows */
			if (o + 4 >= dstlen)
				break;
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 15];
		}
	}
	dst[o] = '\0';
	return o;
}

/*-------------------------------------------------------------------------
 *
 * url.c
 *	  Parse cache_ext.redis_url: redis://, rediss:// and unix:// forms.
 *
 *	  redis://[[user]:password@]host[:port][/db]
 *	  rediss://... (TLS, same syntax)
 *	  unix://[[user]:password@]/path/to/redis.sock[?db=N]
 *
 * User and password may be percent-encoded.  Messages never repeat the
 * password.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "redis/redis.h"

static bool
hexval(char c, int *v)
{
	if (c >= '0' && c <= '9')
		*v = c - '0';
	else if (c >= 'a' && c <= 'f')
		*v = c - 'a' + 10;
	else if (c >= 'A' && c <= 'F')
		*v = c - 'A' + 10;
	else
		return false;
	return true;
}

/* Percent-decode [s, s+len) into a new string; NULL when malformed. */
static char *
pct_decode(const char *s, size_t len)
{
	char *out = palloc(len + 1);
	size_t o = 0;

	for (size_t i = 0; i < len; i++)
	{
		if (s[i] == '%')
		{
			int hi,
				lo;

			if (i + 2 >= len || !hexval(s[i + 1], &hi) || !hexval(s[i + 2], &lo))
				return NULL;
			out[o++] = (char) (hi * 16 + lo);
			i += 2;
		}
		else
			out[o++] = s[i];
	}
	out[o] = '\0';
	if (strlen(out) != o)
		return NULL; /* embedded NUL */
	return out;
}

/* Parse a non-negative decimal integer in [s, s+len) no larger than max. */
static bool
parse_uint(const char *s, size_t len, long max, int *out)
{
	long v = 0;

	if (len == 0 || len > 10)
		return false;
	for (size_t i = 0; i < len; i++)
	{
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	if (v > max)
		return false;
	*out = (int) v;
	return true;
}

/*
 * Split "userinfo@" off the front of *rest, if present.  Returns an error
 * message or NULL.
 */
static char *
parse_userinfo(const char **rest, RedisEndpoint *ep)
{
	const char *s = *rest;
	const char *at = NULL;
	const char *colon;

	/* the userinfo ends at the last '@' before the first '/' or '?' */
	for (const char *p = s; *p && *p != '/' && *p != '?'; p++)
		if (*p == '@')
			at = p;
	if (at == NULL)
		return NULL;

	colon = memchr(s, ':', at - s);
	if (colon == NULL)
		return psprintf("A user name without a password is not supported.");
	if (colon > s)
	{
		ep->user = pct_decode(s, colon - s);
		if (ep->user == NULL)
			return psprintf("Malformed percent-encoding in the user name.");
	}
	ep->password = pct_decode(colon + 1, at - colon - 1);
	if (ep->password == NULL)
		return psprintf("Malformed percent-encoding in the password.");
	if (ep->password[0] == '\0')
		ep->password = NULL;
	*rest = at + 1;
	return NULL;
}

char *
RedisParseUrl(const char *url, RedisEndpoint *ep)
{
	const char *rest;
	char *err;

	memset(ep, 0, sizeof(*ep));
	ep->port = 6379;

	if (strncmp(url, "redis://", 8) == 0)
	{
		ep->kind = REDIS_EP_TCP;
		rest = url + 8;
	}
	else if (strncmp(url, "rediss://", 9) == 0)
	{
		ep->kind = REDIS_EP_TLS;
		rest = url + 9;
	}
	else if (strncmp(url, "unix://", 7) == 0)
	{
		ep->kind = REDIS_EP_UNIX;
		rest = url + 7;
	}
	else
		return psprintf("The URL must start with redis://, rediss:// or unix://.");

	if (ep->kind == REDIS_EP_UNIX)
	{
		const char *q;

		/* userinfo, if any, is "user:pw@" directly before the path */
		if (rest[0] != '/')
		{
			const char *at = strstr(rest, "@/");
			const char *colon;

			if (at == NULL)
				return psprintf("A unix:// URL needs an absolute socket path.");
			colon = memchr(rest, ':', at - rest);
			if (colon == NULL)
				return psprintf("A user name without a password is not supported.");
			if (colon > rest)
			{
				ep->user = pct_decode(rest, colon - rest);
				if (ep->user == NULL)
					return psprintf("Malformed percent-encoding in the user name.");
			}
			ep->password = pct_decode(colon + 1, at - colon - 1);
			if (ep->password == NULL)
				return psprintf("Malformed percent-encoding in the password.");
			if (ep->password[0] == '\0')
				ep->password = NULL;
			rest = at + 1;
		}
		q = strchr(rest, '?');
		ep->path = q ? pnstrdup(rest, q - rest) : pstrdup(rest);
		if (strlen(ep->path) < 2)
			return psprintf("A unix:// URL needs an absolute socket path.");
		if (strlen(ep->path) >= 108)
			return psprintf("The socket path is too long.");
		if (q)
		{
			if (strncmp(q, "?db=", 4) != 0 ||
				!parse_uint(q + 4, strlen(q + 4), INT_MAX, &ep->db))
				return psprintf("The only query parameter accepted is db=N with a non-negative integer N.");
		}
		return NULL;
	}

	err = parse_userinfo(&rest, ep);
	if (err)
		return err;

	/* host: [v6addr] or name */
	if (rest[0] == '[')
	{
		const char *close = strchr(rest, ']');

		if (close == NULL || close == rest + 1)
			return psprintf("Malformed IPv6 address in brackets.");
		ep->host = pnstrdup(rest + 1, close - rest - 1);
		rest = close + 1;
	}
	else
	{
		size_t n = strcspn(rest, ":/?");

		if (n == 0)
			return psprintf("The URL has no host.");
		ep->host = pnstrdup(rest, n);
		rest += n;
	}

	if (rest[0] == ':')
	{
		size_t n = strcspn(rest + 1, "/?");

		if (!parse_uint(rest + 1, n, 65535, &ep->port) || ep->port == 0)
			return psprintf("The port must be an integer between 1 and 65535.");
		rest += 1 + n;
	}

	if (rest[0] == '/')
	{
		size_t n = strcspn(rest + 1, "?");

		if (n > 0 && !parse_uint(rest + 1, n, INT_MAX, &ep->db))
			return psprintf("The database number must be a non-negative integer.");
		rest += 1 + n;
	}

	if (rest[0] != '\0')
		return psprintf("Unexpected characters after the host, port and database number.");

	return NULL;
}

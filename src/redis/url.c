/*-------------------------------------------------------------------------
 *
 * url.c
 *	  Parse cache_ext.redis_url: redis://, rediss://, unix://, the
 *	  Sentinel forms and the Redis Cluster forms.
 *
 *	  redis://[[user]:password@]host[:port][/db]
 *	  rediss://... (TLS, same syntax)
 *	  unix://[[user]:password@]/path/to/redis.sock[?db=N]
 *	  redis-sentinel://[[user]:password@]host[:port][,host[:port]...]/master
 *		  [?db=N][&sentinel_user=name]
 *	  rediss-sentinel://... (TLS to the sentinels and the data nodes)
 *	  redis-cluster://[[user]:password@]host[:port][,host[:port]...]
 *	  rediss-cluster://... (TLS to every node)
 *
 * In the Sentinel forms the hosts are sentinels (port 26379 by default),
 * the path is the name they monitor, and user and password are the data
 * nodes' (the sentinels' password is in cache_ext.sentinel_password_file).
 * In the Cluster forms the hosts are seed nodes (port 6379 by default),
 * any of which gives the slot map; there is no database number (a cluster
 * has only database 0, so no SELECT) and no query.
 *
 * User, password and master name may be percent-encoded.  Messages never
 * repeat the password.
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

/*
 * Parse "host[:port]" or "[v6addr][:port]" at *rest, up to the first of
 * the stop characters; *port keeps its default when none is given.
 */
static char *
parse_hostport(const char **rest, const char *stop, char **host, int *port)
{
	const char *s = *rest;

	if (s[0] == '[')
	{
		const char *close = strchr(s, ']');

		if (close == NULL || close == s + 1)
			return psprintf("Malformed IPv6 address in brackets.");
		*host = pnstrdup(s + 1, close - s - 1);
		s = close + 1;
	}
	else
	{
		char stops[16];
		size_t n;

		snprintf(stops, sizeof(stops), ":%s", stop);
		n = strcspn(s, stops);
		if (n == 0)
			return psprintf("The URL has no host.");
		*host = pnstrdup(s, n);
		s += n;
	}

	if (s[0] == ':')
	{
		size_t n = strcspn(s + 1, stop);

		if (!parse_uint(s + 1, n, 65535, port) || *port == 0)
			return psprintf("The port must be an integer between 1 and 65535.");
		s += 1 + n;
	}
	*rest = s;
	return NULL;
}

/* The query of a Sentinel URL: db=N and sentinel_user=name, '&'-separated. */
static char *
parse_sentinel_query(const char *q, RedisEndpoint *ep)
{
	while (*q)
	{
		size_t n = strcspn(q, "&");

		if (n > 3 && strncmp(q, "db=", 3) == 0)
		{
			if (!parse_uint(q + 3, n - 3, INT_MAX, &ep->db))
				return psprintf("The database number must be a non-negative integer.");
		}
		else if (n > 14 && strncmp(q, "sentinel_user=", 14) == 0)
		{
			ep->sentinel_user = pct_decode(q + 14, n - 14);
			if (ep->sentinel_user == NULL)
				return psprintf("Malformed percent-encoding in sentinel_user.");
		}
		else
			return psprintf("The query parameters accepted are db=N and sentinel_user=name.");
		q += n;
		if (*q == '&')
			q++;
	}
	return NULL;
}

/*
 * The rest of a Sentinel URL after its scheme and user info: the
 * sentinels, the master's name, the query.
 */
static char *
parse_sentinel(const char *rest, RedisEndpoint *ep)
{
	const char *slash;
	const char *q;
	char *err;

	for (;;)
	{
		int i = ep->nsentinels;

		if (i == REDIS_MAX_SENTINELS)
			return psprintf("At most %d sentinels may be listed.", REDIS_MAX_SENTINELS);
		ep->sentinel_port[i] = 26379;
		err = parse_hostport(&rest, ",/?", &ep->sentinel_host[i],
							 &ep->sentinel_port[i]);
		if (err)
			return err;
		ep->nsentinels++;
		if (rest[0] != ',')
			break;
		rest++;
	}
	if (rest[0] != '/')
		return psprintf("A Sentinel URL needs the master's name after the sentinels: redis-sentinel://host:26379,.../mymaster.");
	slash = rest + 1;
	q = strchr(slash, '?');
	ep->master_name = pct_decode(slash, q ? (size_t) (q - slash) : strlen(slash));
	if (ep->master_name == NULL)
		return psprintf("Malformed percent-encoding in the master's name.");
	if (ep->master_name[0] == '\0' || strlen(ep->master_name) > 128)
		return psprintf("The master's name must have 1 to 128 bytes.");
	for (const char *c = ep->master_name; *c; c++)
		if ((unsigned char) *c <= ' ' || (unsigned char) *c >= 127)
			return psprintf("The master's name must be printable ASCII without spaces.");
	return q ? parse_sentinel_query(q + 1, ep) : NULL;
}

/* The rest of a Cluster URL after its scheme and user info: the seeds. */
static char *
parse_cluster(const char *rest, RedisEndpoint *ep)
{
	char *err;

	for (;;)
	{
		int i = ep->nseeds;

		if (i == REDIS_MAX_SEEDS)
			return psprintf("At most %d seed nodes may be listed.", REDIS_MAX_SEEDS);
		ep->seed_port[i] = 6379;
		err = parse_hostport(&rest, ",/?", &ep->seed_host[i], &ep->seed_port[i]);
		if (err)
			return err;
		ep->nseeds++;
		if (rest[0] != ',')
			break;
		rest++;
	}
	if (rest[0] == '/' && rest[1] != '\0')
		return psprintf("A Redis Cluster has no database number: remove \"%s\" from the URL.", rest);
	if (rest[0] == '/')
		rest++;
	if (rest[0] != '\0')
		return psprintf("A Redis Cluster URL takes no query parameters: redis-cluster://host:port[,host:port...].");
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
	else if (strncmp(url, "redis-sentinel://", 17) == 0 ||
			 strncmp(url, "rediss-sentinel://", 18) == 0)
	{
		bool tls = url[5] == 's';

		ep->kind = tls ? REDIS_EP_TLS : REDIS_EP_TCP;
		rest = url + (tls ? 18 : 17);
		err = parse_userinfo(&rest, ep);
		return err ? err : parse_sentinel(rest, ep);
	}
	else if (strncmp(url, "redis-cluster://", 16) == 0 ||
			 strncmp(url, "rediss-cluster://", 17) == 0)
	{
		bool tls = url[5] == 's';

		ep->kind = tls ? REDIS_EP_TLS : REDIS_EP_TCP;
		rest = url + (tls ? 17 : 16);
		err = parse_userinfo(&rest, ep);
		return err ? err : parse_cluster(rest, ep);
	}
	else
		return psprintf("The URL must start with redis://, rediss://, unix://, redis-sentinel://, rediss-sentinel://, redis-cluster:// or rediss-cluster://.");

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

	err = parse_hostport(&rest, "/?", &ep->host, &ep->port);
	if (err)
		return err;

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

/*-------------------------------------------------------------------------
 *
 * settings.c
 *	  The Redis client's settings: cache_ext.redis_url (checked by the URL
 *	  parser, never repeating a password) and its timeouts.  The TLS and
 *	  password-file settings are transport.c's.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/guc.h"

#include "cache_ext.h"
#include "redis/redis.h"

char *cache_ext_redis_url = NULL;
int cache_ext_connect_timeout = 1000;
int cache_ext_command_timeout = 500;
int cache_ext_retry_interval = 5000;
int cache_ext_redis_wait_replicas = 0;

static bool
check_redis_url(char **newval, void **extra, GucSource source)
{
	RedisEndpoint ep;
	char *err;

	if (*newval == NULL || (*newval)[0] == '\0')
		return true; /* not configured: every call bypasses */
	err = RedisParseUrl(*newval, &ep);
	/* the value may hold a password: never repeat it in the message */
	if (err)
	{
		GUC_check_errmsg("invalid value for parameter \"cache_ext.redis_url\"");
		GUC_check_errdetail("%s", err);
		GUC_check_errhint("Use redis://[[user]:password@]host[:port][/db], unix:///path/to/redis.sock[?db=N], redis-sentinel://[[user]:password@]host[:port][,host[:port]...]/mastername[?db=N] or redis-cluster://[[user]:password@]host[:port][,host[:port]...].");
		return false;
	}
	/* each database's keys carry its hash tag after the prefix (keys.c) */
	if (ep.nseeds > 0 && cache_ext_key_prefix != NULL &&
		(strpbrk(cache_ext_key_prefix, "{}") != NULL ||
		 strlen(cache_ext_key_prefix) > CE_CLUSTER_PREFIX_MAX_LEN))
	{
		GUC_check_errmsg("a Redis Cluster URL needs a cache_ext.key_prefix without { or }, of at most %d characters",
						 CE_CLUSTER_PREFIX_MAX_LEN);
		GUC_check_errhint("Set cache_ext.key_prefix to a prefix without braces, such as \"app1:\", first.");
		return false;
	}
	return true;
}

/* The Redis client's settings: where Redis is and how long to wait for it. */
void
RedisDefineGucs(void)
{
	TransportDefineGucs();
	DefineCustomStringVariable("cache_ext.redis_url",
							   "Where the Redis server is: redis://[[user]:password@]host[:port][/db], unix:///path?db=N, the sentinels that know it: redis-sentinel://host:26379,.../mastername, or nodes of a Redis Cluster: redis-cluster://host:port,....",
							   "Only superusers can see or change it, since it may hold a password.",
							   &cache_ext_redis_url,
							   "",
							   PGC_SUSET, GUC_SUPERUSER_ONLY,
							   check_redis_url, NULL, NULL);

	DefineCustomIntVariable("cache_ext.connect_timeout",
							"Longest wait to connect to Redis.",
							NULL,
							&cache_ext_connect_timeout,
							1000, 1, 3600 * 1000,
							PGC_USERSET, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("cache_ext.command_timeout",
							"Longest wait for the replies to one pipeline of Redis commands.",
							NULL,
							&cache_ext_command_timeout,
							500, 1, 3600 * 1000,
							PGC_USERSET, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("cache_ext.redis_wait_replicas",
							"Replicas that must acknowledge each invalidation (Redis WAIT) before it counts as delivered.",
							"0: the master's acknowledgement is enough.  With N > 0, a bump that fewer replicas confirm within the bump's timeout stays in the outbox (hits wait) and is sent again.",
							&cache_ext_redis_wait_replicas,
							0, 0, 16,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("cache_ext.retry_interval",
							"After a Redis failure, how long this session runs queries uncached before trying Redis again.",
							NULL,
							&cache_ext_retry_interval,
							5000, 0, 3600 * 1000,
							PGC_USERSET, GUC_UNIT_MS,
							NULL, NULL, NULL);
}

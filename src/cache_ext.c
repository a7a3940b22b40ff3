/*-------------------------------------------------------------------------
 *
 * cache_ext.c
 *	  Module initialisation: GUCs, shared memory hooks.
 *
 * GUCs are defined whether or not the library is preloaded; shared memory
 * (the statistics) is requested only when it is.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/guc.h"

#include "cache_ext.h"
#include "invalidate.h"
#include "keys.h"
#include "redis/redis.h"

PG_MODULE_MAGIC;

bool		cache_ext_enabled = true;
char	   *cache_ext_redis_url = NULL;
int			cache_ext_default_ttl = 300;
int			cache_ext_connect_timeout = 1000;
int			cache_ext_command_timeout = 500;
int			cache_ext_retry_interval = 5000;
int			cache_ext_max_entry_size = 1024 * 1024;
char	   *cache_ext_key_prefix = NULL;
bool		cache_ext_query_stats = true;
int			cache_ext_query_stats_max = 1000;
int			cache_ext_log_calls = LOG_CALLS_NONE;
int			cache_ext_log_calls_level = LOG;
double		cache_ext_verify_rate = 0.0;
int			cache_ext_max_ttl = 7 * 24 * 3600;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

void		_PG_init(void);

static const struct config_enum_entry log_calls_options[] = {
	{"none", LOG_CALLS_NONE, false},
	{"bypass", LOG_CALLS_BYPASS, false},
	{"miss", LOG_CALLS_MISS, false},
	{"all", LOG_CALLS_ALL, false},
	{NULL, 0, false}
};

static const struct config_enum_entry log_level_options[] = {
	{"debug5", DEBUG5, false},
	{"debug4", DEBUG4, false},
	{"debug3", DEBUG3, false},
	{"debug2", DEBUG2, false},
	{"debug1", DEBUG1, false},
	{"debug", DEBUG2, true},
	{"info", INFO, false},
	{"notice", NOTICE, false},
	{"warning", WARNING, false},
	{"log", LOG, false},
	{NULL, 0, false}
};

static const struct config_enum_entry untracked_options[] = {
	{"allow", UNTRACKED_ALLOW, false},
	{"bypass", UNTRACKED_BYPASS, false},
	{"error", UNTRACKED_ERROR, false},
	{NULL, 0, false}
};

static bool
check_redis_url(char **newval, void **extra, GucSource source)
{
	RedisEndpoint ep;
	char	   *err;

	if (*newval == NULL || (*newval)[0] == '\0')
		return true;			/* not configured: every call bypasses */
	err = RedisParseUrl(*newval, &ep);
	/* the value may hold a password: never repeat it in the message */
	if (err)
	{
		GUC_check_errmsg("invalid value for parameter \"cache_ext.redis_url\"");
		GUC_check_errdetail("%s", err);
		GUC_check_errhint("Use redis://[[user]:password@]host[:port][/db] or unix:///path/to/redis.sock[?db=N].");
		return false;
	}
	return true;
}

static bool
check_key_prefix(char **newval, void **extra, GucSource source)
{
	const char *p = *newval;

	if (p == NULL || p[0] == '\0' || strlen(p) > KEY_PREFIX_MAX_LEN)
	{
		GUC_check_errdetail("The key prefix must have 1 to %d characters, so that every key name fits in %d bytes.",
							KEY_PREFIX_MAX_LEN, INVAL_KEY_LEN);
		GUC_check_errhint("Use a shorter prefix, such as \"app1:\".");
		return false;
	}
	for (; *p; p++)
	{
		if (*p <= ' ' || *p > '~' || strchr("*?[]\\", *p))
		{
			GUC_check_errdetail("The key prefix may contain only printable ASCII characters other than space, *, ?, [, ] and \\.");
			return false;
		}
	}
	return true;
}

static void
cache_ext_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	CacheStatsShmemRequest();
	InvalShmemRequest();
	QueryStatsShmemRequest();
}

static void
cache_ext_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	CacheStatsShmemInit();
	InvalShmemInit();
	QueryStatsShmemInit();
	LWLockRelease(AddinShmemInitLock);
}

/*
 * TEMPORARY (issue 11, until the store layer counts): the Redis client no
 * longer adds its failures to cache_stats.errors (it calls nothing above
 * src/redis/); this adds RedisFailureCount()'s increase at the end of each
 * transaction, after the commit-time bumps (registered before them, so
 * called after them).  The background worker runs no transactions: its
 * failures go uncounted meanwhile.  Remove this when the store adds the
 * increase after each call, or errors are counted twice.
 */
static void
count_redis_failures(XactEvent event, void *arg)
{
	static uint64 counted = 0;
	uint64		now = RedisFailureCount();

	if (now != counted)
	{
		CacheStatsAdd(CS_ERRORS, now - counted);
		counted = now;
	}
}

void
_PG_init(void)
{
	DefineCustomBoolVariable("cache_ext.enabled",
							 "Use the cache in cached_query(); when off, queries run directly.",
							 NULL,
							 &cache_ext_enabled,
							 true,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);

	DefineCustomStringVariable("cache_ext.redis_url",
							   "Where the Redis server is: redis://[[user]:password@]host[:port][/db] or unix:///path?db=N.",
							   "Only superusers can see or change it, since it may hold a password.",
							   &cache_ext_redis_url,
							   "",
							   PGC_SUSET, GUC_SUPERUSER_ONLY,
							   check_redis_url, NULL, NULL);

	DefineCustomIntVariable("cache_ext.default_ttl",
							"Time to live of stored results.",
							NULL,
							&cache_ext_default_ttl,
							300, 1, 365 * 24 * 3600,
							PGC_USERSET, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("cache_ext.max_ttl",
							"Longest time to live any entry is stored with.",
							"A per-call ttl or cache_ext.default_ttl above it is lowered to it.",
							&cache_ext_max_ttl,
							7 * 24 * 3600, 1, 365 * 24 * 3600,
							PGC_SUSET, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomRealVariable("cache_ext.verify_rate",
							 "Fraction of hits that are also run directly and compared with the stored result.",
							 "A mismatch is counted in cache_stats.verify_mismatches, logged, the entry is deleted and the direct result is returned.",
							 &cache_ext_verify_rate,
							 0.0, 0.0, 1.0,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);

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

	DefineCustomIntVariable("cache_ext.retry_interval",
							"After a Redis failure, how long this session runs queries uncached before trying Redis again.",
							NULL,
							&cache_ext_retry_interval,
							5000, 0, 3600 * 1000,
							PGC_USERSET, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("cache_ext.max_entry_size",
							"Largest result, in its stored form, that is stored in Redis.",
							"Larger results are returned uncached; larger replies from Redis are refused unread.",
							&cache_ext_max_entry_size,
							1024 * 1024, 1024, 512 * 1024 * 1024,
							PGC_SUSET, GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomStringVariable("cache_ext.key_prefix",
							   "Prefix of every Redis key cache_ext writes.",
							   NULL,
							   &cache_ext_key_prefix,
							   "cache_ext:",
							   PGC_SUSET, 0,
							   check_key_prefix, NULL, NULL);

	DefineCustomEnumVariable("cache_ext.untracked",
							 "What cached_query does with a query that reads a table whose writes are not tracked.",
							 "allow caches it under its TTL only (and says so), bypass runs it uncached, error refuses it.",
							 &cache_ext_untracked,
							 UNTRACKED_ALLOW, untracked_options,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("cache_ext.invalidation_timeout",
							"Longest wait at commit for Redis to take the transaction's invalidations.",
							"Past it they are kept in shared memory and this server serves no hits until they are delivered.",
							&cache_ext_invalidation_timeout,
							250, 1, 60 * 1000,
							PGC_SUSET, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("cache_ext.max_keys_per_xact",
							"Most key values of one key-tracked table a transaction invalidates one by one.",
							"Past it, every key-level result of that table is invalidated at once.",
							&cache_ext_max_keys_per_xact,
							100, 1, 100000,
							PGC_USERSET, 0,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("cache_ext.query_stats",
							 "Collect per-query statistics (the cache_query_stats view).",
							 NULL,
							 &cache_ext_query_stats,
							 true,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("cache_ext.query_stats_max",
							"Most queries cache_query_stats keeps; the least called are evicted.",
							NULL,
							&cache_ext_query_stats_max,
							1000, 100, 100000,
							PGC_POSTMASTER, 0,
							NULL, NULL, NULL);

	DefineCustomEnumVariable("cache_ext.log_calls",
							 "Which cached_query calls are logged, with their key, outcome and time.",
							 "none, bypass, miss (misses and bypasses) or all.",
							 &cache_ext_log_calls,
							 LOG_CALLS_NONE, log_calls_options,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);

	DefineCustomEnumVariable("cache_ext.log_calls_level",
							 "Message level of the calls cache_ext.log_calls logs.",
							 NULL,
							 &cache_ext_log_calls_level,
							 LOG, log_level_options,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);

	TransportDefineGucs();
	SecretsDefineGucs();
	SecretsLoad();

	RegisterXactCallback(count_redis_failures, NULL);	/* TEMPORARY, above */
	InvalInit();				/* defines the outbox's settings too */
	MarkGUCPrefixReserved("cache_ext");

	if (!process_shared_preload_libraries_in_progress)
		return;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = cache_ext_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = cache_ext_shmem_startup;
}

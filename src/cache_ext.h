/*-------------------------------------------------------------------------
 *
 * cache_ext.h
 *	  Declarations shared by the files of the cache_ext extension.
 *
 * Layering (docs/architecture.md §4): the SQL functions (sql_api.c, explain.c,
 * admin.c, stats.c, health.c) call the pipeline (pipeline.c), which calls
 * the analysis (deps.c ...), keys.c, entry.c and the store (store/), which
 * alone calls the Redis client (redis/redis.h), which alone touches
 * sockets.  Nothing below the pipeline knows about SQL-callable functions.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CACHE_EXT_H
#define CACHE_EXT_H

#include "postgres.h"

#include "miscadmin.h"
#include "nodes/plannodes.h"
#include "utils/timestamp.h"

/* GUC variables (cache_ext.c) */
extern bool cache_ext_enabled;
extern char *cache_ext_redis_url;
extern int cache_ext_default_ttl;		  /* seconds */
extern int cache_ext_connect_timeout;	  /* ms */
extern int cache_ext_command_timeout;	  /* ms */
extern int cache_ext_retry_interval;	  /* ms */
extern int cache_ext_redis_wait_replicas; /* WAIT after each bump */
extern int cache_ext_max_entry_size;	  /* bytes */
extern char *cache_ext_key_prefix;

/*
 * A Redis Cluster URL (redis-cluster://, rediss-cluster://): every key of a
 * database then carries that database's hash tag (keys.c), so the key
 * prefix may have at most CE_CLUSTER_PREFIX_MAX_LEN characters (keys.h's
 * bound less the tag's braces) and no { or }.
 */
#define CE_CLUSTER_PREFIX_MAX_LEN 61
static inline bool
CeClusterUrl(const char *url)
{
	return url != NULL && (strncmp(url, "redis-cluster://", 16) == 0 || strncmp(url, "rediss-cluster://", 17) == 0);
}
extern int cache_ext_log_calls;
extern int cache_ext_log_calls_level;
extern double cache_ext_verify_rate;   /* fraction of hits re-run and compared */
extern double cache_ext_early_refresh; /* XFetch beta; 0: off */
extern int cache_ext_max_ttl;		   /* seconds: ceiling of every entry's TTL */

/* Each module defines its own settings (called from _PG_init). */

/*
 * The context of a setting read once at server start.  PostgreSQL ends
 * the session (FATAL) when a library loaded after startup defines a
 * PGC_POSTMASTER setting, so without shared_preload_libraries (CREATE
 * EXTENSION, LOAD) such settings are defined as reloadable instead: each
 * backend then reads them when it loads the library, and what needs
 * shared memory stays off anyway.
 */
#define CE_PGC_POSTMASTER \
	(process_shared_preload_libraries_in_progress ? PGC_POSTMASTER : PGC_SIGHUP)
extern void PipelineDefineGucs(void);	/* pipeline.c */
extern void MemoryKeepDefineGucs(void); /* memory_keep.c */
extern void StatsDefineGucs(void);		/* stats.c */
extern void EntryDefineGucs(void);		/* entry.c */
extern void KeysDefineGucs(void);		/* keys.c */
extern void InvalDefineGucs(void);		/* invalidate.c */
extern void RedisDefineGucs(void);		/* redis/settings.c */
extern void ValuesDefineGucs(void);		/* values.c */

/* cache_ext.log_calls: each level logs its kind and those below it */
typedef enum LogCalls
{
	LOG_CALLS_NONE,
	LOG_CALLS_BYPASS,
	LOG_CALLS_MISS,
	LOG_CALLS_ALL
} LogCalls;

/* stats.c: counters kept in shared memory when preloaded */
typedef enum CacheStatCounter
{
	CS_HITS,
	CS_MISSES,
	CS_BYPASSES,
	CS_ERRORS, /* Redis failures: connect, I/O, timeout, protocol */
	CS_STORES,
	CS_STORE_SKIPPED, /* results not stored (too large, Redis down) */
	CS_CORRUPT,		  /* entries that failed validation */
	CS_BYTES_STORED,
	CS_BYTES_READ,
	CS_HIT_TIME_US,
	CS_MISS_TIME_US,
	CS_BYPASS_TIME_US,
	CS_INVALIDATED,	   /* entries found with a changed generation */
	CS_TTL_ONLY,	   /* results served or stored under TTL only */
	CS_BUMPS_SENT,	   /* generation keys bumped */
	CS_BUMPS_DEFERRED, /* ... put in the outbox instead */
	CS_OUTBOX_OVERFLOWS,
	CS_VERIFIED,		  /* hits re-run directly by cache_ext.verify_rate */
	CS_VERIFY_MISMATCHES, /* ... whose stored result differed */
	CS_ROUND_TRIPS,		  /* round trips to Redis (store.c) */
	CS_PLANS_BUILT,		  /* statements prepared, or analysed again
								 * after their generic plan was rebuilt */
	CS_NUM_COUNTERS
} CacheStatCounter;

/* stats.c: cache_query_stats */
typedef enum QueryStatsReason
{
	QS_DISABLED,
	QS_NOT_CACHEABLE,
	QS_OWN_WRITES,
	QS_ISOLATION,
	QS_UNTRACKED,
	QS_REDIS,
	QS_PENDING,
	QS_NOT_PRELOADED,
	QS_NUM_REASONS
} QueryStatsReason;

typedef enum QueryStatsOutcome
{
	QS_HIT,
	QS_MISS,
	QS_BYPASS
} QueryStatsOutcome;

/* What one call did, for cache_query_stats. */
typedef struct QueryStatsCall
{
	QueryStatsOutcome outcome;
	QueryStatsReason reason; /* of a bypass */
	double ms;
	bool stored;
	bool store_skipped;
	bool invalidated; /* it found its entry stale */
	int64 bytes_stored;
	int64 bytes_read;
} QueryStatsCall;

extern bool cache_ext_query_stats;
extern int cache_ext_query_stats_max;

extern void QueryStatsShmemRequest(void);
extern void QueryStatsShmemInit(void);
extern void QueryStatsRecord(uint64 queryid, const char *query,
							 const QueryStatsCall *call);
/* The mean time of the query's misses in this database, if it has any. */
extern bool QueryStatsMeanMissMs(uint64 queryid, double *ms);

extern void CacheStatsShmemRequest(void);
extern void CacheStatsShmemInit(void);
extern void CacheStatsAdd(CacheStatCounter counter, uint64 amount);

/* deps.c: what a plan depends on and whether its result may be stored */
typedef struct QueryDeps
{
	bool cacheable;
	char *reason;				 /* why not cacheable, for cache_status() */
	List *reasons;				 /* every reason, first one first */
	bool role_dependent;		 /* key must include the current role */
	bool session_user_dependent; /* ... and the session user */
	List *relids;				 /* sorted OIDs of every relation read */
	List *funcids;				 /* every function the plan calls, once each
								 * (EXECUTE is checked on these on a hit) */
	List *opaque_funcids;		 /* user functions whose reads are unseen: the
								 * call bypasses unless it names what they
								 * read (cache_opts(depends_on => ...)), and
								 * then role and settings go into the key */
	bool settings_dependent;	 /* the result may depend on settings that
									 * are not in the fixed keyed list: every
									 * setting goes into the key */
	List *implicit_funcids;		 /* user functions the plan calls without
									 * an EXECUTE check (aggregate support,
									 * sort/hash operators, I/O, ...): their
									 * definitions belong in the definition
									 * hash too */
} QueryDeps;

extern void AnalyzePlannedStmt(PlannedStmt *stmt, QueryDeps *deps);

/* deps.c: top-level equalities that can narrow a dependency to key values */
typedef struct KeyEquality
{
	Index rtindex; /* in the top-level range table */
	Oid relid;
	char *colname;
	Oid coltype;
	Oid valtype; /* of the constants, or the parameter's (element) */
	int nconsts; /* constants (column = c, column IN (...)) */
	Datum *consts;
	int paramid; /* or a parameter (column = $n, = ANY($n)) */
	bool param_is_array;
} KeyEquality;

extern List *FindKeyEqualities(Query *q, List **inner_relids);

#endif /* CACHE_EXT_H */

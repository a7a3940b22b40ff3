/*-------------------------------------------------------------------------
 *
 * stats.c
 *	  Counters of hits, misses, bypasses, errors, bytes and time, and the
 *	  SQL functions behind the cache_stats view; cache_query_stats, per
 *	  query text.  cache_health() is health.c's.
 *
 * Ownership: when cache_ext is in shared_preload_libraries, the counters
 * live in shared memory (one struct, created by the postmaster) and are
 * atomics, so no lock is needed to add to them; reset stores zeroes, which
 * can race with concurrent adds (a few increments may survive a reset, as
 * with pg_stat_statements' counters).  When the library is loaded later,
 * the counters are this backend's own, and cache_stats says so.
 *
 * Locking, field by field:
 *	 CacheStatsShared: counters[] and reset_time are atomics, each read and
 *	   written alone, with no lock; no reader needs two of them to agree.
 *	 QueryStatsShared and its hash table: see "cache_query_stats" below
 *	   (an LWLock for the table, a spinlock per entry for its counters, a
 *	   second LWLock that lets one backend at a time evict).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/guc.h"

#include "access/htup_details.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "mb/pg_wchar.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/fmgrprotos.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "catalog/pg_type.h"
#include "portability/instr_time.h"
#include "utils/timestamp.h"

#include "cache_ext.h"
#include "flight.h"
#include "l1.h"
#include "store/store.h"
#include "invalidate.h"

/* Every field is an atomic, read and written alone: no lock. */
typedef struct CacheStatsShared
{
	pg_atomic_uint64 counters[CS_NUM_COUNTERS];
	pg_atomic_uint64 reset_time; /* TimestampTz */
} CacheStatsShared;

static CacheStatsShared *shared_stats = NULL;
static CacheStatsShared local_stats;
static bool local_initialized = false;

void
CacheStatsShmemRequest(void)
{
	RequestAddinShmemSpace(MAXALIGN(sizeof(CacheStatsShared)));
}

/* Called from the shmem_startup_hook, with AddinShmemInitLock held. */
void
CacheStatsShmemInit(void)
{
	bool found;

	shared_stats = ShmemInitStruct("cache_ext stats", sizeof(CacheStatsShared),
								   &found);
	if (!found)
	{
		for (int i = 0; i < CS_NUM_COUNTERS; i++)
			pg_atomic_init_u64(&shared_stats->counters[i], 0);
		pg_atomic_init_u64(&shared_stats->reset_time, GetCurrentTimestamp());
	}
}

static CacheStatsShared *
stats(void)
{
	if (shared_stats)
		return shared_stats;
	if (!local_initialized)
	{
		for (int i = 0; i < CS_NUM_COUNTERS; i++)
			pg_atomic_init_u64(&local_stats.counters[i], 0);
		pg_atomic_init_u64(&local_stats.reset_time, GetCurrentTimestamp());
		local_initialized = true;
	}
	return &local_stats;
}

void
CacheStatsAdd(CacheStatCounter counter, uint64 amount)
{
	pg_atomic_fetch_add_u64(&stats()->counters[counter], amount);
}

PG_FUNCTION_INFO_V1(cache_stats);

/* One row: the counters, times in milliseconds, the reset time, and scope. */
Datum
cache_stats(PG_FUNCTION_ARGS)
{
	CacheStatsShared *s = stats();
	TupleDesc tupdesc;
	Datum values[CS_NUM_COUNTERS + 10];
	bool nulls[CS_NUM_COUNTERS + 10] = {0};
	int n = 0;
	L1Counts l1;
	FlightCounts fl;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	for (int i = 0; i < CS_NUM_COUNTERS; i++)
	{
		uint64 v = pg_atomic_read_u64(&s->counters[i]);

		if (i == CS_HIT_TIME_US || i == CS_MISS_TIME_US || i == CS_BYPASS_TIME_US)
			values[n++] = Float8GetDatum((double) v / 1000.0);
		else
			values[n++] = Int64GetDatum((int64) v);
	}
	values[n++] = Int64GetDatum(InvalPendingCount());
	values[n++] = TimestampTzGetDatum((TimestampTz) pg_atomic_read_u64(&s->reset_time));
	values[n++] = BoolGetDatum(shared_stats != NULL);
	/* the local tier's (0.5); 0 when it is off */
	L1GetCounts(&l1);
	values[n++] = Int64GetDatum(l1.hits);
	values[n++] = Int64GetDatum(l1.stores);
	values[n++] = Int64GetDatum(l1.evictions);
	values[n++] = Int64GetDatum(l1.bytes);
	/* single flight's (0.7) */
	FlightGetCounts(&fl);
	values[n++] = Int64GetDatum(fl.waits);
	values[n++] = Int64GetDatum(fl.wait_hits);
	values[n++] = Float8GetDatum(fl.wait_ms);
	Assert(n == tupdesc->natts);

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

PG_FUNCTION_INFO_V1(cache_stats_reset);

Datum
cache_stats_reset(PG_FUNCTION_ARGS)
{
	CacheStatsShared *s = stats();

	for (int i = 0; i < CS_NUM_COUNTERS; i++)
		pg_atomic_write_u64(&s->counters[i], 0);
	pg_atomic_write_u64(&s->reset_time, GetCurrentTimestamp());
	L1ResetCounts();
	FlightResetCounts();
	PG_RETURN_VOID();
}

/* ================================================================
 * cache_query_stats: per query text, in a bounded shared hash table
 * ================================================================
 *
 * Like pg_stat_statements: one entry per (database, query id), the query
 * id being a hash of the text.  The table holds at most
 * cache_ext.query_stats_max entries.  Nothing is kept when cache_ext is not
 * preloaded.
 *
 * Locking.  qs_shared->lock (an LWLock) guards the hash table itself, that
 * is which entries exist, and the fields of QueryStatsShared; shared mode
 * is enough to find an entry and update its counters (every call, hits
 * included, takes only that), exclusive mode adds or removes entries.  An
 * entry's key and query text are written once, when it is added under the
 * exclusive lock, and read under the lock in either mode.  Its counters
 * and usage are read and written under its own spinlock (mutex), with the
 * LWLock held in either mode.  qs_shared->evict_lock lets one backend at a
 * time evict; it is taken before the table's lock, never while holding it.
 *
 * Eviction.  Each entry has a usage that grows by one per call.  A backend
 * that must add an entry to a full table evicts the 5% of entries with the
 * lowest usage:
 *	 1. under the table's lock in shared mode, one pass decays every usage
 *		(x 0.99; x 0.5 for an entry called once, as pg_stat_statements
 *		decays its "sticky" entries faster, so that a flood of one-off texts
 *		cannot push out the queries in use) and copies each key and usage,
 *		O(n), while other calls go on;
 *	 2. with no lock, it sorts the copies by usage, O(n log n), and notes
 *		the median usage;
 *	 3. under the table's lock in exclusive mode, it removes the victims by
 *		key, O(victims), records the median and adds its own entry.
 * A new entry starts at the median usage of the last eviction (0 before
 * the first), so it ranks in the middle of the table rather than last: it
 * is not the next victim, yet, if it is not called again, it decays below
 * the entries in use within a few evictions.  Backends that need room while
 * one evicts wait for evict_lock (not for the table), then find room.
 */

#define QS_QUERY_LEN		1024 /* longest query text kept, in bytes */
#define QS_USAGE_DECAY		0.99 /* per eviction, for an entry called again */
#define QS_USAGE_DECAY_ONCE 0.50 /* per eviction, for one called once */

typedef struct QueryStatsKey
{
	Oid dbid;
	uint64 queryid;
} QueryStatsKey;

/*
 * key, query_len and query: written when the entry is added (table lock
 * exclusive), constant after.  Everything from calls on, including usage:
 * under mutex.
 */
typedef struct QueryStatsEntry
{
	QueryStatsKey key;
	slock_t mutex;
	double usage; /* eviction rank: see above */
	int64 calls;
	int64 hits;
	int64 misses;
	int64 bypasses;
	int64 bypass_by[QS_NUM_REASONS];
	int64 stores;
	int64 store_skipped;
	int64 invalidated;
	int64 bytes_stored;
	int64 bytes_read;
	double hit_ms; /* total */
	double max_hit_ms;
	double miss_ms; /* total */
	TimestampTz last_invalidation;
	int query_len;
	char query[QS_QUERY_LEN];
} QueryStatsEntry;

typedef struct QueryStatsShared
{
	LWLock *lock;			/* set at creation, constant */
	LWLock *evict_lock;		/* set at creation, constant */
	TimestampTz reset_time; /* lock */
	double median_usage;	/* lock: a new entry's usage */
} QueryStatsShared;

/* an entry's key and usage, copied to choose the victims */
typedef struct QueryStatsUsage
{
	QueryStatsKey key;
	double usage;
} QueryStatsUsage;

static QueryStatsShared *qs_shared = NULL;
static HTAB *qs_hash = NULL;

static const char *const qs_reason_names[QS_NUM_REASONS] = {
	"disabled", "not cacheable", "own writes", "isolation level",
	"untracked", "redis unavailable", "pending invalidations", "not preloaded"};

void
QueryStatsShmemRequest(void)
{
	RequestAddinShmemSpace(MAXALIGN(sizeof(QueryStatsShared)) +
						   hash_estimate_size(cache_ext_query_stats_max,
											  sizeof(QueryStatsEntry)));
	RequestNamedLWLockTranche("cache_ext query stats", 2);
}

void
QueryStatsShmemInit(void)
{
	bool found;
	HASHCTL info;

	qs_shared = ShmemInitStruct("cache_ext query stats", sizeof(QueryStatsShared),
								&found);
	if (!found)
	{
		LWLockPadded *locks = GetNamedLWLockTranche("cache_ext query stats");

		qs_shared->lock = &locks[0].lock;
		qs_shared->evict_lock = &locks[1].lock;
		qs_shared->reset_time = GetCurrentTimestamp();
		qs_shared->median_usage = 0;
	}
	info.keysize = sizeof(QueryStatsKey);
	info.entrysize = sizeof(QueryStatsEntry);
	qs_hash = ShmemInitHash("cache_ext query stats hash",
							cache_ext_query_stats_max, cache_ext_query_stats_max,
							&info, HASH_ELEM | HASH_BLOBS);
}

static int
cmp_usage(const void *a, const void *b)
{
	double x = ((const QueryStatsUsage *) a)->usage;
	double y = ((const QueryStatsUsage *) b)->usage;

	return (x > y) - (x < y);
}

/*
 * Steps 1 and 2 of an eviction (see the banner), with evict_lock held and
 * the table's lock not held: decay every usage and choose the victims.
 * Fills u (room for cache_ext.query_stats_max copies: the table never
 * holds more) sorted by usage, the victims first (*nvictims of them), and
 * the median usage.  False when the table is no longer full (another
 * backend evicted while this one waited for evict_lock).  Raises no error:
 * evict_lock may be held across it.
 */
static bool
qs_choose_victims(QueryStatsUsage *u, int *nvictims, double *median)
{
	HASH_SEQ_STATUS seq;
	QueryStatsEntry *e;
	long size = cache_ext_query_stats_max;
	long n = 0;

	LWLockAcquire(qs_shared->lock, LW_SHARED);
	if (hash_get_num_entries(qs_hash) < cache_ext_query_stats_max)
	{
		LWLockRelease(qs_shared->lock);
		return false;
	}
	hash_seq_init(&seq, qs_hash);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		if (n == size)
		{
			hash_seq_term(&seq);
			break;
		}
		SpinLockAcquire(&e->mutex);
		e->usage *= e->calls > 1 ? QS_USAGE_DECAY : QS_USAGE_DECAY_ONCE;
		u[n].usage = e->usage;
		SpinLockRelease(&e->mutex);
		u[n].key = e->key;
		n++;
	}
	LWLockRelease(qs_shared->lock);
	if (n == 0)
		return false;

	qsort(u, n, sizeof(QueryStatsUsage), cmp_usage);
	*nvictims = Max(1, n / 20);
	*median = u[n / 2].usage;
	return true;
}

/*
 * The entry for key, added if need be (evicting when the table is full),
 * with the table's lock held in exclusive mode; or NULL, with no lock held,
 * when there is no room (shared memory ran out).
 */
static QueryStatsEntry *
qs_enter(const QueryStatsKey *key, const char *query)
{
	QueryStatsEntry *e;
	bool found;

	LWLockAcquire(qs_shared->lock, LW_EXCLUSIVE);
	if (hash_get_num_entries(qs_hash) >= cache_ext_query_stats_max &&
		hash_search(qs_hash, key, HASH_FIND, NULL) == NULL)
	{
		QueryStatsUsage *u;
		int nvictims = 0;
		double median = 0;
		bool evict;

		LWLockRelease(qs_shared->lock);
		u = palloc(sizeof(QueryStatsUsage) * cache_ext_query_stats_max);
		LWLockAcquire(qs_shared->evict_lock, LW_EXCLUSIVE);
		evict = qs_choose_victims(u, &nvictims, &median);
		LWLockAcquire(qs_shared->lock, LW_EXCLUSIVE);
		/* a reset meanwhile empties the table: no victims then */
		if (evict && hash_get_num_entries(qs_hash) >= cache_ext_query_stats_max)
		{
			for (int i = 0; i < nvictims; i++)
				hash_search(qs_hash, &u[i].key, HASH_REMOVE, NULL);
			qs_shared->median_usage = median;
		}
		LWLockRelease(qs_shared->evict_lock);
		pfree(u);
	}

	e = hash_search(qs_hash, key, HASH_FIND, NULL);
	if (e == NULL && hash_get_num_entries(qs_hash) < cache_ext_query_stats_max)
	{
		e = hash_search(qs_hash, key, HASH_ENTER_NULL, &found);
		if (e != NULL && !found)
		{
			size_t len = strlen(query);

			memset((char *) e + sizeof(QueryStatsKey), 0,
				   sizeof(QueryStatsEntry) - sizeof(QueryStatsKey));
			SpinLockInit(&e->mutex);
			e->usage = qs_shared->median_usage;
			if (len >= QS_QUERY_LEN)
				len = pg_mbcliplen(query, len, QS_QUERY_LEN - 1);
			memcpy(e->query, query, len);
			e->query[len] = '\0';
			e->query_len = len;
		}
	}
	if (e == NULL)
		LWLockRelease(qs_shared->lock);
	return e;
}

/*
 * Count one call of the query (the hit path too): the table's lock in
 * shared mode and the entry's spinlock, unless the entry must be added.
 */
void
QueryStatsRecord(uint64 queryid, const char *query, const QueryStatsCall *c)
{
	QueryStatsKey key;
	QueryStatsEntry *e;

	if (qs_hash == NULL || !cache_ext_query_stats)
		return;
	memset(&key, 0, sizeof(key));
	key.dbid = MyDatabaseId;
	key.queryid = queryid;

	LWLockAcquire(qs_shared->lock, LW_SHARED);
	e = hash_search(qs_hash, &key, HASH_FIND, NULL);
	if (e == NULL)
	{
		LWLockRelease(qs_shared->lock);
		e = qs_enter(&key, query);
		if (e == NULL)
			return;
	}

	SpinLockAcquire(&e->mutex);
	e->calls++;
	e->usage += 1.0;
	switch (c->outcome)
	{
		case QS_HIT:
			e->hits++;
			e->hit_ms += c->ms;
			if (c->ms > e->max_hit_ms)
				e->max_hit_ms = c->ms;
			break;
		case QS_MISS:
			e->misses++;
			e->miss_ms += c->ms;
			break;
		case QS_BYPASS:
			e->bypasses++;
			e->bypass_by[c->reason]++;
			break;
	}
	if (c->stored)
		e->stores++;
	if (c->store_skipped)
		e->store_skipped++;
	if (c->invalidated)
	{
		e->invalidated++;
		e->last_invalidation = GetCurrentTimestamp();
	}
	e->bytes_stored += c->bytes_stored;
	e->bytes_read += c->bytes_read;
	SpinLockRelease(&e->mutex);
	LWLockRelease(qs_shared->lock);
}

/*
 * The mean time of the misses of queryid in this database (what running it
 * costs, about): false when query stats are off or it has no miss counted.
 * The local tier values an entry copied from a Redis hit with it.
 */
bool
QueryStatsMeanMissMs(uint64 queryid, double *ms)
{
	QueryStatsKey key;
	QueryStatsEntry *e;
	bool found = false;

	if (qs_hash == NULL || !cache_ext_query_stats)
		return false;
	memset(&key, 0, sizeof(key));
	key.dbid = MyDatabaseId;
	key.queryid = queryid;
	LWLockAcquire(qs_shared->lock, LW_SHARED);
	e = hash_search(qs_hash, &key, HASH_FIND, NULL);
	if (e != NULL)
	{
		SpinLockAcquire(&e->mutex);
		if (e->misses > 0)
		{
			*ms = e->miss_ms / e->misses;
			found = true;
		}
		SpinLockRelease(&e->mutex);
	}
	LWLockRelease(qs_shared->lock);
	return found;
}

PG_FUNCTION_INFO_V1(cache_query_stats);
PG_FUNCTION_INFO_V1(cache_query_stats_reset);

Datum
cache_query_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	HASH_SEQ_STATUS seq;
	QueryStatsEntry *e;

	InitMaterializedSRF(fcinfo, 0);
	if (qs_hash == NULL)
	{
		/* an empty view would read as "no calls yet" */
		ereport(NOTICE,
				(errmsg("cache_query_stats is empty: cache_ext is not in shared_preload_libraries"),
				 errdetail("The statistics per query are kept in shared memory."),
				 errhint("Add cache_ext to shared_preload_libraries.")));
		return (Datum) 0;
	}

	LWLockAcquire(qs_shared->lock, LW_SHARED);
	hash_seq_init(&seq, qs_hash);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		Datum values[18];
		bool nulls[18] = {0};
		QueryStatsEntry c;
		StringInfoData reasons;
		int n = 0;

		SpinLockAcquire(&e->mutex);
		memcpy(&c, e, sizeof(c));
		SpinLockRelease(&e->mutex);

		initStringInfo(&reasons);
		appendStringInfoChar(&reasons, '{');
		for (int i = 0; i < QS_NUM_REASONS; i++)
			if (c.bypass_by[i] > 0)
				appendStringInfo(&reasons, "%s\"%s\": " INT64_FORMAT,
								 reasons.len > 1 ? ", " : "",
								 qs_reason_names[i], c.bypass_by[i]);
		appendStringInfoChar(&reasons, '}');

		values[n++] = ObjectIdGetDatum(c.key.dbid);
		values[n++] = Int64GetDatum((int64) c.key.queryid);
		values[n++] = CStringGetTextDatum(c.query);
		values[n++] = Int64GetDatum(c.calls);
		values[n++] = Int64GetDatum(c.hits);
		values[n++] = Int64GetDatum(c.misses);
		values[n++] = Int64GetDatum(c.bypasses);
		values[n++] = DirectFunctionCall1(jsonb_in, CStringGetDatum(reasons.data));
		values[n++] = Int64GetDatum(c.stores);
		values[n++] = Int64GetDatum(c.store_skipped);
		values[n++] = Int64GetDatum(c.invalidated);
		values[n++] = Int64GetDatum(c.bytes_stored);
		values[n++] = Int64GetDatum(c.bytes_read);
		values[n] = Float8GetDatum(c.hits ? c.hit_ms / c.hits : 0);
		nulls[n++] = c.hits == 0;
		values[n++] = Float8GetDatum(c.max_hit_ms);
		values[n] = Float8GetDatum(c.misses ? c.miss_ms / c.misses : 0);
		nulls[n++] = c.misses == 0;
		/* what the hits would have cost as misses, less what they cost */
		values[n++] = Float8GetDatum(c.misses ? c.hits * (c.miss_ms / c.misses) - c.hit_ms : 0);
		values[n] = TimestampTzGetDatum(c.last_invalidation);
		nulls[n++] = c.last_invalidation == 0;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	LWLockRelease(qs_shared->lock);
	return (Datum) 0;
}

Datum
cache_query_stats_reset(PG_FUNCTION_ARGS)
{
	HASH_SEQ_STATUS seq;
	QueryStatsEntry *e;

	if (qs_hash == NULL)
		PG_RETURN_VOID();
	LWLockAcquire(qs_shared->lock, LW_EXCLUSIVE);
	hash_seq_init(&seq, qs_hash);
	while ((e = hash_seq_search(&seq)) != NULL)
		hash_search(qs_hash, &e->key, HASH_REMOVE, NULL);
	qs_shared->reset_time = GetCurrentTimestamp();
	qs_shared->median_usage = 0;
	LWLockRelease(qs_shared->lock);
	PG_RETURN_VOID();
}


bool cache_ext_query_stats = true;
int cache_ext_query_stats_max = 1000;

/* The settings of cache_query_stats. */
void
StatsDefineGucs(void)
{
	DefineCustomBoolVariable("cache_ext.query_stats",
							 "Collect per-query statistics (the cache_query_stats view).",
							 NULL,
							 &cache_ext_query_stats,
							 true,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("cache_ext.query_stats_max",
							"Most queries cache_query_stats keeps; those of lowest usage are evicted.",
							NULL,
							&cache_ext_query_stats_max,
							1000, 100, 100000,
							CE_PGC_POSTMASTER, 0,
							NULL, NULL, NULL);
}

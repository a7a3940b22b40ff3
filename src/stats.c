/*-------------------------------------------------------------------------
 *
 * stats.c
 *	  Counters of hits, misses, bypasses, errors, bytes and time, and the
 *	  SQL functions behind the cache_stats view.
 *
 * Ownership: when cache_ext is in shared_preload_libraries, the counters
 * live in shared memory (one struct, created by the postmaster) and are
 * atomics, so no lock is needed to add to them; reset stores zeroes, which
 * can race with concurrent adds (a few increments may survive a reset, as
 * with pg_stat_statements' counters).  When the library is loaded later,
 * the counters are this backend's own, and cache_stats says so.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "cache_ext.h"
#include "invalidate.h"

typedef struct CacheStatsShared
{
	pg_atomic_uint64 counters[CS_NUM_COUNTERS];
	pg_atomic_uint64 reset_time;	/* TimestampTz */
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
	bool		found;

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
	TupleDesc	tupdesc;
	Datum		values[CS_NUM_COUNTERS + 3];
	bool		nulls[CS_NUM_COUNTERS + 3] = {0};
	int			n = 0;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	for (int i = 0; i < CS_NUM_COUNTERS; i++)
	{
		uint64		v = pg_atomic_read_u64(&s->counters[i]);

		if (i == CS_HIT_TIME_US || i == CS_MISS_TIME_US || i == CS_BYPASS_TIME_US)
			values[n++] = Float8GetDatum((double) v / 1000.0);
		else
			values[n++] = Int64GetDatum((int64) v);
	}
	values[n++] = Int64GetDatum(InvalPendingCount());
	values[n++] = TimestampTzGetDatum((TimestampTz) pg_atomic_read_u64(&s->reset_time));
	values[n++] = BoolGetDatum(shared_stats != NULL);
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
	PG_RETURN_VOID();
}

/*-------------------------------------------------------------------------
 *
 * health.c
 *	  cache_health(): one row on the state of the cache for this backend:
 *	  its connection and circuit breaker, a PING's round trip, what Redis
 *	  says of itself (INFO, through the store's StoreGetHealth), the
 *	  outbox, the local tier, and warnings about settings that endanger
 *	  correctness or the cache.
 *
 * No state of its own.
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
#include "store/store.h"
#include "invalidate.h"
#include "l1.h"
#include "outbox.h"

static Datum
int8_or_null(const char *s, bool *isnull)
{
	char *end;
	long long v;

	*isnull = true;
	if (s == NULL)
		return (Datum) 0;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s)
		return (Datum) 0;
	*isnull = false;
	return Int64GetDatum((int64) v);
}

PG_FUNCTION_INFO_V1(cache_health);

/*
 * cache_health's columns 20..23: how Redis is reached, the master last
 * connected to (NULL until known) and the failovers seen there.
 */
static void
set_identity(Datum *values, bool *nulls)
{
	char *addr;
	int64 failovers;
	TimestampTz last;

	InvalRedisIdentity(&addr, &failovers, &last);
	values[20] = CStringGetTextDatum(StoreMode());
	nulls[20] = false;
	if (addr[0] != '\0')
	{
		values[21] = CStringGetTextDatum(addr);
		nulls[21] = false;
	}
	values[22] = Int64GetDatum(failovers);
	nulls[22] = false;
	if (last != 0)
	{
		values[23] = TimestampTzGetDatum(last);
		nulls[23] = false;
	}
}

/*
 * One row: this backend's connection and breaker, a PING's round trip,
 * what Redis says of itself (INFO), the outbox, and warnings about
 * settings that endanger correctness or the cache.
 */
Datum
cache_health(PG_FUNCTION_ARGS)
{
	TupleDesc tupdesc;
	Datum values[24];
	bool nulls[24];
	StoreHealth h;
	List *warnings = NIL;
	L1Counts l1;
	const char *l1_state;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	memset(nulls, true, sizeof(nulls));

	StoreGetHealth(&h);
	if (h.info_refused)
		warnings = lappend(warnings,
						   psprintf("INFO refused (%s): no hits are served from this Redis, since a restart or failover behind its address could not be seen; grant the cache_ext ACL user +info",
									h.info_refused));

	values[0] = BoolGetDatum(h.connected);
	nulls[0] = false;
	values[1] = CStringGetTextDatum(h.breaker_open ? "open" : "closed");
	nulls[1] = false;
	values[2] = Int32GetDatum(h.breaker_remaining_ms);
	nulls[2] = false;
	/* the last failure; else why Redis cannot be used */
	if (h.last_error != NULL)
	{
		values[3] = CStringGetTextDatum(h.last_error);
		nulls[3] = false;
	}
	if (h.rtt_ms >= 0)
	{
		values[4] = Float8GetDatum(h.rtt_ms);
		nulls[4] = false;
	}
	if (h.has_info)
	{
		char *role = h.role;
		char *policy = h.maxmemory_policy;

		if (h.version)
		{
			values[5] = CStringGetTextDatum(h.version);
			nulls[5] = false;
		}
		if (role)
		{
			values[6] = CStringGetTextDatum(role);
			nulls[6] = false;
		}
		values[7] = int8_or_null(h.used_memory, &nulls[7]);
		values[8] = int8_or_null(h.maxmemory, &nulls[8]);
		if (policy)
		{
			values[9] = CStringGetTextDatum(policy);
			nulls[9] = false;
			if (strncmp(policy, "allkeys-", 8) == 0)
				warnings = lappend(warnings,
								   psprintf("maxmemory-policy %s can evict generation keys, which empties the cache of their scope; use volatile-lru", policy));
			else if (strcmp(policy, "noeviction") == 0)
				warnings = lappend(warnings,
								   pstrdup("maxmemory-policy noeviction: a full Redis refuses invalidations and hits stop; use volatile-lru"));
		}
		if (h.maxmemory && strcmp(h.maxmemory, "0") == 0)
			warnings = lappend(warnings,
							   pstrdup("maxmemory is 0 (unlimited): entries are only removed when their TTL expires"));
		if (h.aof_enabled && strcmp(h.aof_enabled, "1") == 0)
			warnings = lappend(warnings,
							   pstrdup("Redis persistence (AOF) is on: not needed for a cache; a restart from old data makes cache_ext invalidate everything"));
		values[10] = int8_or_null(h.evicted_keys, &nulls[10]);
		values[11] = int8_or_null(h.expired_keys, &nulls[11]);
		if (role && strcmp(role, "master") != 0)
			warnings = lappend(warnings,
							   psprintf("Redis role is %s: a replica refuses writes, so invalidations cannot be delivered", role));
	}
	l1_state = L1State(&l1);
	if (cache_ext_local_cache_size > 0 && strcmp(l1_state, "on") != 0)
		warnings = lappend(warnings,
						   psprintf("cache_ext.local_cache_size is set but the local tier is %s", l1_state));
	values[12] = Int32GetDatum(InvalOutboxDepth());
	nulls[12] = false;
	values[13] = Int64GetDatum(InvalPendingCount());
	nulls[13] = false;
	{
		Datum *w = palloc(sizeof(Datum) * Max(list_length(warnings), 1));
		int i = 0;
		ListCell *lc;

		foreach(lc, warnings)
			w[i++] = CStringGetTextDatum((char *) lfirst(lc));
		values[14] = PointerGetDatum(construct_array(w, i, TEXTOID, -1, false, TYPALIGN_INT));
		nulls[14] = false;
	}
	if (h.last_error_kind != NULL)
	{
		values[15] = CStringGetTextDatum(h.last_error_kind);
		nulls[15] = false;
	}
	values[16] = CStringGetTextDatum(l1_state);
	nulls[16] = false;
	if (strcmp(l1_state, "on") == 0)
	{
		values[17] = Int64GetDatum(l1.capacity);
		values[18] = Int64GetDatum(l1.bytes);
		values[19] = Int64GetDatum(l1.entries);
		nulls[17] = nulls[18] = nulls[19] = false;
	}
	set_identity(values, nulls);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

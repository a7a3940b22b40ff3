/*-------------------------------------------------------------------------
 *
 * lookup.c
 *	  The cache as the call pipeline sees it: look an entry up with its
 *	  generations and decode it, initialise missing generations, store an
 *	  entry, delete one, verify a hit (cache_ext.verify_rate), and the
 *	  entry part of cache_explain.
 *
 * State (backend-local): the size of the entry the last hit decoded.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/transam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "access/xlogrecovery.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_language.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/tstoreReceiver.h"
#include "common/hashfn.h"
#include "common/pg_prng.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "parser/parse_coerce.h"
#include "portability/instr_time.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "catalog/pg_inherits.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/guc_tables.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/plancache.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/typcache.h"
#include "tsearch/ts_cache.h"
#include "executor/functions.h"
#include "optimizer/optimizer.h"
#include "parser/analyze.h"

#include "cache_ext.h"
#include "commitq.h"
#include "entry.h"
#include "entry_pack.h"
#include "invalidate.h"
#include "keys.h"
#include "l1.h"
#include "call.h"
#include "outbox.h"
#include "store/store.h"
#include "store/store_chunks.h"

/* the size of the entry the last hit decoded, for cache_query_stats */
static int64 last_entry_bytes = 0;

/* the creation time in the header of the last entry a lookup served */
static TimestampTz last_entry_created_at = 0;

/* ---- keys ---- */

/* ---- running the query ---- */

/* ---- the cache ---- */

/* What decode_entry needs, for the store's lookup to call it. */
typedef struct LookupDecode
{
	const char *rkey;
	const uint8 *hash;
	PreparedQuery *pq;
	EntryGens *gens;
	Tuplestorestate *ts;
	const char **problem; /* EntryLoad's / EntryOpen's why */
	StringInfo keep;	  /* NULL, or receives a valid entry's bytes */
	bool for_explain;	  /* delete nothing */
	bool chunked;		  /* out: the entry was joined from chunks (head) */
	bool dropped;		  /* out: a bad chunked entry, already deleted */
	char head[CE_CHUNK_HEAD_LEN];
	size_t stored_bytes; /* out: what the entry takes in Redis */
	uint8 method;		 /* out: its compression (CE_PACK_*) */
} LookupDecode;

/*
 * The CRC-32C of the generations section an entry computed under gens
 * would hold (CeChunkHead.gens_crc) into *crc, and crc; NULL when a value
 * is unknown.
 */
static const uint32 *
gens_checksum(const EntryGens *gens, uint32 *crc)
{
	uint32 c = CeGensChecksumInit();

	for (int i = 0; i < gens->n; i++)
	{
		if (gens->vals[i] == NULL || gens->lens[i] < 1 || gens->lens[i] > 255)
			return NULL;
		c = CeGensChecksumAdd(c, (const uint8 *) gens->vals[i], (uint8) gens->lens[i]);
	}
	*crc = CeGensChecksumEnd(c);
	return crc;
}

/*
 * The store's StoreDecodeFn for lookup and explain_entry: join the chunks
 * of a chunked entry, open the entry (authenticated, when sealed),
 * decompress it, and decode it into ts if its generations are the current
 * ones.  Returns an EntryDecodeResult, or ENTRY_FETCH_FAILED.
 */
static int
decode_entry(char *raw, size_t len, void *arg)
{
	LookupDecode *d = (LookupDecode *) arg;
	char *joined = NULL;
	char *data;
	size_t dlen = len;
	EntryDecodeResult r;
	uint32 gens_crc;

	d->stored_bytes = len;
	if (CeIsChunkHead((const uint8 *) raw, len))
	{
		StoreChunksResult cr;

		memcpy(d->head, raw, Min(len, sizeof(d->head)));
		cr = StoreReadChunks(d->rkey, raw, len,
							 (size_t) cache_ext_max_entry_size + CE_SEALED_OVERHEAD,
							 gens_checksum(d->gens, &gens_crc),
							 !d->for_explain, &joined, &dlen, d->problem);
		if (cr == STORE_CHUNKS_DOWN)
			return ENTRY_FETCH_FAILED;
		if (cr == STORE_CHUNKS_STALE)
			return ENTRY_STALE;
		/* a bad head or chunk: StoreReadChunks deleted them (unless explain) */
		d->chunked = false;
		d->dropped = !d->for_explain;
		if (cr != STORE_CHUNKS_OK)
			return ENTRY_CORRUPT;
		d->chunked = true;
		d->dropped = false;
		d->stored_bytes = dlen;
	}
	data = EntryFromStored(joined ? joined : raw, joined ? dlen : len,
						   joined != NULL, d->rkey,
						   (size_t) cache_ext_max_entry_size, &dlen,
						   d->problem, &d->method);
	if (data == NULL)
		return ENTRY_CORRUPT;
	r = EntryLoad(data, dlen, d->hash, d->gens,
				  d->pq->resultdesc->natts, d->pq->codecs,
				  d->pq->resultdesc, d->pq->decode_in_subxact,
				  d->ts, d->problem);
	/* (EntryLoad checked the header: created_at is at its fixed place) */
	if (r == ENTRY_VALID)
		memcpy(&last_entry_created_at, data + CE_CREATED_AT_OFFSET,
			   sizeof(last_entry_created_at));
	/* the opened bytes, for the local tier */
	if (r == ENTRY_VALID && d->keep != NULL)
		appendBinaryStringInfo(d->keep, data, dlen);
	if (data != raw)
		pfree(data);
	return r;
}

/*
 * Initialise the generations that do not exist yet with fresh values (a
 * missing generation means unknown, never fresh), then read them back:
 * another session may have set one first.  Returns false if Redis failed.
 */
static bool
init_generations(CallScopes *cs, EntryGens *gens)
{
	int nmissing = 0;
	int *which;
	char value[33];

	which = palloc(sizeof(int) * cs->n);
	for (int i = 0; i < cs->n; i++)
		if (gens->vals[i] == NULL)
			which[nmissing++] = i;
	InvalFreshValue(value);
	return StoreInitGenerations(cs->keys, which, nmissing, value,
								gens->vals, gens->lens);
}

/* Delete an entry, best effort (a failure is the client's to report). */
static void
delete_entry(const char *rkey)
{
	StoreDeleteEntry(rkey);
}

/*
 * cache_ext.verify_rate: run the query of a hit directly and compare (as
 * multisets: a query without ORDER BY may return its rows in another
 * order).  On a difference, count and log it, delete the entry and put the
 * direct rows in ts.  Returns true when they matched.
 */
bool
verify_hit(PreparedQuery *pq, const CallParams *params, Tuplestorestate *ts,
		   TupleDesc desc, const char *rkey, const CallScopes *cs)
{
	Tuplestorestate *direct = tuplestore_begin_heap(false, false, work_mem);
	char **a;
	char **b;
	int64 na;
	int64 nb;
	bool same;

	run_query(pq, params, direct, NULL);
	a = rows_as_sorted_text(ts, desc, &na);
	b = rows_as_sorted_text(direct, desc, &nb);
	same = na == nb;
	for (int64 i = 0; same && i < na; i++)
		same = strcmp(a[i], b[i]) == 0;
	CacheStatsAdd(CS_VERIFIED, 1);
	if (!same)
	{
		StringInfoData scopes;
		TupleTableSlot *slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);

		initStringInfo(&scopes);
		for (int i = 0; i < cs->n; i++)
			appendStringInfo(&scopes, "%s%s", i ? ", " : "", cs->keys[i]);
		CacheStatsAdd(CS_VERIFY_MISMATCHES, 1);
		ereport(LOG,
				(errmsg("cache_ext: a stored result differed from the direct result of its query"),
				 errdetail_internal("Query id " INT64_FORMAT ", key %s, " INT64_FORMAT " stored rows, " INT64_FORMAT " direct rows, scopes: %s.",
									(int64) pq->queryid, rkey, na, nb, scopes.data),
				 errhint("The entry was deleted and the direct result returned. Please report this as a bug of cache_ext.")));
		delete_entry(rkey);
		tuplestore_clear(ts);
		tuplestore_rescan(direct);
		while (tuplestore_gettupleslot(direct, true, false, slot))
			tuplestore_puttupleslot(ts, slot);
		ExecDropSingleTupleTableSlot(slot);
	}
	tuplestore_end(direct);
	return same;
}

/*
 * A Redis server that does not say its run_id serves no hits (outbox.h,
 * InvalRedisBlind): true when this lookup should not even ask it.  Once
 * per retry_interval (at least a second) the connection is dropped and
 * the lookup goes ahead, so that a new connection asks INFO again (its
 * ACL may have changed).
 */
static bool
redis_blind_skip(void)
{
	static TimestampTz next_probe = 0;
	TimestampTz now;

	if (!InvalRedisBlind())
		return false;
	now = GetCurrentTimestamp();
	if (now < next_probe)
		return true;
	next_probe = TimestampTzPlusMilliseconds(now, Max(cache_ext_retry_interval, 1000));
	StoreDropConnection();
	return false;
}

/*
 * Fetch the entry and the current values of its generations in one round
 * trip.  On a hit the rows are in ts.  gens receives the current values
 * (for storing a new entry: they were read before its query runs); *gens_ok
 * is false when they are not usable.  A corrupt entry is counted and
 * deleted, and described in *corrupt.  On a hit, keep (when not NULL)
 * receives the entry's bytes, opened, for the local tier.
 *
 * Long because: the fences before the round trip (in-flight bumps on a
 * primary, the watermark on a standby, retried once), the round trip and
 * the verdict on its replies share one set of outputs, in this order.
 */
LookupOutcome
lookup(const char *rkey, const uint8 *hash, PreparedQuery *pq, CallScopes *cs,
	   Tuplestorestate *ts, EntryGens *gens, bool *gens_ok,
	   const char **corrupt, StringInfo keep)
{
	LookupDecode d;
	StoreLookup sl;
	LookupOutcome outcome = LOOKUP_MISS;
	uint64 epoch = InvalEpoch();
	XLogRecPtr replay = InvalidXLogRecPtr;
	char *mark_key = NULL;

	*corrupt = NULL;
	*gens_ok = true;
	gens->n = cs->n;
	gens->vals = palloc0(sizeof(char *) * cs->n);
	gens->lens = palloc0(sizeof(size_t) * cs->n);
	d.rkey = rkey;
	d.hash = hash;
	d.pq = pq;
	d.gens = gens;
	d.ts = ts;
	d.problem = corrupt;
	d.keep = keep;
	d.for_explain = false;
	d.dropped = false;
	d.chunked = false;
	d.stored_bytes = 0;
	d.method = CE_PACK_NONE;

	/*
	 * Commits that returned without waiting for Redis (commitq.c): on this
	 * server, wait until the bumps of this call's generations are in Redis
	 * before asking it; on a hot standby, read the primary's watermark
	 * first in the round trip and compare it with the replay position read
	 * before it.
	 */
	if (RecoveryInProgress())
	{
		/*
		 * The end of the record being replayed, not of the last one
		 * replayed: a commit is visible before its redo has finished.
		 */
		replay = GetCurrentReplayRecPtr(NULL);
		mark_key = CommitQueueMarkKey();
		if (mark_key == NULL)
			return LOOKUP_BLOCKED;
	}
	else if (!CommitQueueWaitDelivered(cs->keys, cs->n, CommitQueueWaitBudget()))
		return LOOKUP_IN_FLIGHT;
	if (redis_blind_skip())
		return LOOKUP_BLIND;

	for (int attempt = 0;; attempt++)
	{
		StoreLookupEntry(rkey, cs->keys, cs->n, (size_t) cache_ext_max_entry_size,
						 false, mark_key, gens->vals, gens->lens, decode_entry, &d,
						 &sl);
		if (sl.verdict == STORE_LOOKUP_DOWN)
			return LOOKUP_REDIS_DOWN;
		if (mark_key == NULL || CommitQueueWatermarkCovers(sl.has_mark, sl.mark, replay))
			break;
		tuplestore_clear(ts);

		/*
		 * The primary has not confirmed the WAL replayed before this call
		 * began: wait a little for its next watermark, then look up again
		 * (watermark first, against the same replay position).
		 */
		if (attempt > 0 || !CommitQueueAwaitMark(mark_key, replay, CommitQueueMarkBudget()))
			return LOOKUP_UNCONFIRMED;
		memset(gens->vals, 0, sizeof(char *) * cs->n);
		memset(gens->lens, 0, sizeof(size_t) * cs->n);
		*corrupt = NULL;
	}
	*gens_ok = sl.gens != STORE_GENS_INVALID;
	switch (sl.verdict)
	{
		case STORE_LOOKUP_DOWN:
		case STORE_LOOKUP_MISS:
			break;
		case STORE_LOOKUP_CORRUPT:
			*corrupt = sl.problem;
			break;
		case STORE_LOOKUP_STALE:
			outcome = LOOKUP_STALE; /* unknown generations: not valid */
			break;
		case STORE_LOOKUP_DECODE:
			switch ((EntryDecodeResult) sl.decoded)
			{
				case ENTRY_VALID:
					outcome = LOOKUP_HIT;
					pq->undecodable = 0;
					CacheStatsAdd(CS_BYTES_READ, d.stored_bytes);
					last_entry_bytes = d.stored_bytes;
					break;
				case ENTRY_STALE:
					outcome = LOOKUP_STALE;
					break;
				case ENTRY_UNDECODABLE:

					/*
					 * An authentic entry this row type cannot read back
					 * (*corrupt names the type): twice in a row, and the
					 * query is not stored by this backend any more (once
					 * could be an entry forged by Redis).
					 */
					if (++pq->undecodable >= 2 && pq->codec_problem == NULL)
						pq->codec_problem = MemoryContextStrdup(pq->analysis_cxt, *corrupt);
					break;
				case ENTRY_CORRUPT:
					break;
				default:
					/* not decoded: never a hit */
					outcome = LOOKUP_MISS;
					break;
			}
			break;
	}

	/*
	 * Redis failed while the chunks were read (ENTRY_FETCH_FAILED): it is
	 * down, as if the first round trip had failed; a miss would try to
	 * store into it and wait for it once more.
	 */
	if (sl.verdict == STORE_LOOKUP_DECODE && sl.decoded == ENTRY_FETCH_FAILED)
	{
		tuplestore_clear(ts);
		return LOOKUP_REDIS_DOWN;
	}
	if (*corrupt)
		outcome = LOOKUP_CORRUPT;

	if (outcome == LOOKUP_CORRUPT)
	{
		CacheStatsAdd(CS_CORRUPT, 1);
		tuplestore_clear(ts);
		if (d.chunked)
			StoreDeleteChunked(rkey, d.head, sizeof(d.head));
		else if (!d.dropped)
			delete_entry(rkey);
	}
	if (sl.gens == STORE_GENS_MISSING && !init_generations(cs, gens))
		*gens_ok = false;

	/*
	 * Checked after the round trip: a Redis restart noticed while connecting
	 * for it (by this backend or another), or a commit whose bumps failed,
	 * blocks this hit, even if the bump was delivered since.
	 */
	if (InvalHitsBlockedSince(epoch))
	{
		tuplestore_clear(ts);
		return LOOKUP_BLOCKED;
	}
	/* this round trip's connection may be the one that found it out */
	if (InvalRedisBlind())
	{
		tuplestore_clear(ts);
		return LOOKUP_BLIND;
	}
	return outcome;
}

/*
 * Store the entry: compressed and sealed as the settings say (entry_pack.c),
 * in chunks when longer than cache_ext.chunk_size.  Returns NULL when
 * Redis accepted it, else why not (for cache_status); *stored_len is what
 * it takes in Redis.  When it was compressed or sealed, w->buf.data is
 * freed (and set to NULL) as soon as that is done.
 */
char *
store(const char *rkey, EntryWriter *w, const CallOptions *opts,
	  size_t *stored_len)
{
	uint8 method;
	uint32 gens_crc = CeEntryGensChecksum((const uint8 *) w->buf.data,
										  w->buf.len);
	char *data = EntryStoredForm(w->buf.data, w->buf.len, rkey, stored_len,
								 &method);
	char *why;

	/* compressed or sealed: the encoded entry is not held beside it */
	if (data != w->buf.data)
	{
		pfree(w->buf.data);
		w->buf.data = NULL;
	}

	if (*stored_len > (size_t) cache_ext_chunk_size)
		why = StorePutChunked(rkey, data, *stored_len, opts->ttl_ms,
							  (size_t) cache_ext_chunk_size, gens_crc);
	else
		why = StorePutEntry(rkey, data, *stored_len, opts->ttl_ms);
	if (w->buf.data == NULL)
		pfree(data);
	return why;
}

/* ---- cache_explain ---- */

/*
 * The local tier's part of cache_explain, when it is configured: whether
 * this call's entry is in L1 and still valid there ("local":{...}), or why
 * L1 is off ("local":"off: ...").  Nothing when it is simply off.
 */
static void
explain_local(StringInfo buf, const uint8 *hash, CallScopes *cs)
{
	const char *why;
	L1Snapshot snap;
	bool valid;
	bool present;

	if (!L1Usable(&why))
	{
		if (why != NULL)
		{
			json_key(buf, "local");
			escape_json(buf, psprintf("off: %s", why));
			appendStringInfoChar(buf, ',');
		}
		return;
	}
	L1GenSlots(cs->keys, cs->n, &snap);
	present = L1Contains(hash, &snap, &valid);
	appendStringInfo(buf, "\"local\":{\"exists\":%s,\"valid\":%s},",
					 present ? "true" : "false", valid ? "true" : "false");
}

/*
 * What the stored entry of rkey looks like now, as a JSON object: whether
 * it exists, whether it decodes for this query, its size and remaining TTL;
 * before it, whether the local tier holds it.  Nothing is deleted or
 * stored.
 */
void
explain_entry(StringInfo buf, const char *rkey, const uint8 *hash,
			  PreparedQuery *pq, CallScopes *cs)
{
	const char *why = NULL;
	const char *problem = NULL;
	LookupDecode d;
	StoreLookup sl;
	EntryGens gens;
	Tuplestorestate *ts;

	explain_local(buf, hash, cs);
	if (!StoreUsable(&why))
	{
		json_key(buf, "redis");
		escape_json(buf, why);
		return;
	}
	gens.n = cs->n;
	gens.vals = palloc0(sizeof(char *) * cs->n);
	gens.lens = palloc0(sizeof(size_t) * cs->n);
	ts = tuplestore_begin_heap(false, false, work_mem);
	d.rkey = rkey;
	d.hash = hash;
	d.pq = pq;
	d.gens = &gens;
	d.ts = ts;
	d.problem = &problem;
	d.keep = NULL;
	d.for_explain = true;
	d.dropped = false;
	d.chunked = false;
	d.stored_bytes = 0;
	d.method = CE_PACK_NONE;

	/* the same lookup and verdict as cached_query's, with the TTL */
	/* what a call would see: after the bumps on their way (commitq.c) */
	if (!RecoveryInProgress())
		(void) CommitQueueWaitDelivered(cs->keys, cs->n, CommitQueueWaitBudget());
	StoreLookupEntry(rkey, cs->keys, cs->n, (size_t) cache_ext_max_entry_size,
					 true, NULL, gens.vals, gens.lens, decode_entry, &d, &sl);
	if (sl.verdict == STORE_LOOKUP_DOWN)
	{
		tuplestore_end(ts);
		json_key(buf, "redis");
		escape_json(buf, psprintf("unavailable (%s)", sl.error[0] ? sl.error : StoreLastError()));
		return;
	}

	json_key(buf, "entry");
	appendStringInfo(buf, "{\"exists\":%s",
					 sl.entry != STORE_ENTRY_ABSENT ? "true" : "false");
	if (sl.entry != STORE_ENTRY_ABSENT)
	{
		switch (sl.verdict)
		{
			case STORE_LOOKUP_DOWN:
			case STORE_LOOKUP_MISS:
				break;
			case STORE_LOOKUP_CORRUPT:
				problem = sl.problem;
				break;
			case STORE_LOOKUP_STALE:
				problem = sl.gens == STORE_GENS_MISSING ?
					"stale: a generation it depends on is unknown" :
					"stale: a generation it depends on holds a value cache_ext does not write";
				break;
			case STORE_LOOKUP_DECODE:
				switch ((EntryDecodeResult) sl.decoded)
				{
					case ENTRY_UNDECODABLE:
					case ENTRY_CORRUPT:
						break;
					case ENTRY_VALID:
						appendStringInfo(buf, ",\"rows\":" INT64_FORMAT,
										 tuplestore_tuple_count(ts));
						if (d.method != CE_PACK_NONE)
							appendStringInfo(buf, ",\"compression\":\"%s\"",
											 CePackName(d.method));
						break;
					case ENTRY_STALE:
						problem = "stale: invalidated since it was stored";
						break;
					default:
						problem = "not decoded";
						break;
				}
				break;
		}
		appendStringInfo(buf, ",\"valid\":%s", problem ? "false" : "true");
		if (problem)
		{
			appendStringInfoString(buf, ",\"problem\":");
			escape_json(buf, problem);
		}
		if (d.chunked)
			appendStringInfo(buf, ",\"bytes\":%zu,\"chunked\":true",
							 d.stored_bytes);
		else if (sl.entry == STORE_ENTRY_PRESENT || sl.entry == STORE_ENTRY_TOO_LARGE)
			appendStringInfo(buf, ",\"bytes\":%zu", sl.entry_bytes);
		if (sl.has_ttl)
			appendStringInfo(buf, ",\"ttl_ms\":" INT64_FORMAT, sl.ttl_ms);
	}
	appendStringInfoChar(buf, '}');
	tuplestore_end(ts);
}


/* The size of the entry the last hit decoded, for cache_query_stats. */
/*
 * The creation time (the storing server's clock) in the header of the
 * entry the last lookup served as a hit.
 */
TimestampTz
LookupLastEntryCreatedAt(void)
{
	return last_entry_created_at;
}

int64
LookupLastEntryBytes(void)
{
	return last_entry_bytes;
}

/*-------------------------------------------------------------------------
 *
 * query.c
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
#include "entry.h"
#include "invalidate.h"
#include "keys.h"
#include "call.h"
#include "redis/redis.h"

/* the size of the entry the last hit decoded, for cache_query_stats */
static int64 last_entry_bytes = 0;

/* ---- keys ---- */

/* ---- running the query ---- */

/* ---- the cache ---- */

/*
 * Initialise the generations that do not exist yet with fresh values (a
 * missing generation means unknown, never fresh), then read them back:
 * another session may have set one first.  Returns false if Redis failed.
 */
static bool
init_generations(CallScopes *cs, EntryGens *gens)
{
	RedisCommand *cmds;
	redisReply **replies;
	int			nmissing = 0;
	int			ncmds;
	int		   *which;
	char		value[33];
	bool		ok = true;

	which = palloc(sizeof(int) * cs->n);
	for (int i = 0; i < cs->n; i++)
		if (gens->vals[i] == NULL)
			which[nmissing++] = i;
	InvalFreshValue(value);

	ncmds = nmissing + 1;
	cmds = palloc(sizeof(RedisCommand) * ncmds);
	replies = palloc0(sizeof(redisReply *) * ncmds);
	for (int j = 0; j < nmissing; j++)
	{
		RedisCommandInit(&cmds[j], "SET");
		RedisCommandArgStr(&cmds[j], cs->keys[which[j]]);
		RedisCommandArg(&cmds[j], value, 32);
		RedisCommandArgStr(&cmds[j], "NX");
	}
	RedisCommandInit(&cmds[nmissing], "MGET");
	for (int j = 0; j < nmissing; j++)
		RedisCommandArgStr(&cmds[nmissing], cs->keys[which[j]]);
	if (!RedisExec(ncmds, cmds, replies, 64 * 1024))
		return false;
	{
		redisReply *r = replies[nmissing];

		if (r->type != REDIS_REPLY_ARRAY || r->elements != (size_t) nmissing)
			ok = false;
		for (int j = 0; ok && j < nmissing; j++)
		{
			redisReply *e = r->element[j];

			if (e->type != REDIS_REPLY_STRING || e->len < 1 || e->len > 255)
				ok = false;
			else
			{
				gens->vals[which[j]] = pnstrdup(e->str, e->len);
				gens->lens[which[j]] = e->len;
			}
		}
	}
	RedisFreeReplies(ncmds, replies);
	return ok;
}

/* Delete an entry, best effort (a failure is the client's to report). */
static void
delete_entry(const char *rkey)
{
	RedisCommand del;
	redisReply *r = NULL;

	RedisCommandInit(&del, "UNLINK");
	RedisCommandArgStr(&del, rkey);
	if (RedisExec(1, &del, &r, 1024))
		RedisFreeReplies(1, &r);
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
	char	  **a;
	char	  **b;
	int64		na;
	int64		nb;
	bool		same;

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
 * Fetch the entry and the current values of its generations in one round
 * trip.  On a hit the rows are in ts.  gens receives the current values
 * (for storing a new entry: they were read before its query runs); *gens_ok
 * is false when they are not usable.  A corrupt entry is counted and
 * deleted, and described in *corrupt.
 */
LookupOutcome
lookup(const char *rkey, const uint8 *hash, PreparedQuery *pq, CallScopes *cs,
	   Tuplestorestate *ts, EntryGens *gens, bool *gens_ok,
	   const char **corrupt)
{
	RedisCommand cmds[2];
	redisReply *replies[2] = {NULL, NULL};
	char		endbuf[16];
	volatile LookupOutcome outcome = LOOKUP_MISS;
	volatile bool missing = false;
	uint64		epoch = InvalEpoch();

	*corrupt = NULL;
	*gens_ok = true;
	gens->n = cs->n;
	gens->vals = palloc0(sizeof(char *) * cs->n);
	gens->lens = palloc0(sizeof(size_t) * cs->n);

	snprintf(endbuf, sizeof(endbuf), "%d", cache_ext_max_entry_size);
	RedisCommandInit(&cmds[0], "GETRANGE");
	RedisCommandArgStr(&cmds[0], rkey);
	RedisCommandArgStr(&cmds[0], "0");
	RedisCommandArgStr(&cmds[0], endbuf);
	RedisCommandInit(&cmds[1], "MGET");
	for (int i = 0; i < cs->n; i++)
		RedisCommandArgStr(&cmds[1], cs->keys[i]);

	if (!RedisExec(2, cmds, replies,
				   (size_t) cache_ext_max_entry_size + 1024 + 300 * (size_t) cs->n))
		return LOOKUP_REDIS_DOWN;

	PG_TRY();
	{
		redisReply *r = replies[0];
		redisReply *g = replies[1];

		if ((r->type == REDIS_REPLY_ERROR && strncmp(r->str, "WRONGTYPE", 9) != 0) ||
			g->type == REDIS_REPLY_ERROR)
		{
			/* the server is not serving (LOADING, NOAUTH, MISCONF, ...) */
			if (g->type == REDIS_REPLY_ERROR)
				RedisReportError(g->str, g->len);
			else
				RedisReportError(r->str, r->len);
			outcome = LOOKUP_REDIS_DOWN;
		}
		else
		{
			if (g->type != REDIS_REPLY_ARRAY || g->elements != (size_t) cs->n)
				*gens_ok = false;
			for (int i = 0; *gens_ok && i < cs->n; i++)
			{
				redisReply *e = g->element[i];

				if (e->type == REDIS_REPLY_NIL)
					missing = true;
				else if (e->type == REDIS_REPLY_STRING && e->len >= 1 && e->len <= 255)
				{
					gens->vals[i] = pnstrdup(e->str, e->len);
					gens->lens[i] = e->len;
				}
				else
					*gens_ok = false;	/* not a value cache_ext writes */
			}

			if (r->type == REDIS_REPLY_STRING && r->len == 0)
				outcome = LOOKUP_MISS;	/* no such key */
			else if (r->type != REDIS_REPLY_STRING)
				*corrupt = "unexpected reply type";
			else if (r->len > (size_t) cache_ext_max_entry_size)
				*corrupt = "entry larger than cache_ext.max_entry_size";
			else if (!*gens_ok || missing)
				outcome = LOOKUP_STALE; /* unknown generations: not valid */
			else
			{
				char	   *data = r->str;
				size_t		dlen = r->len;

				/* encrypted entries are opened (authenticated) first */
				if (KeyEncryptionOn() || EntryIsSealed(r->str, r->len))
					data = EntryOpen(r->str, r->len, rkey, &dlen, corrupt);
				if (data != NULL)
				switch (EntryLoad(data, dlen, hash, gens,
								  pq->resultdesc->natts, pq->codecs,
								  pq->resultdesc, pq->decode_in_subxact,
								  ts, corrupt))
				{
					case ENTRY_VALID:
						outcome = LOOKUP_HIT;
						pq->undecodable = 0;
						CacheStatsAdd(CS_BYTES_READ, r->len);
						last_entry_bytes = r->len;
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
				}
			}
			if (*corrupt)
				outcome = LOOKUP_CORRUPT;
		}
	}
	PG_FINALLY();
	{
		RedisFreeReplies(2, replies);
	}
	PG_END_TRY();

	if (outcome == LOOKUP_REDIS_DOWN)
		return outcome;
	if (outcome == LOOKUP_CORRUPT)
	{
		CacheStatsAdd(CS_CORRUPT, 1);
		tuplestore_clear(ts);
		delete_entry(rkey);
	}
	if (*gens_ok && missing && !init_generations(cs, gens))
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
	return outcome;
}

/*
 * Store the entry.  Returns NULL when Redis accepted it, else why not (for
 * cache_status).
 */
char *
store(const char *rkey, EntryWriter *w, const CallOptions *opts)
{
	RedisCommand cmd;
	redisReply *reply = NULL;
	char		ttlbuf[32];
	char	   *problem = NULL;

	snprintf(ttlbuf, sizeof(ttlbuf), INT64_FORMAT, opts->ttl_ms);
	RedisCommandInit(&cmd, "SET");
	RedisCommandArgStr(&cmd, rkey);
	if (KeyEncryptionOn())
	{
		StringInfoData sealed;

		EntrySeal(w->buf.data, w->buf.len, rkey, &sealed);
		RedisCommandArg(&cmd, sealed.data, sealed.len);
	}
	else
		RedisCommandArg(&cmd, w->buf.data, w->buf.len);
	RedisCommandArgStr(&cmd, "PX");
	RedisCommandArgStr(&cmd, ttlbuf);
	if (!RedisExec(1, &cmd, &reply, 4096))
		return psprintf("redis unavailable (%s)", RedisLastError());
	if (reply->type != REDIS_REPLY_STATUS)
	{
		CacheStatsAdd(CS_ERRORS, 1);
		if (reply->type == REDIS_REPLY_ERROR)
			problem = psprintf("redis refused it: %s",
							   RedisReplyText(reply->str, reply->len, 120));
		else
			problem = pstrdup("unexpected reply from redis");
	}
	RedisFreeReplies(1, &reply);
	return problem;
}

/* ---- cache_explain ---- */

/*
 * What the stored entry of rkey looks like now, as a JSON object: whether
 * it exists, whether it decodes for this query, its size and remaining TTL.
 * Nothing is deleted or stored.
 */
void
explain_entry(StringInfo buf, const char *rkey, const uint8 *hash,
			  PreparedQuery *pq, CallScopes *cs)
{
	RedisCommand cmds[3];
	redisReply *replies[3] = {NULL, NULL, NULL};
	char		endbuf[16];
	const char *why = NULL;

	if (!RedisUsable(&why))
	{
		json_key(buf, "redis");
		escape_json(buf, why);
		return;
	}
	snprintf(endbuf, sizeof(endbuf), "%d", cache_ext_max_entry_size);
	RedisCommandInit(&cmds[0], "GETRANGE");
	RedisCommandArgStr(&cmds[0], rkey);
	RedisCommandArgStr(&cmds[0], "0");
	RedisCommandArgStr(&cmds[0], endbuf);
	RedisCommandInit(&cmds[1], "PTTL");
	RedisCommandArgStr(&cmds[1], rkey);
	RedisCommandInit(&cmds[2], "MGET");
	for (int i = 0; i < cs->n; i++)
		RedisCommandArgStr(&cmds[2], cs->keys[i]);
	if (!RedisExec(3, cmds, replies,
				   (size_t) cache_ext_max_entry_size + 1024 + 300 * (size_t) cs->n))
	{
		json_key(buf, "redis");
		escape_json(buf, psprintf("unavailable (%s)", RedisLastError()));
		return;
	}

	PG_TRY();
	{
		redisReply *r = replies[0];
		redisReply *g = replies[2];
		bool		exists = (r->type == REDIS_REPLY_STRING && r->len > 0) ||
			(r->type == REDIS_REPLY_ERROR && strncmp(r->str, "WRONGTYPE", 9) == 0);
		const char *problem = NULL;
		EntryGens	gens;
		bool		unknown = false;

		gens.n = cs->n;
		gens.vals = palloc0(sizeof(char *) * cs->n);
		gens.lens = palloc0(sizeof(size_t) * cs->n);
		if (g->type != REDIS_REPLY_ARRAY || g->elements != (size_t) cs->n)
			unknown = true;
		for (int i = 0; !unknown && i < cs->n; i++)
		{
			if (g->element[i]->type != REDIS_REPLY_STRING)
				unknown = true;
			else
			{
				gens.vals[i] = g->element[i]->str;
				gens.lens[i] = g->element[i]->len;
			}
		}

		json_key(buf, "entry");
		appendStringInfo(buf, "{\"exists\":%s", exists ? "true" : "false");
		if (exists)
		{
			if (r->type != REDIS_REPLY_STRING)
				problem = "unexpected reply type";
			else if (r->len > (size_t) cache_ext_max_entry_size)
				problem = "entry larger than cache_ext.max_entry_size";
			else if (unknown)
				problem = "stale: a generation it depends on is unknown";
			else
			{
				Tuplestorestate *ts = tuplestore_begin_heap(false, false, work_mem);
				char	   *data = r->str;
				size_t		dlen = r->len;

				if (KeyEncryptionOn() || EntryIsSealed(r->str, r->len))
					data = EntryOpen(r->str, r->len, rkey, &dlen, &problem);
				if (data != NULL)
				switch (EntryLoad(data, dlen, hash, &gens,
								  pq->resultdesc->natts, pq->codecs,
								  pq->resultdesc, pq->decode_in_subxact,
								  ts, &problem))
				{
					case ENTRY_UNDECODABLE:
						break;
					case ENTRY_VALID:
						appendStringInfo(buf, ",\"rows\":" INT64_FORMAT,
										 tuplestore_tuple_count(ts));
						break;
					case ENTRY_STALE:
						problem = "stale: invalidated since it was stored";
						break;
					case ENTRY_CORRUPT:
						break;
				}
				tuplestore_end(ts);
			}
			appendStringInfo(buf, ",\"valid\":%s", problem ? "false" : "true");
			if (problem)
			{
				appendStringInfoString(buf, ",\"problem\":");
				escape_json(buf, problem);
			}
			if (r->type == REDIS_REPLY_STRING)
				appendStringInfo(buf, ",\"bytes\":%zu", r->len);
			if (replies[1]->type == REDIS_REPLY_INTEGER)
				appendStringInfo(buf, ",\"ttl_ms\":%lld", replies[1]->integer);
		}
		appendStringInfoChar(buf, '}');
	}
	PG_FINALLY();
	{
		RedisFreeReplies(3, replies);
	}
	PG_END_TRY();
}


/* The size of the entry the last hit decoded, for cache_query_stats. */
int64
LookupLastEntryBytes(void)
{
	return last_entry_bytes;
}

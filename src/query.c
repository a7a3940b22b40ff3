/*-------------------------------------------------------------------------
 *
 * query.c
 *	  cached_query() and friends: prepare (a plan cache per backend), look
 *	  up, run, store; cache_status().
 *
 * A call goes:
 *	1. Find or create the prepared statement for (query text, parameter
 *	   types, result-changing settings).  Parsing, analysis and planning
 *	   happen once per backend; PostgreSQL's plan cache revalidates it
 *	   when the relations, functions or search_path it used change.
 *	2. Get its generic plan, which is cheap once built, and the analysis
 *	   made from it (cacheability, relations, row type codecs), redone only
 *	   when the plan is rebuilt.
 *	3. Check the caller's privileges on every relation of the plan, as the
 *	   executor would, so a hit never shows a role what it could not read.
 *	4. Build the key and fetch the entry in one round trip.  A valid entry
 *	   is decoded and returned (HIT).
 *	5. Otherwise run the query with a fresh snapshot, returning its rows
 *	   and encoding them at the same time, and store the entry (MISS).
 * Anything that cannot be cached runs directly (BYPASS, with the reason).
 * Redis trouble never raises an ERROR here: the client reports failure and
 * the call runs uncached.
 *
 * State: the plan cache (a dynahash in its own context under
 * CacheMemoryContext) and the last status are backend-local.
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

static char last_status[256] = "";

/* the size of the entry the last hit decoded, for cache_query_stats */
static int64 last_entry_bytes = 0;

/* The status of the last call, or NULL when it erred (cache_status()). */
const char *
CallLastStatus(void)
{
	return last_status[0] == '\0' ? NULL : last_status;
}

static void
set_status(const char *fmt,...) pg_attribute_printf(1, 2);

static void
set_status(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(last_status, sizeof(last_status), fmt, ap);
	va_end(ap);
}

/* The caller's column definition list must match the query's result. */
static void
check_result_type(TupleDesc expected, TupleDesc actual)
{
	if (expected->natts != actual->natts)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("the column definition list has %d columns, but the query returns %d",
						expected->natts, actual->natts)));
	for (int i = 0; i < expected->natts; i++)
	{
		Form_pg_attribute e = TupleDescAttr(expected, i);
		Form_pg_attribute a = TupleDescAttr(actual, i);

		if (e->atttypid != a->atttypid ||
			(e->atttypmod >= 0 && e->atttypmod != a->atttypmod))
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"%s\" (number %d) of the column definition list has type %s, but the query returns %s",
							NameStr(e->attname), i + 1,
							format_type_with_typemod(e->atttypid, e->atttypmod),
							format_type_with_typemod(a->atttypid, a->atttypmod)),
					 errhint("Declare column %d as %s in the column definition list.",
							 i + 1, format_type_with_typemod(a->atttypid, a->atttypmod))));
	}
}

/*
 * Raise the executor's own errors if the current role could not run the
 * plan: SELECT on its relations (and columns), EXECUTE on its functions.
 */
void
check_privileges(PreparedQuery *pq, CachedPlan *cplan)
{
	ListCell   *lc;

	ExecCheckRTPerms(linitial_node(PlannedStmt, cplan->stmt_list)->rtable, true);
	foreach(lc, pq->deps.funcids)
	{
		Oid			funcid = lfirst_oid(lc);

		if (pg_proc_aclcheck(funcid, GetUserId(), ACL_EXECUTE) != ACLCHECK_OK)
			aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_FUNCTION, get_func_name(funcid));
	}
}

/* ---- keys ---- */

/* ---- running the query ---- */

/* ---- the cache ---- */

typedef enum LookupOutcome
{
	LOOKUP_HIT,					/* the rows are in ts */
	LOOKUP_MISS,				/* no entry */
	LOOKUP_STALE,				/* an entry computed under older generations */
	LOOKUP_CORRUPT,				/* an entry that failed validation (deleted) */
	LOOKUP_REDIS_DOWN,
	LOOKUP_BLOCKED				/* this server holds undelivered invalidations */
} LookupOutcome;

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
static bool
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
static LookupOutcome
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
static char *
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

static void
add_elapsed(CacheStatCounter counter, instr_time start)
{
	instr_time	t;

	INSTR_TIME_SET_CURRENT(t);
	INSTR_TIME_SUBTRACT(t, start);
	CacheStatsAdd(counter, INSTR_TIME_GET_MICROSEC(t));
}

/*
 * Why this call may not use the cache, Redis aside: the first reason, or
 * NULL when it may.  When all is not NULL, every reason is appended to *all
 * (for cache_explain); otherwise this stops at the first (the hit path).
 */
const char *
bypass_reasons(PreparedQuery *pq, CallScopes *cs, List **all)
{
	const char *first = NULL;
	ListCell   *lc;

#define REASON(cond, text) \
	do { \
		if (cond) \
		{ \
			if (first == NULL) \
				first = (text); \
			if (all == NULL) \
				return first; \
			*all = lappend(*all, (char *) (text)); \
		} \
	} while (0)

	REASON(!cache_ext_enabled, "disabled (cache_ext.enabled is off)");
	REASON(pq->literal_problem[0] != '\0', pq->literal_problem);
	foreach(lc, pq->deps.reasons)
		REASON(true, (char *) lfirst(lc));
	REASON(pq->codec_problem != NULL, pq->codec_problem);
	REASON(cs->opaque_reason != NULL, cs->opaque_reason);
	REASON(IsolationUsesXactSnapshot(),
		   IsolationIsSerializable() ? "serializable transaction" :
		   "repeatable read transaction");
	{
		const char *t = touched_scope(pq, cs);

		REASON(t != NULL, t);
	}
	/*
	 * Rows the running statement has changed but whose AFTER triggers have
	 * not fired yet (a cached_query inside the writing statement itself).
	 */
	if (TransactionIdIsValid(GetTopTransactionIdIfAny()))
	{
		foreach(lc, pq->deps.relids)
			REASON(AfterTriggerPendingOnRel(lfirst_oid(lc)),
				   psprintf("this transaction changed %s", relation_label(lfirst_oid(lc))));
	}
	/* an opaque function's reads are unseen: this transaction's writes too */
	REASON(cs->opted_in && TransactionIdIsValid(GetTopTransactionIdIfAny()),
		   "this transaction has written data and an opaque function's reads are not visible in the plan");
	/* writes to untracked tables are invisible: this one may have made some */
	REASON(cs->untracked != NIL && TransactionIdIsValid(GetTopTransactionIdIfAny()),
		   psprintf("this transaction has written data and %s",
					(char *) linitial(cs->untracked)));
	REASON(cs->untracked != NIL && cache_ext_untracked == UNTRACKED_BYPASS,
		   psprintf("%s (cache_ext.untracked = bypass)",
					(char *) linitial(cs->untracked)));
	REASON(pq->has_tracked && !InvalShmemReady(),
		   "tracked tables are served from the cache only when cache_ext is in shared_preload_libraries");
#undef REASON
	return first;
}

/*
 * The end of a call: its time, cache_query_stats, and the log line that
 * cache_ext.log_calls asks for.
 */
static void
finish_call(PreparedQuery *pq, const char *query, QueryStatsCall *rec,
			instr_time start, const char *rkey)
{
	instr_time	t;
	int			needed;

	INSTR_TIME_SET_CURRENT(t);
	INSTR_TIME_SUBTRACT(t, start);
	rec->ms = INSTR_TIME_GET_MILLISEC(t);
	QueryStatsRecord(pq->queryid, query, rec);

	needed = rec->outcome == QS_HIT ? LOG_CALLS_ALL :
		rec->outcome == QS_MISS ? LOG_CALLS_MISS : LOG_CALLS_BYPASS;
	if (cache_ext_log_calls >= needed)
		ereport(cache_ext_log_calls_level,
				(errmsg("cache_ext: %s in %.3f ms", last_status, rec->ms),
				 rkey ? errdetail_internal("Key %s, query id " INT64_FORMAT ".",
										   rkey, (int64) pq->queryid) :
				 errdetail_internal("Query id " INT64_FORMAT ".", (int64) pq->queryid),
				 errhidestmt(false)));
}

/*
 * The common body of every cached_query form: fill ts (whose rows have
 * outdesc, or the query's own row type when outdesc is NULL) and return
 * the query's row type.
 */
static TupleDesc
cached_query_call(text *query_text, const CallParams *params,
				  const CallOptions *opts, TupleDesc outdesc,
				  Tuplestorestate *ts, PreparedQuery **transient)
{
	char	   *query = text_to_cstring(query_text);
	StringInfoData settings;
	PreparedQuery *pq;
	CachedPlan *cplan;
	const char *why = NULL;
	instr_time	start;
	TupleDesc	resultdesc;
	CallScopes	cs;
	QueryStatsCall rec;

	memset(&rec, 0, sizeof(rec));
	INSTR_TIME_SET_CURRENT(start);
	last_status[0] = '\0';	/* an erroring call leaves no status */

	settings_material(&settings);
	{
		bool		is_transient;

		pq = get_prepared(query, params, &settings, &is_transient);
		if (is_transient)
			*transient = pq;
	}

	/* the generic plan: cheap once built, gives the analysis */
	cplan = GetCachedPlan(pq->plansource, NULL, CurrentResourceOwner, NULL);

	/*
	 * Disabled means exactly the direct statement: no analysis, no key, no
	 * checks of ours (the executor makes its own).
	 */
	if (!cache_ext_enabled)
	{
		resultdesc = CreateTupleDescCopy(pq->plansource->resultDesc);
		ReleaseCachedPlan(cplan, CurrentResourceOwner);
		if (outdesc)
			check_result_type(outdesc, resultdesc);
		run_query(pq, params, ts, NULL);
		set_status("BYPASS: disabled (cache_ext.enabled is off)");
		CacheStatsAdd(CS_BYPASSES, 1);
		add_elapsed(CS_BYPASS_TIME_US, start);
		rec.outcome = QS_BYPASS;
		rec.reason = QueryStatsReasonOf("disabled (cache_ext.enabled is off)");
		finish_call(pq, query, &rec, start, NULL);
		return resultdesc;
	}

	analyze_plan(pq, cplan);
	resultdesc = pq->resultdesc;
	if (outdesc)
		check_result_type(outdesc, resultdesc);

	/*
	 * Refuse anyone who could not run the query, on every path: a hit, and
	 * also a miss or bypass, which run a plan that may have been built for
	 * another role (with a SQL function inlined, whose EXECUTE PostgreSQL
	 * checks only when planning).
	 */
	check_privileges(pq, cplan);

	cs.describe = false;
	call_scopes(pq, opts, &cs, params);
	why = bypass_reasons(pq, &cs, NULL);
	if (why == NULL && cs.untracked != NIL && cache_ext_untracked == UNTRACKED_ERROR)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cached_query result would depend on data whose changes cache_ext does not track: %s",
						untracked_summary(cs.untracked)),
				 errhint("Track the tables with cache_track(), name the tables a function reads with cache_opts(depends_on => ...), or set cache_ext.untracked to 'allow' or 'bypass'.")));
	if (why == NULL)
		(void) RedisUsable(&why);	/* sets why when Redis can't be used */
	if (why == NULL && InvalHitsBlocked(true))
		why = InvalHitsBlockedReason();	/* outbox.c: pending, or standby lease */

	if (why == NULL)
	{
		uint8		hash[CE_HASH_LEN];
		char	   *rkey;
		const char *corrupt;
		EntryGens	gens;
		bool		gens_ok;
		LookupOutcome outcome;
		char	   *ttl_note = "";

		if (cs.untracked != NIL)
			ttl_note = psprintf("ttl-only: %s", untracked_summary(cs.untracked));

		entry_key(query, params, &settings, opts, pq, &cs, hash);
		rkey = KeyEntryName(hash);

		outcome = lookup(rkey, hash, pq, &cs, ts, &gens, &gens_ok, &corrupt);

		/*
		 * Connecting for this lookup may have found that Redis restarted:
		 * the server generation must be bumped first.  Deliver that now and
		 * look up once more, rather than bypass.
		 */
		if (outcome == LOOKUP_BLOCKED && !InvalHitsBlocked(true))
			outcome = lookup(rkey, hash, pq, &cs, ts, &gens, &gens_ok, &corrupt);
		ReleaseCachedPlan(cplan, CurrentResourceOwner);

		/*
		 * A standby may not have replayed the commits whose bumps it just
		 * read: what it computes may be older than the generations say.
		 */
		if (RecoveryInProgress())
			gens_ok = false;
		/* TTL-only results may be stale by contract: not verified */
		if (outcome == LOOKUP_HIT && cache_ext_verify_rate > 0 &&
			cs.untracked == NIL &&
			(cache_ext_verify_rate >= 1.0 ||
			 pg_prng_double(&pg_global_prng_state) < cache_ext_verify_rate) &&
			!verify_hit(pq, params, ts, resultdesc, rkey, &cs))
		{
			rec.outcome = QS_MISS;
			CacheStatsAdd(CS_MISSES, 1);
			set_status("MISS (cache_ext.verify_rate: the stored result differed from the direct one and was deleted)");
			add_elapsed(CS_MISS_TIME_US, start);
			finish_call(pq, query, &rec, start, rkey);
			return resultdesc;
		}
		if (outcome == LOOKUP_HIT)
		{
			CacheStatsAdd(CS_HITS, 1);
			if (cs.untracked != NIL)
				CacheStatsAdd(CS_TTL_ONLY, 1);
			add_elapsed(CS_HIT_TIME_US, start);
			if (cs.untracked != NIL)
				set_status("HIT (%s)", ttl_note);
			else
				set_status("HIT");
			rec.outcome = QS_HIT;
			rec.bytes_read = last_entry_bytes;
			finish_call(pq, query, &rec, start, rkey);
			return resultdesc;
		}

		if (outcome != LOOKUP_REDIS_DOWN && outcome != LOOKUP_BLOCKED)
		{
			EntryWriter w;
			StringInfoData note;
			char	   *encode_problem;

			rec.outcome = QS_MISS;
			rec.invalidated = outcome == LOOKUP_STALE;
			if (outcome == LOOKUP_STALE)
				CacheStatsAdd(CS_INVALIDATED, 1);
			if (cs.untracked != NIL)
				CacheStatsAdd(CS_TTL_ONLY, 1);
			/* a row type found undecodable during this very lookup */
			if (pq->codec_problem != NULL && gens_ok)
			{
				gens_ok = false;
				rec.store_skipped = true;
			}
			if (gens_ok)
				EntryWriterInit(&w, resultdesc->natts, pq->codecs, &gens,
								cache_ext_max_entry_size -
								(KeyEncryptionOn() ? CE_SEALED_OVERHEAD : 0));
			encode_problem = run_query(pq, params, ts, gens_ok ? &w : NULL);
			CacheStatsAdd(CS_MISSES, 1);

			initStringInfo(&note);
			if (outcome == LOOKUP_STALE)
				appendStringInfoString(&note, "invalidated");
			else if (outcome == LOOKUP_CORRUPT)
				appendStringInfo(&note, "corrupt entry replaced: %s", corrupt);
			if (!gens_ok)
			{
				rec.store_skipped = true;
				CacheStatsAdd(CS_STORE_SKIPPED, 1);
				appendStringInfo(&note, "%snot stored: %s", note.len ? "; " : "",
								 pq->codec_problem ? pq->codec_problem :
								 RecoveryInProgress() ? "hot standby" :
								 "generations unreadable");
			}
			else if (encode_problem != NULL)
			{
				rec.store_skipped = true;
				CacheStatsAdd(CS_STORE_SKIPPED, 1);
				appendStringInfo(&note, "%snot stored: %s", note.len ? "; " : "", encode_problem);
			}
			else if (w.overflow)
			{
				rec.store_skipped = true;
				CacheStatsAdd(CS_STORE_SKIPPED, 1);
				appendStringInfo(&note, "%snot stored: %s", note.len ? "; " : "",
								 w.problem ? w.problem : "result larger than cache_ext.max_entry_size");
			}
			else
			{
				char	   *problem;

				EntryWriterFinish(&w, hash);
				problem = store(rkey, &w, opts);
				if (problem == NULL)
				{
					rec.stored = true;
					rec.bytes_stored = w.buf.len;
					CacheStatsAdd(CS_STORES, 1);
					CacheStatsAdd(CS_BYTES_STORED, w.buf.len);
				}
				else
				{
					rec.store_skipped = true;
					CacheStatsAdd(CS_STORE_SKIPPED, 1);
					appendStringInfo(&note, "%snot stored: %s", note.len ? "; " : "", problem);
				}
				pfree(w.buf.data);
			}
			if (cs.untracked != NIL)
				appendStringInfo(&note, "%s%s", note.len ? "; " : "", ttl_note);
			if (note.len)
				set_status("MISS (%s)", note.data);
			else
				set_status("MISS");
			add_elapsed(CS_MISS_TIME_US, start);
			finish_call(pq, query, &rec, start, rkey);
			return resultdesc;
		}
		if (outcome == LOOKUP_BLOCKED)
			why = "pending invalidations (this server holds invalidations Redis has not taken yet)";
		else
			why = psprintf("redis unavailable (%s)", RedisLastError());
	}
	else
		ReleaseCachedPlan(cplan, CurrentResourceOwner);

	run_query(pq, params, ts, NULL);
	set_status("BYPASS: %s", why);	/* after: the query may call cached_query */
	CacheStatsAdd(CS_BYPASSES, 1);
	add_elapsed(CS_BYPASS_TIME_US, start);
	rec.outcome = QS_BYPASS;
	rec.reason = QueryStatsReasonOf(why);
	finish_call(pq, query, &rec, start, NULL);
	return resultdesc;
}

TupleDesc
cached_query_common(text *query_text, const CallParams *params,
					const CallOptions *opts, TupleDesc outdesc,
					Tuplestorestate *ts)
{
	volatile TupleDesc result = NULL;
	PreparedQuery *volatile transient = NULL;

	call_begin();
	PG_TRY();
	{
		result = cached_query_call(query_text, params, opts, outdesc, ts,
								   (PreparedQuery **) &transient);
		if (transient)
			result = CreateTupleDescCopy(result);	/* outlives the statement */
	}
	PG_CATCH();
	{
		end_call(transient);
		PG_RE_THROW();
	}
	PG_END_TRY();
	end_call(transient);
	return result;
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


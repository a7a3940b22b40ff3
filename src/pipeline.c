/*-------------------------------------------------------------------------
 *
 * pipeline.c
 *	  The call pipeline: what one cached_query call does, from its
 *	  prepared statement to its outcome.
 *
 * A call goes:
 *	1. Find or create the prepared statement for (query text, parameter
 *	   types, result-changing settings, role) (stmtcache.c).  Parsing,
 *	   analysis and planning happen once per backend.
 *	2. Get its generic plan, which is cheap once built, and the analysis
 *	   made from it (cacheability, relations, row type codecs; analysis.c,
 *	   deps.c), redone only when the plan is rebuilt.
 *	3. Check the caller's privileges on every relation and function of the
 *	   plan, as the executor would, so a hit never shows a role what it
 *	   could not read.
 *	4. Decide the generations the call depends on (scopes.c) and every
 *	   reason it may not use the cache (bypass_reasons).
 *	5. Build the key and fetch the entry with its generations in one round
 *	   trip (lookup.c, over the store).  A valid entry is decoded and
 *	   returned (HIT).
 *	6. Otherwise run the query with a fresh snapshot, returning its rows
 *	   and encoding them at the same time, and store the entry (MISS).
 * Anything that cannot be cached runs directly (BYPASS, with the reason).
 * Redis trouble never raises an ERROR here: the call runs uncached.
 *
 * The outcome of a call is a value (outcome.h), rendered for cache_status()
 * and the log only at the edge, and counted by its kind.
 *
 * No state of its own (the last outcome is outcome.c's).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

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
#include "utils/timestamp.h"
#include "utils/typcache.h"
#include "tsearch/ts_cache.h"
#include "executor/functions.h"
#include "optimizer/optimizer.h"
#include "parser/analyze.h"

#include "cache_ext.h"
#include "commitq.h"
#include "entry.h"
#include "flight.h"
#include "invalidate.h"
#include "outbox.h"
#include "keys.h"
#include "l1.h"
#include "l1_rows.h"
#include "call.h"
#include "outcome.h"
#include "policies.h"
#include "refresh.h"
#include "store/store.h"

/* The status of the last call, or NULL when it erred (cache_status()). */
char *
CallLastStatus(void)
{
	const CallOutcome *o = OutcomeLast();

	return o ? OutcomeRender(o) : NULL;
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
	ListCell *lc;

	ExecCheckRTPerms(linitial_node(PlannedStmt, cplan->stmt_list)->rtable, true);
	foreach(lc, pq->deps.funcids)
	{
		Oid funcid = lfirst_oid(lc);

		if (pg_proc_aclcheck(funcid, GetUserId(), ACL_EXECUTE) != ACLCHECK_OK)
			aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_FUNCTION, get_func_name(funcid));
	}
}

/* Microseconds since start. */
static double
elapsed_us(instr_time start)
{
	instr_time t;

	INSTR_TIME_SET_CURRENT(t);
	INSTR_TIME_SUBTRACT(t, start);
	return INSTR_TIME_GET_MICROSEC(t);
}

static void
add_elapsed(CacheStatCounter counter, instr_time start)
{
	instr_time t;

	INSTR_TIME_SET_CURRENT(t);
	INSTR_TIME_SUBTRACT(t, start);
	CacheStatsAdd(counter, INSTR_TIME_GET_MICROSEC(t));
}

/*
 * Why this call may not use the cache, Redis aside: the first reason, or
 * NULL when it may.  When all is not NULL, every reason is appended to *all
 * (for cache_explain); otherwise this stops at the first (the hit path).
 */
CallReason *
bypass_reasons(PreparedQuery *pq, CallScopes *cs, List **all)
{
	CallReason *first = NULL;
	bool wrote = TransactionIdIsValid(GetTopTransactionIdIfAny());
	ListCell *lc;

#define REASON(cond, kind, text) \
	do \
	{ \
		if (cond) \
		{ \
			CallReason *r_ = MakeReason((kind), (text)); \
			if (first == NULL) \
				first = r_; \
			if (all == NULL) \
				return first; \
			*all = lappend(*all, r_); \
		} \
	} while (0)

	REASON(!cache_ext_enabled, QS_DISABLED, "disabled (cache_ext.enabled is off)");
	REASON(pq->literal_problem[0] != '\0', QS_NOT_CACHEABLE, pq->literal_problem);
	foreach(lc, pq->deps.reasons)
		REASON(true, QS_NOT_CACHEABLE, (char *) lfirst(lc));
	REASON(pq->codec_problem != NULL, QS_NOT_CACHEABLE, pq->codec_problem);
	REASON(cs->opaque_reason != NULL, QS_NOT_CACHEABLE, cs->opaque_reason);
	REASON(IsolationUsesXactSnapshot(), QS_ISOLATION,
		   IsolationIsSerializable() ? "serializable transaction" :
									   "repeatable read transaction");
	{
		const char *t = touched_scope(pq, cs);

		REASON(t != NULL, QS_OWN_WRITES, t);
	}

	/*
	 * Rows the running statement has changed but whose AFTER triggers have
	 * not fired yet (a cached_query inside the writing statement itself).
	 */
	if (wrote)
	{
		foreach(lc, pq->deps.relids)
			REASON(AfterTriggerPendingOnRel(lfirst_oid(lc)), QS_OWN_WRITES,
				   psprintf("this transaction changed %s", relation_label(lfirst_oid(lc))));
	}
	/* an opaque function's reads are unseen: this transaction's writes too */
	REASON(cs->opted_in && wrote, QS_OWN_WRITES,
		   "this transaction has written data and an opaque function's reads are not visible in the plan");
	/* writes to untracked tables are invisible: this one may have made some */
	REASON(cs->untracked != NIL && wrote, QS_OWN_WRITES,
		   psprintf("this transaction has written data and %s",
					(char *) linitial(cs->untracked)));
	REASON(cs->untracked != NIL && cache_ext_untracked == UNTRACKED_BYPASS,
		   QS_UNTRACKED,
		   psprintf("%s (cache_ext.untracked = bypass)",
					(char *) linitial(cs->untracked)));
	REASON(cs->has_tracked && !InvalShmemReady(), QS_NOT_PRELOADED,
		   "tracked tables are served from the cache only when cache_ext is in shared_preload_libraries");
	/* its lookups need the primary's watermark, read through the outbox */
	REASON(!InvalShmemReady() && RecoveryInProgress(), QS_NOT_PRELOADED,
		   "a hot standby serves hits only when cache_ext is in shared_preload_libraries");
#undef REASON
	return first;
}

/* What one call is doing: the pieces its steps share. */
typedef struct Call
{
	const char *query;
	const CallParams *params;
	const CallOptions *opts;
	PreparedQuery *pq;
	CallScopes cs;
	uint8 settings[CE_HASH_LEN]; /* settings_key() */
	TupleDesc resultdesc;
	Tuplestorestate *ts;
	instr_time start;
	bool keyed; /* hash is the entry key (key_and_local) */
	char *rkey; /* its Redis key name, made when first needed (call_rkey) */
	uint8 hash[CE_HASH_LEN];
	CallOutcome outcome;
	QueryStatsCall rec;
	bool forced;	   /* the refresh-ahead worker's call (refresh_worker.c) */
	bool l1;		   /* the local tier is in use for this call */
	L1Snapshot l1snap; /* its counters, read before the L2 lookup */
	FlightCall flight; /* single flight (flight.c) */
} Call;

/*
 * The entry's Redis key name, or NULL before the call is keyed: made only
 * when needed (an L1 hit does not, unless logged or verified).
 */
static char *
call_rkey(Call *c)
{
	if (c->rkey == NULL && c->keyed)
		c->rkey = KeyEntryName(c->hash);
	return c->rkey;
}

/*
 * The end of a call: its outcome (for cache_status), its counters and
 * time, cache_query_stats, and the log line that cache_ext.log_calls asks
 * for.
 */
static void
finish_call(Call *c)
{
	static const CacheStatCounter counter[] = {CS_HITS, CS_MISSES, CS_BYPASSES};
	static const CacheStatCounter time_counter[] = {
		CS_HIT_TIME_US, CS_MISS_TIME_US, CS_BYPASS_TIME_US};
	static const QueryStatsOutcome qs_outcome[] = {QS_HIT, QS_MISS, QS_BYPASS};
	CallStatus status = c->outcome.status;
	instr_time t;
	int needed;

	OutcomeSetLast(&c->outcome);
	CacheStatsAdd(counter[status], 1);
	add_elapsed(time_counter[status], c->start);
	if (c->outcome.ttl_only && status != CALL_BYPASS)
		CacheStatsAdd(CS_TTL_ONLY, 1);

	INSTR_TIME_SET_CURRENT(t);
	INSTR_TIME_SUBTRACT(t, c->start);
	c->rec.ms = INSTR_TIME_GET_MILLISEC(t);
	c->rec.outcome = qs_outcome[status];
	if (status == CALL_BYPASS)
		c->rec.reason = c->outcome.bypass.kind;
	QueryStatsRecord(c->pq->queryid, c->query, &c->rec);
	if (c->keyed) /* refresh-ahead: hits, stores, registration */
		RefreshNoteCall(c->hash, c->query, c->params, c->opts, c->settings,
						c->pq->queryid, status == CALL_HIT, c->rec.stored);

	needed = status == CALL_HIT ? LOG_CALLS_ALL :
		status == CALL_MISS		? LOG_CALLS_MISS :
								  LOG_CALLS_BYPASS;
	if (cache_ext_log_calls >= needed)
		ereport(cache_ext_log_calls_level,
				(errmsg("cache_ext: %s in %.3f ms", OutcomeRender(&c->outcome), c->rec.ms),
				 call_rkey(c) ? errdetail_internal("Key %s, query id " INT64_FORMAT ".",
												   c->rkey, (int64) c->pq->queryid) :
								errdetail_internal("Query id " INT64_FORMAT ".", (int64) c->pq->queryid),
				 errhidestmt(false)));
}

/* Run the query directly: a BYPASS for reason. */
static void
bypass_call(Call *c, const CallReason *reason)
{
	c->keyed = false;
	c->rkey = NULL;
	/* look up or fill only: nothing runs, the caller runs its own plan */
	if (!c->opts->lookup_only && !c->opts->fill_only)
		run_query(c->pq, c->params, c->ts, NULL);
	/* after running: the query may call cached_query, whose status is its own */
	c->outcome.status = CALL_BYPASS;
	c->outcome.bypass = *reason;
	finish_call(c);
}

/*
 * The refresh-ahead worker's call that would bypass: a BYPASS for reason
 * without running the query (review-refresh C).  The worker only stores;
 * a registered call that can no longer be stored is dropped, not run, so
 * that what it has become (a view now calling pg_sleep or a volatile
 * function) does not run in the background with nobody waiting for it.
 */
static void
skip_call(Call *c, const CallReason *reason)
{
	c->keyed = false;
	c->rkey = NULL;
	c->outcome.status = CALL_BYPASS;
	c->outcome.bypass = *reason;
	finish_call(c);
}

/*
 * Put the entry buf (len bytes, writable, one spare byte after it) of this
 * call into L1, in L1's form (l1_rows.c), under the counters read before
 * its data was; nothing when it does not decode.
 */
static void
l1_insert(Call *c, char *buf, size_t len, int64 ttl_ms, double cost_us)
{
	PreparedQuery *pq = c->pq;
	StringInfoData rows;

	/*
	 * No decoding in vain: the rows take more than an eighth of the entry's
	 * bytes (a value's 4-byte length becomes a 1-byte header at best).
	 */
	if (!L1MayTake(len / 8, c->l1snap.n))
		return;
	if (!L1RowsFromEntry(buf, len, c->hash, pq->resultdesc->natts, pq->codecs,
						 pq->resultdesc, pq->decode_in_subxact,
						 L1EntryLimit(c->l1snap.n), &rows))
		return;
	L1Insert(c->hash, rows.data, rows.len, &c->l1snap, ttl_ms, cost_us);
	pfree(rows.data);
}

/*
 * A MISS (no entry, a stale or a corrupt one): run the query, returning
 * its rows and, when the generations read before it are usable, encoding
 * them into an entry stored under the call's TTL.  What kept the result
 * from being stored goes into the outcome.
 */
static void
miss_call(Call *c, LookupOutcome found, EntryGens *gens, bool gens_ok,
		  const char *corrupt)
{
	PreparedQuery *pq = c->pq;
	EntryWriter w;
	char *encode_problem;
	const char *not_stored = NULL;
	size_t stored_len = 0;

	c->outcome.status = CALL_MISS;
	c->outcome.invalidated = found == LOOKUP_STALE;
	c->outcome.corrupt = found == LOOKUP_CORRUPT ? corrupt : NULL;
	c->rec.invalidated = found == LOOKUP_STALE;
	if (found == LOOKUP_STALE)
		CacheStatsAdd(CS_INVALIDATED, 1);

	/* a row type found undecodable (during this very lookup, perhaps) */
	if (pq->codec_problem != NULL)
		gens_ok = false;
	if (gens_ok)
		EntryWriterInit(&w, c->resultdesc->natts, pq->codecs, gens,
						cache_ext_max_entry_size -
							(KeyEncryptionOn() ? CE_SEALED_OVERHEAD : 0));
	encode_problem = run_query(pq, c->params, c->ts, gens_ok ? &w : NULL);

	if (!gens_ok)
		not_stored = pq->codec_problem ? pq->codec_problem :
			RecoveryInProgress()	   ? "hot standby" :
										 "generations unreadable";
	else if (encode_problem != NULL)
		not_stored = encode_problem;
	else if (w.overflow)
		not_stored = w.problem ? w.problem : "result larger than cache_ext.max_entry_size";
	else
	{
		EntryWriterFinish(&w, c->hash);
		/* computed after l1snap was read: valid while it is current */
		if (c->l1)
			l1_insert(c, w.buf.data, w.buf.len, c->opts->ttl_ms,
					  elapsed_us(c->start));
		not_stored = store(call_rkey(c), &w, c->opts, &stored_len);
		if (not_stored == NULL)
		{
			c->rec.stored = true;
			c->rec.bytes_stored = stored_len;
			CacheStatsAdd(CS_STORES, 1);
			CacheStatsAdd(CS_BYTES_STORED, stored_len);
		}
		if (w.buf.data != NULL) /* store() may have freed it */
			pfree(w.buf.data);
	}
	if (not_stored != NULL)
	{
		c->rec.store_skipped = true;
		CacheStatsAdd(CS_STORE_SKIPPED, 1);
	}
	c->outcome.not_stored = not_stored;
	finish_call(c);
}

/*
 * Whether this hit is one cache_ext.verify_rate picks for verification.
 * TTL-only results may be stale by contract: never verified.
 */
static bool
verify_this_hit(Call *c)
{
	return cache_ext_verify_rate > 0 && c->cs.untracked == NIL &&
		(cache_ext_verify_rate >= 1.0 ||
		 pg_prng_double(&pg_global_prng_state) < cache_ext_verify_rate);
}

/*
 * The local tier (docs/invalidation.md, "The local tier"): serve the call
 * from L1 when its entry is there and every counter it was computed under
 * is unchanged (HIT (local): no Redis call, no planning).  Otherwise read
 * the counters now, before the L2 lookup and before the query's snapshot,
 * for the entry stored after; never later.  Returns true when the call
 * was served (and finished).
 */
static bool
l1_call(Call *c)
{
	PreparedQuery *pq = c->pq;
	char *data;
	size_t len;
	L1RowsResult rows;

	if (!L1Usable(NULL) || c->forced)
		return false;
	c->l1 = true;
	L1GenSlots(c->cs.keys, c->cs.n, &c->l1snap);
	data = L1Lookup(c->hash, &c->l1snap, &len);
	if (data != NULL)
	{
		/* a limit lowered since it was stored: L2 says what to do with it */
		rows = L1RowsPut(data, len, pq->resultdesc->natts,
						 (size_t) cache_ext_max_entry_size, c->ts, &len);
		if (rows == L1ROWS_OK)
		{
			if (verify_this_hit(c) &&
				!verify_hit(pq, c->params, c->ts, c->resultdesc, call_rkey(c), &c->cs))
			{
				L1Delete(c->hash);
				c->outcome.status = CALL_MISS;
				c->outcome.verify_mismatch = true;
				c->outcome.ttl_only = NULL;
				finish_call(c);
				return true;
			}
			L1CountHit();
			CacheStatsAdd(CS_BYTES_READ, len);
			c->outcome.status = CALL_HIT;
			c->outcome.local = true;
			c->rec.bytes_read = (int64) len;
			finish_call(c);
			return true;
		}
		/* it was stored by this server: not expected; drop it */
		if (rows == L1ROWS_CORRUPT)
		{
			tuplestore_clear(c->ts);
			L1Delete(c->hash);
		}
	}
	L1GenRead(&c->l1snap);
	return false;
}

/*
 * Copy the entry of an L2 hit (keep: its opened bytes, valid) into L1.
 *
 * Its expiry is the creation time in the entry's header plus the call's
 * TTL: the Redis entry was set after that time, with that TTL when the
 * calls agree on it; never more than the TTL from now (another server's
 * clock, or a hostile one's bytes: checked without overflow).  An entry
 * already past it is not copied.  Its value is what running the query
 * costs, the mean time of its misses (cache_query_stats), not the time of
 * this hit; with no miss counted since the start (query stats off, or just
 * restarted) the hit's time is all there is.  docs/decisions.md says why
 * the header and not PTTL.
 */
static void
l1_copy_hit(Call *c, StringInfo keep)
{
	CeEntryView view;
	TimestampTz now;
	int64 left_ms;
	double miss_ms;
	double cost_us;

	if (CeEntryParse((const uint8 *) keep->data, keep->len, &view) != NULL)
		return;
	now = GetCurrentTimestamp();
	if (view.created_at > now)
		left_ms = c->opts->ttl_ms;
	else if (view.created_at <= now - c->opts->ttl_ms * 1000)
		return;
	else
		left_ms = c->opts->ttl_ms - (now - view.created_at) / 1000;
	if (left_ms <= 0)
		return;
	if (QueryStatsMeanMissMs(c->pq->queryid, &miss_ms))
		cost_us = miss_ms * 1000.0;
	else
		cost_us = elapsed_us(c->start);
	l1_insert(c, keep->data, keep->len, left_ms, cost_us);
}

/*
 * Key the call (its entry key and Redis key name) and try the local tier:
 * true when L1 served it.
 */
static bool
key_and_local(Call *c)
{
	if (c->cs.untracked != NIL)
		c->outcome.ttl_only = untracked_summary(c->cs.untracked);
	/* (as entry_key keys them) */
	c->outcome.keyed_every_setting = c->pq->deps.settings_dependent || c->cs.opted_in;
	c->outcome.keyed_role = c->pq->deps.role_dependent || c->cs.opted_in;
	c->outcome.keyed_session_user = c->pq->deps.session_user_dependent || c->cs.opted_in;
	entry_key(c->params, c->opts, c->pq, &c->cs, c->hash);
	c->keyed = true;
	return l1_call(c);
}

/*
 * Look the entry up, and once more when connecting for it found that Redis
 * restarted: the server generation must be bumped first; deliver that now
 * rather than bypass.
 */
static LookupOutcome
lookup_entry(Call *c, EntryGens *gens, bool *gens_ok, const char **corrupt,
			 StringInfo keep)
{
	LookupOutcome found;

	FlightBeforeLookup(&c->flight);
	found = lookup(call_rkey(c), c->hash, c->pq, &c->cs, c->ts, gens, gens_ok,
				   corrupt, c->l1 ? keep : NULL);
	if (found == LOOKUP_BLOCKED && !InvalHitsBlocked(true))
	{
		resetStringInfo(keep);
		found = lookup(c->rkey, c->hash, c->pq, &c->cs, c->ts, gens, gens_ok,
					   corrupt, c->l1 ? keep : NULL);
	}
	return found;
}

/*
 * Whether a lookup's outcome is a miss that single flight coalesces: one
 * whose result this call would store; on a hot standby, which never
 * stores, one the primary may be filling (cache_ext.fill_lock).
 */
static bool
flight_applies(Call *c, LookupOutcome found, bool gens_ok)
{
	return (found == LOOKUP_MISS || found == LOOKUP_STALE ||
			found == LOOKUP_CORRUPT) &&
		c->pq->codec_problem == NULL &&
		(RecoveryInProgress() ? cache_ext_fill_lock : gens_ok);
}

/*
 * cache_ext.early_refresh: whether this hit should be recomputed now,
 * before its TTL ends, so that expiry does not make every caller miss at
 * once.  XFetch (Vattani, Chierichetti, Lowenstein, VLDB 2015): recompute
 * when  -cost * beta * ln(U) >= time left,  U uniform in (0, 1], cost
 * the mean time of the query's misses (cache_query_stats).  The time left
 * is the call's TTL from the entry's creation time (its header), as for
 * the local tier.  Never on a hot standby (it does not store), nor
 * without a known cost.
 */
static bool
early_refresh(Call *c)
{
	TimestampTz created = LookupLastEntryCreatedAt();
	TimestampTz now;
	double cost_ms;
	double left_ms;
	double u;

	if (cache_ext_early_refresh <= 0 || RecoveryInProgress() ||
		!QueryStatsMeanMissMs(c->pq->queryid, &cost_ms) || cost_ms <= 0)
		return false;
	now = GetCurrentTimestamp();
	if (created <= 0 || created > now)
		return false;
	left_ms = (double) c->opts->ttl_ms - (double) (now - created) / 1000.0;
	u = 1.0 - pg_prng_double(&pg_global_prng_state);
	return -cost_ms * cache_ext_early_refresh * log(u) >= left_ms;
}

/*
 * Look the entry up (key_and_local made its key) and serve the call from
 * it (HIT) or run and store the query (MISS).  Concurrent misses of one
 * entry wait for a single filler and look up again (flight.c): a waiter
 * serves only what the validated lookup finds.  Returns NULL when the
 * call was served, else why it must bypass (Redis failed, or this server
 * holds undelivered invalidations).  Releases cplan.
 */
static CallReason *
cached_call(Call *c, CachedPlan *cplan)
{
	PreparedQuery *pq = c->pq;
	const char *corrupt;
	EntryGens gens;
	bool gens_ok;
	LookupOutcome found;
	StringInfoData keep;

	FlightCallInit(&c->flight); /* here: a local hit never gets this far */
	initStringInfo(&keep);
	found = lookup_entry(c, &gens, &gens_ok, &corrupt, &keep);
	ReleaseCachedPlan(cplan, CurrentResourceOwner);
	while (flight_applies(c, found, gens_ok) &&
		   FlightJoin(&c->flight, c->rkey) == FLIGHT_RETRY)
	{
		tuplestore_clear(c->ts);
		resetStringInfo(&keep);
		found = lookup_entry(c, &gens, &gens_ok, &corrupt, &keep);
	}
	c->outcome.waited = c->flight.waited;
	if (found != LOOKUP_HIT && !flight_applies(c, found, gens_ok))
		FlightEnd(&c->flight, false, false);

	if (found == LOOKUP_BLOCKED)
		return MakeReason(QS_PENDING, "pending invalidations (this server holds invalidations Redis has not taken yet)");
	if (found == LOOKUP_IN_FLIGHT)
		return MakeReason(QS_PENDING, "pending invalidations (a commit's invalidations of this result are still on their way to Redis)");
	if (found == LOOKUP_UNCONFIRMED)
		return MakeReason(QS_PENDING, psprintf("pending invalidations (%s)", CommitQueueWatermarkWhy()));
	if (found == LOOKUP_REDIS_DOWN)
		return MakeReason(QS_REDIS, psprintf("redis unavailable (%s)", StoreLastError()));
	if (found == LOOKUP_BLIND)
		return MakeReason(QS_REDIS, REASON_BLIND);

	/*
	 * A standby may not have replayed the commits whose bumps it just read:
	 * what it computes may be older than the generations say.
	 */
	if (RecoveryInProgress())
		gens_ok = false;
	/* the worker runs a query only to store it */
	if (c->forced && (!gens_ok || pq->codec_problem != NULL))
	{
		FlightEnd(&c->flight, false, false);
		return MakeReason(QS_REDIS, "refresh-ahead: the result could not be stored");
	}
	if (found == LOOKUP_HIT && verify_this_hit(c) &&
		!verify_hit(pq, c->params, c->ts, c->resultdesc, c->rkey, &c->cs))
	{
		c->outcome.status = CALL_MISS;
		c->outcome.verify_mismatch = true;
		c->outcome.ttl_only = NULL;
		FlightEnd(&c->flight, true, true);
		finish_call(c);
		return NULL;
	}
	if (found == LOOKUP_HIT && !c->opts->lookup_only && (c->forced || early_refresh(c)))
	{
		/* run and store it again, under the generations just read */
		tuplestore_clear(c->ts);
		c->outcome.early_refresh = true;
		found = LOOKUP_MISS;
	}
	if (found == LOOKUP_HIT)
	{
		/*
		 * Into L1 under the counters read before the L2 lookup: a commit
		 * that bumped Redis after that lookup bumps them after it too.
		 * Not a TTL-only result: its staleness is bounded by the TTL of
		 * the call that stored it, which this call does not know (the
		 * TTL is not in the key).
		 */
		if (c->l1 && keep.len > 0 && c->cs.untracked == NIL)
			l1_copy_hit(c, &keep);
		FlightEnd(&c->flight, true, true);
		c->outcome.status = CALL_HIT;
		c->rec.bytes_read = LookupLastEntryBytes();
		finish_call(c);
		return NULL;
	}
	if (c->opts->lookup_only)
	{
		/* nothing runs or is stored: waiters of this fill go on their own */
		FlightEnd(&c->flight, false, false);
		c->outcome.status = CALL_MISS;
		c->outcome.invalidated = found == LOOKUP_STALE;
		OutcomeSetLast(&c->outcome);
		return NULL;
	}
	miss_call(c, found, &gens, gens_ok, corrupt);
	FlightEnd(&c->flight, false, c->rec.stored);
	return NULL;
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
	Call c;
	CachedPlan *cplan;
	CallReason *why;
	bool is_transient;
	CallOptions capped;

	memset(&c, 0, sizeof(c));
	INSTR_TIME_SET_CURRENT(c.start);
	OutcomeClearLast(); /* an erroring call leaves no status */
	/* taken first: the calls this one's query makes are normal calls */
	c.forced = RefreshTakeForced();
	c.query = text_to_cstring(query_text);
	c.params = params;
	c.opts = opts;
	c.ts = ts;

	settings_key(c.settings);
	c.pq = get_prepared(c.query, params, c.settings, &is_transient);
	if (is_transient)
		*transient = c.pq;

	/* the generic plan: cheap once built, gives the analysis */
	cplan = GetCachedPlan(c.pq->plansource, NULL, CurrentResourceOwner, NULL);

	/*
	 * Disabled means exactly the direct statement: no analysis, no key, no
	 * checks of ours (the executor makes its own).
	 */
	if (!cache_ext_enabled)
	{
		c.resultdesc = CreateTupleDescCopy(c.pq->plansource->resultDesc);
		ReleaseCachedPlan(cplan, CurrentResourceOwner);
		if (outdesc)
			check_result_type(outdesc, c.resultdesc);
		if (c.forced)
			skip_call(&c, MakeReason(QS_DISABLED, "disabled (cache_ext.enabled is off)"));
		else
			bypass_call(&c, MakeReason(QS_DISABLED, "disabled (cache_ext.enabled is off)"));
		return c.resultdesc;
	}

	analyze_plan(c.pq, cplan);
	/* a rule's prepared statement: only if this parse is what it runs */
	if (opts->meaning != NULL)
		check_meaning(c.pq, cplan, opts->meaning, c.settings);
	c.resultdesc = c.pq->resultdesc;
	if (outdesc)
		check_result_type(outdesc, c.resultdesc);

	/*
	 * Refuse anyone who could not run the query, on every path: a hit, and
	 * also a miss or bypass, which run a plan that may have been built for
	 * another role (with a SQL function inlined, whose EXECUTE PostgreSQL
	 * checks only when planning).
	 */
	check_privileges(c.pq, cplan);

	c.cs.describe = false;
	call_scopes(c.pq, opts, &c.cs, params);
	/* a TTL policy on a table it reads may lower its TTL (policies.c) */
	c.opts = opts = PolicyCapOptions(c.pq, opts, &capped, NULL);
	why = bypass_reasons(c.pq, &c.cs, NULL);
	if (why == NULL && c.cs.untracked != NIL && cache_ext_untracked == UNTRACKED_ERROR)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cached_query result would depend on data whose changes cache_ext does not track: %s",
						untracked_summary(c.cs.untracked)),
				 errhint("Track the tables with cache_track(), name the tables a function reads with cache_opts(depends_on => ...), or set cache_ext.untracked to 'allow' or 'bypass'.")));
	/*
	 * The local tier first: its validity is this server's own (its counters
	 * were bumped even for invalidations Redis has not taken), so it serves
	 * while Redis is down or the outbox holds bumps.
	 */
	if (why == NULL && key_and_local(&c))
	{
		ReleaseCachedPlan(cplan, CurrentResourceOwner);
		return c.resultdesc;
	}
	if (why == NULL)
	{
		const char *redis_why;

		if (!StoreUsable(&redis_why))
			why = MakeReason(QS_REDIS, redis_why);
	}
	if (why == NULL && InvalHitsBlocked(true))
		why = InvalHitsBlockedWhy(); /* outbox.c: pending, or standby lease */

	if (why == NULL)
		why = cached_call(&c, cplan);
	else
		ReleaseCachedPlan(cplan, CurrentResourceOwner);
	if (why != NULL && c.forced)
		skip_call(&c, why);
	else if (why != NULL)
		bypass_call(&c, why);
	return c.resultdesc;
}

/* cached_query_call's arguments, for RunCall */
typedef struct QueryCallArgs
{
	text *query_text;
	const CallParams *params;
	const CallOptions *opts;
	TupleDesc outdesc;
	Tuplestorestate *ts;
} QueryCallArgs;

static Datum
query_call_body(void *arg, PreparedQuery **transient)
{
	QueryCallArgs *a = (QueryCallArgs *) arg;
	TupleDesc result;

	result = cached_query_call(a->query_text, a->params, a->opts, a->outdesc,
							   a->ts, transient);
	if (*transient)
		result = CreateTupleDescCopy(result); /* outlives the statement */
	return PointerGetDatum(result);
}

/*
 * The common body of every cached_query form, as a call (RunCall): fill ts
 * and return the query's row type.
 */
TupleDesc
cached_query_common(text *query_text, const CallParams *params,
					const CallOptions *opts, TupleDesc outdesc,
					Tuplestorestate *ts)
{
	QueryCallArgs a;

	a.query_text = query_text;
	a.params = params;
	a.opts = opts;
	a.outdesc = outdesc;
	a.ts = ts;
	return (TupleDesc) DatumGetPointer(RunCall(query_call_body, &a));
}

bool cache_ext_enabled = true;
int cache_ext_default_ttl = 300;
int cache_ext_max_ttl = 7 * 24 * 3600;
double cache_ext_verify_rate = 0.0;
double cache_ext_early_refresh = 0.0;
int cache_ext_log_calls = LOG_CALLS_NONE;
int cache_ext_log_calls_level = LOG;

static const struct config_enum_entry log_calls_options[] = {
	{"none", LOG_CALLS_NONE, false},
	{"bypass", LOG_CALLS_BYPASS, false},
	{"miss", LOG_CALLS_MISS, false},
	{"all", LOG_CALLS_ALL, false},
	{NULL, 0, false}};

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
	{NULL, 0, false}};

/* The settings of the call pipeline. */
void
PipelineDefineGucs(void)
{
	DefineCustomBoolVariable("cache_ext.enabled",
							 "Use the cache in cached_query(); when off, queries run directly.",
							 NULL,
							 &cache_ext_enabled,
							 true,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);

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

	DefineCustomRealVariable("cache_ext.early_refresh",
							 "Recompute a hit before its TTL ends with a probability that grows as the end nears (XFetch's beta).",
							 "0 (the default) turns it off; 1 is XFetch's suggested value; larger values refresh earlier.  The cost is the query's mean miss time in cache_query_stats.",
							 &cache_ext_early_refresh,
							 0.0, 0.0, 100.0,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);

	DefineCustomRealVariable("cache_ext.verify_rate",
							 "Fraction of hits that are also run directly and compared with the stored result.",
							 "A mismatch is counted in cache_stats.verify_mismatches, logged, the entry is deleted and the direct result is returned.",
							 &cache_ext_verify_rate,
							 0.0, 0.0, 1.0,
							 PGC_SUSET, 0,
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
}

/*-------------------------------------------------------------------------
 *
 * rules_serve.c
 *	  Serving a statement under a cache rule (docs/rules.md): the pipeline
 *	  call at its start, and its rows sent to its destination at each read
 *	  (rules_exec.c's executor hooks call in here).
 *
 * Two kinds of statements:
 *	- parsed by the message that runs it (the first statement of a simple-
 *	  protocol query string), read whole at once: the pipeline answers it
 *	  at ExecutorStart as a cached_query call would (HIT, MISS, BYPASS: the
 *	  rows are computed then) and ExecutorRun sends the rows;
 *	- prepared before it runs (PREPARE, the extended protocol, cursors,
 *	  later statements of a query string), which may be read later, in
 *	  part, in batches: at ExecutorStart the pipeline only looks it up,
 *	  after checking its text means what its plan was made from (meaning.c).
 *	  A HIT is served.  A MISS is computed whole and stored then, with a
 *	  fresh snapshot (as the statement starting a moment later would see
 *	  the data; never later, at a read: another session's commit in
 *	  between would show, review-meaning2 N1), and served.  A BYPASS runs
 *	  nothing: the plan runs, streaming, as without the rule.  A cursor
 *	  (DECLARE) under a statement_timeout is only looked up: computing
 *	  every row at DECLARE could exceed a timeout each FETCH of the plan's
 *	  rows stays within (review-meaning M6); its MISS runs the plan.
 * The rows sent are valid while the settings of the result's key and (when
 * keyed) the role are those of the start: checked at every read.  Before
 * the first row is sent, a change makes the plan run; after, it raises.
 *
 * State (backend-local, no locks): the list of statements being served,
 * each in its executor state's memory, unlinked when that memory goes
 * (so also on errors).  RulesNesting is rules_exec.c's.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "lib/ilist.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "tcop/pquery.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/portal.h"
#include "storage/proc.h"
#include "utils/tuplestore.h"

#include "cache_ext.h"
#include "call.h"
#include "meaning.h"
#include "outcome.h"
#include "rules.h"
#include "rules_internal.h"
#include "subxact.h"

/* The pipeline call of a served statement, for RunInSubtransaction. */
typedef struct ServeArgs
{
	text *query;
	CallParams params;
	CallOptions opts;
	uint8 meaning[CE_HASH_LEN];
	Tuplestorestate *ts;
	TupleDesc rowtype;
} ServeArgs;

/* A statement being served from a tuplestore. */
typedef struct Served
{
	dlist_node node;
	QueryDesc *qd;
	EState *estate;
	Tuplestorestate *ts;
	TupleTableSlot *slot;
	uint64 sent;	   /* rows sent so far */
	bool done;		   /* every row was sent */
	bool linked;	   /* in the list served */
	bool counted;	   /* the rule's counters have it */
	bool was_hit;	   /* cache_stats counted a hit at the start */
	CallStatus status; /* the pipeline's outcome at the start */
	double us;		   /* time the start took */
	RuleDef rule;	   /* a copy: the rules may load again before a read */
	/* what its rows are valid under (the result's key) */
	uint8 settings[CE_HASH_LEN];
	bool keyed_every_setting;
	uint8 all_settings[CE_HASH_LEN];
	bool keyed_role;
	Oid userid;
	bool keyed_session_user;
	Oid session_userid;
	MemoryContextCallback gone;
} Served;

static dlist_head served = DLIST_STATIC_INIT(served);

static Served *
find_served(QueryDesc *qd)
{
	dlist_iter it;

	dlist_foreach(it, &served)
	{
		Served *s = dlist_container(Served, node, it.cur);

		if (s->qd == qd && s->estate == qd->estate)
			return s;
	}
	return NULL;
}

/* The executor state's memory is going: so is the statement's entry. */
static void
served_gone(void *arg)
{
	Served *s = (Served *) arg;

	if (s->linked)
		dlist_delete(&s->node);
	s->linked = false;
}

/* A statement that runs directly: BYPASS for cache_status() and the rule. */
static void
run_directly(RuleDef *rule, QueryStatsReason kind, const char *why)
{
	CallOutcome o;

	memset(&o, 0, sizeof(o));
	o.status = CALL_BYPASS;
	o.bypass.kind = kind;
	o.bypass.detail = why;
	OutcomeSetLast(&o);
	RulesCount(rule, CALL_BYPASS, 0);
}

static void
serve_fn(void *arg)
{
	ServeArgs *a = (ServeArgs *) arg;

	a->rowtype = cached_query_common(a->query, &a->params, &a->opts, NULL, a->ts);
}

/* The call's options: the rule's TTL and tags (also cache_explain's). */
void
RulesCallOptions(const RuleDef *rule, CallOptions *opts)
{
	parse_options(NULL, opts);
	if (rule->ttl_ms > 0)
		opts->ttl_ms = Min(rule->ttl_ms, (int64) cache_ext_max_ttl * 1000);
	opts->ntags = rule->ntags;
	opts->tags = rule->tags;
}

/*
 * The statement's parameters as the pipeline takes them, or false when
 * they are not all plain values of known types (a hook would fetch them).
 */
static bool
statement_params(QueryDesc *qd, CallParams *p)
{
	ParamListInfo pli = qd->params;
	int n = pli ? pli->numParams : 0;

	p->n = n;
	p->types = palloc(sizeof(Oid) * Max(n, 1));
	p->values = palloc(sizeof(Datum) * Max(n, 1));
	p->nulls = palloc(sizeof(bool) * Max(n, 1));
	if (n == 0)
		return true;
	if (pli->paramFetch != NULL || pli->paramCompile != NULL)
		return false;
	for (int i = 0; i < n; i++)
	{
		ParamExternData *x = &pli->params[i];

		if (!OidIsValid(x->ptype) || x->ptype == UNKNOWNOID ||
			get_typtype(x->ptype) == TYPTYPE_PSEUDO)
			return false;
		p->types[i] = x->ptype;
		p->values[i] = x->value;
		p->nulls[i] = x->isnull;
	}
	return true;
}

/* Whether the pipeline's rows have exactly the plan's row type. */
static bool
same_row_type(TupleDesc plan, TupleDesc rows)
{
	if (rows == NULL || plan->natts != rows->natts)
		return false;
	for (int i = 0; i < plan->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(plan, i);
		Form_pg_attribute b = TupleDescAttr(rows, i);

		if (a->atttypid != b->atttypid || a->atttypmod != b->atttypmod ||
			a->attisdropped || b->attisdropped)
			return false;
	}
	return true;
}

/* What keeps the rows of a pipeline call (a, which raised edata) from qd. */
static char *
pipeline_problem(QueryDesc *qd, ServeArgs *a, ErrorData *edata)
{
	char *why = NULL;

	if (edata != NULL)
	{
		why = psprintf("the cached path failed, the statement ran directly: %s",
					   edata->message);
		FreeErrorData(edata);
	}
	else if (!same_row_type(qd->tupDesc, a->rowtype))
		why = "the cached result's row type is not the statement's";
	return why;
}

/*
 * Call the pipeline for a (into a->ts), nested and in a subtransaction:
 * NULL, or why the statement must run directly.
 */
static char *
call_pipeline(QueryDesc *qd, ServeArgs *a)
{
	ErrorData *edata;

	a->rowtype = NULL;
	RulesNesting++;
	PG_TRY();
	{
		edata = RunInSubtransaction(serve_fn, a);
	}
	PG_FINALLY();
	{
		RulesNesting--;
	}
	PG_END_TRY();
	return pipeline_problem(qd, a, edata);
}

/* What the rows of s are valid under: the key of the outcome o. */
static void
note_key_context(Served *s, const CallOutcome *o)
{
	settings_key(s->settings);
	s->keyed_every_setting = o != NULL && o->keyed_every_setting;
	if (s->keyed_every_setting)
		all_settings_hash(s->all_settings);
	s->keyed_role = o == NULL || o->keyed_role;
	s->userid = GetUserId();
	s->keyed_session_user = o == NULL || o->keyed_session_user;
	s->session_userid = GetSessionUserId();
}

/* Whether the settings and role the rows of s are valid under still hold. */
static bool
key_context_holds(Served *s)
{
	uint8 now[CE_HASH_LEN];

	if ((s->keyed_role && s->userid != GetUserId()) ||
		(s->keyed_session_user && s->session_userid != GetSessionUserId()))
		return false;
	settings_key(now);
	if (memcmp(now, s->settings, CE_HASH_LEN) != 0)
		return false;
	if (s->keyed_every_setting)
	{
		all_settings_hash(now);
		if (memcmp(now, s->all_settings, CE_HASH_LEN) != 0)
			return false;
	}
	return true;
}

/* Count s under its rule once, as status. */
static void
count_once(Served *s, CallStatus status)
{
	if (s->counted)
		return;
	RulesCount(&s->rule, status, s->us);
	s->counted = true;
}

/*
 * Answer qd (the statement of rule, its text text) through the pipeline:
 * served from a tuplestore that reads send from, pending (a MISS of a
 * prepared statement), or left to run directly, saying why.
 */
void
ServeStart(QueryDesc *qd, RuleDef *rule, bool prepared, bool cursor, char *text)
{
	EState *estate = qd->estate;
	MemoryContext old;
	ServeArgs a;
	instr_time start;
	const CallOutcome *o;
	Served *s;
	char *why;

	/* what the pipeline would bypass too: the plan runs, streaming */
	if (!cache_ext_enabled)
	{
		run_directly(rule, QS_DISABLED, "disabled (cache_ext.enabled is off)");
		return;
	}
	if (IsolationUsesXactSnapshot())
	{
		run_directly(rule, QS_ISOLATION,
					 IsolationIsSerializable() ? "serializable transaction" :
												 "repeatable read transaction");
		return;
	}
	if (qd->plannedstmt->rowMarks != NIL)
	{
		run_directly(rule, QS_NOT_CACHEABLE, "FOR UPDATE/SHARE");
		return;
	}
	if (prepared && !PlanMeaningFind(qd->plannedstmt, a.meaning))
	{
		run_directly(rule, QS_NOT_CACHEABLE,
					 "a prepared statement whose plan cache_ext did not see being made (the query it was planned from is not known)");
		return;
	}

	INSTR_TIME_SET_CURRENT(start);
	old = MemoryContextSwitchTo(estate->es_query_cxt);
	if (text == NULL || !statement_params(qd, &a.params))
	{
		MemoryContextSwitchTo(old);
		run_directly(rule, QS_NOT_CACHEABLE,
					 "the statement's text or parameters cannot be read");
		return;
	}
	a.query = cstring_to_text(text);
	RulesCallOptions(rule, &a.opts);
	if (prepared)
	{
		/* the rule's tags may go with a load of the rules before a read */
		char **tags = palloc(sizeof(char *) * Max(a.opts.ntags, 1));

		for (int i = 0; i < a.opts.ntags; i++)
			tags[i] = pstrdup(a.opts.tags[i]);
		a.opts.tags = tags;
		a.opts.meaning = a.meaning;
		/* nothing runs for a BYPASS: the plan does */
		a.opts.fill_only = true;
		a.opts.lookup_only = cursor && StatementTimeout > 0;
	}
	/* in the portal's resource owner: its spill files outlive the call */
	a.ts = tuplestore_begin_heap(false, false, work_mem);
	MemoryContextSwitchTo(old);

	why = call_pipeline(qd, &a);
	o = OutcomeLast();
	if (why == NULL && prepared && o != NULL &&
		(o->status == CALL_BYPASS || (o->status == CALL_MISS && a.opts.lookup_only)))
	{
		/* nothing ran: the plan runs, as without the rule */
		tuplestore_end(a.ts);
		if (o->status == CALL_MISS)
			run_directly(rule, QS_NOT_CACHEABLE,
						 "a cursor not in the cache under a statement_timeout (computing every row at DECLARE could exceed it): it ran directly");
		else
			RulesCount(rule, CALL_BYPASS, 0);
		return;
	}
	if (why != NULL)
	{
		tuplestore_end(a.ts);
		run_directly(rule, QS_NOT_CACHEABLE, why);
		return;
	}

	old = MemoryContextSwitchTo(estate->es_query_cxt);
	s = palloc0(sizeof(Served));
	s->qd = qd;
	s->estate = estate;
	s->ts = a.ts;
	s->slot = MakeSingleTupleTableSlot(qd->tupDesc, &TTSOpsMinimalTuple);
	s->gone.func = served_gone;
	s->gone.arg = s;
	MemoryContextRegisterResetCallback(estate->es_query_cxt, &s->gone);
	dlist_push_head(&served, &s->node);
	s->linked = true;
	s->rule = *rule;
	s->was_hit = o != NULL && o->status == CALL_HIT;
	note_key_context(s, o);
	MemoryContextSwitchTo(old);
	{
		instr_time t;

		INSTR_TIME_SET_CURRENT(t);
		INSTR_TIME_SUBTRACT(t, start);
		s->us = INSTR_TIME_GET_MICROSEC(t);
	}
	/* a statement read at once is counted now; a prepared one when read */
	s->status = o ? o->status : CALL_BYPASS;
	if (!prepared)
		count_once(s, s->status);
}

/*
 * Stop serving s before its first row: the plan (which ExecutorStart
 * initialised) runs instead, as the statement would without its rule.
 */
static void
unserve(Served *s, const char *why)
{
	CallOutcome o;

	dlist_delete(&s->node);
	s->linked = false;
	tuplestore_end(s->ts);
	memset(&o, 0, sizeof(o));
	o.status = CALL_BYPASS;
	o.bypass.kind = QS_NOT_CACHEABLE;
	o.bypass.detail = why;
	OutcomeSetLast(&o);
	s->us = 0;
	count_once(s, CALL_BYPASS);
	/* the start counted a hit in cache_stats: it is a bypass (N4) */
	if (s->was_hit)
	{
		CacheStatsAdd(CS_HITS, (uint64) -1);
		CacheStatsAdd(CS_BYPASSES, 1);
	}
}

/*
 * Send at most count rows (0: all) of a served statement to its
 * destination, as standard_ExecutorRun would send the plan's.
 */
static void
send_rows(Served *s, QueryDesc *qd, ScanDirection direction, uint64 count)
{
	EState *estate = qd->estate;
	DestReceiver *dest = qd->dest;
	MemoryContext old = MemoryContextSwitchTo(estate->es_query_cxt);
	uint64 sent = 0;

	/* not reached: a served portal cannot scroll (statement_rule) */
	if (ScanDirectionIsBackward(direction))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cursor can only scan forward")));
	/*
	 * A portal rewound (PostgreSQL allows it only for SCROLL cursors, which
	 * are not served; this is insurance) reads from the first row again.
	 */
	if (ActivePortal != NULL && ActivePortal->queryDesc == qd &&
		ActivePortal->atStart && s->sent > 0)
	{
		tuplestore_rescan(s->ts);
		s->sent = 0;
		s->done = false;
	}
	if (qd->totaltime)
		InstrStartNode(qd->totaltime);
	estate->es_processed = 0;
	dest->rStartup(dest, qd->operation, qd->tupDesc);
	if (ScanDirectionIsForward(direction))
	{
		while (!s->done && (count == 0 || sent < count))
		{
			CHECK_FOR_INTERRUPTS();
			if (!tuplestore_gettupleslot(s->ts, true, false, s->slot))
			{
				s->done = true;
				break;
			}
			sent++;
			if (!dest->receiveSlot(s->slot, dest))
				break;
		}
	}
	estate->es_processed = sent;
	s->sent += sent;
	dest->rShutdown(dest);
	if (qd->totaltime)
		InstrStopNode(qd->totaltime, (double) sent);
	MemoryContextSwitchTo(old);
}

/*
 * A read of qd: true when it was served here; false when the plan must
 * run (not served, or no longer).
 */
bool
ServeRun(QueryDesc *qd, ScanDirection direction, uint64 count)
{
	Served *s = dlist_is_empty(&served) ? NULL : find_served(qd);

	if (s == NULL)
		return false;
	/* every row sent: what is left to read (nothing) is the same (N6) */
	if (!s->done && s->sent < (uint64) tuplestore_tuple_count(s->ts) &&
		!key_context_holds(s))
	{
		if (s->sent > 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("settings or the role changed while a statement served by a cache rule was being read"),
					 errdetail("Its rows were computed when it started; the rest would not be what the statement computes now."),
					 errhint("Read the statement's rows before changing settings or the role, or drop its cache rule.")));
		unserve(s, "settings or the role changed between the start of the statement and its first fetch: it ran directly");
		return false;
	}
	count_once(s, s->status);
	send_rows(s, qd, direction, count);
	return true;
}

/* The end of qd: its rows go; a statement never read is counted now. */
void
ServeEnd(QueryDesc *qd)
{
	Served *s = dlist_is_empty(&served) ? NULL : find_served(qd);

	if (s == NULL)
		return;
	count_once(s, s->status);
	dlist_delete(&s->node);
	s->linked = false;
	tuplestore_end(s->ts);
}

/*-------------------------------------------------------------------------
 *
 * rules_exec.c
 *	  Serving statements under cache rules (docs/rules.md): executor hooks
 *	  that answer a top-level SELECT whose shape has a rule through the
 *	  call pipeline, as cached_query would, and send its rows to the
 *	  statement's own destination.
 *
 * The flow of a statement:
 *	1. ExecutorStart: standard_ExecutorStart runs first, so the executor
 *	   checks privileges (and the planner applied row-level security)
 *	   exactly as for the direct statement; its errors are the statement's.
 *	2. If the statement is served (statement_served: the top-level SELECT
 *	   of a portal that is neither scrollable nor holdable, not in a
 *	   function, not EXPLAIN or COPY, whose query id has a rule), its text
 *	   (the PREPARE's body for EXECUTE) and parameter values go through
 *	   the call pipeline (cached_query_common), which decides HIT, MISS or
 *	   BYPASS with every rule cached_query has and fills a tuplestore: the
 *	   stored rows, or the rows of a run with its own fresh snapshot (stored
 *	   only when the run completed).  That happens inside a subtransaction:
 *	   if anything on the cached path fails, the statement runs directly,
 *	   as if it had no rule; a cancel is raised as it was.
 *	3. ExecutorRun sends the tuplestore's rows to queryDesc->dest with the
 *	   plan's row description (the pipeline's row type is checked to be
 *	   the plan's first), at most count of them per call and in order, so
 *	   Execute with a row limit and FETCH read the rows in batches.
 *	4. ExecutorEnd frees the tuplestore.  The plan itself never runs.
 * The rows are computed whole at ExecutorStart (as DECLARE's snapshot
 * would see them); a statement read only partly still computes them all.
 * A statement prepared before it runs is served only when its text parsed
 * now means what its plan was made from (meaning.c); one whose settings or
 * role change between its start and its reads is handled as 'activity'
 * below says.
 *
 * State (backend-local, no locks): nesting (how deep in utility
 * statements, planning and execution this backend is: only level 0 is
 * served) and the list of statements being served, each in its executor
 * state's memory, unlinked when that memory goes (so also on errors).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "common/keywords.h"
#include "executor/executor.h"
#include "lib/ilist.h"
#include "miscadmin.h"
#include "optimizer/planner.h"
#include "parser/analyze.h"
#include "parser/scanner.h"
#include "portability/instr_time.h"
#include "tcop/pquery.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "parser/scansup.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/portal.h"
#include "utils/queryjumble.h"
#include "utils/syscache.h"
#include "utils/tuplestore.h"

#include "cache_ext.h"
#include "call.h"
#include "meaning.h"
#include "outcome.h"
#include "rules.h"
#include "subxact.h"

static ExecutorStart_hook_type prev_executor_start = NULL;
static ExecutorRun_hook_type prev_executor_run = NULL;
static ExecutorFinish_hook_type prev_executor_finish = NULL;
static ExecutorEnd_hook_type prev_executor_end = NULL;
static ProcessUtility_hook_type prev_utility = NULL;
static planner_hook_type prev_planner = NULL;
static post_parse_analyze_hook_type prev_post_parse_analyze = NULL;

/*
 * What the served text is re-parsed against (review-rules RR1-RR3, and
 * review-rules2 RS1-RS8): the pipeline parses the statement's text again,
 * now, and the statement that runs must mean the same.  A statement parsed
 * in the very message that runs it (the first statement of a simple-
 * protocol query string) does: nothing can change in between.  Any other
 * (PREPARE, a named or unnamed statement of the extended protocol, a
 * cursor, a later statement of a query string) may have been parsed under
 * other settings, catalogs (casts, collations, enum labels, shadowing
 * objects...) or role: it is served only when the meaning of the query
 * its plan was made from (recorded by the planner hook, meaning.c) is the
 * meaning of the pipeline's parse, which the pipeline checks.
 *
 * last_parse_*: the last statement parsed at the top level, by the
 * address of its query string (the message's) and its location.  The
 * message buffer is reused, but a statement whose portal's text is that
 * buffer is one exec_simple_query has just analysed.  Backend-local.
 */
static int loading_rules = 0;
static const char *last_parse_src = NULL;
static int last_parse_loc = -1;

/* utility statements, planning and execution this backend is inside */
static int nesting = 0;

/* inside a top-level EXECUTE (rules_utility): its statement may be served */
static bool toplevel_execute = false;

/*
 * What this backend has run at the top level, counted: a utility statement
 * but FETCH, any statement started or run.  A served statement's rows are
 * computed when it starts; they are its rows while the settings and the
 * role are those it started under.  Before its first rows are read, any
 * activity (which may have changed them: SET, set_config() in a SELECT)
 * makes the plan run instead.  Once it has been read in part, activity
 * makes it compare every setting and the role with those of its first
 * read, and raise if they differ.
 */
static uint64 activity = 0;

/* A statement being served from a tuplestore. */
typedef struct Served
{
	dlist_node node;
	QueryDesc *qd;
	EState *estate;
	Tuplestorestate *ts;
	TupleTableSlot *slot;
	uint64 sent; /* rows sent so far */
	bool done;	 /* every row was sent */
	bool linked; /* in the list served */
	/* what its rows were computed under (see activity above) */
	uint64 activity;
	bool have_settings; /* settings, userid, session_userid are set */
	uint8 settings[CE_HASH_LEN];
	Oid userid;
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

/*
 * The rule of the statement qd starts, when it is one a rule serves: the
 * one statement of the active portal (so not a statement of a function,
 * of EXPLAIN, of COPY or CREATE TABLE AS, which have other portals or
 * none), a plain SELECT, in a portal that cannot scroll backwards or be
 * held past its transaction, at nesting level 0.  NULL otherwise.
 */
static RuleDef *
statement_rule(QueryDesc *qd, int eflags)
{
	PlannedStmt *ps = qd->plannedstmt;
	Portal portal = ActivePortal;
	RuleDef *volatile rule = NULL;

	if (nesting != 0 || IsParallelWorker() || portal == NULL)
		return NULL;

	/*
	 * A portal the client's own statement started: the query string being
	 * run (simple protocol, DECLARE; a copy of it at Bind), or the one of a
	 * top-level EXECUTE.  Not a cursor some code opens at nesting level 0
	 * outside the executor (a deferred trigger's, at COMMIT).
	 */
	if (!toplevel_execute &&
		(qd->sourceText == NULL || debug_query_string == NULL ||
		 (qd->sourceText != debug_query_string &&
		  strcmp(qd->sourceText, debug_query_string) != 0)))
		return NULL;
	if (qd->operation != CMD_SELECT || ps->commandType != CMD_SELECT ||
		ps->utilityStmt != NULL || ps->hasModifyingCTE || ps->queryId == 0)
		return NULL;
	if (eflags & (EXEC_FLAG_EXPLAIN_ONLY | EXEC_FLAG_BACKWARD | EXEC_FLAG_MARK | EXEC_FLAG_REWIND))
		return NULL;
	if (portal->strategy != PORTAL_ONE_SELECT ||
		list_length(portal->stmts) != 1 || linitial(portal->stmts) != ps ||
		(portal->cursorOptions & (CURSOR_OPT_SCROLL | CURSOR_OPT_HOLD)))
		return NULL;
	/* (loading the rules parses their texts: not the session's statements) */
	loading_rules++;
	PG_TRY();
	{
		rule = RulesMatch(ps->queryId);
	}
	PG_FINALLY();
	{
		loading_rules--;
	}
	PG_END_TRY();
	return rule;
}

/*
 * The statement in "PREPARE name [(types)] AS statement" (keyword "as")
 * or "DECLARE name ... CURSOR FOR statement" (keyword "for"): the text
 * after the first keyword outside parentheses, found with the core
 * scanner; NULL when there is none.
 */
static char *
text_after_keyword(const char *text, const char *keyword)
{
	core_yyscan_t yyscanner;
	core_yy_extra_type yyextra;
	core_YYSTYPE yylval;
	YYLTYPE yylloc;
	int kw = ScanKeywordLookup(keyword, &ScanKeywords);
	int depth = 0;
	bool after = false;
	char *body = NULL;

	if (kw < 0)
		return NULL;
	yyscanner = scanner_init(text, &yyextra, &ScanKeywords, ScanKeywordTokens);
	for (;;)
	{
		int tok = core_yylex(&yylval, &yylloc, yyscanner);

		if (tok == 0)
			break;
		if (after)
		{
			body = pstrdup(text + yylloc);
			break;
		}
		if (tok == '(')
			depth++;
		else if (tok == ')')
			depth--;
		else if (depth == 0 && tok == ScanKeywordTokens[kw])
			after = true;
	}
	scanner_finish(yyscanner);
	return body;
}

/* Whether text starts with keyword (lower case), as a whole word. */
static bool
starts_with_word(const char *text, const char *keyword)
{
	size_t n = strlen(keyword);

	return pg_strncasecmp(text, keyword, n) == 0 && scanner_isspace(text[n]);
}

/*
 * The statement's own text: its part of the source text (which may hold
 * several statements), for EXECUTE the body of the PREPARE it runs, for a
 * cursor the query of its DECLARE; without surrounding white space.  NULL
 * when it cannot be found.
 */
static char *
statement_text_of(const char *src, int loc, int len)
{
	size_t srclen;
	char *text;
	const char *p;

	if (src == NULL)
		return NULL;
	srclen = strlen(src);
	if (loc < 0)
		loc = 0;
	if ((size_t) loc > srclen || len < 0 || (size_t) loc + len > srclen)
		return NULL;
	text = len > 0 ? pnstrdup(src + loc, len) : pstrdup(src + loc);

	/*
	 * EXECUTE's statement is located at its PREPARE; a cursor's is not
	 * located at all (the whole source text, which begins with DECLARE
	 * when it is one statement: the pipeline refuses anything else).
	 */
	for (p = text; *p && scanner_isspace(*p); p++)
		;
	if (starts_with_word(p, "prepare"))
		text = text_after_keyword(p, "as");
	else if (starts_with_word(p, "declare"))
		text = text_after_keyword(p, "for");
	else
		text = (char *) p;
	if (text == NULL)
		return NULL;
	/* the same statement with other spacing or a final ';': the same text */
	len = strlen(text);
	while (len > 0 && (scanner_isspace(text[len - 1]) || text[len - 1] == ';'))
		len--;
	return pnstrdup(text, len);
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

/*
 * Whether re-parsing qd's text now gives the statement that runs, without
 * comparing meanings: it was parsed by the message that runs it, as the
 * first statement of its query string (see last_parse_src above).
 */
static bool
parsed_as_now(QueryDesc *qd)
{
	const char *src = qd->sourceText;
	int loc = qd->plannedstmt->stmt_location;

	if (src != NULL && loc > 0 && memchr(src, ';', Min((size_t) loc, strlen(src))))
		return false;
	if (src == NULL || src != last_parse_src || loc != last_parse_loc)
		return false;
	/* used once: a later allocation at that address is not this parse */
	last_parse_src = NULL;
	return true;
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

/* The pipeline call of a served statement, for RunInSubtransaction. */
typedef struct ServeArgs
{
	text *query;
	CallParams params;
	CallOptions opts;
	Tuplestorestate *ts;
	TupleDesc rowtype;
} ServeArgs;

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
 * Answer the statement qd (whose rule is rule) through the pipeline into
 * a tuplestore that ExecutorRun will send from; or leave it to run
 * directly, saying why.
 */
static void
serve_start(QueryDesc *qd, RuleDef *rule)
{
	EState *estate = qd->estate;
	MemoryContext old;
	ServeArgs a;
	char *text;
	ErrorData *edata;
	instr_time start;
	const CallOutcome *o;
	Served *s;
	bool prepared;
	uint8 meaning[CE_HASH_LEN];

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
	/*
	 * Not parsed by the message that runs it: served only when the parse
	 * of its text now is the query its plan was made from (meaning.c).
	 */
	prepared = !parsed_as_now(qd);
	if (prepared && !PlanMeaningFind(qd->plannedstmt, meaning))
	{
		run_directly(rule, QS_NOT_CACHEABLE,
					 "a statement whose plan was not made at the top level (the query it was planned from is not known)");
		return;
	}

	INSTR_TIME_SET_CURRENT(start);
	old = MemoryContextSwitchTo(estate->es_query_cxt);
	text = statement_text_of(qd->sourceText, qd->plannedstmt->stmt_location,
							 qd->plannedstmt->stmt_len);
	if (text == NULL || !statement_params(qd, &a.params))
	{
		MemoryContextSwitchTo(old);
		run_directly(rule, QS_NOT_CACHEABLE,
					 "the statement's text or parameters cannot be read");
		return;
	}
	a.query = cstring_to_text(text);
	RulesCallOptions(rule, &a.opts);
	a.opts.meaning = prepared ? meaning : NULL;
	/* in the portal's resource owner: its spill files outlive the call */
	a.ts = tuplestore_begin_heap(false, false, work_mem);
	a.rowtype = NULL;
	MemoryContextSwitchTo(old);

	nesting++;
	PG_TRY();
	{
		edata = RunInSubtransaction(serve_fn, &a);
	}
	PG_FINALLY();
	{
		nesting--;
	}
	PG_END_TRY();

	if (edata != NULL || !same_row_type(qd->tupDesc, a.rowtype))
	{
		tuplestore_end(a.ts);
		run_directly(rule, QS_NOT_CACHEABLE,
					 edata ? psprintf("the cached path failed, the statement ran directly: %s",
									  edata->message) :
							 "the cached result's row type is not the statement's");
		if (edata)
			FreeErrorData(edata);
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
	s->activity = activity;
	MemoryContextSwitchTo(old);

	o = OutcomeLast();
	{
		instr_time t;

		INSTR_TIME_SET_CURRENT(t);
		INSTR_TIME_SUBTRACT(t, start);
		RulesCount(rule, o ? o->status : CALL_BYPASS, INSTR_TIME_GET_MICROSEC(t));
	}
}

/*
 * Send at most count rows (0: all) of a served statement to its
 * destination, as standard_ExecutorRun would send the plan's.
 */
static void
serve_run(Served *s, QueryDesc *qd, ScanDirection direction, uint64 count)
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
 * Whether the rows of s are still what the statement would compute if it
 * were read now (see activity above).
 */
static bool
served_still_valid(Served *s)
{
	uint8 now[CE_HASH_LEN];

	/* every row was sent: what is left to read (nothing) is the same */
	if (s->activity == activity || s->done)
		return true;
	if (!s->have_settings)
		return false;
	all_settings_hash(now);
	if (s->userid != GetUserId() || s->session_userid != GetSessionUserId() ||
		memcmp(now, s->settings, CE_HASH_LEN) != 0)
		return false;
	s->activity = activity;
	return true;
}

/* After a read that left rows: what later reads must still run under. */
static void
served_note_settings(Served *s)
{
	if (s->done || s->have_settings)
		return;
	all_settings_hash(s->settings);
	s->userid = GetUserId();
	s->session_userid = GetSessionUserId();
	s->have_settings = true;
}

/*
 * Stop serving s: before its first row, the plan (which ExecutorStart
 * initialised) runs instead, as the statement would without its rule.
 * After rows were sent, the rest cannot be the direct plan's: raise.
 */
static void
unserve(Served *s)
{
	CallOutcome o;

	if (s->have_settings || s->sent > 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("settings or the role changed while a statement served by a cache rule was being read"),
				 errdetail("Its rows were computed when it started; the rest would not be what the statement computes now."),
				 errhint("Read the statement's rows before changing settings or the role, or drop its cache rule.")));
	dlist_delete(&s->node);
	s->linked = false;
	tuplestore_end(s->ts);
	memset(&o, 0, sizeof(o));
	o.status = CALL_BYPASS;
	o.bypass.kind = QS_NOT_CACHEABLE;
	o.bypass.detail = "settings or the role changed between the start of the statement and its first fetch: it ran directly";
	OutcomeSetLast(&o);
}

static void
rules_executor_start(QueryDesc *qd, int eflags)
{
	RuleDef *rule;

	activity++;

	/* initial partition pruning may run functions: they nest */
	nesting++;
	PG_TRY();
	{
		if (prev_executor_start)
			prev_executor_start(qd, eflags);
		else
			standard_ExecutorStart(qd, eflags);
	}
	PG_FINALLY();
	{
		nesting--;
	}
	PG_END_TRY();
	rule = statement_rule(qd, eflags);
	if (rule != NULL)
		serve_start(qd, rule);
}

static void
rules_executor_run(QueryDesc *qd, ScanDirection direction, uint64 count,
				   bool execute_once)
{
	Served *s = dlist_is_empty(&served) ? NULL : find_served(qd);

	if (s != NULL && !served_still_valid(s))
	{
		unserve(s);
		s = NULL;
	}
	if (s != NULL)
	{
		serve_run(s, qd, direction, count);
		served_note_settings(s);
		return;
	}
	activity++;
	nesting++;
	PG_TRY();
	{
		if (prev_executor_run)
			prev_executor_run(qd, direction, count, execute_once);
		else
			standard_ExecutorRun(qd, direction, count, execute_once);
	}
	PG_FINALLY();
	{
		nesting--;
	}
	PG_END_TRY();
}

static void
rules_executor_finish(QueryDesc *qd)
{
	nesting++;
	PG_TRY();
	{
		if (prev_executor_finish)
			prev_executor_finish(qd);
		else
			standard_ExecutorFinish(qd);
	}
	PG_FINALLY();
	{
		nesting--;
	}
	PG_END_TRY();
}

static void
rules_executor_end(QueryDesc *qd)
{
	Served *s = dlist_is_empty(&served) ? NULL : find_served(qd);

	if (s != NULL)
	{
		dlist_delete(&s->node);
		s->linked = false;
		tuplestore_end(s->ts);
	}
	if (prev_executor_end)
		prev_executor_end(qd);
	else
		standard_ExecutorEnd(qd);
}

/*
 * Utility statements nest, but for the three that run a top-level
 * statement's plain SELECT in a portal of their own: EXECUTE, DECLARE
 * CURSOR and FETCH.
 */
static void
rules_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
			  ProcessUtilityContext context, ParamListInfo params,
			  QueryEnvironment *queryEnv, DestReceiver *dest,
			  QueryCompletion *qc)
{
	Node *n = pstmt->utilityStmt;
	bool nests = !(IsA(n, ExecuteStmt) || IsA(n, DeclareCursorStmt) ||
				   IsA(n, FetchStmt));
	bool saved_execute = toplevel_execute;

	/*
	 * EXECUTE, DECLARE, FETCH and the rest run no statement parsed just
	 * now: whatever runs under them was parsed before (parsed_as_now).
	 */
	last_parse_src = NULL;
	if (!IsA(n, FetchStmt))
		activity++;

	if (nests)
		nesting++;
	else if (IsA(n, ExecuteStmt))
		toplevel_execute = nesting == 0 && context == PROCESS_UTILITY_TOPLEVEL;
	PG_TRY();
	{
		if (prev_utility)
			prev_utility(pstmt, queryString, readOnlyTree, context, params,
						 queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
									params, queryEnv, dest, qc);
	}
	PG_FINALLY();
	{
		if (nests)
			nesting--;
		toplevel_execute = saved_execute;
	}
	PG_END_TRY();
}

/*
 * Whether a query being planned at the top level is a plain SELECT with a
 * rule: its plan's meaning is recorded (meaning.c).
 */
static bool
planning_rule_statement(Query *parse)
{
	RuleDef *volatile rule = NULL;

	if (nesting != 0 || loading_rules > 0 || IsParallelWorker() ||
		parse->commandType != CMD_SELECT || parse->utilityStmt != NULL ||
		parse->queryId == 0 || parse->hasModifyingCTE)
		return false;
	loading_rules++;
	PG_TRY();
	{
		rule = RulesMatch(parse->queryId);
	}
	PG_FINALLY();
	{
		loading_rules--;
	}
	PG_END_TRY();
	return rule != NULL;
}

/*
 * Planning nests: a function the planner runs may open a cursor.  The
 * plan of a statement with a rule is recorded with the meaning of the
 * query it was made from, taken before the planner changes the query.
 */
static PlannedStmt *
rules_planner(Query *parse, const char *query_string, int cursorOptions,
			  ParamListInfo boundParams)
{
	PlannedStmt *result;
	bool record = planning_rule_statement(parse);
	uint8 meaning[CE_HASH_LEN];

	if (record)
		MeaningOfQuery((Node *) parse, meaning);
	nesting++;
	PG_TRY();
	{
		if (prev_planner)
			result = prev_planner(parse, query_string, cursorOptions, boundParams);
		else
			result = standard_planner(parse, query_string, cursorOptions, boundParams);
	}
	PG_FINALLY();
	{
		nesting--;
	}
	PG_END_TRY();
	if (record)
		PlanMeaningRecord(result, meaning);
	return result;
}

/*
 * A cursor's query has no query identifier of its own (PostgreSQL
 * identifies the DECLARE statement by its text): give it the one the
 * same SELECT would have, so that its rule applies.
 */
static void
rules_post_parse_analyze(ParseState *pstate, Query *query, JumbleState *jstate)
{
	if (prev_post_parse_analyze)
		prev_post_parse_analyze(pstate, query, jstate);
	if (query->commandType != CMD_UTILITY && IsTransactionState() &&
		loading_rules == 0 && nesting == 0)
	{
		last_parse_src = pstate->p_sourcetext;
		last_parse_loc = query->stmt_location;
	}
	if (IsQueryIdEnabled() && query->utilityStmt != NULL &&
		IsA(query->utilityStmt, DeclareCursorStmt))
	{
		DeclareCursorStmt *dc = (DeclareCursorStmt *) query->utilityStmt;

		if (dc->query != NULL && IsA(dc->query, Query) &&
			((Query *) dc->query)->queryId == 0)
			(void) JumbleQuery((Query *) dc->query, pstate->p_sourcetext);
	}
}

/*
 * Install the hooks (from _PG_init, preloaded or not) and ask PostgreSQL
 * to compute query identifiers when compute_query_id is auto.
 */
void
RulesInit(void)
{
	EnableQueryId();
	prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = rules_executor_start;
	prev_executor_run = ExecutorRun_hook;
	ExecutorRun_hook = rules_executor_run;
	prev_executor_finish = ExecutorFinish_hook;
	ExecutorFinish_hook = rules_executor_finish;
	prev_executor_end = ExecutorEnd_hook;
	ExecutorEnd_hook = rules_executor_end;
	prev_utility = ProcessUtility_hook;
	ProcessUtility_hook = rules_utility;
	prev_planner = planner_hook;
	planner_hook = rules_planner;
	prev_post_parse_analyze = post_parse_analyze_hook;
	post_parse_analyze_hook = rules_post_parse_analyze;
}

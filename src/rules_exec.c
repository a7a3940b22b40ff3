/*-------------------------------------------------------------------------
 *
 * rules_exec.c
 *	  Serving statements under cache rules (docs/rules.md): the hooks.
 *	  ExecutorStart finds the top-level SELECT whose shape has a rule and
 *	  hands it to rules_serve.c (the pipeline call, the reads); the planner
 *	  hook records what each plan of such a statement was made from
 *	  (meaning.c); the parse analysis hook notes the statement the current
 *	  simple-protocol message parsed; the utility hook tracks nesting.
 *
 * The flow of a statement:
 *	1. ExecutorStart: standard_ExecutorStart runs first, so the executor
 *	   checks privileges (and the planner applied row-level security)
 *	   exactly as for the direct statement; its errors are the statement's.
 *	2. If the statement is served (statement_rule: the top-level SELECT of
 *	   a portal that is neither scrollable nor holdable, not in a function,
 *	   not EXPLAIN or COPY, whose query id has a rule), its text (the
 *	   PREPARE's body for EXECUTE, the DECLARE's query for a cursor) goes
 *	   to ServeStart with whether it was parsed before it runs.
 *	3. ExecutorRun: rules_serve.c sends the rows, or the plan runs.
 *	4. ExecutorEnd frees what serving held.
 *
 * State (backend-local, no locks): RulesNesting (rules_internal.h), the
 * last statement parsed at the top level (last_parse_*), the place of the
 * DECLARE being run (declare_*).
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
#include "rules_internal.h"
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

/* rules_internal.h says what it is */
int RulesNesting = 0;

/* inside a top-level EXECUTE (rules_utility): its statement may be served */
static bool toplevel_execute = false;

/* the DECLARE CURSOR being run: its query string and its place in it */
static const char *declare_src = NULL;
static int declare_loc = 0;
static int declare_len = 0;

/*
 * The rule of queryid, or NULL (loading the rules parses their texts: not
 * the session's statements, which loading_rules keeps apart).
 */
static RuleDef *
rule_of(uint64 queryid)
{
	RuleDef *volatile rule = NULL;

	loading_rules++;
	PG_TRY();
	{
		rule = RulesMatch(queryid);
	}
	PG_FINALLY();
	{
		loading_rules--;
	}
	PG_END_TRY();
	return rule;
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

	if (RulesNesting != 0 || IsParallelWorker() || portal == NULL)
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
	return rule_of(ps->queryId);
}

/*
 * Where the first token of text is (after white space and comments), and
 * whether it is keyword; the statement in "PREPARE name [(types)] AS
 * statement" (keyword "as") or "DECLARE name ... CURSOR FOR statement"
 * (keyword "for") is the text after the first such keyword outside
 * parentheses.  Both found with the core scanner.
 */
static char *
text_after_keyword(const char *text, const char *first, const char *keyword,
				   bool *is_first)
{
	core_yyscan_t yyscanner;
	core_yy_extra_type yyextra;
	core_YYSTYPE yylval;
	YYLTYPE yylloc;
	int kw_first = ScanKeywordLookup(first, &ScanKeywords);
	int kw = ScanKeywordLookup(keyword, &ScanKeywords);
	int depth = 0;
	int ntok = 0;
	bool after = false;
	char *body = NULL;

	*is_first = false;
	if (kw < 0 || kw_first < 0)
		return NULL;
	yyscanner = scanner_init(text, &yyextra, &ScanKeywords, ScanKeywordTokens);
	for (;;)
	{
		int tok = core_yylex(&yylval, &yylloc, yyscanner);

		if (tok == 0)
			break;
		if (ntok++ == 0)
		{
			*is_first = tok == ScanKeywordTokens[kw_first];
			if (!*is_first)
			{
				/* not that statement: the text from its first token */
				body = pstrdup(text + yylloc);
				break;
			}
		}
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

/*
 * The statement's own text: its part of the source text (which may hold
 * several statements), for EXECUTE the body of the PREPARE it runs, for a
 * cursor the query of its DECLARE (the DECLARE being run: declare_*);
 * without surrounding white space, comments before it or a final ';'.
 * NULL when it cannot be found.
 */
static char *
statement_text(QueryDesc *qd)
{
	const char *src = qd->sourceText;
	int loc = qd->plannedstmt->stmt_location;
	int len = qd->plannedstmt->stmt_len;
	bool cursor = declare_src != NULL && src != NULL && strcmp(src, declare_src) == 0;
	size_t srclen;
	char *text;
	bool is_first;

	if (src == NULL)
		return NULL;
	if (cursor)
	{
		/* a cursor's query is not located: its DECLARE is */
		loc = declare_loc;
		len = declare_len;
	}
	srclen = strlen(src);
	if (loc < 0)
		loc = 0;
	if ((size_t) loc > srclen || len < 0 || (size_t) loc + len > srclen)
		return NULL;
	text = len > 0 ? pnstrdup(src + loc, len) : pstrdup(src + loc);
	text = cursor ? text_after_keyword(text, "declare", "for", &is_first) :
					text_after_keyword(text, "prepare", "as", &is_first);
	if (text == NULL || (cursor && !is_first))
		return NULL;
	/* the same statement with other spacing or a final ';': the same text */
	len = strlen(text);
	while (len > 0 && (scanner_isspace(text[len - 1]) || text[len - 1] == ';'))
		len--;
	return pnstrdup(text, len);
}

/*
 * Whether re-parsing qd's text now gives the statement that runs, without
 * comparing meanings: it was parsed by the message that runs it, as the
 * first statement of its query string (see last_parse_src above).
 */
static bool
after_first_statement(const char *src, int loc)
{
	return loc > 0 && memchr(src, ';', Min((size_t) loc, strlen(src))) != NULL;
}

static bool
parsed_as_now(QueryDesc *qd)
{
	const char *src = qd->sourceText;
	int loc = qd->plannedstmt->stmt_location;

	/*
	 * The message's own buffer (debug_query_string): a portal's copy of an
	 * older text cannot be at that address while the message runs.
	 */
	if (src == NULL || src != last_parse_src || src != debug_query_string ||
		loc != last_parse_loc || after_first_statement(src, loc))
		return false;
	/* used once: a later allocation at that address is not this parse */
	last_parse_src = NULL;
	return true;
}

static void
rules_executor_start(QueryDesc *qd, int eflags)
{
	RuleDef *rule;

	/* initial partition pruning may run functions: they nest */
	RulesNesting++;
	PG_TRY();
	{
		if (prev_executor_start)
			prev_executor_start(qd, eflags);
		else
			standard_ExecutorStart(qd, eflags);
	}
	PG_FINALLY();
	{
		RulesNesting--;
	}
	PG_END_TRY();
	rule = statement_rule(qd, eflags);
	if (rule != NULL)
	{
		bool prepared = !parsed_as_now(qd);
		MemoryContext old = MemoryContextSwitchTo(qd->estate->es_query_cxt);
		char *text = statement_text(qd);

		MemoryContextSwitchTo(old);
		ServeStart(qd, rule, prepared, declare_src != NULL, text);
	}
}

static void
rules_executor_run(QueryDesc *qd, ScanDirection direction, uint64 count,
				   bool execute_once)
{
	if (ServeRun(qd, direction, count))
		return;
	RulesNesting++;
	PG_TRY();
	{
		if (prev_executor_run)
			prev_executor_run(qd, direction, count, execute_once);
		else
			standard_ExecutorRun(qd, direction, count, execute_once);
	}
	PG_FINALLY();
	{
		RulesNesting--;
	}
	PG_END_TRY();
}

static void
rules_executor_finish(QueryDesc *qd)
{
	RulesNesting++;
	PG_TRY();
	{
		if (prev_executor_finish)
			prev_executor_finish(qd);
		else
			standard_ExecutorFinish(qd);
	}
	PG_FINALLY();
	{
		RulesNesting--;
	}
	PG_END_TRY();
}

static void
rules_executor_end(QueryDesc *qd)
{
	ServeEnd(qd);
	if (prev_executor_end)
		prev_executor_end(qd);
	else
		standard_ExecutorEnd(qd);
}

/*
 * Utility statements nest, but for the three that run a top-level
 * statement's plain SELECT in a portal of their own: EXECUTE, DECLARE
 * CURSOR and FETCH; and EXPLAIN, whose plans of a prepared statement
 * (EXPLAIN EXECUTE) are that statement's, to be recorded (its own
 * execution, EXPLAIN ANALYZE, is in a portal no rule serves).
 */
static void
rules_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
			  ProcessUtilityContext context, ParamListInfo params,
			  QueryEnvironment *queryEnv, DestReceiver *dest,
			  QueryCompletion *qc)
{
	Node *n = pstmt->utilityStmt;
	bool nests = !(IsA(n, ExecuteStmt) || IsA(n, DeclareCursorStmt) ||
				   IsA(n, FetchStmt) || IsA(n, ExplainStmt));
	bool saved_execute = toplevel_execute;
	const char *saved_declare = declare_src;

	/*
	 * EXECUTE, DECLARE, FETCH and the rest run no statement parsed just
	 * now: whatever runs under them was parsed before (parsed_as_now).
	 */
	last_parse_src = NULL;

	if (nests)
		RulesNesting++;
	else if (IsA(n, ExecuteStmt))
		toplevel_execute = RulesNesting == 0 && context == PROCESS_UTILITY_TOPLEVEL;
	else if (IsA(n, DeclareCursorStmt))
	{
		declare_src = queryString;
		declare_loc = pstmt->stmt_location;
		declare_len = pstmt->stmt_len;
	}
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
			RulesNesting--;
		toplevel_execute = saved_execute;
		declare_src = saved_declare;
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
	if (RulesNesting != 0 || loading_rules > 0 || IsParallelWorker() ||
		parse->commandType != CMD_SELECT || parse->utilityStmt != NULL ||
		parse->queryId == 0 || parse->hasModifyingCTE)
		return false;
	return rule_of(parse->queryId) != NULL;
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
	{
		uint8 query[CE_HASH_LEN];
		uint8 settings[CE_HASH_LEN];

		MeaningOfQuery((Node *) parse, query);
		settings_key(settings);
		MeaningUnderSettings(query, settings, meaning);
	}
	RulesNesting++;
	PG_TRY();
	{
		if (prev_planner)
			result = prev_planner(parse, query_string, cursorOptions, boundParams);
		else
			result = standard_planner(parse, query_string, cursorOptions, boundParams);
	}
	PG_FINALLY();
	{
		RulesNesting--;
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
		loading_rules == 0 && RulesNesting == 0)
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

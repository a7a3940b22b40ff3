/*-------------------------------------------------------------------------
 *
 * analysis.c
 *	  What a prepared statement means beyond its text, for the entry key and
 *	  for cacheability: the definition hash (rewritten query tree, the
 *	  versions of the user functions it calls, the plan's constants, the
 *	  shapes of composite result types) and the judgement of user functions
 *	  that planning inlined or ran (pin_folded_functions), with the bodies of
 *	  inlined SQL functions checked in a subtransaction.
 *
 * No state of its own: it fills the PreparedQuery it is given.
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
#include "subxact.h"

/*
 * What the query means beyond its text: the rewritten query tree (views
 * expanded, so CREATE OR REPLACE VIEW changes it) and the version of every
 * user-defined function the plan calls (CREATE OR REPLACE FUNCTION keeps the
 * OID but writes a new pg_proc row).  Entries made under an old definition
 * then never match.  Computed once per plan generation.
 */
static int
const_text_cmp(const ListCell *a, const ListCell *b)
{
	return strcmp((char *) lfirst(a), (char *) lfirst(b));
}

/*
 * The constants of the finished plan, as text: what planning resolved by
 * name or computed (a reg* literal or 'now' in the body of an inlined SQL
 * function, a folded IMMUTABLE function's value) is not in the query tree.
 * Their locations are left out: they say nothing about the value.
 */
static void
add_plan_constants(StringInfo m, PlannedStmt *stmt)
{
	char *all[2];
	ListCell *lc;
	List *consts = NIL;
	char *prev = NULL;

	all[0] = nodeToString(stmt->planTree);
	all[1] = nodeToString(stmt->subplans);
	for (int i = 0; i < 2; i++)
	{
		char *p = all[i];

		while ((p = strstr(p, "{CONST ")) != NULL)
		{
			char *end = strchr(p, '}');
			char *loc;

			if (end == NULL)
				break;
			loc = strstr(p, " :location ");
			if (loc != NULL && loc < end)
			{
				char *after = strstr(loc + 11, " :");

				consts = lappend(consts,
								 psprintf("%.*s%.*s", (int) (loc - p), p,
										  (after != NULL && after < end) ? (int) (end - after) : 0,
										  after ? after : ""));
			}
			else
				consts = lappend(consts, pnstrdup(p, end - p));
			p = end + 1;
		}
	}

	/*
	 * As a set: the plan's shape (a Gather, an index qual repeated as its
	 * recheck) may repeat a constant without changing what it means.
	 */
	list_sort(consts, const_text_cmp);
	foreach(lc, consts)
	{
		char *c = (char *) lfirst(lc);

		if (prev == NULL || strcmp(prev, c) != 0)
			KeyAddString(m, c);
		prev = c;
	}
	pfree(all[0]);
	pfree(all[1]);
	/* relations, and regclass constants, the plan depends on */
	KeyAddString(m, "plan relations");
	foreach(lc, stmt->relationOids)
		KeyAddU32(m, lfirst_oid(lc));
}

/*
 * The shape of every composite type a result column can hold (through
 * arrays, domains and ranges, recursively): a column dropped and added
 * again keeps the type's OID but not its values.  Their relations are
 * watched, so that such DDL also drops the prepared statement.
 */
static void
add_composite_shapes(StringInfo m, Oid typid, int depth)
{
	Oid elem;

	if (depth > 8 || !OidIsValid(typid))
		return;
	typid = getBaseType(typid);
	elem = get_element_type(typid);
	if (OidIsValid(elem))
	{
		add_composite_shapes(m, elem, depth + 1);
		return;
	}
	if (type_is_range(typid))
	{
		add_composite_shapes(m, get_range_subtype(typid), depth + 1);
		return;
	}
	if (type_is_multirange(typid))
	{
		add_composite_shapes(m, get_range_subtype(get_multirange_range(typid)), depth + 1);
		return;
	}
	if (get_typtype(typid) == TYPTYPE_COMPOSITE && typid != RECORDOID)
	{
		TupleDesc td = lookup_rowtype_tupdesc(typid, -1);
		Oid relid = get_typ_typrelid(typid);

		KeyAddU32(m, typid);
		KeyAddU32(m, td->natts);
		for (int i = 0; i < td->natts; i++)
		{
			Form_pg_attribute a = TupleDescAttr(td, i);

			KeyAddU32(m, a->attisdropped ? 0 : a->atttypid);
			KeyAddU32(m, (uint32) a->atttypmod);
			KeyAddString(m, NameStr(a->attname));
		}
		for (int i = 0; i < td->natts; i++)
			if (!TupleDescAttr(td, i)->attisdropped)
				add_composite_shapes(m, TupleDescAttr(td, i)->atttypid, depth + 1);
		ReleaseTupleDesc(td);
		StmtCacheWatchRelation(relid);
	}
}

void
definition_hash(PreparedQuery *pq, PlannedStmt *stmt)
{
	StringInfoData m;
	ListCell *lc;
	char *tree = nodeToString(pq->plansource->query_list);
	List *funcs = list_concat_unique_oid(list_copy(pq->defn_funcids),
										 pq->deps.funcids);

	funcs = list_concat_unique_oid(funcs, pq->deps.opaque_funcids);
	/* aggregate support functions, operators of sorts, I/O functions ... */
	funcs = list_concat_unique_oid(funcs, pq->deps.implicit_funcids);
	initStringInfo(&m);
	KeyAddString(&m, tree);
	pfree(tree);
	foreach(lc, funcs)
	{
		Oid funcid = lfirst_oid(lc);
		HeapTuple tup;

		if (funcid < FirstNormalObjectId)
			continue;
		tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(funcid));
		if (!HeapTupleIsValid(tup))
			continue;
		KeyAddU32(&m, funcid);
		KeyAddU32(&m, HeapTupleHeaderGetRawXmin(tup->t_data));
		ReleaseSysCache(tup);
	}
	add_plan_constants(&m, stmt);
	KeyAddString(&m, "composite shapes");
	for (int i = 0; i < pq->resultdesc->natts; i++)
		add_composite_shapes(&m, TupleDescAttr(pq->resultdesc, i)->atttypid, 0);
	KeyHash(&m, pq->definition);
	pfree(m.data);
	list_free(funcs);
}

static bool
note_func(Oid funcid, void *context)
{
	List **funcs = (List **) context;

	*funcs = list_append_unique_oid(*funcs, funcid);
	return false;
}

/*
 * Every function the rewritten query calls, before planning inlines SQL
 * functions away: their definitions go into the definition hash.  (EXECUTE
 * is checked on the plan's functions only, as the executor does; inlining
 * depends on the planning role's privileges, and statements are prepared
 * per role.)
 */
bool
collect_query_funcs(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, collect_query_funcs, context, 0);
	(void) check_functions_in_node(node, note_func, context);
	return expression_tree_walker(node, collect_query_funcs, context);
}

/*
 * The body of a SQL function the plan no longer calls (the planner inlined
 * it, or ran it: an IMMUTABLE function with constant arguments is run while
 * planning).  Sets *clean when it is what PostgreSQL would inline: one
 * SELECT of one expression, no FROM, no sublink, no mutable function (then
 * running it and inlining it give the same value, which depends on its
 * arguments only).  Returns a relative date/time literal it holds ('now',
 * 'today', ...: converted when the body is parsed, at planning), or NULL.
 */
static const char *
sql_body_check_inner(Oid funcid, bool *clean, List **calls, bool *analyzed)
{
	HeapTuple tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(funcid));
	Form_pg_proc proc;
	bool isnull;
	Datum d;
	char *src;
	List *raw;
	List *trees;
	Query *q;
	char *problem;

	*clean = false;
	if (!HeapTupleIsValid(tup))
		return NULL;
	proc = (Form_pg_proc) GETSTRUCT(tup);
	if (proc->prolang != SQLlanguageId || proc->prosecdef ||
		!heap_attisnull(tup, Anum_pg_proc_proconfig, NULL) ||
		!heap_attisnull(tup, Anum_pg_proc_prosqlbody, NULL))
	{
		ReleaseSysCache(tup);
		return NULL;
	}
	for (int i = 0; i < proc->pronargs; i++)
		if (IsPolymorphicType(proc->proargtypes.values[i]))
		{
			ReleaseSysCache(tup);
			return NULL;
		}
	d = SysCacheGetAttr(PROCOID, tup, Anum_pg_proc_prosrc, &isnull);
	if (isnull)
	{
		ReleaseSysCache(tup);
		return NULL;
	}
	src = TextDatumGetCString(d);
	raw = pg_parse_query(src);
	if (list_length(raw) != 1)
	{
		ReleaseSysCache(tup);
		return NULL;
	}
	trees = pg_analyze_and_rewrite_withcb(linitial_node(RawStmt, raw), src,
										  (ParserSetupHook) sql_fn_parser_setup,
										  prepare_sql_fn_parse_info(tup, NULL, InvalidOid),
										  NULL);
	ReleaseSysCache(tup);
	*analyzed = true;
	problem = find_time_literal((Node *) trees, src);
	/* what the body calls was inlined or run with it: judged in turn */
	(void) collect_query_funcs((Node *) trees, calls);
	if (list_length(trees) != 1)
		return problem;
	q = linitial_node(Query, trees);
	*clean = q->commandType == CMD_SELECT && q->rtable == NIL &&
		(q->jointree == NULL || (q->jointree->fromlist == NIL && q->jointree->quals == NULL)) &&
		!q->hasAggs && !q->hasWindowFuncs && !q->hasTargetSRFs && !q->hasSubLinks &&
		q->cteList == NIL && q->groupClause == NIL && q->havingQual == NULL &&
		q->sortClause == NIL && q->limitCount == NULL && q->limitOffset == NULL &&
		q->setOperations == NULL && list_length(q->targetList) == 1 &&
		!contain_mutable_functions((Node *) q->targetList);
	return problem;
}

/* sql_body_check_inner's arguments and result, for RunInSubtransaction */
typedef struct BodyCheck
{
	Oid funcid;
	bool *clean;
	List **calls;
	bool *analyzed;
	const char *problem;
} BodyCheck;

static void
body_check_fn(void *arg)
{
	BodyCheck *b = (BodyCheck *) arg;

	b->problem = sql_body_check_inner(b->funcid, b->clean, b->calls, b->analyzed);
}

/*
 * sql_body_check_inner in a subtransaction: a body PostgreSQL never planned
 * (a function in a branch the planner removed) may not even parse; then it
 * is not clean, and nothing is raised.
 */
static const char *
sql_body_check(Oid funcid, bool *clean, List **calls, bool *analyzed)
{
	BodyCheck b;
	ErrorData *edata;

	*clean = false;
	*analyzed = false;
	if (IsInParallelMode())
		return NULL;
	b.funcid = funcid;
	b.clean = clean;
	b.calls = calls;
	b.analyzed = analyzed;
	b.problem = NULL;
	edata = RunInSubtransaction(body_check_fn, &b);
	if (edata == NULL)
		return b.problem;
	FreeErrorData(edata);
	*clean = false;
	*analyzed = false;
	return NULL;
}

/* Add funcid to the functions pin_folded_functions judges, to a bound. */
static void
add_judged_function(PreparedQuery *pq, Oid funcid)
{
	if (list_member_oid(pq->defn_funcids, funcid))
		return;
	if (list_length(pq->defn_funcids) >= 200)
	{
		/* too many to judge: fail closed */
		if (pq->literal_problem[0] == '\0')
			strlcpy(pq->literal_problem,
					"more functions inlined than cache_ext checks (200)",
					sizeof(pq->literal_problem));
		return;
	}
	pq->defn_funcids = lappend_oid(pq->defn_funcids, funcid);
}

/* The functions in the defaults of funcid's arguments. */
static void
add_default_arg_functions(PreparedQuery *pq, Oid funcid)
{
	HeapTuple tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(funcid));
	bool isnull;
	Datum d;
	List *calls = NIL;
	ListCell *lc;

	if (!HeapTupleIsValid(tup))
		return;
	d = SysCacheGetAttr(PROCOID, tup, Anum_pg_proc_proargdefaults, &isnull);
	if (!isnull)
		(void) collect_query_funcs((Node *) stringToNode(TextDatumGetCString(d)), &calls);
	ReleaseSysCache(tup);
	foreach(lc, calls)
		add_judged_function(pq, lfirst_oid(lc));
}

/*
 * User functions the rewritten query calls, judged by what planning did
 * with them.
 * - One the plan still calls, declared IMMUTABLE in a language other than C
 *   or internal: nothing proves it reads no setting or table, so it is
 *   opaque like a STABLE one (the call bypasses unless it names what it
 *   reads).
 * - One the plan no longer calls was inlined, or run while planning (an
 *   IMMUTABLE function with constant arguments): a SQL function with a
 *   clean body (sql_body_check) gives the same value either way; any other
 *   was run as the planning role under the planning settings and its value
 *   is in the plan: opaque, and the prepared statement is valid only under
 *   those settings (and keyed by role already), the entry key holds the
 *   role and every setting.
 * - A SQL function inlined with a relative date/time literal in its body
 *   froze that moment into the plan: the statement is prepared again on
 *   every call and never stored.
 */
void
pin_folded_functions(PreparedQuery *pq)
{
	ListCell *lc;

	pq->settings_pinned = false;
	pq->plan_per_call = false;
	/* defn_funcids grows: the functions inlined bodies call, to a bound */
	foreach(lc, pq->defn_funcids)
	{
		Oid funcid = lfirst_oid(lc);
		HeapTuple tup;
		char volatility;
		Oid lang;
		bool in_plan;
		bool clean = false;

		if (funcid < FirstNormalObjectId)
			continue;
		tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(funcid));
		if (!HeapTupleIsValid(tup))
			continue;
		volatility = ((Form_pg_proc) GETSTRUCT(tup))->provolatile;
		lang = ((Form_pg_proc) GETSTRUCT(tup))->prolang;
		ReleaseSysCache(tup);
		if (lang == ClanguageId || lang == INTERNALlanguageId)
			continue;
		in_plan = list_member_oid(pq->deps.funcids, funcid) ||
			list_member_oid(pq->deps.implicit_funcids, funcid) ||
			list_member_oid(pq->deps.opaque_funcids, funcid);
		/* defaults of its arguments: the planner inserts them */
		add_default_arg_functions(pq, funcid);
		if (!in_plan && lang == SQLlanguageId)
		{
			List *calls = NIL;
			bool analyzed;
			const char *problem = sql_body_check(funcid, &clean, &calls, &analyzed);
			ListCell *lc2;

			foreach(lc2, calls)
				add_judged_function(pq, lfirst_oid(lc2));

			/*
			 * A body that could not be read here (BEGIN ATOMIC, polymorphic
			 * arguments, ...) was still inlined: what it calls is unknown,
			 * so the function is opaque and its statement planned per call.
			 */
			if (!analyzed && volatility != PROVOLATILE_VOLATILE)
			{
				pq->deps.opaque_funcids = list_append_unique_oid(pq->deps.opaque_funcids,
																 funcid);
				pq->settings_pinned = true;
				pq->plan_per_call = true;
				pq->deps.role_dependent = true;
				pq->deps.settings_dependent = true;
			}

			if (problem != NULL && pq->literal_problem[0] == '\0')
				snprintf(pq->literal_problem, sizeof(pq->literal_problem),
						 "%s in function %s()", problem, get_func_name(funcid));
		}
		if (volatility != PROVOLATILE_IMMUTABLE)
			continue;
		if (in_plan || !clean)
			pq->deps.opaque_funcids = list_append_unique_oid(pq->deps.opaque_funcids,
															 funcid);
		if (!in_plan && !clean)
		{
			/*
			 * Its value, computed while planning, is in the plan: the
			 * statement is planned again for every call (a value read from
			 * a table or a setting is then current), and the key holds the
			 * role and every setting besides the plan's constants.
			 */
			pq->settings_pinned = true;
			pq->plan_per_call = true;
			pq->deps.role_dependent = true;
			pq->deps.settings_dependent = true;
		}
	}
	if (pq->settings_pinned)
		all_settings_hash(pq->settings_hash);
}

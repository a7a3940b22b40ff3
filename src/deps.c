/*-------------------------------------------------------------------------
 *
 * deps.c
 *	  What a planned query depends on and whether its result may be stored.
 *
 * The verdict comes from the plan, not from the query text: every relation
 * of the final range table, and every function the plan actually calls
 * (after SQL functions were inlined), found by walking every plan node's
 * expressions and the subplans.  A result is not stored when it could
 * differ between two runs over the same committed data with the same key:
 * volatile functions, functions that read the clock or session state the
 * key does not hold, temporary tables (private to a session), system
 * catalogs (not invalidated by anything) and TABLESAMPLE methods that are
 * not repeatable.  Functions whose result depends on the role only make
 * the role part of the key.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "access/tsmapi.h"
#include "catalog/catalog.h"
#include "catalog/pg_class.h"
#include "catalog/pg_proc.h"
#include "access/stratnum.h"
#include "catalog/pg_am.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "parser/parsetree.h"
#include "optimizer/optimizer.h"
#include "utils/array.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"

#include "cache_ext.h"

typedef struct DepsWalk
{
	QueryDeps  *deps;
} DepsWalk;

static void
not_cacheable(DepsWalk *w, char *reason)
{
	ListCell   *lc;

	if (w->deps->cacheable)
	{
		w->deps->cacheable = false;
		w->deps->reason = reason;
	}
	foreach(lc, w->deps->reasons)
		if (strcmp((char *) lfirst(lc), reason) == 0)
			return;
	w->deps->reasons = lappend(w->deps->reasons, reason);
}

/*
 * Built-in stable functions whose result depends on the clock or on session
 * state that the key does not hold.  Identified by OID, so a user function
 * of the same name is not confused with them.  Input functions of the date
 * and time types are here because they accept 'now' and 'today'.
 */
static bool
is_time_or_session_function(Oid funcid, const char **kind)
{
	switch (funcid)
	{
		case F_NOW:
		case F_STATEMENT_TIMESTAMP:
		case F_TRANSACTION_TIMESTAMP:
		case F_AGE_TIMESTAMP:
		case F_AGE_TIMESTAMPTZ:
		case F_PG_POSTMASTER_START_TIME:
		case F_PG_CONF_LOAD_TIME:
		case F_DATE_IN:
		case F_TIME_IN:
		case F_TIMETZ_IN:
		case F_TIMESTAMP_IN:
		case F_TIMESTAMPTZ_IN:
			*kind = "time-dependent function";
			return true;
		case F_CURRENT_SETTING_TEXT:
		case F_CURRENT_SETTING_TEXT_BOOL:
		case F_PG_BACKEND_PID:
		case F_INET_CLIENT_ADDR:
		case F_INET_CLIENT_PORT:
		case F_INET_SERVER_ADDR:
		case F_INET_SERVER_PORT:
		case F_PG_MY_TEMP_SCHEMA:
		case F_PG_TRIGGER_DEPTH:
		case F_TXID_CURRENT:
		case F_TXID_CURRENT_IF_ASSIGNED:
		case F_TXID_CURRENT_SNAPSHOT:
		case F_TXID_STATUS:
		case F_PG_CURRENT_XACT_ID:
		case F_PG_CURRENT_XACT_ID_IF_ASSIGNED:
		case F_PG_CURRENT_SNAPSHOT:
		case F_PG_XACT_STATUS:
			*kind = "session-dependent function";
			return true;
		default:
			return false;
	}
}

/* Built-in functions answering privilege questions for the current role. */
static bool
is_role_function(Oid funcid)
{
	char	   *name;
	bool		result;

	if (funcid >= FirstGenbkiObjectId)
		return false;
	name = get_func_name(funcid);
	if (name == NULL)
		return false;
	result = strncmp(name, "has_", 4) == 0 ||
		strcmp(name, "pg_has_role") == 0 ||
		strcmp(name, "row_security_active") == 0;
	pfree(name);
	return result;
}

static bool
check_function(Oid funcid, void *context)
{
	DepsWalk   *w = (DepsWalk *) context;
	const char *kind;

	/* a hit must check EXECUTE on it, as the executor would */
	w->deps->funcids = list_append_unique_oid(w->deps->funcids, funcid);

	if (func_volatile(funcid) == PROVOLATILE_VOLATILE)
		not_cacheable(w, psprintf("volatile function %s()", get_func_name(funcid)));
	else if (funcid >= FirstNormalObjectId &&
			 func_volatile(funcid) == PROVOLATILE_STABLE)
	{
		/* it may read tables the plan does not show */
		w->deps->opaque_funcids = list_append_unique_oid(w->deps->opaque_funcids,
														 funcid);
	}
	else if (is_time_or_session_function(funcid, &kind))
		not_cacheable(w, psprintf("%s %s()", kind, get_func_name(funcid)));
	else if (is_role_function(funcid))
		w->deps->role_dependent = true;
	return false;				/* keep walking; the first reason is kept */
}

static bool
expr_walker(Node *node, DepsWalk *w)
{
	if (node == NULL)
		return false;

	(void) check_functions_in_node(node, check_function, w);

	switch (nodeTag(node))
	{
		case T_SQLValueFunction:
			{
				SQLValueFunction *svf = (SQLValueFunction *) node;

				switch (svf->op)
				{
					case SVFOP_CURRENT_DATE:
						not_cacheable(w, "time-dependent function CURRENT_DATE");
						break;
					case SVFOP_CURRENT_TIME:
					case SVFOP_CURRENT_TIME_N:
						not_cacheable(w, "time-dependent function CURRENT_TIME");
						break;
					case SVFOP_CURRENT_TIMESTAMP:
					case SVFOP_CURRENT_TIMESTAMP_N:
						not_cacheable(w, "time-dependent function CURRENT_TIMESTAMP");
						break;
					case SVFOP_LOCALTIME:
					case SVFOP_LOCALTIME_N:
						not_cacheable(w, "time-dependent function LOCALTIME");
						break;
					case SVFOP_LOCALTIMESTAMP:
					case SVFOP_LOCALTIMESTAMP_N:
						not_cacheable(w, "time-dependent function LOCALTIMESTAMP");
						break;
					case SVFOP_CURRENT_ROLE:
					case SVFOP_CURRENT_USER:
					case SVFOP_USER:
						w->deps->role_dependent = true;
						break;
					case SVFOP_SESSION_USER:
						w->deps->session_user_dependent = true;
						break;
					case SVFOP_CURRENT_CATALOG:
					case SVFOP_CURRENT_SCHEMA:
						/* the database and the search path are in the key */
						break;
				}
				break;
			}
		case T_NextValueExpr:
			not_cacheable(w, "sequence function");
			break;
		default:
			break;
	}
	return expression_tree_walker(node, expr_walker, (void *) w);
}

static void
walk_exprs(void *node, DepsWalk *w)
{
	(void) expr_walker((Node *) node, w);
}

static void walk_plan(Plan *plan, DepsWalk *w);

static void
walk_plans(List *plans, DepsWalk *w)
{
	ListCell   *lc;

	foreach(lc, plans)
		walk_plan((Plan *) lfirst(lc), w);
}

/*
 * Visit every expression a plan node evaluates.  A node type missing here
 * would hide the functions it calls, so the list follows plannodes.h.
 */
static void
walk_plan(Plan *plan, DepsWalk *w)
{
	if (plan == NULL)
		return;

	walk_exprs(plan->targetlist, w);
	walk_exprs(plan->qual, w);
	walk_exprs(plan->initPlan, w);

	switch (nodeTag(plan))
	{
		case T_Result:
			walk_exprs(((Result *) plan)->resconstantqual, w);
			break;
		case T_Append:
			walk_plans(((Append *) plan)->appendplans, w);
			break;
		case T_MergeAppend:
			walk_plans(((MergeAppend *) plan)->mergeplans, w);
			break;
		case T_BitmapAnd:
			walk_plans(((BitmapAnd *) plan)->bitmapplans, w);
			break;
		case T_BitmapOr:
			walk_plans(((BitmapOr *) plan)->bitmapplans, w);
			break;
		case T_SampleScan:
			{
				TableSampleClause *tsc = ((SampleScan *) plan)->tablesample;
				TsmRoutine *tsm = GetTsmRoutine(tsc->tsmhandler);

				if (tsc->repeatable == NULL || !tsm->repeatable_across_queries)
					not_cacheable(w, "TABLESAMPLE without a repeatable seed");
				walk_exprs(tsc, w);
				break;
			}
		case T_IndexScan:
			walk_exprs(((IndexScan *) plan)->indexqual, w);
			walk_exprs(((IndexScan *) plan)->indexqualorig, w);
			walk_exprs(((IndexScan *) plan)->indexorderby, w);
			walk_exprs(((IndexScan *) plan)->indexorderbyorig, w);
			break;
		case T_IndexOnlyScan:
			walk_exprs(((IndexOnlyScan *) plan)->indexqual, w);
			walk_exprs(((IndexOnlyScan *) plan)->recheckqual, w);
			walk_exprs(((IndexOnlyScan *) plan)->indexorderby, w);
			break;
		case T_BitmapIndexScan:
			walk_exprs(((BitmapIndexScan *) plan)->indexqual, w);
			walk_exprs(((BitmapIndexScan *) plan)->indexqualorig, w);
			break;
		case T_BitmapHeapScan:
			walk_exprs(((BitmapHeapScan *) plan)->bitmapqualorig, w);
			break;
		case T_TidScan:
			walk_exprs(((TidScan *) plan)->tidquals, w);
			break;
		case T_TidRangeScan:
			walk_exprs(((TidRangeScan *) plan)->tidrangequals, w);
			break;
		case T_SubqueryScan:
			walk_plan(((SubqueryScan *) plan)->subplan, w);
			break;
		case T_FunctionScan:
			walk_exprs(((FunctionScan *) plan)->functions, w);
			break;
		case T_ValuesScan:
			walk_exprs(((ValuesScan *) plan)->values_lists, w);
			break;
		case T_TableFuncScan:
			walk_exprs(((TableFuncScan *) plan)->tablefunc, w);
			break;
		case T_ForeignScan:
			walk_exprs(((ForeignScan *) plan)->fdw_exprs, w);
			walk_exprs(((ForeignScan *) plan)->fdw_recheck_quals, w);
			break;
		case T_CustomScan:
			walk_exprs(((CustomScan *) plan)->custom_exprs, w);
			walk_plans(((CustomScan *) plan)->custom_plans, w);
			break;
		case T_NestLoop:
			walk_exprs(((Join *) plan)->joinqual, w);
			break;
		case T_MergeJoin:
			walk_exprs(((Join *) plan)->joinqual, w);
			walk_exprs(((MergeJoin *) plan)->mergeclauses, w);
			break;
		case T_HashJoin:
			walk_exprs(((Join *) plan)->joinqual, w);
			walk_exprs(((HashJoin *) plan)->hashclauses, w);
			walk_exprs(((HashJoin *) plan)->hashkeys, w);
			break;
		case T_Hash:
			walk_exprs(((Hash *) plan)->hashkeys, w);
			break;
		case T_Memoize:
			walk_exprs(((Memoize *) plan)->param_exprs, w);
			break;
		case T_WindowAgg:
			walk_exprs(((WindowAgg *) plan)->startOffset, w);
			walk_exprs(((WindowAgg *) plan)->endOffset, w);
			walk_exprs(((WindowAgg *) plan)->runCondition, w);
			break;
		case T_Limit:
			walk_exprs(((Limit *) plan)->limitOffset, w);
			walk_exprs(((Limit *) plan)->limitCount, w);
			break;
		case T_LockRows:
		case T_ModifyTable:
			not_cacheable(w, "the query locks or modifies rows");
			break;
		default:
			break;
	}

	walk_plan(plan->lefttree, w);
	walk_plan(plan->righttree, w);
}

static int
oid_cmp(const ListCell *a, const ListCell *b)
{
	Oid			x = lfirst_oid(a);
	Oid			y = lfirst_oid(b);

	return (x > y) - (x < y);
}

/*
 * Fill *deps for stmt (allocations in the current memory context).
 */
void
AnalyzePlannedStmt(PlannedStmt *stmt, QueryDeps *deps)
{
	DepsWalk	w;
	ListCell   *lc;

	memset(deps, 0, sizeof(*deps));
	deps->cacheable = true;
	w.deps = deps;

	if (stmt->commandType != CMD_SELECT || stmt->hasModifyingCTE ||
		stmt->rowMarks != NIL || stmt->utilityStmt != NULL)
		not_cacheable(&w, "not a read-only query");

	foreach(lc, stmt->rtable)
	{
		RangeTblEntry *rte = (RangeTblEntry *) lfirst(lc);

		if (rte->rtekind != RTE_RELATION)
			continue;
		if (get_rel_persistence(rte->relid) == RELPERSISTENCE_TEMP)
			not_cacheable(&w, psprintf("temporary table %s",
									   get_rel_name(rte->relid)));
		else if (IsCatalogRelationOid(rte->relid))
			not_cacheable(&w, psprintf("system catalog %s",
									   get_rel_name(rte->relid)));
	}

	walk_plan(stmt->planTree, &w);
	walk_plans(stmt->subplans, &w);

	/* every relation the plan depends on, including views and partitions */
	foreach(lc, stmt->relationOids)
		deps->relids = list_append_unique_oid(deps->relids, lfirst_oid(lc));
	list_sort(deps->relids, oid_cmp);

	if (stmt->dependsOnRole)
		deps->role_dependent = true;
}

/* ================================================================
 * Key equalities, for key-level tracking
 * ================================================================
 *
 * From the rewritten query (before planning): the top-level AND-ed WHERE
 * conditions of the form  column = constant-or-parameter,  the same with
 * the operands swapped,  column IN (constants)  and  column = ANY($n),
 * on a relation of the top-level range table.  Only operators that are the
 * equality of the column type's default btree operator family qualify, and
 * only for the types whose values can be keys; text under a
 * nondeterministic collation does not.  Also every relation occurring
 * anywhere else in the query (subqueries, sublinks, CTEs, views), which can
 * never be narrowed.
 */

#define MAX_KEY_VALUES 100

static Node *
strip_relabel(Node *n)
{
	while (n && IsA(n, RelabelType))
		n = (Node *) ((RelabelType *) n)->arg;
	return n;
}

static bool
is_key_equality(Oid opno, Oid coltype, Oid collid)
{
	Oid			opclass = GetDefaultOpClass(getBaseType(coltype), BTREE_AM_OID);
	Oid			family;

	if (!OidIsValid(opclass))
		return false;
	family = get_opclass_family(opclass);
	if (get_op_opfamily_strategy(opno, family) != BTEqualStrategyNumber)
		return false;
	if (OidIsValid(collid) && !get_collation_isdeterministic(collid))
		return false;
	return true;
}

/* The values' family must be the column's: integers, text, uuid. */
static int
key_family(Oid typid)
{
	switch (getBaseType(typid))
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
			return 1;
		case TEXTOID:
		case VARCHAROID:
			return 2;
		case UUIDOID:
			return 3;
		default:
			return 0;
	}
}

static void
add_equality(List **out, Query *q, Var *var, Node *value, bool is_array)
{
	RangeTblEntry *rte;
	KeyEquality *ke;
	Oid			valtype;

	if (var->varlevelsup != 0 || var->varattno <= 0 ||
		var->varno < 1 || var->varno > list_length(q->rtable))
		return;
	rte = rt_fetch(var->varno, q->rtable);
	if (rte->rtekind != RTE_RELATION)
		return;
	if (key_family(var->vartype) == 0)
		return;

	ke = palloc0(sizeof(KeyEquality));
	ke->rtindex = var->varno;
	ke->relid = rte->relid;
	ke->colname = get_attname(rte->relid, var->varattno, false);
	ke->coltype = var->vartype;

	if (IsA(value, Const))
	{
		Const	   *c = (Const *) value;

		if (c->constisnull)
		{
			/* column = NULL matches nothing: no key to depend on */
			*out = lappend(*out, ke);
			return;
		}
		valtype = c->consttype;
		if (is_array)
		{
			ArrayType  *arr = DatumGetArrayTypeP(c->constvalue);
			Oid			elemtype = ARR_ELEMTYPE(arr);
			int16		typlen;
			bool		typbyval;
			char		typalign;
			Datum	   *elems;
			bool	   *nulls;
			int			n;

			if (key_family(elemtype) != key_family(ke->coltype))
				return;
			get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
			deconstruct_array(arr, elemtype, typlen, typbyval, typalign,
							  &elems, &nulls, &n);
			if (n > MAX_KEY_VALUES)
				return;
			ke->valtype = elemtype;
			ke->consts = palloc(sizeof(Datum) * Max(n, 1));
			for (int i = 0; i < n; i++)
				if (!nulls[i])
					ke->consts[ke->nconsts++] = datumCopy(elems[i], typbyval, typlen);
		}
		else
		{
			int16		typlen;
			bool		typbyval;

			if (key_family(valtype) != key_family(ke->coltype))
				return;
			get_typlenbyval(valtype, &typlen, &typbyval);
			ke->valtype = valtype;
			ke->consts = palloc(sizeof(Datum));
			ke->consts[ke->nconsts++] = datumCopy(c->constvalue, typbyval, typlen);
		}
		*out = lappend(*out, ke);
		return;
	}
	if (IsA(value, ArrayExpr) && is_array)
	{
		/* column IN (c1, c2, ...) before constant folding */
		ArrayExpr  *ae = (ArrayExpr *) value;
		ListCell   *lc;

		if (key_family(ae->element_typeid) != key_family(ke->coltype) ||
			list_length(ae->elements) > MAX_KEY_VALUES)
			return;
		ke->valtype = ae->element_typeid;
		ke->consts = palloc(sizeof(Datum) * Max(list_length(ae->elements), 1));
		foreach(lc, ae->elements)
		{
			Node	   *e = strip_relabel(lfirst(lc));
			Const	   *c;
			int16		typlen;
			bool		typbyval;

			if (!IsA(e, Const) || ((Const *) e)->consttype != ae->element_typeid)
				return;
			c = (Const *) e;
			if (c->constisnull)
				continue;
			get_typlenbyval(c->consttype, &typlen, &typbyval);
			ke->consts[ke->nconsts++] = datumCopy(c->constvalue, typbyval, typlen);
		}
		*out = lappend(*out, ke);
		return;
	}
	if (IsA(value, Param) && ((Param *) value)->paramkind == PARAM_EXTERN)
	{
		Param	   *p = (Param *) value;

		valtype = is_array ? get_element_type(p->paramtype) : p->paramtype;
		if (!OidIsValid(valtype) || key_family(valtype) != key_family(ke->coltype))
			return;
		ke->paramid = p->paramid;
		ke->param_is_array = is_array;
		ke->valtype = valtype;
		*out = lappend(*out, ke);
	}
}

static bool
collect_rtes(Node *node, List **relids)
{
	if (node == NULL)
		return false;
	if (IsA(node, RangeTblEntry))
	{
		RangeTblEntry *rte = (RangeTblEntry *) node;

		if (rte->rtekind == RTE_RELATION)
			*relids = lappend_oid(*relids, rte->relid);
		return false;
	}
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, collect_rtes, (void *) relids,
								 QTW_EXAMINE_RTES_BEFORE);
	return expression_tree_walker(node, collect_rtes, (void *) relids);
}

List *
FindKeyEqualities(Query *q, List **inner_relids)
{
	List	   *out = NIL;
	List	   *conjuncts;
	ListCell   *lc;

	*inner_relids = NIL;
	/* relations anywhere below the top level can never be narrowed */
	foreach(lc, q->rtable)
	{
		RangeTblEntry *rte = (RangeTblEntry *) lfirst(lc);

		if (rte->rtekind == RTE_SUBQUERY && rte->subquery)
			(void) collect_rtes((Node *) rte->subquery, inner_relids);
		else if (rte->rtekind == RTE_FUNCTION)
			(void) collect_rtes((Node *) rte->functions, inner_relids);
	}
	foreach(lc, q->cteList)
		(void) collect_rtes(((CommonTableExpr *) lfirst(lc))->ctequery, inner_relids);
	(void) query_tree_walker(q, collect_rtes, (void *) inner_relids,
							 QTW_IGNORE_RANGE_TABLE);

	if (q->setOperations != NULL || q->jointree == NULL || q->jointree->quals == NULL)
		return NIL;
	conjuncts = make_ands_implicit((Expr *) q->jointree->quals);
	foreach(lc, conjuncts)
	{
		Node	   *c = (Node *) lfirst(lc);

		if (IsA(c, OpExpr) && list_length(((OpExpr *) c)->args) == 2)
		{
			OpExpr	   *op = (OpExpr *) c;
			Node	   *l = strip_relabel(linitial(op->args));
			Node	   *r = strip_relabel(lsecond(op->args));

			if (IsA(r, Var) && !IsA(l, Var))
			{
				Node	   *t = l;

				l = r;
				r = t;
			}
			if (IsA(l, Var) && (IsA(r, Const) || IsA(r, Param)) &&
				is_key_equality(op->opno, ((Var *) l)->vartype, op->inputcollid))
				add_equality(&out, q, (Var *) l, r, false);
		}
		else if (IsA(c, ScalarArrayOpExpr) && ((ScalarArrayOpExpr *) c)->useOr)
		{
			ScalarArrayOpExpr *sa = (ScalarArrayOpExpr *) c;
			Node	   *l = strip_relabel(linitial(sa->args));
			Node	   *r = strip_relabel(lsecond(sa->args));

			if (IsA(l, Var) && (IsA(r, Const) || IsA(r, Param) || IsA(r, ArrayExpr)) &&
				is_key_equality(sa->opno, ((Var *) l)->vartype, sa->inputcollid))
				add_equality(&out, q, (Var *) l, r, true);
		}
	}
	return out;
}

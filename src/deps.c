/*-------------------------------------------------------------------------
 *
 * deps.c
 *	  What a planned query depends on and whether its result may be stored:
 *	  the walk over the plan's nodes and relations (AnalyzePlannedStmt).
 *	  The checks of expressions, functions, operators and types are in
 *	  deps_expr.c, the allow-list of built-ins in allowlist.c.
 *
 * The verdict comes from the plan PostgreSQL will run, not from the query
 * text, and it fails closed: a result may be stored only when it is proven
 * to be the same for every session and role that may receive it under the
 * same key.
 *
 * Relations come from the plan's range table (RTE_RELATION entries: the
 * tables scanned, views' permission entries, partitions), each looked up in
 * the syscache; never from stmt->relationOids, which also holds regclass and
 * oid constants.  A missing catalog row is "not a relation", never a crash.
 * Temporary tables, sequences, foreign tables and every relation of the
 * system (OID below FirstNormalObjectId) bypass.
 *
 * Functions: every function the executor calls when it runs this plan, in
 * every plan node and subplan (SQL functions were inlined by the planner;
 * folded branches and unreferenced CTEs are not in the plan), decided by
 * these rules:
 *	- VOLATILE: bypass.
 *	- built-in (OID below FirstNormalObjectId): IMMUTABLE unless on the deny
 *	  list, or STABLE and on the allow list (allowlist.c).  The clock
 *	  functions and the date/time input functions (they accept 'now') are
 *	  refused; current_user/session_user/getpgusername() put the role (or
 *	  session user) into the key.  Anything else bypasses with a reason.
 *	- user functions: STABLE, SECURITY DEFINER or with a SET clause: opaque
 *	  (pipeline.c bypasses unless cache_opts(depends_on => ...) names what they
 *	  read); IMMUTABLE in C or internal (created by a superuser): trusted;
 *	  IMMUTABLE in any other language: the role goes into the key, so that
 *	  a mis-declared function cannot leak across roles (analysis.c also treats
 *	  such a call as opaque).
 *
 * Where the executor calls functions (covered here):
 *	- FuncExpr, OpExpr, DistinctExpr, NullIfExpr, ScalarArrayOpExpr (its
 *	  hash function too), Aggref and WindowFunc (aggregate or not);
 *	- every support function of an aggregate (transition, final, combine,
 *	  serial, deserial, moving-aggregate ones) and the operators of its
 *	  ORDER BY and DISTINCT;
 *	- the I/O functions of CoerceViaIO (both types, through arrays,
 *	  composites, ranges and domains), the output functions XMLELEMENT and
 *	  XMLFOREST apply to their arguments, the input functions XMLTABLE
 *	  applies to its columns;
 *	- the CHECK constraints of domains (CoerceToDomain, and domain input);
 *	- the comparison functions of MinMaxExpr and RowCompareExpr;
 *	- the operators of Sort, IncrementalSort, MergeAppend, GatherMerge, Agg
 *	  (and its grouping-set chain), Group, Unique, SetOp, WindowAgg (and its
 *	  RANGE in_range functions), Memoize, RecursiveUnion, MergeJoin (btree
 *	  comparison) and HashJoin, hashed SubPlans (their hash functions),
 *	  Limit WITH TIES;
 *	- run-time partition pruning: its expressions and the partition key's
 *	  comparison functions.
 * Not covered (documented limits): index AM support functions of user
 * operator classes, subscripting handlers (both are C), and the type
 * support functions built-in polymorphic functions such as array_eq call
 * for user-defined element types.
 *
 * funcids lists exactly the functions whose EXECUTE privilege the executor
 * checks for the calling role (pipeline.c re-checks them on a hit): the
 * function of a FuncExpr, OpExpr (and kin), ScalarArrayOpExpr, Aggref and
 * WindowFunc in an expression the executor initializes, domain CHECK
 * expressions included.  Aggregate support functions (checked against the
 * aggregate's owner), sort and hash operators, I/O functions and the
 * operators of index and merge quals are checked for cacheability only.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/nbtree.h"
#include "access/stratnum.h"
#include "access/sysattr.h"
#include "catalog/pg_range.h"
#include "catalog/pg_cast.h"
#include "access/transam.h"
#include "access/tsmapi.h"
#include "catalog/pg_aggregate.h"
#include "catalog/pg_am.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_class.h"
#include "catalog/pg_language.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "nodes/execnodes.h"
#include "nodes/extensible.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parsetree.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

#include "allowlist.h"
#include "cache_ext.h"
#include "deps_internal.h"


/*
 * Quals the executor does not initialize as expressions (index quals,
 * merge clauses, TID quals): their operators are called without an
 * EXECUTE check, their other side is an initialized expression.
 */
static void
walk_quals_noacl(List *quals, DepsWalk *w)
{
	ListCell *lc;
	bool save_acl = w->acl;

	foreach(lc, quals)
	{
		Node *q = (Node *) lfirst(lc);

		w->acl = false;
		if (IsA(q, OpExpr))
		{
			OpExpr *op = (OpExpr *) q;

			check_opexpr(w, op->opno, op->opfuncid, op->args, op->opresulttype);
			w->acl = save_acl;
			walk_exprs(op->args, w);
		}
		else if (IsA(q, ScalarArrayOpExpr))
		{
			ScalarArrayOpExpr *sa = (ScalarArrayOpExpr *) q;

			check_opexpr(w, sa->opno, sa->opfuncid, sa->args, BOOLOID);
			w->acl = save_acl;
			walk_exprs(sa->args, w);
		}
		else
		{
			w->acl = save_acl;
			walk_exprs(q, w);
		}
	}
	w->acl = save_acl;
}

static void walk_plan(Plan *plan, DepsWalk *w);

/*
 * Run-time partition pruning: the executor evaluates the steps'
 * expressions and calls the partition key's comparison functions.
 */
static void
walk_prune_info(PartitionPruneInfo *ppi, DepsWalk *w)
{
	ListCell *l1;

	if (ppi == NULL)
		return;
	foreach(l1, ppi->prune_infos)
	{
		ListCell *l2;

		foreach(l2, (List *) lfirst(l1))
		{
			PartitionedRelPruneInfo *pri = lfirst_node(PartitionedRelPruneInfo, l2);
			List *steps = list_concat_copy(pri->initial_pruning_steps,
										   pri->exec_pruning_steps);
			ListCell *l3;

			foreach(l3, steps)
			{
				PartitionPruneStepOp *op;
				ListCell *l4;

				if (!IsA(lfirst(l3), PartitionPruneStepOp))
					continue;
				op = (PartitionPruneStepOp *) lfirst(l3);
				walk_exprs(op->exprs, w);
				foreach(l4, op->cmpfns)
					check_function(w, lfirst_oid(l4), NIL, InvalidOid, false);
			}
		}
	}
}

static void
walk_plans(List *plans, DepsWalk *w)
{
	ListCell *lc;

	foreach(lc, plans)
		walk_plan((Plan *) lfirst(lc), w);
}

/*
 * Visit every expression a plan node evaluates and every function it calls
 * implicitly.  A node type missing here would hide the functions it calls,
 * so the list follows plannodes.h.
 *
 * Long because: one case per plan node type that calls functions of its
 * own (sort, group, hash, merge, window operators ...); each case is a few
 * lines, and the cases read as the list in this file's opening comment.
 */
static void
walk_plan(Plan *plan, DepsWalk *w)
{
	ListCell *lc;

	if (plan == NULL)
		return;
	check_stack_depth();

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
			walk_prune_info(((Append *) plan)->part_prune_info, w);
			break;
		case T_MergeAppend:
			{
				MergeAppend *ma = (MergeAppend *) plan;

				check_operators(w, ma->numCols, ma->sortOperators, OPS_SORT);
				walk_plans(ma->mergeplans, w);
				walk_prune_info(ma->part_prune_info, w);
				break;
			}
		case T_RecursiveUnion:
			{
				RecursiveUnion *ru = (RecursiveUnion *) plan;

				check_operators(w, ru->numCols, ru->dupOperators, OPS_HASHED);
				break;
			}
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
				walk_exprs(tsc->args, w);
				walk_exprs(tsc->repeatable, w);
				break;
			}
		case T_IndexScan:
			walk_quals_noacl(((IndexScan *) plan)->indexqual, w);
			walk_exprs(((IndexScan *) plan)->indexqualorig, w);
			walk_quals_noacl(((IndexScan *) plan)->indexorderby, w);
			walk_exprs(((IndexScan *) plan)->indexorderbyorig, w);
			if (((IndexScan *) plan)->indexorderbyops)
				foreach(lc, ((IndexScan *) plan)->indexorderbyops)
					check_sort_operator(w, lfirst_oid(lc));
			break;
		case T_IndexOnlyScan:
			walk_quals_noacl(((IndexOnlyScan *) plan)->indexqual, w);
			walk_exprs(((IndexOnlyScan *) plan)->recheckqual, w);
			walk_quals_noacl(((IndexOnlyScan *) plan)->indexorderby, w);
			break;
		case T_BitmapIndexScan:
			walk_quals_noacl(((BitmapIndexScan *) plan)->indexqual, w);
			walk_quals_noacl(((BitmapIndexScan *) plan)->indexqualorig, w);
			break;
		case T_BitmapHeapScan:
			walk_exprs(((BitmapHeapScan *) plan)->bitmapqualorig, w);
			break;
		case T_TidScan:
			walk_quals_noacl(((TidScan *) plan)->tidquals, w);
			break;
		case T_TidRangeScan:
			walk_quals_noacl(((TidRangeScan *) plan)->tidrangequals, w);
			break;
		case T_SubqueryScan:
			walk_plan(((SubqueryScan *) plan)->subplan, w);
			break;
		case T_FunctionScan:
			foreach(lc, ((FunctionScan *) plan)->functions)
			{
				RangeTblFunction *rtf = lfirst_node(RangeTblFunction, lc);

				w->coldef_call = rtf->funcexpr;
				w->coldef_types = rtf->funccoltypes;
				walk_exprs(rtf->funcexpr, w);
				w->coldef_call = NULL;
				w->coldef_types = NIL;
			}
			break;
		case T_ValuesScan:
			walk_exprs(((ValuesScan *) plan)->values_lists, w);
			break;
		case T_TableFuncScan:
			{
				TableFunc *tf = ((TableFuncScan *) plan)->tablefunc;

				walk_exprs(tf, w);
				/* XMLTABLE converts each column with its type's input */
				foreach(lc, tf->coltypes)
					check_type_io(w, lfirst_oid(lc), true);
				break;
			}
		case T_NamedTuplestoreScan:
			not_cacheable(w, "transition table");
			break;
		case T_ForeignScan:
			{
				ForeignScan *fs = (ForeignScan *) plan;

				if (fs->scan.scanrelid > 0)
					not_cacheable(w, "a foreign table answers with the caller's user mapping");
				else
					not_cacheable(w, "a foreign join answers with the caller's user mapping");
				walk_exprs(fs->fdw_exprs, w);
				walk_exprs(fs->fdw_recheck_quals, w);
				break;
			}
		case T_CustomScan:
			not_cacheable(w, psprintf("custom scan %s", ((CustomScan *) plan)->methods->CustomName));
			walk_exprs(((CustomScan *) plan)->custom_exprs, w);
			walk_plans(((CustomScan *) plan)->custom_plans, w);
			break;
		case T_NestLoop:
			walk_exprs(((Join *) plan)->joinqual, w);
			break;
		case T_MergeJoin:
			{
				MergeJoin *mj = (MergeJoin *) plan;
				int i = 0;

				walk_exprs(mj->join.joinqual, w);
				walk_quals_noacl(mj->mergeclauses, w);
				/* the merge compares with the btree comparison function */
				foreach(lc, mj->mergeclauses)
				{
					Node *clause = (Node *) lfirst(lc);

					if (IsA(clause, OpExpr) && mj->mergeFamilies)
					{
						Oid lefttype;
						Oid righttype;
						Oid cmp;

						if (operator_types(((OpExpr *) clause)->opno, &lefttype, &righttype))
						{
							cmp = get_opfamily_proc(mj->mergeFamilies[i], lefttype,
													righttype, BTORDER_PROC);
							if (OidIsValid(cmp))
								check_function(w, cmp, NIL, InvalidOid, false);
						}
					}
					i++;
				}
				break;
			}
		case T_HashJoin:
			{
				HashJoin *hj = (HashJoin *) plan;

				walk_exprs(hj->join.joinqual, w);
				walk_exprs(hj->hashclauses, w);
				walk_exprs(hj->hashkeys, w);
				foreach(lc, hj->hashoperators)
					check_equality_operator(w, lfirst_oid(lc), true);
				break;
			}
		case T_Hash:
			walk_exprs(((Hash *) plan)->hashkeys, w);
			break;
		case T_Memoize:
			{
				Memoize *m = (Memoize *) plan;

				walk_exprs(m->param_exprs, w);
				check_operators(w, m->numKeys, m->hashOperators, OPS_HASHED);
				break;
			}
		case T_Sort:
			{
				Sort *s = (Sort *) plan;

				check_operators(w, s->numCols, s->sortOperators, OPS_SORT);
				break;
			}
		case T_IncrementalSort:
			{
				Sort *s = &((IncrementalSort *) plan)->sort;

				check_operators(w, s->numCols, s->sortOperators, OPS_SORT);
				break;
			}
		case T_GatherMerge:
			{
				GatherMerge *gm = (GatherMerge *) plan;

				check_operators(w, gm->numCols, gm->sortOperators, OPS_SORT);
				break;
			}
		case T_Group:
			{
				Group *g = (Group *) plan;

				check_operators(w, g->numCols, g->grpOperators, OPS_EQUAL);
				break;
			}
		case T_Agg:
			{
				Agg *a = (Agg *) plan;

				check_operators(w, a->numCols, a->grpOperators,
								a->aggstrategy == AGG_HASHED || a->aggstrategy == AGG_MIXED ?
									OPS_HASHED :
									OPS_EQUAL);
				/* grouping sets: the other phases */
				walk_plans(a->chain, w);
				break;
			}
		case T_Unique:
			{
				Unique *u = (Unique *) plan;

				check_operators(w, u->numCols, u->uniqOperators, OPS_EQUAL);
				break;
			}
		case T_SetOp:
			{
				SetOp *so = (SetOp *) plan;

				check_operators(w, so->numCols, so->dupOperators,
								so->strategy == SETOP_HASHED ? OPS_HASHED : OPS_EQUAL);
				break;
			}
		case T_WindowAgg:
			{
				WindowAgg *wa = (WindowAgg *) plan;

				check_operators(w, wa->partNumCols, wa->partOperators, OPS_EQUAL);
				check_operators(w, wa->ordNumCols, wa->ordOperators, OPS_EQUAL);
				if (OidIsValid(wa->startInRangeFunc))
					check_function(w, wa->startInRangeFunc, NIL, InvalidOid, false);
				if (OidIsValid(wa->endInRangeFunc))
					check_function(w, wa->endInRangeFunc, NIL, InvalidOid, false);
				walk_exprs(wa->startOffset, w);
				walk_exprs(wa->endOffset, w);
				walk_exprs(wa->runCondition, w);
				break;
			}
		case T_Limit:
			{
				Limit *l = (Limit *) plan;

				walk_exprs(l->limitOffset, w);
				walk_exprs(l->limitCount, w);
				/* WITH TIES compares rows */
				check_operators(w, l->uniqNumCols, l->uniqOperators, OPS_EQUAL);
				break;
			}
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
relid_cmp(const ListCell *a, const ListCell *b)
{
	Oid x = lfirst_oid(a);
	Oid y = lfirst_oid(b);

	return (x > y) - (x < y);
}

/*
 * A relation of the range table: it must exist, and be one whose rows
 * every session sees alike and whose changes can be tracked.
 */
static void
check_relation(DepsWalk *w, Oid relid)
{
	HeapTuple tup;
	Form_pg_class rel;
	char *label;

	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
	{
		not_cacheable(w, psprintf("relation with OID %u does not exist", relid));
		return;
	}
	rel = (Form_pg_class) GETSTRUCT(tup);
	label = quote_qualified_identifier(get_namespace_name(rel->relnamespace),
									   NameStr(rel->relname));
	/* a temporary schema's name differs between sessions: not shown */
	if (rel->relpersistence == RELPERSISTENCE_TEMP)
		not_cacheable(w, psprintf("temporary table %s", NameStr(rel->relname)));
	else if (relid < FirstNormalObjectId)
		not_cacheable(w, psprintf("system catalog %s", rel->relnamespace == PG_CATALOG_NAMESPACE ? NameStr(rel->relname) : label));
	else if (rel->relkind == RELKIND_FOREIGN_TABLE)
		not_cacheable(w, psprintf("foreign table %s answers with the caller's user mapping", label));
	else if (rel->relkind == RELKIND_SEQUENCE)
		not_cacheable(w, psprintf("sequence %s", label));
	ReleaseSysCache(tup);
	w->deps->relids = list_append_unique_oid(w->deps->relids, relid);
}

/*
 * Fill *deps for stmt (allocations in the current memory context).  Never
 * raises for what the plan holds: anything it cannot prove becomes a
 * reason.
 */
void
AnalyzePlannedStmt(PlannedStmt *stmt, QueryDeps *deps)
{
	DepsWalk w;
	ListCell *lc;

	memset(deps, 0, sizeof(*deps));
	deps->cacheable = true;
	w.deps = deps;
	w.acl = true;
	w.depth = 0;
	w.coldef_call = NULL;
	w.coldef_types = NIL;

	if (stmt->commandType != CMD_SELECT || stmt->hasModifyingCTE ||
		stmt->rowMarks != NIL || stmt->utilityStmt != NULL)
		not_cacheable(&w, "not a read-only query");

	foreach(lc, stmt->rtable)
	{
		RangeTblEntry *rte = (RangeTblEntry *) lfirst(lc);

		if (rte->rtekind == RTE_RELATION)
			check_relation(&w, rte->relid);
	}
	list_sort(deps->relids, relid_cmp);

	walk_plan(stmt->planTree, &w);
	walk_plans(stmt->subplans, &w);

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

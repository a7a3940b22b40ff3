/*-------------------------------------------------------------------------
 *
 * keyeq.c
 *	  The top-level equalities of a query on key columns (column = constant,
 *	  column IN (...), column = $n, column = ANY($n)) that can narrow a
 *	  dependency on a tracked table to the generations of those key values
 *	  (scopes.c decides whether they may).  Works on the query tree, before
 *	  planning; proves nothing it cannot see.
 *
 * No state of its own.
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
	Oid opclass = GetDefaultOpClass(getBaseType(coltype), BTREE_AM_OID);
	Oid family;

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
	Oid valtype;

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
		Const *c = (Const *) value;

		if (c->constisnull)
		{
			/* column = NULL matches nothing: no key to depend on */
			*out = lappend(*out, ke);
			return;
		}
		valtype = c->consttype;
		if (is_array)
		{
			ArrayType *arr = DatumGetArrayTypeP(c->constvalue);
			Oid elemtype = ARR_ELEMTYPE(arr);
			int16 typlen;
			bool typbyval;
			char typalign;
			Datum *elems;
			bool *nulls;
			int n;

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
			int16 typlen;
			bool typbyval;

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
		ArrayExpr *ae = (ArrayExpr *) value;
		ListCell *lc;

		if (key_family(ae->element_typeid) != key_family(ke->coltype) ||
			list_length(ae->elements) > MAX_KEY_VALUES)
			return;
		ke->valtype = ae->element_typeid;
		ke->consts = palloc(sizeof(Datum) * Max(list_length(ae->elements), 1));
		foreach(lc, ae->elements)
		{
			Node *e = strip_relabel(lfirst(lc));
			Const *c;
			int16 typlen;
			bool typbyval;

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
		Param *p = (Param *) value;

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
	List *out = NIL;
	List *conjuncts;
	ListCell *lc;

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
		Node *c = (Node *) lfirst(lc);

		if (IsA(c, OpExpr) && list_length(((OpExpr *) c)->args) == 2)
		{
			OpExpr *op = (OpExpr *) c;
			Node *l = strip_relabel(linitial(op->args));
			Node *r = strip_relabel(lsecond(op->args));

			if (IsA(r, Var) && !IsA(l, Var))
			{
				Node *t = l;

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
			Node *l = strip_relabel(linitial(sa->args));
			Node *r = strip_relabel(lsecond(sa->args));

			if (IsA(l, Var) && (IsA(r, Const) || IsA(r, Param) || IsA(r, ArrayExpr)) &&
				is_key_equality(sa->opno, ((Var *) l)->vartype, sa->inputcollid))
				add_equality(&out, q, (Var *) l, r, true);
		}
	}
	return out;
}

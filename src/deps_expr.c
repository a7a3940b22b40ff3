/*-------------------------------------------------------------------------
 *
 * deps_expr.c
 *	  The checks of deps.c's plan walker for what an expression makes the
 *	  executor call: functions (the allow-list of built-ins, the rules for
 *	  user functions), operators and their support functions, aggregates,
 *	  domains and their CHECKs, the I/O functions of types, range support
 *	  functions, SQLValueFunctions.  The rules are in deps.c's banner.
 *
 * No state of its own: each check records into the DepsWalk it is given.
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

static bool expr_walker(Node *node, DepsWalk *w);
static void check_range_support(DepsWalk *w, Oid rangetype);

void
not_cacheable(DepsWalk *w, char *reason)
{
	ListCell *lc;

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
 * Built-in stable functions whose result depends on the clock or on the
 * session.  They are not on the allow list either; this only names the
 * reason.  Input functions of the date and time types are here because
 * they accept 'now' and 'today'.
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
		case F_TIMETZ_TIME:
		case F_TIMEZONE_TEXT_TIMETZ:
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

/*
 * Why a built-in function that is not on the allow list bypasses, from its
 * name.  Only the message depends on the name; the decision never does.
 */
static const char *
builtin_reason(const char *name)
{
	static const char *const catalog_prefixes[] = {
		"pg_get_",
		"to_reg",
		"format_type",
		"pg_describe_object",
		"pg_identify_object",
		"pg_index",
		"pg_relation",
		"pg_table",
		"pg_tablespace",
		"pg_sequence",
		"pg_column_is",
		"pg_collation",
		"obj_description",
		"col_description",
		"shobj_description",
		"database_to_xml",
		"schema_to_xml",
		"table_to_xml",
		"query_to_xml",
		"cursor_to_xml",
		"current_schema",
		"enum_",
		"domain_in",
		"oidvectortypes",
	};
	static const char *const session_names[] = {
		"pg_cursor",
		"pg_prepared_statement",
		"pg_listening_channels",
		"pg_backend_pid",
		"pg_my_temp_schema",
		"pg_is_other_temp_schema",
		"pg_trigger_depth",
		"inet_client_addr",
		"inet_client_port",
		"inet_server_addr",
		"inet_server_port",
	};
	size_t len = strlen(name);

	if (strncmp(name, "has_", 4) == 0 || strcmp(name, "pg_has_role") == 0 ||
		strcmp(name, "row_security_active") == 0)
		return "depends on the role's privileges";
	if (strncmp(name, "pg_stat_", 8) == 0)
		return "reads statistics";
	if (strncmp(name, "txid_", 5) == 0 || strstr(name, "xact") != NULL ||
		strstr(name, "snapshot") != NULL || strcmp(name, "age") == 0 ||
		strcmp(name, "mxid_age") == 0)
		return "reads transaction state";
	if (strstr(name, "setting") != NULL)
		return "reads settings the key does not hold";
	if (strcmp(name, "current_database") == 0)
		return "reads the database's name (a database can be renamed)";
	for (int i = 0; i < lengthof(session_names); i++)
		if (strcmp(name, session_names[i]) == 0)
			return "reads the state of the session";
	for (int i = 0; i < lengthof(catalog_prefixes); i++)
		if (strncmp(name, catalog_prefixes[i], strlen(catalog_prefixes[i])) == 0)
			return "reads the system catalogs";
	if (strncmp(name, "reg", 3) == 0 && len > 5 &&
		(strcmp(name + len - 2, "in") == 0 || strcmp(name + len - 3, "out") == 0))
		return "reads the system catalogs";
	if (strstr(name, "_is_visible") != NULL)
		return "reads the system catalogs";
	return "is not on the allow list of built-in functions (it may read the system catalogs or session state)";
}

/* the output functions of an argument's type (a ROW(...) by its fields) */
static void
check_arg_output(DepsWalk *w, Node *arg)
{
	Oid typid = exprType(arg);

	if (typid == RECORDOID && IsA(arg, RowExpr))
	{
		ListCell *lc;

		foreach(lc, ((RowExpr *) arg)->args)
			check_arg_output(w, (Node *) lfirst(lc));
		return;
	}
	check_type_io(w, typid, false);
}

/*
 * Apply the rules (see the file's opening comment) to a call of funcid.
 * args are the argument expressions and resulttype the result type when
 * known (NIL and InvalidOid for implicit calls): conditional allow entries
 * need them.  acl: the executor checks EXECUTE on it for the caller.
 */
void
check_function(DepsWalk *w, Oid funcid, List *args, Oid resulttype, bool acl)
{
	HeapTuple tup;
	Form_pg_proc proc;
	const char *kind;

	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(funcid));
	if (!HeapTupleIsValid(tup))
	{
		not_cacheable(w, psprintf("function with OID %u does not exist", funcid));
		return;
	}
	proc = (Form_pg_proc) GETSTRUCT(tup);
	/* a range's operators call its subtype's comparison, which may be a user's */
	{
		ListCell *lc;

		foreach(lc, args)
		{
			Oid t = getBaseType(exprType((Node *) lfirst(lc)));

			if (type_is_multirange(t))
				t = get_multirange_range(t);
			if (type_is_range(t))
				check_range_support(w, t);
		}
	}
	if (acl)
		w->deps->funcids = list_append_unique_oid(w->deps->funcids, funcid);
	else if (funcid >= FirstNormalObjectId)
		w->deps->implicit_funcids = list_append_unique_oid(w->deps->implicit_funcids,
														   funcid);

	if (proc->provolatile == PROVOLATILE_VOLATILE)
		not_cacheable(w, psprintf("volatile function %s()", NameStr(proc->proname)));
	else if (funcid < FirstNormalObjectId)
	{
		const AllowEntry *allow;
		const DenyEntry *deny;

		if (funcid == F_CURRENT_USER || funcid == F_GETPGUSERNAME)
			w->deps->role_dependent = true;
		else if (funcid == F_SESSION_USER)
			w->deps->session_user_dependent = true;
		else if (is_time_or_session_function(funcid, &kind))
			not_cacheable(w, psprintf("%s %s()", kind, NameStr(proc->proname)));
		else if (proc->provolatile == PROVOLATILE_IMMUTABLE)
		{
			if ((deny = DenyListFind(funcid)) != NULL)
				not_cacheable(w, psprintf("function %s() reads %s", NameStr(proc->proname), deny->note));
		}
		else if ((allow = AllowListFind(funcid)) == NULL)
			not_cacheable(w, psprintf("function %s() %s", NameStr(proc->proname), builtin_reason(NameStr(proc->proname))));
		else if (allow->kind == ALLOW_ARG_OUTPUT)
		{
			ListCell *lc;

			if (args == NIL && proc->pronargs > 0)
				not_cacheable(w, psprintf("function %s() called with arguments of unknown type", NameStr(proc->proname)));
			foreach(lc, args)
				check_arg_output(w, (Node *) lfirst(lc));
		}
		else if (allow->kind == ALLOW_RESULT_INPUT)
		{
			if (resulttype == RECORDOID && w->coldef_types != NIL)
			{
				ListCell *lc;

				/* json_to_record(...) AS t(a int, ...): the list's types */
				foreach(lc, w->coldef_types)
					check_type_io(w, lfirst_oid(lc), true);
			}
			else if (!OidIsValid(resulttype) || resulttype == RECORDOID)
				not_cacheable(w, psprintf("function %s() called with a result of unknown type", NameStr(proc->proname)));
			else
				check_type_io(w, resulttype, true);
		}
	}
	else if (proc->prosecdef ||
			 !heap_attisnull(tup, Anum_pg_proc_proconfig, NULL) ||
			 proc->provolatile == PROVOLATILE_STABLE)
	{
		/* it may read tables and settings the plan does not show */
		w->deps->opaque_funcids = list_append_unique_oid(w->deps->opaque_funcids,
														 funcid);
	}
	else if (proc->prolang != ClanguageId && proc->prolang != INTERNALlanguageId)
	{
		/*
		 * IMMUTABLE by declaration only, and the plan calls it (directly,
		 * through an inlined wrapper, as an aggregate's support function):
		 * nothing proves it reads no setting or table, so it is opaque
		 * like a STABLE one.  (An inlined clean SQL body is not a call.)
		 */
		w->deps->opaque_funcids = list_append_unique_oid(w->deps->opaque_funcids,
														 funcid);
	}
	ReleaseSysCache(tup);
}

/* op_input_types() without raising: false if there is no such operator */
bool
operator_types(Oid opno, Oid *lefttype, Oid *righttype)
{
	HeapTuple tup = SearchSysCache1(OPEROID, ObjectIdGetDatum(opno));

	if (!HeapTupleIsValid(tup))
		return false;
	*lefttype = ((Form_pg_operator) GETSTRUCT(tup))->oprleft;
	*righttype = ((Form_pg_operator) GETSTRUCT(tup))->oprright;
	ReleaseSysCache(tup);
	return true;
}

/* The function of an operator, called implicitly (no EXECUTE check). */
static void
check_operator(DepsWalk *w, Oid opno)
{
	RegProcedure fn = get_opcode(opno);

	if (!OidIsValid(fn))
		not_cacheable(w, psprintf("operator with OID %u does not exist", opno));
	else
		check_function(w, fn, NIL, InvalidOid, false);
}

/* A sort operator: also the btree comparison function a sort calls. */
void
check_sort_operator(DepsWalk *w, Oid opno)
{
	Oid opfamily;
	Oid opcintype;
	int16 strategy;

	check_operator(w, opno);
	if (get_ordering_op_properties(opno, &opfamily, &opcintype, &strategy))
	{
		Oid cmp = get_opfamily_proc(opfamily, opcintype, opcintype, BTORDER_PROC);

		if (OidIsValid(cmp))
			check_function(w, cmp, NIL, InvalidOid, false);
	}
}

/* An equality operator used for grouping; hashed: its hash functions too. */
void
check_equality_operator(DepsWalk *w, Oid opno, bool hashed)
{
	RegProcedure lhash;
	RegProcedure rhash;

	check_operator(w, opno);
	if (hashed && get_op_hash_functions(opno, &lhash, &rhash))
	{
		check_function(w, lhash, NIL, InvalidOid, false);
		if (rhash != lhash)
			check_function(w, rhash, NIL, InvalidOid, false);
	}
}

void
check_operators(DepsWalk *w, int n, Oid *opnos, int how)
{
	for (int i = 0; i < n && opnos != NULL; i++)
	{
		if (how == 0)
			check_sort_operator(w, opnos[i]);
		else
			check_equality_operator(w, opnos[i], how == 2);
	}
}

/* ORDER BY / DISTINCT of an aggregate */
static void
check_sortgroupclauses(DepsWalk *w, List *clauses)
{
	ListCell *lc;

	foreach(lc, clauses)
	{
		SortGroupClause *sgc = lfirst_node(SortGroupClause, lc);

		if (OidIsValid(sgc->sortop))
			check_sort_operator(w, sgc->sortop);
		if (OidIsValid(sgc->eqop))
			check_equality_operator(w, sgc->eqop, sgc->hashable);
	}
}

/*
 * An aggregate: the aggregate itself (EXECUTE checked for the caller) and
 * every support function, which PostgreSQL checks against the aggregate's
 * owner only, so they are in the cacheability check and not in funcids.
 * args: the argument expressions (for json_agg's output functions).
 */
static void
check_aggregate(DepsWalk *w, Oid aggfnoid, List *args, bool acl)
{
	HeapTuple tup;
	Form_pg_aggregate agg;
	Oid support[8];

	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(aggfnoid));
	if (!HeapTupleIsValid(tup))
	{
		not_cacheable(w, psprintf("aggregate with OID %u does not exist", aggfnoid));
		return;
	}
	if (((Form_pg_proc) GETSTRUCT(tup))->provolatile == PROVOLATILE_VOLATILE)
		not_cacheable(w, psprintf("volatile aggregate %s()", NameStr(((Form_pg_proc) GETSTRUCT(tup))->proname)));
	ReleaseSysCache(tup);
	if (acl)
		w->deps->funcids = list_append_unique_oid(w->deps->funcids, aggfnoid);

	tup = SearchSysCache1(AGGFNOID, ObjectIdGetDatum(aggfnoid));
	if (!HeapTupleIsValid(tup))
	{
		not_cacheable(w, psprintf("aggregate with OID %u does not exist", aggfnoid));
		return;
	}
	agg = (Form_pg_aggregate) GETSTRUCT(tup);
	support[0] = agg->aggtransfn;
	support[1] = agg->aggfinalfn;
	support[2] = agg->aggcombinefn;
	support[3] = agg->aggserialfn;
	support[4] = agg->aggdeserialfn;
	support[5] = agg->aggmtransfn;
	support[6] = agg->aggminvtransfn;
	support[7] = agg->aggmfinalfn;
	ReleaseSysCache(tup);
	for (int i = 0; i < lengthof(support); i++)
		if (OidIsValid(support[i]))
			check_function(w, support[i], args, InvalidOid, false);
}

/*
 * The CHECK constraints of a domain (and of the domains it is based on):
 * the executor evaluates them, as the caller, wherever a value becomes of
 * that type.
 */
static void
check_domain(DepsWalk *w, Oid typid)
{
	DomainConstraintRef *ref;
	ListCell *lc;
	bool save_acl = w->acl;

	if (!SearchSysCacheExists1(TYPEOID, ObjectIdGetDatum(typid)))
	{
		not_cacheable(w, psprintf("type with OID %u does not exist", typid));
		return;
	}
	if (w->depth >= MAX_NESTING)
	{
		not_cacheable(w, "domains nested too deeply to check");
		return;
	}
	ref = palloc0(sizeof(DomainConstraintRef));
	InitDomainConstraintRef(typid, ref, CurrentMemoryContext, false);
	w->depth++;
	w->acl = true;
	foreach(lc, ref->constraints)
	{
		DomainConstraintState *con = (DomainConstraintState *) lfirst(lc);

		if (con->constrainttype == DOM_CONSTRAINT_CHECK)
			(void) expr_walker((Node *) con->check_expr, w);
	}
	w->acl = save_acl;
	w->depth--;
}

/*
 * The input (input = true) or output functions a value of type typid goes
 * through: arrays by their element, composites by their columns, ranges by
 * their subtype, domains by their base type (and their constraints, on
 * input).  Called implicitly: no EXECUTE check.
 */
void
check_type_io(DepsWalk *w, Oid typid, bool input)
{
	HeapTuple tup;
	Form_pg_type typ;
	Oid iofunc;
	Oid elem = InvalidOid;
	Oid relid = InvalidOid;
	char typtype;
	bool is_array;

	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(typid));
	if (!HeapTupleIsValid(tup))
	{
		not_cacheable(w, psprintf("type with OID %u does not exist", typid));
		return;
	}
	if (w->depth >= MAX_NESTING)
	{
		ReleaseSysCache(tup);
		not_cacheable(w, "types nested too deeply to check");
		return;
	}
	typ = (Form_pg_type) GETSTRUCT(tup);
	typtype = typ->typtype;
	iofunc = input ? typ->typinput : typ->typoutput;
	is_array = IsTrueArrayType(typ);
	if (is_array)
		elem = typ->typelem;
	else if (typtype == TYPTYPE_DOMAIN)
		elem = typ->typbasetype;
	else if (typtype == TYPTYPE_COMPOSITE)
		relid = typ->typrelid;
	ReleaseSysCache(tup);

	w->depth++;
	if (is_array)
		check_type_io(w, elem, input);
	else if (typtype == TYPTYPE_DOMAIN)
	{
		check_type_io(w, elem, input);
		if (input)
			check_domain(w, typid);
	}
	else if (typtype == TYPTYPE_COMPOSITE && OidIsValid(relid))
	{
		HeapTuple reltup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
		int natts;

		if (!HeapTupleIsValid(reltup))
			not_cacheable(w, psprintf("relation with OID %u does not exist", relid));
		else
		{
			natts = ((Form_pg_class) GETSTRUCT(reltup))->relnatts;
			ReleaseSysCache(reltup);
			for (int i = 1; i <= natts; i++)
			{
				HeapTuple atttup = SearchSysCache2(ATTNUM, ObjectIdGetDatum(relid),
												   Int16GetDatum(i));
				Form_pg_attribute att;

				if (!HeapTupleIsValid(atttup))
					continue;
				att = (Form_pg_attribute) GETSTRUCT(atttup);
				if (!att->attisdropped)
				{
					Oid atttypid = att->atttypid;

					ReleaseSysCache(atttup);
					check_type_io(w, atttypid, input);
				}
				else
					ReleaseSysCache(atttup);
			}
		}
	}
	else if (typtype == TYPTYPE_RANGE)
	{
		check_type_io(w, get_range_subtype(typid), input);
		check_range_support(w, typid);
	}
	else if (typtype == TYPTYPE_MULTIRANGE)
		check_type_io(w, get_multirange_range(typid), input);
	else
		check_function(w, iofunc, NIL, InvalidOid, false);

	/*
	 * to_json, row_to_json, json_agg ... call a cast of the type to json
	 * or jsonb when there is one (a user's, in any language).
	 */
	if (!input)
	{
		Oid targets[2] = {JSONOID, JSONBOID};

		for (int i = 0; i < 2; i++)
		{
			HeapTuple ctup = SearchSysCache2(CASTSOURCETARGET, ObjectIdGetDatum(typid),
											 ObjectIdGetDatum(targets[i]));

			if (HeapTupleIsValid(ctup))
			{
				Form_pg_cast c = (Form_pg_cast) GETSTRUCT(ctup);
				Oid castfunc = c->castmethod == COERCION_METHOD_FUNCTION ?
					c->castfunc :
					InvalidOid;

				ReleaseSysCache(ctup);
				if (OidIsValid(castfunc))
					check_function(w, castfunc, NIL, InvalidOid, false);
			}
		}
	}
	w->depth--;
}

/*
 * The functions a range type's built-in operators call behind the plan's
 * back: the subtype's btree comparison (its operator class may be a
 * user's), canonical and subtype_diff.
 */
static void
check_range_support(DepsWalk *w, Oid rangetype)
{
	HeapTuple tup = SearchSysCache1(RANGETYPE, ObjectIdGetDatum(rangetype));
	Form_pg_range rng;
	Oid cmp = InvalidOid;

	if (!HeapTupleIsValid(tup))
		return;
	rng = (Form_pg_range) GETSTRUCT(tup);
	if (OidIsValid(rng->rngsubopc))
	{
		Oid family = get_opclass_family(rng->rngsubopc);

		cmp = get_opfamily_proc(family, rng->rngsubtype, rng->rngsubtype, BTORDER_PROC);
	}
	if (OidIsValid(cmp))
		check_function(w, cmp, NIL, InvalidOid, false);
	if (OidIsValid(rng->rngcanonical))
		check_function(w, rng->rngcanonical, NIL, InvalidOid, false);
	if (OidIsValid(rng->rngsubdiff))
		check_function(w, rng->rngsubdiff, NIL, InvalidOid, false);
	ReleaseSysCache(tup);
}

static void
check_sqlvaluefunction(DepsWalk *w, SQLValueFunction *svf)
{
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
			not_cacheable(w, "CURRENT_CATALOG reads the database's name (a database can be renamed)");
			break;
		case SVFOP_CURRENT_SCHEMA:
			not_cacheable(w, "CURRENT_SCHEMA reads the system catalogs and the role's privileges");
			break;
	}
}

/* the operator of an OpExpr-like node, and whether EXECUTE is checked */
void
check_opexpr(DepsWalk *w, Oid opno, Oid opfuncid, List *args, Oid resulttype)
{
	if (!OidIsValid(opfuncid))
		opfuncid = get_opcode(opno);
	if (!OidIsValid(opfuncid))
		not_cacheable(w, psprintf("operator with OID %u does not exist", opno));
	else
		check_function(w, opfuncid, args, resulttype, w->acl);
}

/*
 * Long because: one case per expression node type the executor evaluates
 * with functions of its own; each case is short and they belong together.
 */
static bool
expr_walker(Node *node, DepsWalk *w)
{
	if (node == NULL)
		return false;
	check_stack_depth();

	switch (nodeTag(node))
	{
		case T_Var:
			{
				Var *v = (Var *) node;

				/*
				 * xmin, xmax, cmin, cmax change without any write a trigger
				 * sees (row locks, FK checks, another session's lock); ctid
				 * changes only by writes and by the rewrites that bump, and
				 * tableoid never.
				 */
				if (v->varattno < 0 &&
					v->varattno != SelfItemPointerAttributeNumber &&
					v->varattno != TableOidAttributeNumber)
					not_cacheable(w, psprintf("system column %s (row locks change it without a write)", v->varattno == MinTransactionIdAttributeNumber ? "xmin" : v->varattno == MaxTransactionIdAttributeNumber ? "xmax" :
												  v->varattno == MinCommandIdAttributeNumber																													 ? "cmin" :
																																																				   "cmax"));
				break;
			}
		case T_FuncExpr:
			{
				FuncExpr *f = (FuncExpr *) node;
				List *save_types = w->coldef_types;

				if (node != w->coldef_call)
					w->coldef_types = NIL;
				check_function(w, f->funcid, f->args, f->funcresulttype, w->acl);
				w->coldef_types = save_types;
				break;
			}
		case T_OpExpr:
		case T_DistinctExpr:
		case T_NullIfExpr:
			{
				OpExpr *op = (OpExpr *) node;

				check_opexpr(w, op->opno, op->opfuncid, op->args, op->opresulttype);
				break;
			}
		case T_ScalarArrayOpExpr:
			{
				ScalarArrayOpExpr *sa = (ScalarArrayOpExpr *) node;

				if (OidIsValid(sa->hashfuncid) && !sa->useOr && OidIsValid(sa->negfuncid))
					check_function(w, sa->negfuncid, sa->args, BOOLOID, w->acl);
				else
					check_opexpr(w, sa->opno, sa->opfuncid, sa->args, BOOLOID);
				if (OidIsValid(sa->hashfuncid))
					check_function(w, sa->hashfuncid, NIL, InvalidOid, w->acl);
				break;
			}
		case T_Aggref:
			{
				Aggref *a = (Aggref *) node;
				List *args = NIL;
				ListCell *lc;

				foreach(lc, a->args)
					args = lappend(args, ((TargetEntry *) lfirst(lc))->expr);
				check_aggregate(w, a->aggfnoid, args, w->acl);
				check_sortgroupclauses(w, a->aggorder);
				check_sortgroupclauses(w, a->aggdistinct);
				break;
			}
		case T_WindowFunc:
			{
				WindowFunc *wf = (WindowFunc *) node;

				if (SearchSysCacheExists1(AGGFNOID, ObjectIdGetDatum(wf->winfnoid)))
					check_aggregate(w, wf->winfnoid, wf->args, w->acl);
				else
					check_function(w, wf->winfnoid, wf->args, wf->wintype, w->acl);
				break;
			}
		case T_CoerceViaIO:
			{
				CoerceViaIO *io = (CoerceViaIO *) node;

				check_arg_output(w, (Node *) io->arg);
				check_type_io(w, io->resulttype, true);
				break;
			}
		case T_CoerceToDomain:
			check_domain(w, ((CoerceToDomain *) node)->resulttype);
			break;
		case T_MinMaxExpr:
			{
				Oid typid = ((MinMaxExpr *) node)->minmaxtype;
				TypeCacheEntry *tc;

				if (!SearchSysCacheExists1(TYPEOID, ObjectIdGetDatum(typid)))
				{
					not_cacheable(w, psprintf("type with OID %u does not exist", typid));
					break;
				}
				tc = lookup_type_cache(typid, TYPECACHE_CMP_PROC);
				if (OidIsValid(tc->cmp_proc))
					check_function(w, tc->cmp_proc, NIL, InvalidOid, false);
				break;
			}
		case T_RowCompareExpr:
			{
				RowCompareExpr *rc = (RowCompareExpr *) node;
				ListCell *lo;
				ListCell *lf;

				forboth(lo, rc->opnos, lf, rc->opfamilies)
				{
					Oid lefttype;
					Oid righttype;
					Oid cmp;

					check_operator(w, lfirst_oid(lo));
					if (!operator_types(lfirst_oid(lo), &lefttype, &righttype))
						continue;
					cmp = get_opfamily_proc(lfirst_oid(lf), lefttype, righttype, BTORDER_PROC);
					if (OidIsValid(cmp))
						check_function(w, cmp, NIL, InvalidOid, false);
				}
				break;
			}
		case T_XmlExpr:
			{
				XmlExpr *x = (XmlExpr *) node;
				ListCell *lc;

				if (x->op == IS_XMLELEMENT || x->op == IS_XMLFOREST)
				{
					foreach(lc, x->named_args)
						check_arg_output(w, (Node *) lfirst(lc));
					foreach(lc, x->args)
						check_arg_output(w, (Node *) lfirst(lc));
				}
				break;
			}
		case T_SubPlan:
			{
				SubPlan *sp = (SubPlan *) node;

				/* a hashed subplan hashes with its operators' hash functions */
				if (sp->useHashTable && sp->testexpr)
				{
					List *conds = IsA(sp->testexpr, BoolExpr) ?
						((BoolExpr *) sp->testexpr)->args :
						list_make1(sp->testexpr);
					ListCell *lc;

					foreach(lc, conds)
						if (IsA(lfirst(lc), OpExpr))
							check_equality_operator(w, ((OpExpr *) lfirst(lc))->opno, true);
				}
				break;
			}
		case T_SQLValueFunction:
			check_sqlvaluefunction(w, (SQLValueFunction *) node);
			break;
		case T_NextValueExpr:
			not_cacheable(w, "sequence function");
			break;
		case T_CurrentOfExpr:
			not_cacheable(w, "WHERE CURRENT OF");
			break;
		default:
			break;
	}
	return expression_tree_walker(node, expr_walker, (void *) w);
}

void
walk_exprs(void *node, DepsWalk *w)
{
	(void) expr_walker((Node *) node, w);
}

/*-------------------------------------------------------------------------
 *
 * deps.c
 *	  What a planned query depends on and whether its result may be stored.
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
 *	  (query.c bypasses unless cache_opts(depends_on => ...) names what they
 *	  read); IMMUTABLE in C or internal (created by a superuser): trusted;
 *	  IMMUTABLE in any other language: the role goes into the key, so that
 *	  a mis-declared function cannot leak across roles (query.c also treats
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
 * checks for the calling role (query.c re-checks them on a hit): the
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

/* deeper type or domain nesting than this is refused, not followed */
#define MAX_NESTING 16

typedef struct DepsWalk
{
	QueryDeps  *deps;
	bool		acl;			/* the executor checks EXECUTE on the functions
								 * of the expression being walked */
	int			depth;			/* of type and domain recursion */
	Node	   *coldef_call;	/* a FROM-clause call with a column definition
								 * list ... */
	List	   *coldef_types;	/* ... and the types of that list */
} DepsWalk;

static bool expr_walker(Node *node, DepsWalk *w);
static void check_type_io(DepsWalk *w, Oid typid, bool input);

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
		"pg_get_", "to_reg", "format_type", "pg_describe_object",
		"pg_identify_object", "pg_index", "pg_relation", "pg_table",
		"pg_tablespace", "pg_sequence", "pg_column_is", "pg_collation",
		"obj_description", "col_description", "shobj_description",
		"database_to_xml", "schema_to_xml", "table_to_xml", "query_to_xml",
		"cursor_to_xml", "current_schema", "enum_", "domain_in", "oidvectortypes",
	};
	static const char *const session_names[] = {
		"pg_cursor", "pg_prepared_statement", "pg_listening_channels",
		"pg_backend_pid", "pg_my_temp_schema", "pg_is_other_temp_schema",
		"pg_trigger_depth", "inet_client_addr", "inet_client_port",
		"inet_server_addr", "inet_server_port",
	};
	size_t		len = strlen(name);

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

static void check_range_support(DepsWalk *w, Oid rangetype);

/* the output functions of an argument's type (a ROW(...) by its fields) */
static void
check_arg_output(DepsWalk *w, Node *arg)
{
	Oid			typid = exprType(arg);

	if (typid == RECORDOID && IsA(arg, RowExpr))
	{
		ListCell   *lc;

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
static void
check_function(DepsWalk *w, Oid funcid, List *args, Oid resulttype, bool acl)
{
	HeapTuple	tup;
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
		ListCell   *lc;

		foreach(lc, args)
		{
			Oid			t = getBaseType(exprType((Node *) lfirst(lc)));

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
				not_cacheable(w, psprintf("function %s() reads %s",
										  NameStr(proc->proname), deny->note));
		}
		else if ((allow = AllowListFind(funcid)) == NULL)
			not_cacheable(w, psprintf("function %s() %s", NameStr(proc->proname),
									  builtin_reason(NameStr(proc->proname))));
		else if (allow->kind == ALLOW_ARG_OUTPUT)
		{
			ListCell   *lc;

			if (args == NIL && proc->pronargs > 0)
				not_cacheable(w, psprintf("function %s() called with arguments of unknown type",
										  NameStr(proc->proname)));
			foreach(lc, args)
				check_arg_output(w, (Node *) lfirst(lc));
		}
		else if (allow->kind == ALLOW_RESULT_INPUT)
		{
			if (resulttype == RECORDOID && w->coldef_types != NIL)
			{
				ListCell   *lc;

				/* json_to_record(...) AS t(a int, ...): the list's types */
				foreach(lc, w->coldef_types)
					check_type_io(w, lfirst_oid(lc), true);
			}
			else if (!OidIsValid(resulttype) || resulttype == RECORDOID)
				not_cacheable(w, psprintf("function %s() called with a result of unknown type",
										  NameStr(proc->proname)));
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
static bool
operator_types(Oid opno, Oid *lefttype, Oid *righttype)
{
	HeapTuple	tup = SearchSysCache1(OPEROID, ObjectIdGetDatum(opno));

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
static void
check_sort_operator(DepsWalk *w, Oid opno)
{
	Oid			opfamily;
	Oid			opcintype;
	int16		strategy;

	check_operator(w, opno);
	if (get_ordering_op_properties(opno, &opfamily, &opcintype, &strategy))
	{
		Oid			cmp = get_opfamily_proc(opfamily, opcintype, opcintype, BTORDER_PROC);

		if (OidIsValid(cmp))
			check_function(w, cmp, NIL, InvalidOid, false);
	}
}

/* An equality operator used for grouping; hashed: its hash functions too. */
static void
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

static void
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

#define OPS_SORT 0
#define OPS_EQUAL 1
#define OPS_HASHED 2

/* ORDER BY / DISTINCT of an aggregate */
static void
check_sortgroupclauses(DepsWalk *w, List *clauses)
{
	ListCell   *lc;

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
	HeapTuple	tup;
	Form_pg_aggregate agg;
	Oid			support[8];

	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(aggfnoid));
	if (!HeapTupleIsValid(tup))
	{
		not_cacheable(w, psprintf("aggregate with OID %u does not exist", aggfnoid));
		return;
	}
	if (((Form_pg_proc) GETSTRUCT(tup))->provolatile == PROVOLATILE_VOLATILE)
		not_cacheable(w, psprintf("volatile aggregate %s()",
								  NameStr(((Form_pg_proc) GETSTRUCT(tup))->proname)));
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
	ListCell   *lc;
	bool		save_acl = w->acl;

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
static void
check_type_io(DepsWalk *w, Oid typid, bool input)
{
	HeapTuple	tup;
	Form_pg_type typ;
	Oid			iofunc;
	Oid			elem = InvalidOid;
	Oid			relid = InvalidOid;
	char		typtype;
	bool		is_array;

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
		HeapTuple	reltup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
		int			natts;

		if (!HeapTupleIsValid(reltup))
			not_cacheable(w, psprintf("relation with OID %u does not exist", relid));
		else
		{
			natts = ((Form_pg_class) GETSTRUCT(reltup))->relnatts;
			ReleaseSysCache(reltup);
			for (int i = 1; i <= natts; i++)
			{
				HeapTuple	atttup = SearchSysCache2(ATTNUM, ObjectIdGetDatum(relid),
													 Int16GetDatum(i));
				Form_pg_attribute att;

				if (!HeapTupleIsValid(atttup))
					continue;
				att = (Form_pg_attribute) GETSTRUCT(atttup);
				if (!att->attisdropped)
				{
					Oid			atttypid = att->atttypid;

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
		Oid			targets[2] = {JSONOID, JSONBOID};

		for (int i = 0; i < 2; i++)
		{
			HeapTuple	ctup = SearchSysCache2(CASTSOURCETARGET, ObjectIdGetDatum(typid),
											   ObjectIdGetDatum(targets[i]));

			if (HeapTupleIsValid(ctup))
			{
				Form_pg_cast c = (Form_pg_cast) GETSTRUCT(ctup);
				Oid			castfunc = c->castmethod == COERCION_METHOD_FUNCTION ?
				c->castfunc : InvalidOid;

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
	HeapTuple	tup = SearchSysCache1(RANGETYPE, ObjectIdGetDatum(rangetype));
	Form_pg_range rng;
	Oid			cmp = InvalidOid;

	if (!HeapTupleIsValid(tup))
		return;
	rng = (Form_pg_range) GETSTRUCT(tup);
	if (OidIsValid(rng->rngsubopc))
	{
		Oid			family = get_opclass_family(rng->rngsubopc);

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
static void
check_opexpr(DepsWalk *w, Oid opno, Oid opfuncid, List *args, Oid resulttype)
{
	if (!OidIsValid(opfuncid))
		opfuncid = get_opcode(opno);
	if (!OidIsValid(opfuncid))
		not_cacheable(w, psprintf("operator with OID %u does not exist", opno));
	else
		check_function(w, opfuncid, args, resulttype, w->acl);
}

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
				Var		   *v = (Var *) node;

				/*
				 * xmin, xmax, cmin, cmax change without any write a trigger
				 * sees (row locks, FK checks, another session's lock); ctid
				 * changes only by writes and by the rewrites that bump, and
				 * tableoid never.
				 */
				if (v->varattno < 0 &&
					v->varattno != SelfItemPointerAttributeNumber &&
					v->varattno != TableOidAttributeNumber)
					not_cacheable(w, psprintf("system column %s (row locks change it without a write)",
											  v->varattno == MinTransactionIdAttributeNumber ? "xmin" :
											  v->varattno == MaxTransactionIdAttributeNumber ? "xmax" :
											  v->varattno == MinCommandIdAttributeNumber ? "cmin" : "cmax"));
				break;
			}
		case T_FuncExpr:
			{
				FuncExpr   *f = (FuncExpr *) node;
				List	   *save_types = w->coldef_types;

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
				OpExpr	   *op = (OpExpr *) node;

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
				Aggref	   *a = (Aggref *) node;
				List	   *args = NIL;
				ListCell   *lc;

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
				Oid			typid = ((MinMaxExpr *) node)->minmaxtype;
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
				ListCell   *lo;
				ListCell   *lf;

				forboth(lo, rc->opnos, lf, rc->opfamilies)
				{
					Oid			lefttype;
					Oid			righttype;
					Oid			cmp;

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
				XmlExpr    *x = (XmlExpr *) node;
				ListCell   *lc;

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
				SubPlan    *sp = (SubPlan *) node;

				/* a hashed subplan hashes with its operators' hash functions */
				if (sp->useHashTable && sp->testexpr)
				{
					List	   *conds = IsA(sp->testexpr, BoolExpr) ?
						((BoolExpr *) sp->testexpr)->args : list_make1(sp->testexpr);
					ListCell   *lc;

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

static void
walk_exprs(void *node, DepsWalk *w)
{
	(void) expr_walker((Node *) node, w);
}

/*
 * Quals the executor does not initialize as expressions (index quals,
 * merge clauses, TID quals): their operators are called without an
 * EXECUTE check, their other side is an initialized expression.
 */
static void
walk_quals_noacl(List *quals, DepsWalk *w)
{
	ListCell   *lc;
	bool		save_acl = w->acl;

	foreach(lc, quals)
	{
		Node	   *q = (Node *) lfirst(lc);

		w->acl = false;
		if (IsA(q, OpExpr))
		{
			OpExpr	   *op = (OpExpr *) q;

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
	ListCell   *l1;

	if (ppi == NULL)
		return;
	foreach(l1, ppi->prune_infos)
	{
		ListCell   *l2;

		foreach(l2, (List *) lfirst(l1))
		{
			PartitionedRelPruneInfo *pri = lfirst_node(PartitionedRelPruneInfo, l2);
			List	   *steps = list_concat_copy(pri->initial_pruning_steps,
												 pri->exec_pruning_steps);
			ListCell   *l3;

			foreach(l3, steps)
			{
				PartitionPruneStepOp *op;
				ListCell   *l4;

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
	ListCell   *lc;

	foreach(lc, plans)
		walk_plan((Plan *) lfirst(lc), w);
}

/*
 * Visit every expression a plan node evaluates and every function it calls
 * implicitly.  A node type missing here would hide the functions it calls,
 * so the list follows plannodes.h.
 */
static void
walk_plan(Plan *plan, DepsWalk *w)
{
	ListCell   *lc;

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
				TableFunc  *tf = ((TableFuncScan *) plan)->tablefunc;

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
				MergeJoin  *mj = (MergeJoin *) plan;
				int			i = 0;

				walk_exprs(mj->join.joinqual, w);
				walk_quals_noacl(mj->mergeclauses, w);
				/* the merge compares with the btree comparison function */
				foreach(lc, mj->mergeclauses)
				{
					Node	   *clause = (Node *) lfirst(lc);

					if (IsA(clause, OpExpr) && mj->mergeFamilies)
					{
						Oid			lefttype;
						Oid			righttype;
						Oid			cmp;

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
				HashJoin   *hj = (HashJoin *) plan;

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
				Memoize    *m = (Memoize *) plan;

				walk_exprs(m->param_exprs, w);
				check_operators(w, m->numKeys, m->hashOperators, OPS_HASHED);
				break;
			}
		case T_Sort:
			{
				Sort	   *s = (Sort *) plan;

				check_operators(w, s->numCols, s->sortOperators, OPS_SORT);
				break;
			}
		case T_IncrementalSort:
			{
				Sort	   *s = &((IncrementalSort *) plan)->sort;

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
				Group	   *g = (Group *) plan;

				check_operators(w, g->numCols, g->grpOperators, OPS_EQUAL);
				break;
			}
		case T_Agg:
			{
				Agg		   *a = (Agg *) plan;

				check_operators(w, a->numCols, a->grpOperators,
								a->aggstrategy == AGG_HASHED || a->aggstrategy == AGG_MIXED ?
								OPS_HASHED : OPS_EQUAL);
				/* grouping sets: the other phases */
				walk_plans(a->chain, w);
				break;
			}
		case T_Unique:
			{
				Unique	   *u = (Unique *) plan;

				check_operators(w, u->numCols, u->uniqOperators, OPS_EQUAL);
				break;
			}
		case T_SetOp:
			{
				SetOp	   *so = (SetOp *) plan;

				check_operators(w, so->numCols, so->dupOperators,
								so->strategy == SETOP_HASHED ? OPS_HASHED : OPS_EQUAL);
				break;
			}
		case T_WindowAgg:
			{
				WindowAgg  *wa = (WindowAgg *) plan;

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
				Limit	   *l = (Limit *) plan;

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
	Oid			x = lfirst_oid(a);
	Oid			y = lfirst_oid(b);

	return (x > y) - (x < y);
}

/*
 * A relation of the range table: it must exist, and be one whose rows
 * every session sees alike and whose changes can be tracked.
 */
static void
check_relation(DepsWalk *w, Oid relid)
{
	HeapTuple	tup;
	Form_pg_class rel;
	char	   *label;

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
		not_cacheable(w, psprintf("system catalog %s",
								  rel->relnamespace == PG_CATALOG_NAMESPACE ?
								  NameStr(rel->relname) : label));
	else if (rel->relkind == RELKIND_FOREIGN_TABLE)
		not_cacheable(w, psprintf("foreign table %s answers with the caller's user mapping",
								  label));
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
	DepsWalk	w;
	ListCell   *lc;

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

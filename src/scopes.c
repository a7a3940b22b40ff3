/*-------------------------------------------------------------------------
 *
 * scopes.c
 *	  What one call depends on: the scope relations whose generations stand
 *	  for the relations the plan reads (analyze_scopes), their narrowing to
 *	  key values where the query names them by key (analyze_narrowing), the
 *	  generation keys of a call (call_scopes), whether this transaction has
 *	  touched one of them, and the entry key (entry_key).
 *
 * No state of its own.
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

/* most key values one call depends on; past that, the table's generation */
#define MAX_CALL_KEYS 100

/* "schema.name", or "relation with OID n" when there is no such relation */
char *
relation_label(Oid relid)
{
	char *name = get_rel_name(relid);
	char *nspname;

	if (name == NULL)
		return psprintf("relation with OID %u", relid);
	nspname = get_namespace_name(get_rel_namespace(relid));
	if (nspname == NULL)
		return psprintf("relation with OID %u", relid);
	return quote_qualified_identifier(nspname, name);
}

static char *
untracked_label(Oid relid, const char *why)
{
	if (strcmp(why, "untracked") == 0)
		return psprintf("%s untracked", relation_label(relid));
	return psprintf("%s untracked (%s)", relation_label(relid), why);
}

static NarrowedScope *
find_narrowed(List *narrowed, Oid scope)
{
	ListCell *lc;

	foreach(lc, narrowed)
		if (((NarrowedScope *) lfirst(lc))->scope == scope)
			return (NarrowedScope *) lfirst(lc);
	return NULL;
}

/*
 * The scope relations of the key equalities eqs, each with the equalities
 * on it (one per range table entry).
 */
static List *
narrowing_candidates(List *eqs)
{
	List *candidates = NIL;
	ListCell *lc;

	foreach(lc, eqs)
	{
		KeyEquality *ke = (KeyEquality *) lfirst(lc);
		Oid scope;
		NarrowedScope *ns;
		bool dup = false;
		ListCell *lc2;

		if (!InvalKeyColumn(ke->relid, ke->colname, &scope))
			continue;
		ns = find_narrowed(candidates, scope);
		if (ns == NULL)
		{
			ns = palloc0(sizeof(NarrowedScope));
			ns->scope = scope;
			candidates = lappend(candidates, ns);
		}
		foreach(lc2, ns->eqs)
			if (((KeyEquality *) lfirst(lc2))->rtindex == ke->rtindex)
				dup = true;
		if (!dup)
			ns->eqs = lappend(ns->eqs, ke);
	}

	return candidates;
}

/*
 * Whether the query depends on ns's scope only through the key values of
 * its equalities: every top-level occurrence of the scope has one, it
 * occurs nowhere below the top level (inner), and the plan reads each of
 * its relations exactly as often as those entries do.
 */
static bool
scope_is_narrowed(NarrowedScope *ns, Query *q, List *inner, PreparedQuery *pq,
				  PlannedStmt *stmt)
{
	bool ok = true;
	ListCell *lc2;
	int rtindex = 0;

	/* every top-level occurrence of the scope has its equality */
	foreach(lc2, q->rtable)
	{
		RangeTblEntry *rte = (RangeTblEntry *) lfirst(lc2);
		Oid scope;
		const char *why;
		bool has = false;
		ListCell *lc3;

		rtindex++;
		if (rte->rtekind != RTE_RELATION ||
			InvalRelationCoverage(rte->relid, &scope, &why) == REL_IGNORED ||
			scope != ns->scope)
			continue;
		foreach(lc3, ns->eqs)
			if (((KeyEquality *) lfirst(lc3))->rtindex == rtindex)
				has = true;
		if (!has)
			ok = false;
	}
	/* no occurrence below the top level */
	foreach(lc2, inner)
	{
		Oid scope;
		const char *why;

		if (InvalRelationCoverage(lfirst_oid(lc2), &scope, &why) != REL_IGNORED &&
			scope == ns->scope)
			ok = false;
	}
	/* every relation of the plan mapping to it comes from those entries */
	foreach(lc2, pq->deps.relids)
	{
		Oid relid = lfirst_oid(lc2);
		Oid scope;
		const char *why;
		bool covered = false;
		ListCell *lc3;

		if (InvalRelationCoverage(relid, &scope, &why) == REL_IGNORED ||
			scope != ns->scope)
			continue;
		foreach(lc3, ns->eqs)
		{
			KeyEquality *ke = (KeyEquality *) lfirst(lc3);

			if (ke->relid == relid ||
				list_member_oid(find_all_inheritors(ke->relid, NoLock, NULL), relid))
				covered = true;
		}
		if (!covered)
			ok = false;
	}

	/*
	 * The plan reads each such relation exactly as often as those
	 * entries do: an inlined SQL function that reads it again adds an
	 * entry to the plan's range table, which the query tree did not show.
	 */
	foreach(lc2, stmt->rtable)
	{
		RangeTblEntry *rte = (RangeTblEntry *) lfirst(lc2);
		Oid scope;
		const char *why;
		int count = 0;
		int expected = 0;
		ListCell *lc3;

		if (!ok)
			break;
		if (rte->rtekind != RTE_RELATION ||
			InvalRelationCoverage(rte->relid, &scope, &why) == REL_IGNORED ||
			scope != ns->scope)
			continue;
		foreach(lc3, stmt->rtable)
		{
			RangeTblEntry *other = (RangeTblEntry *) lfirst(lc3);

			if (other->rtekind == RTE_RELATION && other->relid == rte->relid)
				count++;
		}
		foreach(lc3, ns->eqs)
		{
			KeyEquality *ke = (KeyEquality *) lfirst(lc3);

			if (ke->relid == rte->relid ||
				list_member_oid(find_all_inheritors(ke->relid, NoLock, NULL), rte->relid))
				expected++;
		}
		if (count != expected)
			ok = false;
	}
	return ok;
}

/*
 * Key-level tracking: which scope relations the query depends on only
 * through key values.  A scope qualifies when every relation of the plan
 * that maps to it is a top-level relation of the query with an equality
 * on one of the scope's key columns (or a partition or child of one), and
 * it occurs nowhere else (subqueries, sublinks, views, inlined functions).
 * Anything not proven stays table-level.
 */
static void
analyze_narrowing(PreparedQuery *pq, PlannedStmt *stmt)
{
	Query *q = linitial_node(Query, pq->plansource->query_list);
	List *inner = NIL;
	List *eqs = FindKeyEqualities(q, &inner);
	ListCell *lc;

	pq->narrowed = NIL;
	if (eqs == NIL)
		return;
	foreach(lc, narrowing_candidates(eqs))
	{
		NarrowedScope *ns = (NarrowedScope *) lfirst(lc);

		if (scope_is_narrowed(ns, q, inner, pq, stmt))
			pq->narrowed = lappend(pq->narrowed, ns);
	}
}

/*
 * Which generations stand for the relations the plan reads, and what is
 * not tracked.  Tracking a table creates triggers, which invalidates the
 * plans reading it, so this is redone when it changes.
 */
void
analyze_scopes(PreparedQuery *pq, PlannedStmt *stmt)
{
	ListCell *lc;

	pq->scope_relids = NIL;
	pq->has_tracked = false;
	pq->untracked = NIL;
	pq->opaque = NIL;
	pq->names_prefix = NULL; /* scope_names makes them again */
	foreach(lc, pq->deps.relids)
	{
		Oid relid = lfirst_oid(lc);
		Oid scope;
		const char *why;

		switch (InvalRelationCoverage(relid, &scope, &why))
		{
			case REL_IGNORED:
				continue;
			case REL_TRACKED:
				pq->has_tracked = true;
				break;
			case REL_UNTRACKED:
				pq->untracked = lappend(pq->untracked, untracked_label(relid, why));
				break;
		}
		pq->scope_relids = list_append_unique_oid(pq->scope_relids, scope);
	}
	list_sort(pq->scope_relids, list_oid_cmp);
	analyze_narrowing(pq, stmt);
	foreach(lc, pq->deps.opaque_funcids)
		pq->opaque = lappend(pq->opaque,
							 psprintf("function %s() may read tables or settings the plan does not show",
									  get_func_name(lfirst_oid(lc))));
}

/*
 * The binary output function of typid, or InvalidOid when it has none (or
 * it is an array or composite of a type without one: array_send and
 * record_send would raise).
 */
static Oid
get_type_send_function(Oid typid)
{
	HeapTuple tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(typid));
	Oid send;
	Oid elem;

	if (!HeapTupleIsValid(tup))
		return InvalidOid;
	send = ((Form_pg_type) GETSTRUCT(tup))->typsend;
	elem = ((Form_pg_type) GETSTRUCT(tup))->typelem;
	if (((Form_pg_type) GETSTRUCT(tup))->typtype == TYPTYPE_COMPOSITE ||
		typid == RECORDOID)
		send = InvalidOid;
	ReleaseSysCache(tup);
	if (OidIsValid(send) && OidIsValid(elem) && !OidIsValid(get_type_send_function(elem)))
		return InvalidOid;
	return send;
}

static void
add_param_values(StringInfo m, const CallParams *params)
{
	for (int i = 0; i < params->n; i++)
	{
		Oid func;
		bool isvarlena;

		if (params->nulls[i])
		{
			KeyAddString(m, "NULL");
			continue;
		}
		/* by pg_type: getTypeBinaryOutputInfo raises for a type without one */
		func = get_type_send_function(params->types[i]);
		if (OidIsValid(func))
		{
			bytea *b = OidSendFunctionCall(func, params->values[i]);

			KeyAddString(m, "bin");
			KeyAddField(m, VARDATA(b), VARSIZE(b) - VARHDRSZ);
		}
		else
		{
			getTypeOutputInfo(params->types[i], &func, &isvarlena);
			KeyAddString(m, "text");
			KeyAddString(m, OidOutputFunctionCall(func, params->values[i]));
		}
	}
}

static void
add_scope(CallScopes *cs, char *key, char *label, char *desc)
{
	cs->keys[cs->n] = key;
	cs->labels[cs->n] = label;
	cs->desc[cs->n] = desc;
	cs->rel[cs->n] = InvalidOid;
	cs->n++;
}

/*
 * The key-level generations of a narrowed scope for this call's values:
 * the structural generation and one per key value.  Returns false (the
 * caller then uses the table's generation) when there are too many values.
 */
static bool
add_key_scopes(CallScopes *cs, NarrowedScope *ns, const CallParams *params)
{
	int start = cs->n;
	int nvalues = 0;
	ListCell *lc;

	add_scope(cs, KeyTableDdlGenName(ns->scope), NULL,
			  cs->describe ? psprintf("table structure %s", relation_label(ns->scope)) : "table");
	foreach(lc, ns->eqs)
	{
		KeyEquality *ke = (KeyEquality *) lfirst(lc);
		Datum *values = ke->consts;
		Oid valtype = ke->valtype;
		int n = ke->nconsts;

		if (ke->paramid > 0)
		{
			int i = ke->paramid - 1;

			n = 0;
			if (i >= params->n || params->nulls[i])
				continue; /* = NULL matches nothing */
			if (ke->param_is_array)
			{
				ArrayType *arr = DatumGetArrayTypeP(params->values[i]);
				int16 typlen;
				bool typbyval;
				char typalign;
				bool *nulls;
				Datum *elems;

				valtype = ARR_ELEMTYPE(arr);
				get_typlenbyvalalign(valtype, &typlen, &typbyval, &typalign);
				deconstruct_array(arr, valtype, typlen, typbyval, typalign,
								  &elems, &nulls, &n);
				{
					int k = 0;

					values = palloc(sizeof(Datum) * Max(n, 1));
					for (int j = 0; j < n; j++)
						if (!nulls[j])
							values[k++] = elems[j];
					n = k; /* = NULL matches nothing */
				}
			}
			else
			{
				valtype = params->types[i];
				values = &params->values[i];
				n = 1;
			}
		}
		for (int j = 0; j < n; j++)
		{
			char *name;

			if (++nvalues > MAX_CALL_KEYS)
			{
				cs->n = start;
				return false;
			}
			name = InvalKeyValueName(ns->scope, ke->colname, valtype, values[j]);
			if (name == NULL)
			{
				cs->n = start;
				return false;
			}
			add_scope(cs, name, NULL,
					  cs->describe ? psprintf("key %s.%s", relation_label(ns->scope),
											  quote_identifier(ke->colname)) :
									 "key");
		}
	}
	return true;
}

/*
 * The generation key names of pq's scopes that are the same for every
 * call: the server's, the database's and each scope relation's whole-table
 * one.  Made once per analysis (in its memory) and key layout (a prefix or
 * a Redis Cluster URL set since makes them again: KeyNamesStamp), since
 * making them cost each call a few psprintf.
 */
static void
scope_names(PreparedQuery *pq)
{
	MemoryContext old;
	ListCell *lc;
	int i = 0;

	if (pq->names_prefix != NULL && KeyNamesStampIs(pq->names_prefix))
		return;
	pq->names_prefix = NULL;
	old = MemoryContextSwitchTo(pq->analysis_cxt);
	pq->server_name = KeyServerGenName();
	pq->database_name = KeyDatabaseGenName();
	pq->table_names = palloc(sizeof(char *) * Max(list_length(pq->scope_relids), 1));
	foreach(lc, pq->scope_relids)
		pq->table_names[i++] = KeyTableGenName(lfirst_oid(lc));
	pq->names_prefix = KeyNamesStamp();
	MemoryContextSwitchTo(old);
}

/* The generations this call depends on, and what it reads untracked. */
void
call_scopes(PreparedQuery *pq, const CallOptions *opts, CallScopes *cs,
			const CallParams *params)
{
	int max = 2 + list_length(pq->scope_relids) +
		list_length(opts->depends_on) + opts->ntags;
	ListCell *lc;
	int r = 0;

	foreach(lc, pq->narrowed)
		max += 1 + MAX_CALL_KEYS;
	cs->n = 0;
	cs->keys = palloc(sizeof(char *) * max);
	cs->labels = palloc(sizeof(char *) * max);
	cs->desc = palloc(sizeof(char *) * max);
	cs->rel = palloc(sizeof(Oid) * max);
	scope_names(pq);
	add_scope(cs, pq->server_name, NULL, "server");
	add_scope(cs, pq->database_name, NULL, "database");
	foreach(lc, pq->scope_relids)
	{
		Oid scope = lfirst_oid(lc);
		NarrowedScope *ns = find_narrowed(pq->narrowed, scope);

		int first = cs->n;

		if (ns == NULL || !add_key_scopes(cs, ns, params))
			add_scope(cs, pq->table_names[r], NULL,
					  cs->describe ? psprintf("table %s", relation_label(scope)) : "table");
		for (int i = first; i < cs->n; i++)
			cs->rel[i] = scope;
		r++;
	}
	cs->untracked = list_copy(pq->untracked);
	cs->has_tracked = pq->has_tracked;

	/*
	 * Functions whose reads are unseen: the call names what they read, or
	 * it bypasses.  Named, the result is still scoped to the role and to
	 * every setting, which such a function may read.
	 */
	cs->opaque_reason = NULL;
	cs->opted_in = false;
	if (pq->opaque != NIL && !opts->has_depends_on)
		cs->opaque_reason = psprintf("opaque function %s(): name what it reads with cache_opts(depends_on => ...)",
									 get_func_name(linitial_oid(pq->deps.opaque_funcids)));
	else if (pq->opaque != NIL)
		cs->opted_in = true;
	foreach(lc, opts->depends_on)
	{
		Oid relid = lfirst_oid(lc);
		Oid scope;
		const char *why;
		RelCoverage cov;

		if (get_rel_relkind(relid) == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("relation with OID %u named in depends_on does not exist", relid)));
		if (get_rel_relkind(relid) == RELKIND_VIEW)
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("depends_on names view \"%s\"", get_rel_name(relid)),
					 errdetail("Writes to a view's tables would not invalidate the result."),
					 errhint("Name the tables the view reads.")));
		cov = InvalRelationCoverage(relid, &scope, &why);
		if (cov == REL_UNTRACKED)
			cs->untracked = lappend(cs->untracked, untracked_label(relid, why));
		cs->has_tracked |= cov == REL_TRACKED;
		if (cov != REL_IGNORED)
		{
			add_scope(cs, KeyTableGenName(scope), NULL,
					  cs->describe ? psprintf("table %s (depends_on)", relation_label(scope)) : "table");
			cs->rel[cs->n - 1] = scope;
		}
	}
	for (int i = 0; i < opts->ntags; i++)
		add_scope(cs, KeyTagGenName(opts->tags[i]), psprintf("tag %s", opts->tags[i]),
				  psprintf("tag %s", opts->tags[i]));
}

/* Whether this transaction touched a generation of the call: why, or NULL. */
const char *
touched_scope(PreparedQuery *pq, CallScopes *cs)
{
	if (!InvalTouchedAny())
		return NULL;
	for (int i = 0; i < cs->n; i++)
	{
		if (!InvalScopeTouched(cs->keys[i]))
			continue;
		if (i == 0)
			return "this transaction invalidated every cached result of this server (a role or role membership changed)";
		if (i == 1)
			return "this transaction invalidated every cached result of this database (cache_flush(), or DDL such as ALTER TYPE, ALTER DOMAIN or GRANT)";
		if (cs->labels[i])
			return psprintf("this transaction invalidated %s", cs->labels[i]);
		if (OidIsValid(cs->rel[i]))
			return psprintf("this transaction changed %s", relation_label(cs->rel[i]));
		return "this transaction changed a relation the query reads";
	}
	return NULL;
}

char *
untracked_summary(List *untracked)
{
	StringInfoData b;
	ListCell *lc;

	initStringInfo(&b);
	foreach(lc, untracked)
	{
		if (b.len > 0)
			appendStringInfoString(&b, ", ");
		appendStringInfoString(&b, (char *) lfirst(lc));
	}
	return b.data;
}

/*
 * The part of the entry key every call of pq shares while its analysis
 * stands (analyze_plan makes it): the text, the parameter types, the
 * settings (their digest: the statement is found by it), the relations the
 * plan reads, the definition and the row type.  entry_key hashes it with
 * what each call adds, so that a call hashes a few hundred bytes, not the
 * settings' material.
 */
void
statement_key(PreparedQuery *pq)
{
	StringInfoData m;
	ListCell *lc;

	initStringInfo(&m);
	KeyAddString(&m, "cache_ext statement v1");
	KeyAddString(&m, pq->query);
	KeyAddField(&m, pq->param_types, sizeof(Oid) * pq->nparams);
	KeyAddField(&m, pq->key.settings, CE_HASH_LEN);
	KeyAddString(&m, "relations");
	foreach(lc, pq->deps.relids)
		KeyAddU32(&m, lfirst_oid(lc));
	KeyAddString(&m, "definition");
	KeyAddField(&m, pq->definition, CE_HASH_LEN);
	KeyAddString(&m, "row type");
	for (int i = 0; i < pq->resultdesc->natts; i++)
	{
		KeyAddU32(&m, pq->codecs[i].typid);
		KeyAddU32(&m, (uint32) pq->codecs[i].typmod);
	}
	KeyHash(&m, pq->statement_key);
	pfree(m.data);
}

/*
 * The entry key: everything that can change the answer.  The database
 * identity is in the key's name (keys.c); the statement's part is
 * pq->statement_key (statement_key); the rest is hashed here.
 */
void
entry_key(const CallParams *params, const CallOptions *opts,
		  const PreparedQuery *pq, const CallScopes *cs, uint8 *hash)
{
	StringInfoData m;

	initStringInfo(&m);
	KeyAddString(&m, "cache_ext entry v4");
	KeyAddString(&m, opts->namespace);
	KeyAddField(&m, pq->statement_key, CE_HASH_LEN);
	add_param_values(&m, params);

	/*
	 * The schemas names resolve in (the relations are in the statement's),
	 * implicit ones included.  fetch_search_path_array, not
	 * fetch_search_path: that one creates the temporary schema when pg_temp
	 * is named first, which a read never does (and a hot standby cannot).
	 */
	{
		Oid oids[64];
		Oid *path = oids;
		int n = fetch_search_path_array(oids, lengthof(oids));

		if (n > lengthof(oids))
		{
			path = palloc(sizeof(Oid) * n);
			n = fetch_search_path_array(path, n);
		}
		for (int i = 0; i < n; i++)
			KeyAddU32(&m, path[i]);
		if (path != oids)
			pfree(path);
	}

	if (pq->deps.role_dependent || cs->opted_in)
	{
		KeyAddString(&m, "role");
		KeyAddU32(&m, GetUserId());
	}
	if (pq->deps.session_user_dependent || cs->opted_in)
	{
		KeyAddString(&m, "session user");
		KeyAddU32(&m, GetSessionUserId());
	}
	if (pq->deps.settings_dependent || cs->opted_in)
	{
		Oid temp_nsp;
		Oid temp_toast_nsp;

		KeyAddString(&m, "every setting");
		all_settings_material(&m);

		/*
		 * An opaque function may read this session's private state
		 * (temporary tables, prepared statements, cursors, channels),
		 * which no other session can: an opted-in result is the session's
		 * own; with a temporary schema, so is a settings-dependent one.
		 */
		GetTempNamespaceState(&temp_nsp, &temp_toast_nsp);
		if (OidIsValid(temp_nsp) || cs->opted_in)
		{
			KeyAddString(&m, "session");
			KeyAddU32(&m, (uint32) MyProcPid);
			KeyAddField(&m, &MyStartTime, sizeof(MyStartTime));
		}
	}
	/* the generations it depends on (tags and tracking change them) */
	KeyAddString(&m, "generations");
	for (int i = 0; i < cs->n; i++)
		KeyAddString(&m, cs->keys[i]);

	KeyHash(&m, hash);
	pfree(m.data);
}

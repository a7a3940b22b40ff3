/*-------------------------------------------------------------------------
 *
 * stmtcache.c
 *	  The backend's statement cache: one prepared statement per (query text,
 *	  parameter types, result-changing and planner settings, role), with
 *	  PostgreSQL's plan cache underneath, and the analysis of its generic
 *	  plan (analyze_plan), redone when the plan is rebuilt.
 *
 * PostgreSQL revalidates a plan when the relations, functions or
 * search_path it used change; the catalog changes it ignores but that can
 * change what a statement means (a new overload, a changed type, operator,
 * cast, collation, role ...) set prepared_stale through syscache and
 * relcache callbacks, and the outermost call then drops every statement.
 *
 * State (backend-local, no locks): the hash of statements and its memory
 * context under CacheMemoryContext, prepared_stale, the relations whose
 * row types results use (watched_relids), the analyses retired while an
 * outer call still used them, and calls_in_progress (cached_query and
 * cache_explain calls running in this backend: a wrapped query can call
 * cached_query again, so only the outermost call may drop statements),
 * and the keyed settings' values and digest as settings_key last computed
 * them (saved_values, in TopMemoryContext: compared on every call, the
 * digest recomputed only when one differs).
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
#include "catalog_inval.h"
#include "entry.h"
#include "invalidate.h"
#include "keys.h"
#include "call.h"
#include "meaning.h"

/* most prepared statements kept per backend; past that, all are dropped */
#define MAX_PREPARED 1000

/*
 * Settings that can change a query's result or how its text is parsed.
 * They are part of both the prepared statement's key and the entry key.
 */
static const char *const result_settings[] = {
	"TimeZone", "DateStyle", "IntervalStyle", "extra_float_digits",
	"bytea_output", "lc_monetary", "lc_numeric", "lc_time",
	"standard_conforming_strings", "default_text_search_config",
	"search_path", "row_security", "transform_null_equals", "xmloption",
	"xmlbinary", "array_nulls", "timezone_abbreviations", "backslash_quote",
	"quote_all_identifiers",
	/* send/receive functions of text-like types convert to this encoding */
	"client_encoding",
	/* GIN scans return at most about this many rows when it is set */
	"gin_fuzzy_search_limit",
	/* which rules and triggers fire (ENABLE REPLICA / ALWAYS RULE) */
	"session_replication_role",
	/* results of built-in functions may change between minor releases */
	"server_version_num",
	/* whether a view or foreign table may be read at all */
	"restrict_nonsystem_relation_kind",
	/* how composite values of another version are handled (15.x) */
	"composite_type_mismatch",
	/* whether large object functions check privileges */
	"lo_compat_privileges",
	/* docs/settings.md has the verdict for every setting */
};

static HTAB *prepared_queries = NULL;

static MemoryContext prepared_cxt = NULL;

/*
 * Set by catalog invalidations that PostgreSQL's plan cache does not act
 * on but that can change what a statement means: a new function overload,
 * a changed type, domain, operator, cast, collation, text search object,
 * role, or a changed row type used by a function's result.  The outermost
 * call then drops every prepared statement; a nested call prepares its own
 * transient statement instead (an outer call may be using the old ones).
 */
static bool prepared_stale = false;

static bool callbacks_registered = false;

/* analyses replaced while an outer call used them: freed when none does */
static MemoryContext retired_cxt = NULL;

/* relations whose row types prepared statements use as function results */
static List *watched_relids = NIL;

/*
 * cached_query calls in progress in this backend (a wrapped query can call
 * cached_query again).  Prepared statements are dropped only by the
 * outermost call, before it holds one.
 */
static int calls_in_progress = 0;

static void
prepared_syscache_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	prepared_stale = true;
}

static void
prepared_relcache_callback(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || list_member_oid(watched_relids, relid))
		prepared_stale = true;
}

/* Once per backend: the invalidations that make prepared statements stale. */
static void
register_callbacks(void)
{
	static const int caches[] = {
		PROCOID, PROCNAMEARGSNSP, TYPEOID, TYPENAMENSP, OPEROID, OPERNAMENSP,
		CASTSOURCETARGET, CONSTROID, NAMESPACEOID, NAMESPACENAME, COLLOID,
		TSCONFIGOID, TSCONFIGMAP, TSDICTOID, TSPARSEROID, TSTEMPLATEOID,
		ENUMOID, AGGFNOID, AUTHOID, AUTHMEMMEMROLE, AUTHMEMROLEMEM, LANGOID,
		RANGETYPE, FOREIGNSERVEROID, FOREIGNDATAWRAPPEROID, USERMAPPINGOID,
		TRFTYPELANG, DATABASEOID, CONVOID,
		RELNAMENSP, /* a relation (a sequence) shadowing a name */
	};

	if (callbacks_registered)
		return;
	for (int i = 0; i < lengthof(caches); i++)
		CatalogInvalOnSyscache(caches[i], prepared_syscache_callback);
	CatalogInvalOnRelcache(prepared_relcache_callback);
	callbacks_registered = true;
}

/* The settings' GUC records, found once (built-in GUCs never move). */
static struct config_generic *setting_conf[lengthof(result_settings)];

static bool settings_resolved = false;

/*
 * The planner's settings (enable_*, costs, GEQO, collapse limits, work_mem
 * ...): a prepared statement's plan was chosen under them, and a few
 * operators answer differently by plan (GiST point containment by index is
 * fuzzier than by a scan).  Keyed too, so that a statement, even a bypass,
 * runs the plan the direct statement would.
 */
static struct config_generic **planner_conf = NULL;

static int nplanner_conf = 0;

/*
 * The keyed settings' values when the settings' digest was last computed
 * (settings_key): fixed-width values as their bytes, strings copied into
 * TopMemoryContext.  Valid only while saved_valid.
 */
typedef union SavedSetting
{
	bool b;
	int i;
	double r;
	char *s;
} SavedSetting;

static SavedSetting *saved_values = NULL;

static Oid saved_tsconfig = InvalidOid;

static bool saved_valid = false;

static uint8 saved_digest[CE_HASH_LEN];

/* The keyed settings' GUC records, found once (built-in GUCs never move). */
static void
resolve_settings(void)
{
	struct config_generic **vars = get_guc_variables();
	int nvars = GetNumConfigOptions();

	for (int i = 0; i < lengthof(result_settings); i++)
		for (int j = 0; j < nvars; j++)
			if (pg_strcasecmp(vars[j]->name, result_settings[i]) == 0)
				setting_conf[i] = vars[j];
	planner_conf = MemoryContextAlloc(TopMemoryContext,
									  sizeof(struct config_generic *) * nvars);
	for (int j = 0; j < nvars; j++)
		if ((vars[j]->group == QUERY_TUNING_METHOD ||
			 vars[j]->group == QUERY_TUNING_COST ||
			 vars[j]->group == QUERY_TUNING_GEQO ||
			 vars[j]->group == QUERY_TUNING_OTHER ||
			 vars[j]->group == RESOURCES_MEM) &&
			!(vars[j]->flags & GUC_CUSTOM_PLACEHOLDER) &&
			(vars[j]->context == PGC_USERSET || vars[j]->context == PGC_SUSET))
			planner_conf[nplanner_conf++] = vars[j];
	saved_values = MemoryContextAllocZero(TopMemoryContext,
										  sizeof(SavedSetting) *
											  (lengthof(result_settings) + nplanner_conf));
	settings_resolved = true;
}

/* The i-th keyed setting's GUC record, or NULL when this server has none. */
static struct config_generic *
keyed_conf(int i)
{
	return i < lengthof(result_settings) ? setting_conf[i] :
										   planner_conf[i - lengthof(result_settings)];
}

/*
 * The bytes of a keyed setting's value as the key material holds them, and
 * their length; a string's is its text (NULL as "").
 */
static const void *
keyed_value(struct config_generic *conf, uint32 *len)
{
	switch (conf->vartype)
	{
		case PGC_BOOL:
			*len = sizeof(bool);
			return ((struct config_bool *) conf)->variable;
		case PGC_INT:
			*len = sizeof(int);
			return ((struct config_int *) conf)->variable;
		case PGC_REAL:
			*len = sizeof(double);
			return ((struct config_real *) conf)->variable;
		case PGC_ENUM:
			*len = sizeof(int);
			return ((struct config_enum *) conf)->variable;
		case PGC_STRING:
			{
				const char *v = *((struct config_string *) conf)->variable;

				v = v ? v : "";
				*len = strlen(v);
				return v;
			}
	}
	*len = 0;
	return "";
}

/*
 * Whether every keyed setting, and the text search configuration, still
 * holds the value settings_key last built the material from: compared
 * byte for byte with the copies it kept, exactly the bytes the material
 * would hold, so equal means the same material.
 */
static bool
settings_unchanged(Oid tsconfig)
{
	if (!saved_valid || tsconfig != saved_tsconfig)
		return false;
	for (int i = 0; i < lengthof(result_settings) + nplanner_conf; i++)
	{
		struct config_generic *conf = keyed_conf(i);
		const SavedSetting *v = &saved_values[i];
		double r;

		if (conf == NULL)
			continue;
		switch (conf->vartype)
		{
			case PGC_BOOL:
				if (*((struct config_bool *) conf)->variable != v->b)
					return false;
				break;
			case PGC_INT:
				if (*((struct config_int *) conf)->variable != v->i)
					return false;
				break;
			case PGC_ENUM:
				if (*((struct config_enum *) conf)->variable != v->i)
					return false;
				break;
			case PGC_REAL:
				/* the bytes, as in the material: -0 is not 0 there */
				r = *((struct config_real *) conf)->variable;
				if (memcmp(&r, &v->r, sizeof(double)) != 0)
					return false;
				break;
			case PGC_STRING:
				{
					const char *s = *((struct config_string *) conf)->variable;

					if (strcmp(s ? s : "", v->s) != 0)
						return false;
					break;
				}
		}
	}
	return true;
}

/*
 * The settings that change results, as key material (length-prefixed
 * binary), read straight from the GUC variables, whose values are kept
 * (saved_values) for settings_unchanged.
 */
static void
build_settings_material(StringInfo s, Oid tsconfig)
{
	initStringInfo(s);
	/* the configuration default_text_search_config names now, by OID */
	KeyAddU32(s, tsconfig);
	for (int i = 0; i < lengthof(result_settings) + nplanner_conf; i++)
	{
		struct config_generic *conf = keyed_conf(i);
		const void *v;
		uint32 len;

		if (conf == NULL)
		{
			KeyAddString(s, "");
			continue;
		}
		v = keyed_value(conf, &len);
		KeyAddField(s, v, len);
		if (conf->vartype != PGC_STRING)
			memcpy(&saved_values[i], v, len);
		else if (saved_values[i].s == NULL || strcmp(saved_values[i].s, v) != 0)
		{
			char *copy = MemoryContextStrdup(TopMemoryContext, (const char *) v);

			if (saved_values[i].s)
				pfree(saved_values[i].s);
			saved_values[i].s = copy;
		}
	}
	saved_tsconfig = tsconfig;
}

/*
 * The digest of the settings that change results (result_settings, the
 * planner's, and the text search configuration in use): part of the
 * prepared statement's key and of the entry key.  The material is built
 * and hashed again only when one of them has changed since the last call
 * (settings_unchanged compares the raw values, about as cheap as reading
 * them), since building it on every call cost more than the rest of a
 * hit's bookkeeping.
 */
void
settings_key(uint8 *digest)
{
	Oid tsconfig;

	if (!settings_resolved)
		resolve_settings();
	tsconfig = getTSCurrentConfig(false);
	if (!settings_unchanged(tsconfig))
	{
		StringInfoData m;

		/* an error while saving leaves the copies unusable, never stale */
		saved_valid = false;
		build_settings_material(&m, tsconfig);
		KeyHash(&m, saved_digest);
		pfree(m.data);
		saved_valid = true;
	}
	memcpy(digest, saved_digest, CE_HASH_LEN);
}

/*
 * Every setting a session can see and change, as key material: for results
 * of functions that may read any of them (current_setting() in a PL/pgSQL
 * function, custom settings such as app.tenant).  Names are included, so a
 * placeholder that appears or goes away changes the key too.
 */
void
all_settings_material(StringInfo m)
{
	struct config_generic **vars = get_guc_variables();
	int nvars = GetNumConfigOptions();

	for (int j = 0; j < nvars; j++)
	{
		struct config_generic *conf = vars[j];
		char buf[64];

		/* secrets (cache_ext.redis_url may hold a password) stay out */
		if (conf->flags & GUC_SUPERUSER_ONLY)
			continue;

		/*
		 * A setting at its built-in default is the same in every session:
		 * left out, so that loading a library (plpgsql defines settings on
		 * its first use) does not change the key.  Placeholders stay in
		 * even then: current_setting() of one that was never set fails.
		 */
		if (conf->source == PGC_S_DEFAULT && !(conf->flags & GUC_CUSTOM_PLACEHOLDER))
			continue;
		if (conf->context != PGC_USERSET && conf->context != PGC_SUSET)
			continue;
		KeyAddString(m, conf->name);
		switch (conf->vartype)
		{
			case PGC_BOOL:
				KeyAddString(m, *((struct config_bool *) conf)->variable ? "on" : "off");
				break;
			case PGC_INT:
				snprintf(buf, sizeof(buf), "%d", *((struct config_int *) conf)->variable);
				KeyAddString(m, buf);
				break;
			case PGC_REAL:
				KeyAddField(m, ((struct config_real *) conf)->variable, sizeof(double));
				break;
			case PGC_ENUM:
				snprintf(buf, sizeof(buf), "%d", *((struct config_enum *) conf)->variable);
				KeyAddString(m, buf);
				break;
			case PGC_STRING:
				{
					char *v = *((struct config_string *) conf)->variable;

					KeyAddString(m, v ? v : "");
					break;
				}
		}
	}
}

/* A hash of every setting (all_settings_material). */
void
all_settings_hash(uint8 *hash)
{
	StringInfoData m;

	initStringInfo(&m);
	all_settings_material(&m);
	KeyHash(&m, hash);
	pfree(m.data);
}

/* Raise an error unless query is exactly one read-only SELECT. */
static RawStmt *
parse_single_select(const char *query)
{
	List *raw = pg_parse_query(query);
	RawStmt *rs;
	SelectStmt *sel;

	if (list_length(raw) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("cached_query requires exactly one statement, not %d",
						list_length(raw)),
				 errhint("Pass a single SELECT, VALUES, TABLE or WITH query.")));
	rs = linitial_node(RawStmt, raw);
	if (!IsA(rs->stmt, SelectStmt))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cached_query cannot run %s statements",
						GetCommandTagName(CreateCommandTag(rs->stmt))),
				 errdetail("Only read-only queries (SELECT, VALUES, TABLE, WITH) can be cached.")));
	sel = (SelectStmt *) rs->stmt;
	if (sel->intoClause)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cached_query cannot run SELECT INTO"),
				 errdetail("Only read-only queries can be cached.")));
	return rs;
}

/* Raise an error if the analysed query could modify anything. */
static void
check_read_only(List *querytrees)
{
	Query *q;

	if (list_length(querytrees) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cached_query cannot run a query that rules rewrite into several statements")));
	q = linitial_node(Query, querytrees);
	if (q->commandType != CMD_SELECT || q->utilityStmt != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cached_query can only run read-only queries")));
	if (q->hasModifyingCTE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cached_query cannot run a WITH query that modifies data"),
				 errdetail("Only read-only queries can be cached.")));
	/* FOR UPDATE/SHARE runs, as the direct statement would: it bypasses */
}

static bool
is_datetime_type(Oid typid)
{
	Oid elem = get_element_type(typid);

	if (OidIsValid(elem))
		typid = elem;
	if (type_is_multirange(typid))
		typid = get_range_subtype(get_multirange_range(typid));
	else if (type_is_range(typid))
		typid = get_range_subtype(typid);
	if (get_typtype(typid) == TYPTYPE_COMPOSITE)
		return true; /* a row literal may hold a date */
	return typid == DATEOID || typid == TIMEOID || typid == TIMETZOID ||
		typid == TIMESTAMPOID || typid == TIMESTAMPTZOID;
}

typedef struct LiteralWalk
{
	const char *query;
	char *problem;
} LiteralWalk;

/*
 * Date/time literals in the query text are converted once, when the
 * statement is prepared; 'now', 'today', 'tomorrow' and 'yesterday' would
 * then be frozen.  Find them through the constants' locations in the text.
 */
static bool
find_relative_time_literal(Node *node, LiteralWalk *w)
{
	if (node == NULL)
		return false;
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, find_relative_time_literal,
								 (void *) w, 0);
	if (IsA(node, Const))
	{
		Const *c = (Const *) node;
		static const char *const words[] = {"now", "today", "tomorrow", "yesterday"};

		if (c->location >= 0 && c->location < (int) strlen(w->query) &&
			is_datetime_type(c->consttype))
		{
			/* the literal's text: up to its closing quote, at most 64 bytes */
			char *lit = pnstrdup(w->query + c->location, 64);
			char *open = strchr(lit, '\''); /* skips E or U& */
			char *close = open ? strchr(open + 1, '\'') : NULL;

			if (close)
				*close = '\0';
			for (char *p = lit; *p; p++)
				*p = pg_ascii_tolower((unsigned char) *p);
			for (int i = 0; i < lengthof(words); i++)
				if (strstr(lit, words[i]))
				{
					w->problem = psprintf("time-dependent literal '%s'", words[i]);
					return true;
				}
		}
		return false;
	}
	return expression_tree_walker(node, find_relative_time_literal, (void *) w);
}

static void
drop_prepared(PreparedQuery *pq)
{
	DropCachedPlan(pq->plansource);
	pfree(pq->query);
	pfree(pq->param_types);
	if (pq->analysis_cxt)
		MemoryContextDelete(pq->analysis_cxt);
	pq->analysis_cxt = NULL;
}

static void
drop_all_prepared(void)
{
	HASH_SEQ_STATUS seq;
	PreparedQuery *pq;

	if (prepared_queries != NULL)
	{
		hash_seq_init(&seq, prepared_queries);
		while ((pq = hash_seq_search(&seq)) != NULL)
			drop_prepared(pq);
		hash_destroy(prepared_queries);
		prepared_queries = NULL;
	}
	list_free(watched_relids);
	watched_relids = NIL;
}

/* Note the row types of relations that function results in q use. */
static bool
watch_function_rowtypes(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, watch_function_rowtypes, context, 0);
	if (IsA(node, RangeTblFunction))
	{
		Node *fexpr = ((RangeTblFunction *) node)->funcexpr;
		Oid relid = fexpr ? get_typ_typrelid(exprType(fexpr)) : InvalidOid;

		if (OidIsValid(relid))
		{
			MemoryContext old = MemoryContextSwitchTo(prepared_cxt);

			watched_relids = list_append_unique_oid(watched_relids, relid);
			MemoryContextSwitchTo(old);
		}
	}
	return expression_tree_walker(node, watch_function_rowtypes, context);
}

/*
 * The key of the prepared statement for query, its parameter types, the
 * settings' digest and the role: a cheap hash of the text and of the
 * types stands for them, and prepared_matches checks them in full.
 */
static void
prepared_key(PreparedKey *key, const char *query, const CallParams *params,
			 const uint8 *settings)
{
	/* padding included: the key is hashed and compared as bytes */
	memset(key, 0, sizeof(*key));
	memcpy(key->settings, settings, CE_HASH_LEN);
	key->text_hash = hash_bytes_extended((const unsigned char *) query,
										 strlen(query), 0);
	key->types_hash = hash_bytes((const unsigned char *) params->types,
								 (int) (sizeof(Oid) * params->n));
	key->nparams = params->n;
	key->userid = GetUserId();
}

/* Whether pq was prepared from exactly this text and these types. */
static bool
prepared_matches(const PreparedQuery *pq, const char *query,
				 const CallParams *params)
{
	return pq->nparams == params->n &&
		(params->n == 0 ||
		 memcmp(pq->param_types, params->types, sizeof(Oid) * params->n) == 0) &&
		strcmp(pq->query, query) == 0;
}

/*
 * Make the hash of prepared statements ready for a lookup: created, and
 * emptied when stale or full (by the outermost call only: an outer one
 * uses one).
 */
static void
prepared_hash_ready(void)
{
	register_callbacks();
	if (prepared_cxt == NULL)
		prepared_cxt = AllocSetContextCreate(CacheMemoryContext,
											 "cache_ext prepared queries",
											 ALLOCSET_DEFAULT_SIZES);
	if (calls_in_progress <= 1 && retired_cxt != NULL)
		MemoryContextReset(retired_cxt);
	if (calls_in_progress <= 1 &&
		(prepared_stale ||
		 (prepared_queries != NULL &&
		  hash_get_num_entries(prepared_queries) >= MAX_PREPARED)))
	{
		drop_all_prepared();
		prepared_stale = false;
	}
	if (prepared_queries == NULL)
	{
		HASHCTL ctl;

		ctl.keysize = sizeof(PreparedKey);
		ctl.entrysize = sizeof(PreparedQuery);
		ctl.hcxt = prepared_cxt;
		prepared_queries = hash_create("cache_ext prepared queries", 64, &ctl,
									   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
}

/*
 * Find or create the prepared statement for this text, parameter types,
 * settings (settings_key's digest) and role (name resolution and
 * SQL-function inlining depend on the role's privileges).  Parse errors
 * and rejected statements raise ERROR before anything runs.
 *
 * A statement whose date/time literals froze the moment it was prepared
 * ('now', 'today'), one prepared by a nested call while prepared
 * statements are stale, and one whose key's hashes collide with another
 * statement's are transient: not kept in the hash, *transient is set and
 * the caller must drop_prepared() it when the call ends.
 */
PreparedQuery *
get_prepared(const char *query, const CallParams *params, const uint8 *settings,
			 bool *transient)
{
	PreparedKey key;
	PreparedQuery *pq;
	bool found;
	RawStmt *raw;
	CachedPlanSource *plansource;
	List *querytrees;
	LiteralWalk lw;
	bool make_transient = false;
	char *query_copy;
	Oid *types_copy;

	*transient = false;
	prepared_hash_ready();
	prepared_key(&key, query, params, settings);
	pq = prepared_stale ? NULL : hash_search(prepared_queries, &key, HASH_FIND, NULL);
	if (pq != NULL && !prepared_matches(pq, query, params))
	{
		/* another statement holds the key: this one for this call only */
		make_transient = true;
		pq = NULL;
	}

	/*
	 * A date/time literal froze in the body of an inlined function, or the
	 * plan holds the value of a function run under other settings: plan it
	 * again (in the hash when no outer call may be using it, else for this
	 * call only).
	 */
	if (pq != NULL && pq->analysis_cxt != NULL)
	{
		bool again = pq->literal_problem[0] != '\0' || pq->plan_per_call;

		if (!again && pq->settings_pinned)
		{
			uint8 now[CE_HASH_LEN];

			all_settings_hash(now);
			again = memcmp(now, pq->settings_hash, CE_HASH_LEN) != 0;
		}
		if (again)
		{
			if (calls_in_progress <= 1)
			{
				drop_prepared(pq);
				hash_search(prepared_queries, &key, HASH_REMOVE, NULL);
			}
			else
				make_transient = true;
			pq = NULL;
		}
	}
	if (pq != NULL)
		return pq;

	raw = parse_single_select(query);
	plansource = CreateCachedPlan(raw, query, CreateCommandTag(raw->stmt));
	querytrees = pg_analyze_and_rewrite_fixedparams(raw, query, params->types,
													params->n, NULL);
	check_read_only(querytrees);
	lw.query = query;
	lw.problem = NULL;
	(void) find_relative_time_literal((Node *) querytrees, &lw);
	CompleteCachedPlan(plansource, querytrees, NULL, params->types, params->n,
					   NULL, NULL, CURSOR_OPT_PARALLEL_OK, false);
	(void) watch_function_rowtypes((Node *) querytrees, NULL);
	SaveCachedPlan(plansource);
	/* before the entry exists: an entry in the hash is always complete */
	query_copy = MemoryContextStrdup(prepared_cxt, query);
	types_copy = MemoryContextAlloc(prepared_cxt, sizeof(Oid) * Max(params->n, 1));
	if (params->n > 0)
		memcpy(types_copy, params->types, sizeof(Oid) * params->n);

	if (lw.problem != NULL || prepared_stale || make_transient)
	{
		pq = MemoryContextAllocZero(prepared_cxt, sizeof(PreparedQuery));
		pq->key = key;
		*transient = true;
		pq->transient = true;
	}
	else
	{
		pq = hash_search(prepared_queries, &key, HASH_ENTER, &found);
		Assert(!found);
		pq->transient = false;
	}
	pq->plansource = plansource;
	pq->query = query_copy;
	pq->nparams = params->n;
	pq->param_types = types_copy;
	pq->queryid = key.text_hash;
	pq->generation = -1;
	pq->meaning_generation = -1;
	pq->analysis_cxt = NULL;
	strlcpy(pq->literal_problem, lw.problem ? lw.problem : "", sizeof(pq->literal_problem));
	return pq;
}

/* The end of a call that used a transient statement. */
static void
release_transient(PreparedQuery *pq)
{
	if (pq == NULL || !pq->transient)
		return;
	drop_prepared(pq);
	pfree(pq);
}

/* The end of a call (cached_query or cache_explain), however it ends. */
static void
end_call(PreparedQuery *transient)
{
	calls_in_progress--;
	release_transient(transient);
}

/* Bring pq's analysis up to date with the generic plan cplan. */
void
analyze_plan(PreparedQuery *pq, CachedPlan *cplan)
{
	MemoryContext old;

	/* tracking an ancestor changes a scope without rebuilding the plan */
	if (pq->generation == cplan->generation && pq->analysis_cxt != NULL &&
		pq->tracking_epoch == InvalTrackingEpoch())
		return;

	/*
	 * A nested call may redo the analysis of a statement an outer call is
	 * still using: the old analysis is retired, not reset, and freed by the
	 * next outermost call.
	 */
	if (pq->analysis_cxt && calls_in_progress > 1)
	{
		if (retired_cxt == NULL)
			retired_cxt = AllocSetContextCreate(prepared_cxt,
												"cache_ext retired analyses",
												ALLOCSET_SMALL_SIZES);
		MemoryContextSetParent(pq->analysis_cxt, retired_cxt);
		pq->analysis_cxt = NULL;
	}
	if (pq->analysis_cxt)
		MemoryContextReset(pq->analysis_cxt);
	else
		pq->analysis_cxt = AllocSetContextCreate(prepared_cxt,
												 "cache_ext query analysis",
												 ALLOCSET_SMALL_SIZES);
	pq->generation = -1;
	CacheStatsAdd(CS_PLANS_BUILT, 1);
	old = MemoryContextSwitchTo(pq->analysis_cxt);
	AnalyzePlannedStmt(linitial_node(PlannedStmt, cplan->stmt_list), &pq->deps);
	/* inlined SQL functions too: their definitions are part of the meaning */
	pq->defn_funcids = NIL;
	(void) collect_query_funcs((Node *) pq->plansource->query_list, &pq->defn_funcids);
	pq->tracking_epoch = InvalTrackingEpoch();
	pin_folded_functions(pq);
	pq->resultdesc = CreateTupleDescCopy(pq->plansource->resultDesc);
	pq->codecs = palloc0(sizeof(EntryColumnCodec) * Max(pq->resultdesc->natts, 1));
	pq->codec_problem = EntryCodecsInit(pq->resultdesc, pq->codecs,
										pq->analysis_cxt);
	/* domains' checks, user types' receive functions may raise */
	pq->decode_in_subxact = EntryCodecsRunUserCode(pq->resultdesc->natts, pq->codecs);
	pq->undecodable = 0;
	analyze_scopes(pq, linitial_node(PlannedStmt, cplan->stmt_list));
	MemoryContextSwitchTo(old);
	definition_hash(pq, linitial_node(PlannedStmt, cplan->stmt_list));
	statement_key(pq);
	pq->generation = cplan->generation;
}

/*
 * Raise unless the query of pq's plan cplan, under the settings settings
 * (settings_key), has the meaning meaning (meaning.c): a rule's statement
 * prepared before it runs, which the parse of its text now must still be,
 * planned under the same settings.  A plan holding what a function
 * computed under the settings of its planning is never taken for another.
 */
void
check_meaning(PreparedQuery *pq, CachedPlan *cplan, const uint8 *meaning,
			  const uint8 *settings)
{
	uint8 now[CE_HASH_LEN];

	if (pq->settings_pinned || pq->plan_per_call)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the statement's plan may hold values a function computed under the settings of its planning")));
	if (pq->meaning_generation != cplan->generation)
	{
		MeaningOfQuery((Node *) linitial(pq->plansource->query_list), pq->meaning);
		pq->meaning_generation = cplan->generation;
	}
	MeaningUnderSettings(pq->meaning, settings, now);
	if (memcmp(now, meaning, CE_HASH_LEN) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the statement was prepared under other settings, objects or role than its text means now")));
}

/* The start of a call (cached_query or cache_explain); end_call ends it. */
static void
call_begin(void)
{
	calls_in_progress++;
}

/*
 * Drop the prepared statements when relid's row type changes: a result
 * holds values of it (analysis.c's composite shapes).
 */
void
StmtCacheWatchRelation(Oid relid)
{
	MemoryContext old = MemoryContextSwitchTo(prepared_cxt);

	watched_relids = list_append_unique_oid(watched_relids, relid);
	MemoryContextSwitchTo(old);
}

/*
 * A relative date/time literal ('now', 'today', ...) in the query tree
 * node, whose constants' locations point into query: its description, or
 * NULL.
 */
char *
find_time_literal(Node *node, const char *query)
{
	LiteralWalk lw;

	lw.query = query;
	lw.problem = NULL;
	(void) find_relative_time_literal(node, &lw);
	return lw.problem;
}

/*
 * Run body as a call (cached_query or cache_explain): only the outermost
 * call may drop prepared statements (an outer one may be using one), and a
 * transient statement the body made is released however the call ends.
 */
Datum
RunCall(CallBodyFn body, void *arg)
{
	volatile Datum result = (Datum) 0;
	PreparedQuery *volatile transient = NULL;

	call_begin();
	PG_TRY();
	{
		result = body(arg, (PreparedQuery **) &transient);
	}
	PG_CATCH();
	{
		end_call(transient);
		PG_RE_THROW();
	}
	PG_END_TRY();
	end_call(transient);
	return result;
}

/*-------------------------------------------------------------------------
 *
 * query.c
 *	  cached_query() and friends: prepare (a plan cache per backend), look
 *	  up, run, store; cache_status().
 *
 * A call goes:
 *	1. Find or create the prepared statement for (query text, parameter
 *	   types, result-changing settings).  Parsing, analysis and planning
 *	   happen once per backend; PostgreSQL's plan cache revalidates it
 *	   when the relations, functions or search_path it used change.
 *	2. Get its generic plan, which is cheap once built, and the analysis
 *	   made from it (cacheability, relations, row type codecs), redone only
 *	   when the plan is rebuilt.
 *	3. Check the caller's privileges on every relation of the plan, as the
 *	   executor would, so a hit never shows a role what it could not read.
 *	4. Build the key and fetch the entry in one round trip (the store's
 *	   StoreLookupEntry).  A valid entry is decoded and returned (HIT).
 *	5. Otherwise run the query with a fresh snapshot, returning its rows
 *	   and encoding them at the same time, and store the entry (MISS).
 * Anything that cannot be cached runs directly (BYPASS, with the reason).
 * Redis trouble never raises an ERROR here: the client reports failure and
 * the call runs uncached.
 *
 * State: the plan cache (a dynahash in its own context under
 * CacheMemoryContext) and the last status are backend-local.
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
#include "redis/redis.h"
#include "store/store.h"

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

typedef struct PreparedQuery
{
	uint8		key[CE_HASH_LEN];	/* hash of text, param types, settings */
	CachedPlanSource *plansource;
	/* the analysis of generation 'generation' of the generic plan */
	int			generation;
	MemoryContext analysis_cxt;
	QueryDeps	deps;
	TupleDesc	resultdesc;
	EntryColumnCodec *codecs;
	char	   *codec_problem;	/* why results of this row type can't be stored */
	char		literal_problem[160];	/* a 'now'-like literal frozen at prepare */
	/* hash of the rewritten query and of the user functions' definitions */
	uint8		definition[CE_HASH_LEN];
	bool		decode_in_subxact;	/* user-defined types: see EntryDecode */
	uint64		queryid;		/* hash of the text, for cache_query_stats */
	uint64		tracking_epoch; /* InvalTrackingEpoch() the analysis saw */
	List	   *defn_funcids;	/* functions of the rewritten query (incl.
								 * inlined ones), for the definition hash */
	bool		transient;		/* not in the hash: dropped after the call */
	bool		plan_per_call;	/* its plan holds what a function computed
								 * while planning: planned again each call */
	int			undecodable;	/* authentic entries its row type could not
								 * read back, in a row; at 2 it is not stored */
	bool		settings_pinned;	/* the plan may hold the value of a user
									 * IMMUTABLE function PostgreSQL ran when
									 * planning: valid for these settings only */
	uint8		settings_hash[CE_HASH_LEN];
	/* invalidation: whose generations stand for the relations it reads */
	List	   *scope_relids;	/* sorted, unique */
	bool		has_tracked;	/* some relation is tracked */
	List	   *untracked;		/* "public.x untracked", ... */
	List	   *opaque;			/* "function f() may read tables", ... */
	List	   *narrowed;		/* NarrowedScope: depends on key values only */
} PreparedQuery;

/*
 * A scope relation whose dependency is narrowed to key values: the entry
 * depends on its structural generation (TRUNCATE, DDL) and on the
 * generation of each key value the equalities name.
 */
typedef struct NarrowedScope
{
	Oid			scope;
	List	   *eqs;			/* KeyEquality, one per top-level occurrence */
} NarrowedScope;

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

static char last_status[256] = "";

/* the size of the entry the last hit decoded, for cache_query_stats */
static int64 last_entry_bytes = 0;

/*
 * cached_query calls in progress in this backend (a wrapped query can call
 * cached_query again).  Prepared statements are dropped only by the
 * outermost call, before it holds one.
 */
static int	calls_in_progress = 0;

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
		RELNAMENSP,				/* a relation (a sequence) shadowing a name */
	};

	if (callbacks_registered)
		return;
	for (int i = 0; i < lengthof(caches); i++)
		CacheRegisterSyscacheCallback(caches[i], prepared_syscache_callback, (Datum) 0);
	CacheRegisterRelcacheCallback(prepared_relcache_callback, (Datum) 0);
	callbacks_registered = true;
}

/* Per-call options from cache_opts(). */
typedef struct CallOptions
{
	int64		ttl_ms;
	const char *namespace;
	int			ntags;
	char	  **tags;
	bool		has_depends_on; /* the call names what its functions read */
	List	   *depends_on;		/* relation OIDs */
} CallOptions;

/*
 * The generations one call depends on: the server's and the database's,
 * then one per scope relation, per depends_on relation and per tag.
 */
typedef struct CallScopes
{
	int			n;
	char	  **keys;
	char	  **labels;			/* for messages; NULL for server, database */
	char	  **desc;			/* for cache_explain: "table public.x", ... */
	Oid		   *rel;			/* the relation of a table or key scope */
	bool		describe;		/* fill desc with names (cache_explain only) */
	List	   *untracked;		/* descriptions of what is not tracked */
	const char *opaque_reason;	/* functions with unseen reads, not opted in */
	bool		opted_in;		/* ... opted in: role and settings are keyed */
} CallScopes;

/* The query's parameters as given by the caller. */
typedef struct CallParams
{
	int			n;
	Oid		   *types;
	Datum	   *values;
	bool	   *nulls;
} CallParams;

static void
set_status(const char *fmt,...) pg_attribute_printf(1, 2);

static void
set_status(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(last_status, sizeof(last_status), fmt, ap);
	va_end(ap);
}

/* ---- parameters and options ---- */

/*
 * Collect the parameters from arguments first..nargs-1, or from the array
 * of an explicit VARIADIC call.  Unknown literals become text.
 */
static void
collect_params(FunctionCallInfo fcinfo, int first, CallParams *p)
{
	int			nargs = PG_NARGS();

	if (nargs > first && get_fn_expr_variadic(fcinfo->flinfo))
	{
		ArrayType  *arr;
		Oid			elemtype;
		int16		typlen;
		bool		typbyval;
		char		typalign;

		if (PG_ARGISNULL(first))
		{
			p->n = 0;
			return;
		}
		arr = PG_GETARG_ARRAYTYPE_P(first);
		elemtype = ARR_ELEMTYPE(arr);
		get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
		deconstruct_array(arr, elemtype, typlen, typbyval, typalign,
						  &p->values, &p->nulls, &p->n);
		p->types = palloc(sizeof(Oid) * Max(p->n, 1));
		for (int i = 0; i < p->n; i++)
			p->types[i] = elemtype;
	}
	else
	{
		p->n = Max(nargs - first, 0);
		p->types = palloc(sizeof(Oid) * Max(p->n, 1));
		p->values = palloc(sizeof(Datum) * Max(p->n, 1));
		p->nulls = palloc(sizeof(bool) * Max(p->n, 1));
		for (int i = 0; i < p->n; i++)
		{
			Oid			t = get_fn_expr_argtype(fcinfo->flinfo, first + i);

			p->nulls[i] = PG_ARGISNULL(first + i);
			p->values[i] = p->nulls[i] ? (Datum) 0 : PG_GETARG_DATUM(first + i);
			if (t == UNKNOWNOID)
			{
				t = TEXTOID;
				if (!p->nulls[i])
					p->values[i] = CStringGetTextDatum(DatumGetCString(p->values[i]));
			}
			p->types[i] = t;
		}
	}

	for (int i = 0; i < p->n; i++)
	{
		if (!OidIsValid(p->types[i]))
			ereport(ERROR,
					(errcode(ERRCODE_INDETERMINATE_DATATYPE),
					 errmsg("could not determine the type of parameter $%d", i + 1)));
		if (p->types[i] == RECORDOID || get_typtype(p->types[i]) == TYPTYPE_PSEUDO)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("parameter $%d has type %s, which cached_query cannot use",
							i + 1, format_type_be(p->types[i])),
					 errhint("Cast the parameter to a named type.")));
	}
}

/* Read a cache_options value (NULL fields mean the defaults). */
static void
parse_options(HeapTupleHeader opts, CallOptions *o)
{
	bool		isnull;
	Datum		d;

	o->ttl_ms = (int64) Min(cache_ext_default_ttl, cache_ext_max_ttl) * 1000;
	o->namespace = "";
	o->ntags = 0;
	o->tags = NULL;
	o->has_depends_on = false;
	o->depends_on = NIL;
	if (opts == NULL)
		return;

	d = GetAttributeByNum(opts, 1, &isnull);
	if (!isnull)
	{
		Interval   *iv = DatumGetIntervalP(d);
		int64		us = -1;

		/* bounds first, so the arithmetic below cannot overflow */
		if (iv->month >= 0 && iv->month <= 12 && iv->day >= 0 && iv->day <= 366 &&
			iv->time >= 0 && iv->time <= (int64) 366 * USECS_PER_DAY)
			us = iv->time + (int64) iv->day * USECS_PER_DAY +
			(int64) iv->month * DAYS_PER_MONTH * USECS_PER_DAY;
		if (us < 1000 || us > (int64) 365 * USECS_PER_DAY)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("ttl must be between 1 millisecond and 365 days")));
		/* a superuser's ceiling: no role stores an entry for longer */
		o->ttl_ms = Min(us / 1000, (int64) cache_ext_max_ttl * 1000);
	}

	d = GetAttributeByNum(opts, 2, &isnull);
	if (!isnull)
	{
		ArrayType  *arr = DatumGetArrayTypeP(d);
		Datum	   *tags;
		bool	   *tagnulls;
		int			ntags;

		deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT,
						  &tags, &tagnulls, &ntags);
		if (ntags > 64)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("at most 64 tags may be given, not %d", ntags)));
		for (int i = 0; i < ntags; i++)
			if (tagnulls[i] || VARSIZE_ANY_EXHDR(DatumGetPointer(tags[i])) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("tags must be non-empty and not null")));
		o->ntags = ntags;
		o->tags = palloc(sizeof(char *) * Max(ntags, 1));
		for (int i = 0; i < ntags; i++)
			o->tags[i] = TextDatumGetCString(tags[i]);
	}

	if (HeapTupleHeaderGetNatts(opts) >= 4)
	{
		d = GetAttributeByNum(opts, 4, &isnull);
		if (!isnull)
		{
			ArrayType  *arr = DatumGetArrayTypeP(d);
			Datum	   *rels;
			bool	   *relnulls;
			int			nrels;

			deconstruct_array(arr, REGCLASSOID, sizeof(Oid), true, TYPALIGN_INT,
							  &rels, &relnulls, &nrels);
			o->has_depends_on = true;
			for (int i = 0; i < nrels; i++)
			{
				if (relnulls[i])
					ereport(ERROR,
							(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
							 errmsg("depends_on must not contain NULL")));
				o->depends_on = list_append_unique_oid(o->depends_on,
													   DatumGetObjectId(rels[i]));
			}
		}
	}

	d = GetAttributeByNum(opts, 3, &isnull);
	if (!isnull)
		o->namespace = TextDatumGetCString(d);
}

/* ---- the prepared statement cache ---- */

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
static int	nplanner_conf = 0;

/*
 * The settings that change results, as key material (length-prefixed
 * binary): read straight from the GUC variables, since looking each one up
 * by name on every call costs more than the rest of a hit's bookkeeping.
 */
static void
settings_material(StringInfo s)
{
	if (!settings_resolved)
	{
		struct config_generic **vars = get_guc_variables();
		int			nvars = GetNumConfigOptions();

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
		settings_resolved = true;
	}

	initStringInfo(s);
	/* the configuration default_text_search_config names now, by OID */
	KeyAddU32(s, getTSCurrentConfig(false));
	for (int i = 0; i < lengthof(result_settings) + nplanner_conf; i++)
	{
		struct config_generic *conf = i < lengthof(result_settings) ?
		setting_conf[i] : planner_conf[i - lengthof(result_settings)];

		if (conf == NULL)
		{
			KeyAddString(s, "");
			continue;
		}
		switch (conf->vartype)
		{
			case PGC_BOOL:
				KeyAddField(s, ((struct config_bool *) conf)->variable, sizeof(bool));
				break;
			case PGC_INT:
				KeyAddField(s, ((struct config_int *) conf)->variable, sizeof(int));
				break;
			case PGC_REAL:
				KeyAddField(s, ((struct config_real *) conf)->variable, sizeof(double));
				break;
			case PGC_ENUM:
				KeyAddField(s, ((struct config_enum *) conf)->variable, sizeof(int));
				break;
			case PGC_STRING:
				KeyAddString(s, *((struct config_string *) conf)->variable);
				break;
		}
	}
}

/*
 * Every setting a session can see and change, as key material: for results
 * of functions that may read any of them (current_setting() in a PL/pgSQL
 * function, custom settings such as app.tenant).  Names are included, so a
 * placeholder that appears or goes away changes the key too.
 */
static void
all_settings_material(StringInfo m)
{
	struct config_generic **vars = get_guc_variables();
	int			nvars = GetNumConfigOptions();

	for (int j = 0; j < nvars; j++)
	{
		struct config_generic *conf = vars[j];
		char		buf[64];

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
					char	   *v = *((struct config_string *) conf)->variable;

					KeyAddString(m, v ? v : "");
					break;
				}
		}
	}
}

/* A hash of every setting (all_settings_material). */
static void
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
	List	   *raw = pg_parse_query(query);
	RawStmt    *rs;
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
	Query	   *q;

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
	Oid			elem = get_element_type(typid);

	if (OidIsValid(elem))
		typid = elem;
	if (type_is_multirange(typid))
		typid = get_range_subtype(get_multirange_range(typid));
	else if (type_is_range(typid))
		typid = get_range_subtype(typid);
	if (get_typtype(typid) == TYPTYPE_COMPOSITE)
		return true;			/* a row literal may hold a date */
	return typid == DATEOID || typid == TIMEOID || typid == TIMETZOID ||
		typid == TIMESTAMPOID || typid == TIMESTAMPTZOID;
}

typedef struct LiteralWalk
{
	const char *query;
	char	   *problem;
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
		Const	   *c = (Const *) node;
		static const char *const words[] = {"now", "today", "tomorrow", "yesterday"};

		if (c->location >= 0 && c->location < (int) strlen(w->query) &&
			is_datetime_type(c->consttype))
		{
			/* the literal's text: up to its closing quote, at most 64 bytes */
			char	   *lit = pnstrdup(w->query + c->location, 64);
			char	   *open = strchr(lit, '\'');	/* skips E or U& */
			char	   *close = open ? strchr(open + 1, '\'') : NULL;

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
		Node	   *fexpr = ((RangeTblFunction *) node)->funcexpr;
		Oid			relid = fexpr ? get_typ_typrelid(exprType(fexpr)) : InvalidOid;

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
 * Find or create the prepared statement for this text, parameter types,
 * settings and role (name resolution and SQL-function inlining depend on
 * the role's privileges).  Parse errors and rejected statements raise
 * ERROR before anything runs.
 *
 * A statement whose date/time literals froze the moment it was prepared
 * ('now', 'today'), and one prepared by a nested call while prepared
 * statements are stale, is transient: not kept in the hash, *transient is
 * set and the caller must drop_prepared() it when the call ends.
 */
static PreparedQuery *
get_prepared(const char *query, const CallParams *params, StringInfo settings,
			 bool *transient)
{
	StringInfoData m;
	uint8		key[CE_HASH_LEN];
	PreparedQuery *pq;
	bool		found;
	RawStmt    *raw;
	CachedPlanSource *plansource;
	List	   *querytrees;
	LiteralWalk lw;
	Oid			userid = GetUserId();
	bool		make_transient = false;

	*transient = false;
	register_callbacks();
	if (prepared_cxt == NULL)
		prepared_cxt = AllocSetContextCreate(CacheMemoryContext,
											 "cache_ext prepared queries",
											 ALLOCSET_DEFAULT_SIZES);
	if (calls_in_progress <= 1 && retired_cxt != NULL)
		MemoryContextReset(retired_cxt);
	/* only the outermost call may drop statements: an outer one uses one */
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
		HASHCTL		ctl;

		ctl.keysize = CE_HASH_LEN;
		ctl.entrysize = sizeof(PreparedQuery);
		ctl.hcxt = prepared_cxt;
		prepared_queries = hash_create("cache_ext prepared queries", 64, &ctl,
									   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}

	initStringInfo(&m);
	KeyAddString(&m, query);
	KeyAddField(&m, params->types, sizeof(Oid) * params->n);
	KeyAddField(&m, settings->data, settings->len);
	KeyAddU32(&m, userid);
	KeyHash(&m, key);
	pfree(m.data);

	pq = prepared_stale ? NULL : hash_search(prepared_queries, key, HASH_FIND, NULL);

	/*
	 * A date/time literal froze in the body of an inlined function, or the
	 * plan holds the value of a function run under other settings: plan it
	 * again (in the hash when no outer call may be using it, else for this
	 * call only).
	 */
	if (pq != NULL && pq->analysis_cxt != NULL)
	{
		bool		again = pq->literal_problem[0] != '\0' || pq->plan_per_call;

		if (!again && pq->settings_pinned)
		{
			uint8		now[CE_HASH_LEN];

			all_settings_hash(now);
			again = memcmp(now, pq->settings_hash, CE_HASH_LEN) != 0;
		}
		if (again)
		{
			if (calls_in_progress <= 1)
			{
				drop_prepared(pq);
				hash_search(prepared_queries, key, HASH_REMOVE, NULL);
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

	if (lw.problem != NULL || prepared_stale || make_transient)
	{
		pq = MemoryContextAllocZero(prepared_cxt, sizeof(PreparedQuery));
		memcpy(pq->key, key, CE_HASH_LEN);
		*transient = true;
		pq->transient = true;
	}
	else
	{
		pq = hash_search(prepared_queries, key, HASH_ENTER, &found);
		Assert(!found);
		pq->transient = false;
	}
	pq->plansource = plansource;
	pq->queryid = hash_bytes_extended((const unsigned char *) query,
									  strlen(query), 0);
	pq->generation = -1;
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
	char	   *all[2];
	ListCell   *lc;
	List	   *consts = NIL;
	char	   *prev = NULL;

	all[0] = nodeToString(stmt->planTree);
	all[1] = nodeToString(stmt->subplans);
	for (int i = 0; i < 2; i++)
	{
		char	   *p = all[i];

		while ((p = strstr(p, "{CONST ")) != NULL)
		{
			char	   *end = strchr(p, '}');
			char	   *loc;

			if (end == NULL)
				break;
			loc = strstr(p, " :location ");
			if (loc != NULL && loc < end)
			{
				char	   *after = strstr(loc + 11, " :");

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
		char	   *c = (char *) lfirst(lc);

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
	Oid			elem;

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
		TupleDesc	td = lookup_rowtype_tupdesc(typid, -1);
		Oid			relid = get_typ_typrelid(typid);
		MemoryContext old;

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
		old = MemoryContextSwitchTo(prepared_cxt);
		watched_relids = list_append_unique_oid(watched_relids, relid);
		MemoryContextSwitchTo(old);
	}
}

static void
definition_hash(PreparedQuery *pq, PlannedStmt *stmt)
{
	StringInfoData m;
	ListCell   *lc;
	char	   *tree = nodeToString(pq->plansource->query_list);
	List	   *funcs = list_concat_unique_oid(list_copy(pq->defn_funcids),
											   pq->deps.funcids);

	funcs = list_concat_unique_oid(funcs, pq->deps.opaque_funcids);
	/* aggregate support functions, operators of sorts, I/O functions ... */
	funcs = list_concat_unique_oid(funcs, pq->deps.implicit_funcids);
	initStringInfo(&m);
	KeyAddString(&m, tree);
	pfree(tree);
	foreach(lc, funcs)
	{
		Oid			funcid = lfirst_oid(lc);
		HeapTuple	tup;

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

/* "schema.name", or "relation with OID n" when there is no such relation */
static char *
relation_label(Oid relid)
{
	char	   *name = get_rel_name(relid);
	char	   *nspname;

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
	ListCell   *lc;

	foreach(lc, narrowed)
		if (((NarrowedScope *) lfirst(lc))->scope == scope)
			return (NarrowedScope *) lfirst(lc);
	return NULL;
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
	Query	   *q = linitial_node(Query, pq->plansource->query_list);
	List	   *inner = NIL;
	List	   *eqs = FindKeyEqualities(q, &inner);
	List	   *candidates = NIL;
	ListCell   *lc;

	pq->narrowed = NIL;
	if (eqs == NIL)
		return;

	/* the top-level relations with a key equality: one per range table entry */
	foreach(lc, eqs)
	{
		KeyEquality *ke = (KeyEquality *) lfirst(lc);
		Oid			scope;
		NarrowedScope *ns;
		bool		dup = false;
		ListCell   *lc2;

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

	foreach(lc, candidates)
	{
		NarrowedScope *ns = (NarrowedScope *) lfirst(lc);
		bool		ok = true;
		ListCell   *lc2;
		int			rtindex = 0;

		/* every top-level occurrence of the scope has its equality */
		foreach(lc2, q->rtable)
		{
			RangeTblEntry *rte = (RangeTblEntry *) lfirst(lc2);
			Oid			scope;
			const char *why;
			bool		has = false;
			ListCell   *lc3;

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
			Oid			scope;
			const char *why;

			if (InvalRelationCoverage(lfirst_oid(lc2), &scope, &why) != REL_IGNORED &&
				scope == ns->scope)
				ok = false;
		}
		/* every relation of the plan mapping to it comes from those entries */
		foreach(lc2, pq->deps.relids)
		{
			Oid			relid = lfirst_oid(lc2);
			Oid			scope;
			const char *why;
			bool		covered = false;
			ListCell   *lc3;

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
			Oid			scope;
			const char *why;
			int			count = 0;
			int			expected = 0;
			ListCell   *lc3;

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
		if (ok)
			pq->narrowed = lappend(pq->narrowed, ns);
	}
}

/*
 * Which generations stand for the relations the plan reads, and what is
 * not tracked.  Tracking a table creates triggers, which invalidates the
 * plans reading it, so this is redone when it changes.
 */
static void analyze_narrowing(PreparedQuery *pq, PlannedStmt *stmt);

static void
analyze_scopes(PreparedQuery *pq, PlannedStmt *stmt)
{
	ListCell   *lc;

	pq->scope_relids = NIL;
	pq->has_tracked = false;
	pq->untracked = NIL;
	pq->opaque = NIL;
	foreach(lc, pq->deps.relids)
	{
		Oid			relid = lfirst_oid(lc);
		Oid			scope;
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

static bool
note_func(Oid funcid, void *context)
{
	List	  **funcs = (List **) context;

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
static bool
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
	HeapTuple	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(funcid));
	Form_pg_proc proc;
	bool		isnull;
	Datum		d;
	char	   *src;
	List	   *raw;
	List	   *trees;
	Query	   *q;
	LiteralWalk lw;

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
	lw.query = src;
	lw.problem = NULL;
	(void) find_relative_time_literal((Node *) trees, &lw);
	/* what the body calls was inlined or run with it: judged in turn */
	(void) collect_query_funcs((Node *) trees, calls);
	if (list_length(trees) != 1)
		return lw.problem;
	q = linitial_node(Query, trees);
	*clean = q->commandType == CMD_SELECT && q->rtable == NIL &&
		(q->jointree == NULL || (q->jointree->fromlist == NIL && q->jointree->quals == NULL)) &&
		!q->hasAggs && !q->hasWindowFuncs && !q->hasTargetSRFs && !q->hasSubLinks &&
		q->cteList == NIL && q->groupClause == NIL && q->havingQual == NULL &&
		q->sortClause == NIL && q->limitCount == NULL && q->limitOffset == NULL &&
		q->setOperations == NULL && list_length(q->targetList) == 1 &&
		!contain_mutable_functions((Node *) q->targetList);
	return lw.problem;
}

/*
 * sql_body_check_inner in a subtransaction: a body PostgreSQL never planned
 * (a function in a branch the planner removed) may not even parse; then it
 * is not clean, and nothing is raised.
 */
static const char *
sql_body_check(Oid funcid, bool *clean, List **calls, bool *analyzed)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	const char *volatile problem = NULL;

	*clean = false;
	*analyzed = false;
	if (IsInParallelMode())
		return NULL;
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		problem = sql_body_check_inner(funcid, clean, calls, analyzed);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) == ERRCODE_OPERATOR_INTERVENTION)
			ReThrowError(edata);
		FreeErrorData(edata);
		*clean = false;
		*analyzed = false;
		problem = NULL;
	}
	PG_END_TRY();
	return problem;
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
	HeapTuple	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(funcid));
	bool		isnull;
	Datum		d;
	List	   *calls = NIL;
	ListCell   *lc;

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
static void
pin_folded_functions(PreparedQuery *pq)
{
	ListCell   *lc;

	pq->settings_pinned = false;
	pq->plan_per_call = false;
	/* defn_funcids grows: the functions inlined bodies call, to a bound */
	foreach(lc, pq->defn_funcids)
	{
		Oid			funcid = lfirst_oid(lc);
		HeapTuple	tup;
		char		volatility;
		Oid			lang;
		bool		in_plan;
		bool		clean = false;

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
			List	   *calls = NIL;
			bool		analyzed;
			const char *problem = sql_body_check(funcid, &clean, &calls, &analyzed);
			ListCell   *lc2;

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

/* Bring pq's analysis up to date with the generic plan cplan. */
static void
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
	pq->generation = cplan->generation;
}

/* The caller's column definition list must match the query's result. */
static void
check_result_type(TupleDesc expected, TupleDesc actual)
{
	if (expected->natts != actual->natts)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("the column definition list has %d columns, but the query returns %d",
						expected->natts, actual->natts)));
	for (int i = 0; i < expected->natts; i++)
	{
		Form_pg_attribute e = TupleDescAttr(expected, i);
		Form_pg_attribute a = TupleDescAttr(actual, i);

		if (e->atttypid != a->atttypid ||
			(e->atttypmod >= 0 && e->atttypmod != a->atttypmod))
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"%s\" (number %d) of the column definition list has type %s, but the query returns %s",
							NameStr(e->attname), i + 1,
							format_type_with_typemod(e->atttypid, e->atttypmod),
							format_type_with_typemod(a->atttypid, a->atttypmod)),
					 errhint("Declare column %d as %s in the column definition list.",
							 i + 1, format_type_with_typemod(a->atttypid, a->atttypmod))));
	}
}

/*
 * Raise the executor's own errors if the current role could not run the
 * plan: SELECT on its relations (and columns), EXECUTE on its functions.
 */
static void
check_privileges(PreparedQuery *pq, CachedPlan *cplan)
{
	ListCell   *lc;

	ExecCheckRTPerms(linitial_node(PlannedStmt, cplan->stmt_list)->rtable, true);
	foreach(lc, pq->deps.funcids)
	{
		Oid			funcid = lfirst_oid(lc);

		if (pg_proc_aclcheck(funcid, GetUserId(), ACL_EXECUTE) != ACLCHECK_OK)
			aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_FUNCTION, get_func_name(funcid));
	}
}

/* ---- keys ---- */

/*
 * The binary output function of typid, or InvalidOid when it has none (or
 * it is an array or composite of a type without one: array_send and
 * record_send would raise).
 */
static Oid
get_type_send_function(Oid typid)
{
	HeapTuple	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(typid));
	Oid			send;
	Oid			elem;

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
		Oid			func;
		bool		isvarlena;

		if (params->nulls[i])
		{
			KeyAddString(m, "NULL");
			continue;
		}
		/* by pg_type: getTypeBinaryOutputInfo raises for a type without one */
		func = get_type_send_function(params->types[i]);
		if (OidIsValid(func))
		{
			bytea	   *b = OidSendFunctionCall(func, params->values[i]);

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

#define MAX_CALL_KEYS 100

/*
 * The key-level generations of a narrowed scope for this call's values:
 * the structural generation and one per key value.  Returns false (the
 * caller then uses the table's generation) when there are too many values.
 */
static bool
add_key_scopes(CallScopes *cs, NarrowedScope *ns, const CallParams *params)
{
	int			start = cs->n;
	int			nvalues = 0;
	ListCell   *lc;

	add_scope(cs, KeyTableDdlGenName(ns->scope), NULL,
			  cs->describe ? psprintf("table structure %s", relation_label(ns->scope)) : "table");
	foreach(lc, ns->eqs)
	{
		KeyEquality *ke = (KeyEquality *) lfirst(lc);
		Datum	   *values = ke->consts;
		Oid			valtype = ke->valtype;
		int			n = ke->nconsts;

		if (ke->paramid > 0)
		{
			int			i = ke->paramid - 1;

			n = 0;
			if (i >= params->n || params->nulls[i])
				continue;		/* = NULL matches nothing */
			if (ke->param_is_array)
			{
				ArrayType  *arr = DatumGetArrayTypeP(params->values[i]);
				int16		typlen;
				bool		typbyval;
				char		typalign;
				bool	   *nulls;
				Datum	   *elems;

				valtype = ARR_ELEMTYPE(arr);
				get_typlenbyvalalign(valtype, &typlen, &typbyval, &typalign);
				deconstruct_array(arr, valtype, typlen, typbyval, typalign,
								  &elems, &nulls, &n);
				{
					int			k = 0;

					values = palloc(sizeof(Datum) * Max(n, 1));
					for (int j = 0; j < n; j++)
						if (!nulls[j])
							values[k++] = elems[j];
					n = k;		/* = NULL matches nothing */
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
			char	   *name;

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
											  quote_identifier(ke->colname)) : "key");
		}
	}
	return true;
}

/* The generations this call depends on, and what it reads untracked. */
static void
call_scopes(PreparedQuery *pq, const CallOptions *opts, CallScopes *cs,
			const CallParams *params)
{
	int			max = 2 + list_length(pq->scope_relids) +
		list_length(opts->depends_on) + opts->ntags;
	ListCell   *lc;

	foreach(lc, pq->narrowed)
		max += 1 + MAX_CALL_KEYS;
	cs->n = 0;
	cs->keys = palloc(sizeof(char *) * max);
	cs->labels = palloc(sizeof(char *) * max);
	cs->desc = palloc(sizeof(char *) * max);
	cs->rel = palloc(sizeof(Oid) * max);
	add_scope(cs, KeyServerGenName(), NULL, "server");
	add_scope(cs, KeyDatabaseGenName(), NULL, "database");
	foreach(lc, pq->scope_relids)
	{
		Oid			scope = lfirst_oid(lc);
		NarrowedScope *ns = find_narrowed(pq->narrowed, scope);

		int			first = cs->n;

		if (ns == NULL || !add_key_scopes(cs, ns, params))
			add_scope(cs, KeyTableGenName(scope), NULL,
					  cs->describe ? psprintf("table %s", relation_label(scope)) : "table");
		for (int i = first; i < cs->n; i++)
			cs->rel[i] = scope;
	}
	cs->untracked = list_copy(pq->untracked);

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
		Oid			relid = lfirst_oid(lc);
		Oid			scope;
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
static const char *
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

static char *
untracked_summary(List *untracked)
{
	StringInfoData b;
	ListCell   *lc;

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
 * The entry key: everything that can change the answer.  The database
 * identity is in the key's name (keys.c); the rest is hashed here.
 */
static void
entry_key(const char *query, const CallParams *params, StringInfo settings,
		  const CallOptions *opts, const PreparedQuery *pq,
		  const CallScopes *cs, uint8 *hash)
{
	StringInfoData m;
	List	   *path;
	ListCell   *lc;

	initStringInfo(&m);
	KeyAddString(&m, "cache_ext entry v2");
	KeyAddString(&m, opts->namespace);
	KeyAddString(&m, query);
	KeyAddField(&m, params->types, sizeof(Oid) * params->n);
	add_param_values(&m, params);
	KeyAddField(&m, settings->data, settings->len);

	/* the schemas names resolve in, and the relations they resolved to */
	path = fetch_search_path(false);
	foreach(lc, path)
		KeyAddU32(&m, lfirst_oid(lc));
	list_free(path);
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
		Oid			temp_nsp;
		Oid			temp_toast_nsp;

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

/* ---- running the query ---- */

/* Receives the executor's rows: into the tuplestore, and into the entry. */
typedef struct CacheDest
{
	DestReceiver pub;
	Tuplestorestate *ts;
	EntryWriter *writer;		/* NULL when the result is not stored */
} CacheDest;

/* set while a row is being encoded: an error then is the encoder's */
static bool encoding_row = false;

static bool
cachedest_receive(TupleTableSlot *slot, DestReceiver *self)
{
	CacheDest  *d = (CacheDest *) self;

	tuplestore_puttupleslot(d->ts, slot);
	if (d->writer)
	{
		encoding_row = true;
		EntryWriterAddRow(d->writer, slot);
		encoding_row = false;
	}
	return true;
}

static void
cachedest_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
}

static void
cachedest_noop(DestReceiver *self)
{
}

/*
 * Run the prepared query with its parameters, sending every row to ts and,
 * when writer is not NULL, to writer.  The query sees a fresh snapshot and
 * the transaction's earlier commands, as a statement of a volatile function
 * does.
 */
static void
run_plan(PreparedQuery *pq, const CallParams *params, Tuplestorestate *ts,
		 EntryWriter *writer)
{
	ParamListInfo pli = NULL;
	CachedPlan *cplan;
	PlannedStmt *stmt;
	QueryDesc  *qd;
	CacheDest	dest;

	if (params->n > 0)
	{
		pli = makeParamList(params->n);
		for (int i = 0; i < params->n; i++)
		{
			pli->params[i].value = params->values[i];
			pli->params[i].isnull = params->nulls[i];
			pli->params[i].pflags = PARAM_FLAG_CONST;
			pli->params[i].ptype = params->types[i];
		}
	}

	memset(&dest, 0, sizeof(dest));
	dest.pub.receiveSlot = cachedest_receive;
	dest.pub.rStartup = cachedest_startup;
	dest.pub.rShutdown = cachedest_noop;
	dest.pub.rDestroy = cachedest_noop;
	dest.pub.mydest = DestNone;
	dest.ts = ts;
	dest.writer = writer;

	CommandCounterIncrement();
	PushActiveSnapshot(GetTransactionSnapshot());

	cplan = GetCachedPlan(pq->plansource, pli, CurrentResourceOwner, NULL);
	stmt = linitial_node(PlannedStmt, cplan->stmt_list);
	qd = CreateQueryDesc(stmt, pq->plansource->query_string,
						 GetActiveSnapshot(), InvalidSnapshot,
						 &dest.pub, pli, NULL, 0);
	ExecutorStart(qd, 0);
	ExecutorRun(qd, ForwardScanDirection, 0, true);
	ExecutorFinish(qd);
	ExecutorEnd(qd);
	FreeQueryDesc(qd);
	ReleaseCachedPlan(cplan, CurrentResourceOwner);

	PopActiveSnapshot();
}

/*
 * Run the query (run_plan).  With a writer, in a subtransaction and into a
 * tuplestore of its own: a value its type cannot encode (an output or send
 * function that raises, as for a malformed oidvector a relabelling cast
 * made) must not fail a statement that works without the cache.  Then the
 * query runs again without the writer, and the reason it is not stored is
 * returned; an error of the query itself is raised as it was.  Returns
 * NULL when nothing went wrong.
 */
static char *
run_query(PreparedQuery *pq, const CallParams *params, Tuplestorestate *ts,
		  EntryWriter *writer)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	Tuplestorestate *mine;
	char	   *volatile problem = NULL;

	if (writer == NULL)
	{
		run_plan(pq, params, ts, NULL);
		return NULL;
	}
	if (IsInParallelMode())
	{
		/* no subtransaction here: run it, store nothing */
		run_plan(pq, params, ts, NULL);
		return pstrdup("inside a parallel operation");
	}
	mine = tuplestore_begin_heap(false, false, work_mem);
	encoding_row = false;
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		run_plan(pq, params, mine, writer);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		bool		in_encoder = encoding_row;
		ErrorData  *edata;

		encoding_row = false;
		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		/* the query's own error, or a cancel: not a property of a value */
		if (!in_encoder ||
			ERRCODE_TO_CATEGORY(edata->sqlerrcode) == ERRCODE_OPERATOR_INTERVENTION)
			ReThrowError(edata);
		problem = psprintf("a value could not be encoded (%s)", edata->message);
		FreeErrorData(edata);
	}
	PG_END_TRY();

	if (problem != NULL)
	{
		/* its spill files, if any, went with the subtransaction */
		run_plan(pq, params, ts, NULL);
		return problem;
	}
	{
		TupleTableSlot *slot = MakeSingleTupleTableSlot(pq->resultdesc, &TTSOpsMinimalTuple);

		while (tuplestore_gettupleslot(mine, true, false, slot))
			tuplestore_puttupleslot(ts, slot);
		ExecDropSingleTupleTableSlot(slot);
		tuplestore_end(mine);
	}
	return NULL;
}

/* ---- the cache ---- */

typedef enum LookupOutcome
{
	LOOKUP_HIT,					/* the rows are in ts */
	LOOKUP_MISS,				/* no entry */
	LOOKUP_STALE,				/* an entry computed under older generations */
	LOOKUP_CORRUPT,				/* an entry that failed validation (deleted) */
	LOOKUP_REDIS_DOWN,
	LOOKUP_BLOCKED				/* this server holds undelivered invalidations */
} LookupOutcome;

/* What decode_entry needs, for the store's lookup to call it. */
typedef struct LookupDecode
{
	const char *rkey;
	const uint8 *hash;
	PreparedQuery *pq;
	EntryGens  *gens;
	Tuplestorestate *ts;
	const char **problem;		/* EntryLoad's / EntryOpen's why */
} LookupDecode;

/*
 * The store's StoreDecodeFn for lookup and explain_entry: open the entry
 * (authenticated, when sealed) and decode it into ts if its generations
 * are the current ones.  Returns an EntryDecodeResult.
 */
static int
decode_entry(char *raw, size_t len, void *arg)
{
	LookupDecode *d = (LookupDecode *) arg;
	char	   *data = raw;
	size_t		dlen = len;

	if (KeyEncryptionOn() || EntryIsSealed(raw, len))
		data = EntryOpen(raw, len, d->rkey, &dlen, d->problem);
	if (data == NULL)
		return ENTRY_CORRUPT;
	return EntryLoad(data, dlen, d->hash, d->gens,
					 d->pq->resultdesc->natts, d->pq->codecs,
					 d->pq->resultdesc, d->pq->decode_in_subxact,
					 d->ts, d->problem);
}

/*
 * Initialise the generations that do not exist yet with fresh values (a
 * missing generation means unknown, never fresh), then read them back:
 * another session may have set one first.  Returns false if Redis failed.
 */
static bool
init_generations(CallScopes *cs, EntryGens *gens)
{
	int			nmissing = 0;
	int		   *which;
	char		value[33];

	which = palloc(sizeof(int) * cs->n);
	for (int i = 0; i < cs->n; i++)
		if (gens->vals[i] == NULL)
			which[nmissing++] = i;
	InvalFreshValue(value);
	return StoreInitGenerations(cs->keys, which, nmissing, value,
								gens->vals, gens->lens);
}

/* Delete an entry, best effort (a failure is the client's to report). */
static void
delete_entry(const char *rkey)
{
	StoreDeleteEntry(rkey);
}

/*
 * The rows of ts as a sorted array of their text forms (each column's
 * output function, length-prefixed, NULL marked), for comparing two results
 * as multisets.  ts is rewound afterwards.
 */
static char **
rows_as_sorted_text(Tuplestorestate *ts, TupleDesc desc, int64 *nrows)
{
	TupleTableSlot *slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
	FmgrInfo   *out = palloc(sizeof(FmgrInfo) * Max(desc->natts, 1));
	int64		n = tuplestore_tuple_count(ts);
	char	  **rows = palloc(sizeof(char *) * Max(n, 1));
	int64		i = 0;

	for (int a = 0; a < desc->natts; a++)
	{
		Oid			fn;
		bool		isvarlena;

		getTypeOutputInfo(TupleDescAttr(desc, a)->atttypid, &fn, &isvarlena);
		fmgr_info(fn, &out[a]);
	}
	tuplestore_rescan(ts);
	while (i < n && tuplestore_gettupleslot(ts, true, false, slot))
	{
		StringInfoData b;

		initStringInfo(&b);
		slot_getallattrs(slot);
		for (int a = 0; a < desc->natts; a++)
		{
			if (slot->tts_isnull[a])
				appendStringInfoString(&b, "N;");
			else
			{
				char	   *v = OutputFunctionCall(&out[a], slot->tts_values[a]);

				appendStringInfo(&b, "%zu:%s;", strlen(v), v);
			}
		}
		rows[i++] = b.data;
	}
	tuplestore_rescan(ts);
	ExecDropSingleTupleTableSlot(slot);
	qsort(rows, i, sizeof(char *), pg_qsort_strcmp);
	*nrows = i;
	return rows;
}

/*
 * cache_ext.verify_rate: run the query of a hit directly and compare (as
 * multisets: a query without ORDER BY may return its rows in another
 * order).  On a difference, count and log it, delete the entry and put the
 * direct rows in ts.  Returns true when they matched.
 */
static bool
verify_hit(PreparedQuery *pq, const CallParams *params, Tuplestorestate *ts,
		   TupleDesc desc, const char *rkey, const CallScopes *cs)
{
	Tuplestorestate *direct = tuplestore_begin_heap(false, false, work_mem);
	char	  **a;
	char	  **b;
	int64		na;
	int64		nb;
	bool		same;

	run_query(pq, params, direct, NULL);
	a = rows_as_sorted_text(ts, desc, &na);
	b = rows_as_sorted_text(direct, desc, &nb);
	same = na == nb;
	for (int64 i = 0; same && i < na; i++)
		same = strcmp(a[i], b[i]) == 0;
	CacheStatsAdd(CS_VERIFIED, 1);
	if (!same)
	{
		StringInfoData scopes;
		TupleTableSlot *slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);

		initStringInfo(&scopes);
		for (int i = 0; i < cs->n; i++)
			appendStringInfo(&scopes, "%s%s", i ? ", " : "", cs->keys[i]);
		CacheStatsAdd(CS_VERIFY_MISMATCHES, 1);
		ereport(LOG,
				(errmsg("cache_ext: a stored result differed from the direct result of its query"),
				 errdetail_internal("Query id " INT64_FORMAT ", key %s, " INT64_FORMAT " stored rows, " INT64_FORMAT " direct rows, scopes: %s.",
									(int64) pq->queryid, rkey, na, nb, scopes.data),
				 errhint("The entry was deleted and the direct result returned. Please report this as a bug of cache_ext.")));
		delete_entry(rkey);
		tuplestore_clear(ts);
		tuplestore_rescan(direct);
		while (tuplestore_gettupleslot(direct, true, false, slot))
			tuplestore_puttupleslot(ts, slot);
		ExecDropSingleTupleTableSlot(slot);
	}
	tuplestore_end(direct);
	return same;
}

/*
 * Fetch the entry and the current values of its generations in one round
 * trip.  On a hit the rows are in ts.  gens receives the current values
 * (for storing a new entry: they were read before its query runs); *gens_ok
 * is false when they are not usable.  A corrupt entry is counted and
 * deleted, and described in *corrupt.
 */
static LookupOutcome
lookup(const char *rkey, const uint8 *hash, PreparedQuery *pq, CallScopes *cs,
	   Tuplestorestate *ts, EntryGens *gens, bool *gens_ok,
	   const char **corrupt)
{
	LookupDecode d;
	StoreLookup sl;
	LookupOutcome outcome = LOOKUP_MISS;
	uint64		epoch = InvalEpoch();

	*corrupt = NULL;
	*gens_ok = true;
	gens->n = cs->n;
	gens->vals = palloc0(sizeof(char *) * cs->n);
	gens->lens = palloc0(sizeof(size_t) * cs->n);
	d.rkey = rkey;
	d.hash = hash;
	d.pq = pq;
	d.gens = gens;
	d.ts = ts;
	d.problem = corrupt;

	StoreLookupEntry(rkey, cs->keys, cs->n, (size_t) cache_ext_max_entry_size,
					 false, gens->vals, gens->lens, decode_entry, &d, &sl);
	if (sl.verdict == STORE_LOOKUP_DOWN)
		return LOOKUP_REDIS_DOWN;
	*gens_ok = sl.gens != STORE_GENS_INVALID;
	switch (sl.verdict)
	{
		case STORE_LOOKUP_DOWN:
		case STORE_LOOKUP_MISS:
			break;
		case STORE_LOOKUP_CORRUPT:
			*corrupt = sl.problem;
			break;
		case STORE_LOOKUP_STALE:
			outcome = LOOKUP_STALE; /* unknown generations: not valid */
			break;
		case STORE_LOOKUP_DECODE:
			switch ((EntryDecodeResult) sl.decoded)
			{
				case ENTRY_VALID:
					outcome = LOOKUP_HIT;
					pq->undecodable = 0;
					CacheStatsAdd(CS_BYTES_READ, sl.entry_bytes);
					last_entry_bytes = sl.entry_bytes;
					break;
				case ENTRY_STALE:
					outcome = LOOKUP_STALE;
					break;
				case ENTRY_UNDECODABLE:

					/*
					 * An authentic entry this row type cannot read back
					 * (*corrupt names the type): twice in a row, and the
					 * query is not stored by this backend any more (once
					 * could be an entry forged by Redis).
					 */
					if (++pq->undecodable >= 2 && pq->codec_problem == NULL)
						pq->codec_problem = MemoryContextStrdup(pq->analysis_cxt, *corrupt);
					break;
				case ENTRY_CORRUPT:
					break;
			}
			break;
	}
	if (*corrupt)
		outcome = LOOKUP_CORRUPT;

	if (outcome == LOOKUP_CORRUPT)
	{
		CacheStatsAdd(CS_CORRUPT, 1);
		tuplestore_clear(ts);
		delete_entry(rkey);
	}
	if (sl.gens == STORE_GENS_MISSING && !init_generations(cs, gens))
		*gens_ok = false;

	/*
	 * Checked after the round trip: a Redis restart noticed while connecting
	 * for it (by this backend or another), or a commit whose bumps failed,
	 * blocks this hit, even if the bump was delivered since.
	 */
	if (InvalHitsBlockedSince(epoch))
	{
		tuplestore_clear(ts);
		return LOOKUP_BLOCKED;
	}
	return outcome;
}

/*
 * Store the entry.  Returns NULL when Redis accepted it, else why not (for
 * cache_status).
 */
static char *
store(const char *rkey, EntryWriter *w, const CallOptions *opts)
{
	if (KeyEncryptionOn())
	{
		StringInfoData sealed;

		EntrySeal(w->buf.data, w->buf.len, rkey, &sealed);
		return StorePutEntry(rkey, sealed.data, sealed.len, opts->ttl_ms);
	}
	return StorePutEntry(rkey, w->buf.data, w->buf.len, opts->ttl_ms);
}

static void
add_elapsed(CacheStatCounter counter, instr_time start)
{
	instr_time	t;

	INSTR_TIME_SET_CURRENT(t);
	INSTR_TIME_SUBTRACT(t, start);
	CacheStatsAdd(counter, INSTR_TIME_GET_MICROSEC(t));
}

/*
 * Why this call may not use the cache, Redis aside: the first reason, or
 * NULL when it may.  When all is not NULL, every reason is appended to *all
 * (for cache_explain); otherwise this stops at the first (the hit path).
 */
static const char *
bypass_reasons(PreparedQuery *pq, CallScopes *cs, List **all)
{
	const char *first = NULL;
	ListCell   *lc;

#define REASON(cond, text) \
	do { \
		if (cond) \
		{ \
			if (first == NULL) \
				first = (text); \
			if (all == NULL) \
				return first; \
			*all = lappend(*all, (char *) (text)); \
		} \
	} while (0)

	REASON(!cache_ext_enabled, "disabled (cache_ext.enabled is off)");
	REASON(pq->literal_problem[0] != '\0', pq->literal_problem);
	foreach(lc, pq->deps.reasons)
		REASON(true, (char *) lfirst(lc));
	REASON(pq->codec_problem != NULL, pq->codec_problem);
	REASON(cs->opaque_reason != NULL, cs->opaque_reason);
	REASON(IsolationUsesXactSnapshot(),
		   IsolationIsSerializable() ? "serializable transaction" :
		   "repeatable read transaction");
	{
		const char *t = touched_scope(pq, cs);

		REASON(t != NULL, t);
	}
	/*
	 * Rows the running statement has changed but whose AFTER triggers have
	 * not fired yet (a cached_query inside the writing statement itself).
	 */
	if (TransactionIdIsValid(GetTopTransactionIdIfAny()))
	{
		foreach(lc, pq->deps.relids)
			REASON(AfterTriggerPendingOnRel(lfirst_oid(lc)),
				   psprintf("this transaction changed %s", relation_label(lfirst_oid(lc))));
	}
	/* an opaque function's reads are unseen: this transaction's writes too */
	REASON(cs->opted_in && TransactionIdIsValid(GetTopTransactionIdIfAny()),
		   "this transaction has written data and an opaque function's reads are not visible in the plan");
	/* writes to untracked tables are invisible: this one may have made some */
	REASON(cs->untracked != NIL && TransactionIdIsValid(GetTopTransactionIdIfAny()),
		   psprintf("this transaction has written data and %s",
					(char *) linitial(cs->untracked)));
	REASON(cs->untracked != NIL && cache_ext_untracked == UNTRACKED_BYPASS,
		   psprintf("%s (cache_ext.untracked = bypass)",
					(char *) linitial(cs->untracked)));
	REASON(pq->has_tracked && !InvalShmemReady(),
		   "tracked tables are served from the cache only when cache_ext is in shared_preload_libraries");
#undef REASON
	return first;
}

/*
 * The end of a call: its time, cache_query_stats, and the log line that
 * cache_ext.log_calls asks for.
 */
static void
finish_call(PreparedQuery *pq, const char *query, QueryStatsCall *rec,
			instr_time start, const char *rkey)
{
	instr_time	t;
	int			needed;

	INSTR_TIME_SET_CURRENT(t);
	INSTR_TIME_SUBTRACT(t, start);
	rec->ms = INSTR_TIME_GET_MILLISEC(t);
	QueryStatsRecord(pq->queryid, query, rec);

	needed = rec->outcome == QS_HIT ? LOG_CALLS_ALL :
		rec->outcome == QS_MISS ? LOG_CALLS_MISS : LOG_CALLS_BYPASS;
	if (cache_ext_log_calls >= needed)
		ereport(cache_ext_log_calls_level,
				(errmsg("cache_ext: %s in %.3f ms", last_status, rec->ms),
				 rkey ? errdetail_internal("Key %s, query id " INT64_FORMAT ".",
										   rkey, (int64) pq->queryid) :
				 errdetail_internal("Query id " INT64_FORMAT ".", (int64) pq->queryid),
				 errhidestmt(false)));
}

/*
 * The common body of every cached_query form: fill ts (whose rows have
 * outdesc, or the query's own row type when outdesc is NULL) and return
 * the query's row type.
 */
static TupleDesc
cached_query_call(text *query_text, const CallParams *params,
				  const CallOptions *opts, TupleDesc outdesc,
				  Tuplestorestate *ts, PreparedQuery **transient)
{
	char	   *query = text_to_cstring(query_text);
	StringInfoData settings;
	PreparedQuery *pq;
	CachedPlan *cplan;
	const char *why = NULL;
	instr_time	start;
	TupleDesc	resultdesc;
	CallScopes	cs;
	QueryStatsCall rec;

	memset(&rec, 0, sizeof(rec));
	INSTR_TIME_SET_CURRENT(start);
	last_status[0] = '\0';	/* an erroring call leaves no status */

	settings_material(&settings);
	{
		bool		is_transient;

		pq = get_prepared(query, params, &settings, &is_transient);
		if (is_transient)
			*transient = pq;
	}

	/* the generic plan: cheap once built, gives the analysis */
	cplan = GetCachedPlan(pq->plansource, NULL, CurrentResourceOwner, NULL);

	/*
	 * Disabled means exactly the direct statement: no analysis, no key, no
	 * checks of ours (the executor makes its own).
	 */
	if (!cache_ext_enabled)
	{
		resultdesc = CreateTupleDescCopy(pq->plansource->resultDesc);
		ReleaseCachedPlan(cplan, CurrentResourceOwner);
		if (outdesc)
			check_result_type(outdesc, resultdesc);
		run_query(pq, params, ts, NULL);
		set_status("BYPASS: disabled (cache_ext.enabled is off)");
		CacheStatsAdd(CS_BYPASSES, 1);
		add_elapsed(CS_BYPASS_TIME_US, start);
		rec.outcome = QS_BYPASS;
		rec.reason = QueryStatsReasonOf("disabled (cache_ext.enabled is off)");
		finish_call(pq, query, &rec, start, NULL);
		return resultdesc;
	}

	analyze_plan(pq, cplan);
	resultdesc = pq->resultdesc;
	if (outdesc)
		check_result_type(outdesc, resultdesc);

	/*
	 * Refuse anyone who could not run the query, on every path: a hit, and
	 * also a miss or bypass, which run a plan that may have been built for
	 * another role (with a SQL function inlined, whose EXECUTE PostgreSQL
	 * checks only when planning).
	 */
	check_privileges(pq, cplan);

	cs.describe = false;
	call_scopes(pq, opts, &cs, params);
	why = bypass_reasons(pq, &cs, NULL);
	if (why == NULL && cs.untracked != NIL && cache_ext_untracked == UNTRACKED_ERROR)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cached_query result would depend on data whose changes cache_ext does not track: %s",
						untracked_summary(cs.untracked)),
				 errhint("Track the tables with cache_track(), name the tables a function reads with cache_opts(depends_on => ...), or set cache_ext.untracked to 'allow' or 'bypass'.")));
	if (why == NULL)
		(void) RedisUsable(&why);	/* sets why when Redis can't be used */
	if (why == NULL && InvalHitsBlocked(true))
		why = InvalHitsBlockedReason();	/* outbox.c: pending, or standby lease */

	if (why == NULL)
	{
		uint8		hash[CE_HASH_LEN];
		char	   *rkey;
		const char *corrupt;
		EntryGens	gens;
		bool		gens_ok;
		LookupOutcome outcome;
		char	   *ttl_note = "";

		if (cs.untracked != NIL)
			ttl_note = psprintf("ttl-only: %s", untracked_summary(cs.untracked));

		entry_key(query, params, &settings, opts, pq, &cs, hash);
		rkey = KeyEntryName(hash);

		outcome = lookup(rkey, hash, pq, &cs, ts, &gens, &gens_ok, &corrupt);

		/*
		 * Connecting for this lookup may have found that Redis restarted:
		 * the server generation must be bumped first.  Deliver that now and
		 * look up once more, rather than bypass.
		 */
		if (outcome == LOOKUP_BLOCKED && !InvalHitsBlocked(true))
			outcome = lookup(rkey, hash, pq, &cs, ts, &gens, &gens_ok, &corrupt);
		ReleaseCachedPlan(cplan, CurrentResourceOwner);

		/*
		 * A standby may not have replayed the commits whose bumps it just
		 * read: what it computes may be older than the generations say.
		 */
		if (RecoveryInProgress())
			gens_ok = false;
		/* TTL-only results may be stale by contract: not verified */
		if (outcome == LOOKUP_HIT && cache_ext_verify_rate > 0 &&
			cs.untracked == NIL &&
			(cache_ext_verify_rate >= 1.0 ||
			 pg_prng_double(&pg_global_prng_state) < cache_ext_verify_rate) &&
			!verify_hit(pq, params, ts, resultdesc, rkey, &cs))
		{
			rec.outcome = QS_MISS;
			CacheStatsAdd(CS_MISSES, 1);
			set_status("MISS (cache_ext.verify_rate: the stored result differed from the direct one and was deleted)");
			add_elapsed(CS_MISS_TIME_US, start);
			finish_call(pq, query, &rec, start, rkey);
			return resultdesc;
		}
		if (outcome == LOOKUP_HIT)
		{
			CacheStatsAdd(CS_HITS, 1);
			if (cs.untracked != NIL)
				CacheStatsAdd(CS_TTL_ONLY, 1);
			add_elapsed(CS_HIT_TIME_US, start);
			if (cs.untracked != NIL)
				set_status("HIT (%s)", ttl_note);
			else
				set_status("HIT");
			rec.outcome = QS_HIT;
			rec.bytes_read = last_entry_bytes;
			finish_call(pq, query, &rec, start, rkey);
			return resultdesc;
		}

		if (outcome != LOOKUP_REDIS_DOWN && outcome != LOOKUP_BLOCKED)
		{
			EntryWriter w;
			StringInfoData note;
			char	   *encode_problem;

			rec.outcome = QS_MISS;
			rec.invalidated = outcome == LOOKUP_STALE;
			if (outcome == LOOKUP_STALE)
				CacheStatsAdd(CS_INVALIDATED, 1);
			if (cs.untracked != NIL)
				CacheStatsAdd(CS_TTL_ONLY, 1);
			/* a row type found undecodable during this very lookup */
			if (pq->codec_problem != NULL && gens_ok)
			{
				gens_ok = false;
				rec.store_skipped = true;
			}
			if (gens_ok)
				EntryWriterInit(&w, resultdesc->natts, pq->codecs, &gens,
								cache_ext_max_entry_size -
								(KeyEncryptionOn() ? CE_SEALED_OVERHEAD : 0));
			encode_problem = run_query(pq, params, ts, gens_ok ? &w : NULL);
			CacheStatsAdd(CS_MISSES, 1);

			initStringInfo(&note);
			if (outcome == LOOKUP_STALE)
				appendStringInfoString(&note, "invalidated");
			else if (outcome == LOOKUP_CORRUPT)
				appendStringInfo(&note, "corrupt entry replaced: %s", corrupt);
			if (!gens_ok)
			{
				rec.store_skipped = true;
				CacheStatsAdd(CS_STORE_SKIPPED, 1);
				appendStringInfo(&note, "%snot stored: %s", note.len ? "; " : "",
								 pq->codec_problem ? pq->codec_problem :
								 RecoveryInProgress() ? "hot standby" :
								 "generations unreadable");
			}
			else if (encode_problem != NULL)
			{
				rec.store_skipped = true;
				CacheStatsAdd(CS_STORE_SKIPPED, 1);
				appendStringInfo(&note, "%snot stored: %s", note.len ? "; " : "", encode_problem);
			}
			else if (w.overflow)
			{
				rec.store_skipped = true;
				CacheStatsAdd(CS_STORE_SKIPPED, 1);
				appendStringInfo(&note, "%snot stored: %s", note.len ? "; " : "",
								 w.problem ? w.problem : "result larger than cache_ext.max_entry_size");
			}
			else
			{
				char	   *problem;

				EntryWriterFinish(&w, hash);
				problem = store(rkey, &w, opts);
				if (problem == NULL)
				{
					rec.stored = true;
					rec.bytes_stored = w.buf.len;
					CacheStatsAdd(CS_STORES, 1);
					CacheStatsAdd(CS_BYTES_STORED, w.buf.len);
				}
				else
				{
					rec.store_skipped = true;
					CacheStatsAdd(CS_STORE_SKIPPED, 1);
					appendStringInfo(&note, "%snot stored: %s", note.len ? "; " : "", problem);
				}
				pfree(w.buf.data);
			}
			if (cs.untracked != NIL)
				appendStringInfo(&note, "%s%s", note.len ? "; " : "", ttl_note);
			if (note.len)
				set_status("MISS (%s)", note.data);
			else
				set_status("MISS");
			add_elapsed(CS_MISS_TIME_US, start);
			finish_call(pq, query, &rec, start, rkey);
			return resultdesc;
		}
		if (outcome == LOOKUP_BLOCKED)
			why = "pending invalidations (this server holds invalidations Redis has not taken yet)";
		else
			why = psprintf("redis unavailable (%s)", RedisLastError());
	}
	else
		ReleaseCachedPlan(cplan, CurrentResourceOwner);

	run_query(pq, params, ts, NULL);
	set_status("BYPASS: %s", why);	/* after: the query may call cached_query */
	CacheStatsAdd(CS_BYPASSES, 1);
	add_elapsed(CS_BYPASS_TIME_US, start);
	rec.outcome = QS_BYPASS;
	rec.reason = QueryStatsReasonOf(why);
	finish_call(pq, query, &rec, start, NULL);
	return resultdesc;
}

static TupleDesc
cached_query_common(text *query_text, const CallParams *params,
					const CallOptions *opts, TupleDesc outdesc,
					Tuplestorestate *ts)
{
	volatile TupleDesc result = NULL;
	PreparedQuery *volatile transient = NULL;

	calls_in_progress++;
	PG_TRY();
	{
		result = cached_query_call(query_text, params, opts, outdesc, ts,
								   (PreparedQuery **) &transient);
		if (transient)
			result = CreateTupleDescCopy(result);	/* outlives the statement */
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

static text *
query_arg(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the query must not be null")));
	return PG_GETARG_TEXT_PP(argno);
}

static HeapTupleHeader
options_arg(FunctionCallInfo fcinfo, int argno)
{
	return PG_ARGISNULL(argno) ? NULL : PG_GETARG_HEAPTUPLEHEADER(argno);
}

/* cached_query[_with] as a set-returning function with a column list. */
static Datum
cached_query_srf(FunctionCallInfo fcinfo, bool with_options)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			qarg = with_options ? 1 : 0;
	CallParams	params;
	CallOptions opts;
	text	   *query = query_arg(fcinfo, qarg);

	parse_options(with_options ? options_arg(fcinfo, 0) : NULL, &opts);
	collect_params(fcinfo, qarg + 1, &params);

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		!(rsinfo->allowedModes & SFRM_Materialize) ||
		rsinfo->expectedDesc == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cached_query must be called in FROM with a column definition list"),
				 errhint("Write SELECT * FROM cached_query('...') AS t(col type, ...).")));

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	(void) cached_query_common(query, &params, &opts, rsinfo->setDesc,
							   rsinfo->setResult);
	return (Datum) 0;
}

/* cached_query_json[_with]: the result as a jsonb array of objects. */
static Datum
cached_query_json_common(FunctionCallInfo fcinfo, bool with_options)
{
	int			qarg = with_options ? 1 : 0;
	CallParams	params;
	CallOptions opts;
	text	   *query = query_arg(fcinfo, qarg);
	Tuplestorestate *ts;
	TupleDesc	desc;
	TupleTableSlot *slot;
	StringInfoData json;
	bool		first = true;
	MemoryContext rowcxt;

	parse_options(with_options ? options_arg(fcinfo, 0) : NULL, &opts);
	collect_params(fcinfo, qarg + 1, &params);

	ts = tuplestore_begin_heap(false, false, work_mem);
	desc = CreateTupleDescCopy(cached_query_common(query, &params, &opts,
												   NULL, ts));
	BlessTupleDesc(desc);
	slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);

	initStringInfo(&json);
	appendStringInfoChar(&json, '[');
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "cache_ext json row",
								   ALLOCSET_DEFAULT_SIZES);
	while (tuplestore_gettupleslot(ts, true, false, slot))
	{
		MemoryContext old;
		HeapTuple	tup;
		Datum		row;
		text	   *js;

		/* a large result: cancellable, and only the text is kept per row */
		CHECK_FOR_INTERRUPTS();
		old = MemoryContextSwitchTo(rowcxt);
		tup = ExecCopySlotHeapTuple(slot);
		row = heap_copy_tuple_as_datum(tup, desc);
		js = DatumGetTextPP(DirectFunctionCall1(row_to_json, row));
		MemoryContextSwitchTo(old);
		if (!first)
			appendStringInfoChar(&json, ',');
		first = false;
		appendBinaryStringInfo(&json, VARDATA_ANY(js), VARSIZE_ANY_EXHDR(js));
		MemoryContextReset(rowcxt);
	}
	MemoryContextDelete(rowcxt);
	appendStringInfoChar(&json, ']');
	ExecDropSingleTupleTableSlot(slot);
	tuplestore_end(ts);

	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(json.data)));
}

PG_FUNCTION_INFO_V1(cached_query);
PG_FUNCTION_INFO_V1(cached_query_with);
PG_FUNCTION_INFO_V1(cached_query_json);
PG_FUNCTION_INFO_V1(cached_query_json_with);
PG_FUNCTION_INFO_V1(cache_status);

Datum
cached_query(PG_FUNCTION_ARGS)
{
	return cached_query_srf(fcinfo, false);
}

Datum
cached_query_with(PG_FUNCTION_ARGS)
{
	return cached_query_srf(fcinfo, true);
}

Datum
cached_query_json(PG_FUNCTION_ARGS)
{
	return cached_query_json_common(fcinfo, false);
}

Datum
cached_query_json_with(PG_FUNCTION_ARGS)
{
	return cached_query_json_common(fcinfo, true);
}

Datum
cache_status(PG_FUNCTION_ARGS)
{
	if (last_status[0] == '\0')
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(last_status));
}

/* ---- cache_explain ---- */

static void
json_key(StringInfo buf, const char *key)
{
	escape_json(buf, key);
	appendStringInfoChar(buf, ':');
}

static const char *
relkind_name(char relkind)
{
	switch (relkind)
	{
		case RELKIND_RELATION:
			return "table";
		case RELKIND_PARTITIONED_TABLE:
			return "partitioned table";
		case RELKIND_VIEW:
			return "view";
		case RELKIND_MATVIEW:
			return "materialized view";
		case RELKIND_FOREIGN_TABLE:
			return "foreign table";
		default:
			return "other";
	}
}

/*
 * What the stored entry of rkey looks like now, as a JSON object: whether
 * it exists, whether it decodes for this query, its size and remaining TTL.
 * Nothing is deleted or stored.
 */
static void
explain_entry(StringInfo buf, const char *rkey, const uint8 *hash,
			  PreparedQuery *pq, CallScopes *cs)
{
	const char *why = NULL;
	const char *problem = NULL;
	LookupDecode d;
	StoreLookup sl;
	EntryGens	gens;
	Tuplestorestate *ts;

	if (!StoreUsable(&why))
	{
		json_key(buf, "redis");
		escape_json(buf, why);
		return;
	}
	gens.n = cs->n;
	gens.vals = palloc0(sizeof(char *) * cs->n);
	gens.lens = palloc0(sizeof(size_t) * cs->n);
	ts = tuplestore_begin_heap(false, false, work_mem);
	d.rkey = rkey;
	d.hash = hash;
	d.pq = pq;
	d.gens = &gens;
	d.ts = ts;
	d.problem = &problem;

	/* the same lookup and verdict as cached_query's, with the TTL */
	StoreLookupEntry(rkey, cs->keys, cs->n, (size_t) cache_ext_max_entry_size,
					 true, gens.vals, gens.lens, decode_entry, &d, &sl);
	if (sl.verdict == STORE_LOOKUP_DOWN)
	{
		tuplestore_end(ts);
		json_key(buf, "redis");
		escape_json(buf, psprintf("unavailable (%s)", StoreLastError()));
		return;
	}

	json_key(buf, "entry");
	appendStringInfo(buf, "{\"exists\":%s",
					 sl.entry != STORE_ENTRY_ABSENT ? "true" : "false");
	if (sl.entry != STORE_ENTRY_ABSENT)
	{
		switch (sl.verdict)
		{
			case STORE_LOOKUP_DOWN:
			case STORE_LOOKUP_MISS:
				break;
			case STORE_LOOKUP_CORRUPT:
				problem = sl.problem;
				break;
			case STORE_LOOKUP_STALE:
				problem = sl.gens == STORE_GENS_MISSING ?
					"stale: a generation it depends on is unknown" :
					"stale: a generation it depends on holds a value cache_ext does not write";
				break;
			case STORE_LOOKUP_DECODE:
				switch ((EntryDecodeResult) sl.decoded)
				{
					case ENTRY_UNDECODABLE:
					case ENTRY_CORRUPT:
						break;
					case ENTRY_VALID:
						appendStringInfo(buf, ",\"rows\":" INT64_FORMAT,
										 tuplestore_tuple_count(ts));
						break;
					case ENTRY_STALE:
						problem = "stale: invalidated since it was stored";
						break;
				}
				break;
		}
		appendStringInfo(buf, ",\"valid\":%s", problem ? "false" : "true");
		if (problem)
		{
			appendStringInfoString(buf, ",\"problem\":");
			escape_json(buf, problem);
		}
		if (sl.entry == STORE_ENTRY_PRESENT || sl.entry == STORE_ENTRY_TOO_LARGE)
			appendStringInfo(buf, ",\"bytes\":%zu", sl.entry_bytes);
		if (sl.has_ttl)
			appendStringInfo(buf, ",\"ttl_ms\":" INT64_FORMAT, sl.ttl_ms);
	}
	appendStringInfoChar(buf, '}');
	tuplestore_end(ts);
}

PG_FUNCTION_INFO_V1(cache_explain);

static Datum explain_common(FunctionCallInfo fcinfo, bool with_options);
static Datum explain_body(FunctionCallInfo fcinfo, bool with_options,
						  PreparedQuery **transient);

/*
 * cache_explain(query [, params...]) RETURNS jsonb: what cached_query would
 * do with this call, without running the query: its key, dependencies,
 * TTL, verdict with every reason, and the state of its entry in Redis.
 * The caller must be allowed to run the query (same errors as running it).
 */
Datum
cache_explain(PG_FUNCTION_ARGS)
{
	return explain_common(fcinfo, false);
}

PG_FUNCTION_INFO_V1(cache_explain_with);

Datum
cache_explain_with(PG_FUNCTION_ARGS)
{
	return explain_common(fcinfo, true);
}

/* cache_explain counts as a call: it may not drop a statement in use */
static Datum
explain_common(FunctionCallInfo fcinfo, bool with_options)
{
	volatile Datum result = (Datum) 0;
	PreparedQuery *volatile transient = NULL;

	calls_in_progress++;
	PG_TRY();
	{
		result = explain_body(fcinfo, with_options, (PreparedQuery **) &transient);
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

static Datum
explain_body(FunctionCallInfo fcinfo, bool with_options, PreparedQuery **transient)
{
	int			qarg = with_options ? 1 : 0;
	text	   *query_text = query_arg(fcinfo, qarg);
	char	   *query = text_to_cstring(query_text);
	CallParams	params;
	CallOptions opts;
	StringInfoData settings;
	StringInfoData buf;
	PreparedQuery *pq;
	CachedPlan *cplan;
	List	   *reasons = NIL;
	ListCell   *lc;
	uint8		hash[CE_HASH_LEN];
	char	   *rkey;
	bool		first;
	CallScopes	cs;

	parse_options(with_options ? options_arg(fcinfo, 0) : NULL, &opts);
	collect_params(fcinfo, qarg + 1, &params);
	settings_material(&settings);
	{
		bool		is_transient;

		pq = get_prepared(query, &params, &settings, &is_transient);
		if (is_transient)
			*transient = pq;
	}
	cplan = GetCachedPlan(pq->plansource, NULL, CurrentResourceOwner, NULL);
	analyze_plan(pq, cplan);
	check_privileges(pq, cplan);
	cs.describe = true;
	call_scopes(pq, &opts, &cs, &params);
	(void) bypass_reasons(pq, &cs, &reasons);
	if (InvalHitsBlocked(true))
		reasons = lappend(reasons, "pending invalidations (this server holds invalidations Redis has not taken yet)");
	entry_key(query, &params, &settings, &opts, pq, &cs, hash);
	rkey = KeyEntryName(hash);

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	json_key(&buf, "verdict");
	escape_json(&buf, reasons ? "bypass" : "cache");
	appendStringInfoChar(&buf, ',');
	json_key(&buf, "reasons");
	appendStringInfoChar(&buf, '[');
	first = true;
	foreach(lc, reasons)
	{
		if (!first)
			appendStringInfoChar(&buf, ',');
		first = false;
		escape_json(&buf, (char *) lfirst(lc));
	}
	appendStringInfoString(&buf, "],");
	json_key(&buf, "key");
	escape_json(&buf, rkey);
	appendStringInfo(&buf, ",\"ttl_seconds\":%.3f", opts.ttl_ms / 1000.0);
	appendStringInfo(&buf, ",\"role_in_key\":%s,\"session_user_in_key\":%s,\"settings_in_key\":\"%s\"",
					 pq->deps.role_dependent || cs.opted_in ? "true" : "false",
					 pq->deps.session_user_dependent || cs.opted_in ? "true" : "false",
					 pq->deps.settings_dependent || cs.opted_in ? "all" : "result-changing");
	appendStringInfo(&buf, ",\"freshness\":\"%s\",\"untracked\":[",
					 cs.untracked ? "ttl-only" : "invalidated on commit");
	first = true;
	foreach(lc, cs.untracked)
	{
		if (!first)
			appendStringInfoChar(&buf, ',');
		first = false;
		escape_json(&buf, (char *) lfirst(lc));
	}
	appendStringInfoString(&buf, "],\"dependencies\":[");
	first = true;
	foreach(lc, pq->deps.relids)
	{
		Oid			relid = lfirst_oid(lc);
		Oid			scope;
		const char *why;
		RelCoverage cov = InvalRelationCoverage(relid, &scope, &why);

		if (!first)
			appendStringInfoChar(&buf, ',');
		first = false;
		appendStringInfoString(&buf, "{\"relation\":");
		escape_json(&buf, relation_label(relid));
		appendStringInfoString(&buf, ",\"kind\":");
		escape_json(&buf, relkind_name(get_rel_relkind(relid)));
		if (cov == REL_IGNORED)
			appendStringInfoString(&buf, ",\"tracked\":null,\"note\":\"its tables are dependencies\"}");
		else
		{
			appendStringInfo(&buf, ",\"scope\":\"table\",\"tracked\":%s,\"generation_of\":",
							 cov == REL_TRACKED ? "true" : "false");
			escape_json(&buf, relation_label(scope));
			if (why)
			{
				appendStringInfoString(&buf, ",\"why\":");
				escape_json(&buf, why);
			}
			appendStringInfoChar(&buf, '}');
		}
	}
	appendStringInfoString(&buf, "],");
	appendStringInfo(&buf, "\"generations\":%d,\"scopes\":[", cs.n);
	for (int i = 0; i < cs.n; i++)
	{
		if (i > 0)
			appendStringInfoChar(&buf, ',');
		escape_json(&buf, cs.desc[i]);
	}
	appendStringInfoString(&buf, "],");
	explain_entry(&buf, rkey, hash, pq, &cs);
	appendStringInfoChar(&buf, '}');
	ReleaseCachedPlan(cplan, CurrentResourceOwner);

	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
}

/*-------------------------------------------------------------------------
 *
 * rules_sql.c
 *	  The SQL functions that create and drop cache rules (docs/rules.md):
 *	  cache_rule_create() analyses the statement as cached_query would,
 *	  checks who may create the rule and writes it to cache_ext_rules;
 *	  cache_rule_drop() removes it.  The registry itself is rules.c's.
 *
 * No state of its own.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "common/keywords.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "parser/analyze.h"
#include "parser/parser.h"
#include "parser/scanner.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/queryjumble.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "cache_ext.h"
#include "call.h"
#include "outbox.h"
#include "rules.h"
#include "subxact.h"

static int
cmp_int(const void *a, const void *b)
{
	int x = *(const int *) a;
	int y = *(const int *) b;

	return x < y ? -1 : x > y;
}

/*
 * The text of query with each constant the jumble found (js) replaced by
 * $k, numbered after the nparams parameters it has: the shape's text, as
 * pg_stat_statements shows a normalized query.  Token lengths come from the
 * core scanner, which ends each token's text with a zero byte.
 */
static char *
normalize_shape(const char *query, JumbleState *js, int nparams)
{
	core_yyscan_t yyscanner;
	core_yy_extra_type yyextra;
	core_YYSTYPE yylval;
	YYLTYPE yylloc;
	int *locs = palloc(sizeof(int) * Max(js->clocations_count, 1));
	int nlocs = 0;
	int next = 0;
	int last = 0;
	int k = nparams;
	StringInfoData out;

	for (int i = 0; i < js->clocations_count; i++)
		if (js->clocations[i].location >= 0)
			locs[nlocs++] = js->clocations[i].location;
	qsort(locs, nlocs, sizeof(int), cmp_int);
	initStringInfo(&out);
	yyscanner = scanner_init(query, &yyextra, &ScanKeywords, ScanKeywordTokens);
	while (next < nlocs)
	{
		int tok = core_yylex(&yylval, &yylloc, yyscanner);
		int start = yylloc;

		if (tok == 0)
			break;
		while (next < nlocs && locs[next] < start)
			next++;
		if (next >= nlocs || locs[next] != start)
			continue;
		/* a negative number's constant starts at its sign */
		if (tok == '-' && core_yylex(&yylval, &yylloc, yyscanner) == 0)
			break;
		appendBinaryStringInfo(&out, query + last, start - last);
		appendStringInfo(&out, "$%d", ++k);
		last = yylloc + strlen(yyextra.scanbuf + yylloc);
		next++;
	}
	scanner_finish(yyscanner);
	appendStringInfoString(&out, query + last);
	pfree(locs);
	return out.data;
}

/* What cache_rule_create learns from the pipeline's analysis. */
typedef struct RuleAnalysis
{
	const char *query;
	CallParams params;
	List *relids;		   /* every relation the plan reads */
	const char *refusal;   /* why cached_query would never cache it */
	const char *untracked; /* what its results cannot be invalidated by */
} RuleAnalysis;

/*
 * The cacheability analysis cached_query makes of the statement (with
 * parameters of the types given, values unknown): its prepared statement
 * and generic plan, the caller's privileges (the executor's errors), and
 * every reason it may not use the cache.  A reason of the statement itself
 * (not of this transaction or setting) refuses the rule.
 */
static Datum
analyse_body(void *arg, PreparedQuery **transient)
{
	RuleAnalysis *a = (RuleAnalysis *) arg;
	uint8 settings[CE_HASH_LEN];
	bool is_transient;
	PreparedQuery *pq;
	CachedPlan *cplan;
	CallOptions opts;
	CallScopes cs;
	List *reasons = NIL;
	ListCell *lc;

	settings_key(settings);
	pq = get_prepared(a->query, &a->params, settings, &is_transient);
	if (is_transient)
		*transient = pq;
	cplan = GetCachedPlan(pq->plansource, NULL, CurrentResourceOwner, NULL);
	analyze_plan(pq, cplan);
	check_privileges(pq, cplan);
	parse_options(NULL, &opts);
	memset(&cs, 0, sizeof(cs));
	call_scopes(pq, &opts, &cs, &a->params);
	(void) bypass_reasons(pq, &cs, &reasons);
	foreach(lc, reasons)
	{
		CallReason *r = (CallReason *) lfirst(lc);

		if (r->kind == QS_NOT_CACHEABLE)
		{
			a->refusal = pstrdup(r->detail);
			break;
		}
	}
	if (cs.untracked != NIL)
		a->untracked = untracked_summary(cs.untracked);
	a->relids = list_copy(pq->deps.relids);
	ReleaseCachedPlan(cplan, CurrentResourceOwner);
	return (Datum) 0;
}

/*
 * Parse and analyse query as a rule's shape: exactly one SELECT, with the
 * types of its parameters inferred.  Sets *queryid and *shape (its text
 * with constants as parameters) and returns the analysis.
 */
static void
analyse_rule_query(const char *query, RuleAnalysis *a, uint64 *queryid,
				   char **shape)
{
	List *raw = raw_parser(query, RAW_PARSE_DEFAULT);
	RawStmt *rs;
	Oid *types = NULL;
	int ntypes = 0;
	Query *q;

	if (list_length(raw) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("a cache rule needs exactly one statement, not %d",
						list_length(raw))));
	rs = linitial_node(RawStmt, raw);
	if (!IsA(rs->stmt, SelectStmt) || ((SelectStmt *) rs->stmt)->intoClause)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("a cache rule can only be made for a read-only query (SELECT, VALUES, TABLE, WITH)")));
	q = parse_analyze_varparams(rs, query, &types, &ntypes, NULL);
	if (q->commandType != CMD_SELECT || q->hasModifyingCTE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("a cache rule can only be made for a read-only query")));
	*queryid = q->queryId;
	*shape = normalize_shape(query, JumbleQuery(q, query), ntypes);

	memset(a, 0, sizeof(*a));
	a->query = query;
	a->params.n = ntypes;
	a->params.types = palloc(sizeof(Oid) * Max(ntypes, 1));
	a->params.values = palloc0(sizeof(Datum) * Max(ntypes, 1));
	a->params.nulls = palloc(sizeof(bool) * Max(ntypes, 1));
	for (int i = 0; i < ntypes; i++)
	{
		a->params.types[i] = types[i];
		a->params.nulls[i] = true;
	}
	(void) RunCall(analyse_body, a);
}

/* RulesTextQueryid of a text, in a subtransaction */
typedef struct ShapeIdArgs
{
	const char *text;
	uint64 queryid;
} ShapeIdArgs;

static void
shape_id_fn(void *arg)
{
	ShapeIdArgs *a = (ShapeIdArgs *) arg;

	a->queryid = RulesTextQueryid(a->text);
}

/*
 * Refuse the caller unless it owns every relation the rule's statement
 * reads (and it reads one), or is a member of cache_ext_rules_admin (or a
 * superuser).
 */
static void
check_may_create(List *relids)
{
	ListCell *lc;

	if (RulesIsAdmin())
		return;
	/* it would change how every role's statement of that shape runs */
	if (relids == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to create a cache rule for a statement that reads no relation"),
				 errdetail("Only a member of role %s may create it.", RULES_ADMIN_ROLE)));
	foreach(lc, relids)
	{
		Oid relid = lfirst_oid(lc);

		if (!pg_class_ownercheck(relid, GetUserId()))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied to create a cache rule reading %s",
							relation_label(relid)),
					 errdetail("A cache rule may be created by the owner of every relation its statement reads, or by a member of role %s.",
							   RULES_ADMIN_ROLE)));
	}
}

/*
 * Run sql (with nargs arguments) through SPI as the owner of relid (the
 * rules or the policies table), who alone may write it; returns
 * SPI_processed.  The caller calls SPI_finish().
 */
uint64
RunAsTableOwner(Oid relid, const char *sql, int nargs, Oid *types,
				Datum *values, const char *nulls)
{
	HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid owner;
	Oid saved_user;
	int saved_sec;
	int rc;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	GetUserIdAndSecContext(&saved_user, &saved_sec);
	SetUserIdAndSecContext(owner, saved_sec | SECURITY_LOCAL_USERID_CHANGE);
	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		rc = SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0);
		if (rc < 0)
			elog(ERROR, "SPI_execute_with_args failed: %d", rc);
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(saved_user, saved_sec);
	}
	PG_END_TRY();
	return SPI_processed;
}

/* The rules table of this database, or an error saying how to get one. */
static Oid
rules_table_or_error(void)
{
	Oid relid = RulesTable();

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table %s of extension cache_ext is missing", RULES_TABLE),
				 errhint("Run ALTER EXTENSION cache_ext UPDATE.")));
	return relid;
}

/*
 * At commit, every backend's plans that read these relations are made
 * again, as after ANALYZE: the plans of the new rule's statements that
 * were made before it existed were not recorded (meaning.c), and would
 * never be served.
 */
static void
invalidate_plans_of(List *relids)
{
	ListCell *lc;

	foreach(lc, relids)
		CacheInvalidateRelcacheByRelid(lfirst_oid(lc));
}

/*
 * The NOTICEs of cache_rule_create about how the rule's statements will be
 * served: for their TTL only when they read untracked relations (untracked:
 * their names, or NULL); only in some sessions without the preload.
 */
static void
say_how_served(const char *untracked)
{
	if (untracked != NULL)
		ereport(NOTICE,
				(errmsg("results of this rule are kept for their TTL only: %s", untracked),
				 errhint("Track the tables with cache_track() to invalidate on change.")));
	if (!InvalShmemReady())
		ereport(NOTICE,
				(errmsg("cache rules apply only in sessions that have loaded cache_ext"),
				 errdetail("cache_ext is not in shared_preload_libraries: a session loads it at its first call of a cache_ext function and runs its statements without the rules until then, and statements that read tracked tables are not served from the cache."),
				 errhint("Add cache_ext to shared_preload_libraries.")));
}

PG_FUNCTION_INFO_V1(cache_rule_create);

/*
 * cache_rule_create(query text, ttl interval, tags text[], name text)
 * RETURNS text: register query's shape as a rule and return the rule's
 * name.  Raises when query is not a single SELECT cached_query would
 * cache, when the caller may not create it (check_may_create), when query
 * identifiers are not computed, or when the name or the shape has a rule.
 */
Datum
cache_rule_create(PG_FUNCTION_ARGS)
{
	char *query;
	char *shape;
	char *name;
	uint64 queryid;
	uint64 param_queryid = 0;
	RuleAnalysis a;
	Oid relid = rules_table_or_error();
	const char *nsp = quote_identifier(get_namespace_name(get_rel_namespace(relid)));
	Oid types[9] = {TEXTOID, TEXTOID, TEXTOID, INT8OID, INT8OID, INTERVALOID,
					TEXTARRAYOID, REGROLEOID, TEXTOID};
	Datum values[9];
	char nulls[9];
	Oid dup_types[2] = {TEXTOID, INT8OID};

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the query must not be null")));
	if (!IsQueryIdEnabled())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cache rules need query identifiers, and compute_query_id is off"),
				 errhint("Set compute_query_id to auto (the default) or on.")));
	query = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (!PG_ARGISNULL(1))
		(void) RulesTtlMs(PG_GETARG_INTERVAL_P(1), true);
	if (!PG_ARGISNULL(2))
	{
		CallOptions check;

		/* the same checks as cache_opts(tags => ...) */
		parse_options(NULL, &check);
		if (array_contains_nulls(PG_GETARG_ARRAYTYPE_P(2)) ||
			ArrayGetNItems(ARR_NDIM(PG_GETARG_ARRAYTYPE_P(2)),
						   ARR_DIMS(PG_GETARG_ARRAYTYPE_P(2))) > 64)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("tags must be at most 64, non-empty and not null")));
	}

	analyse_rule_query(query, &a, &queryid, &shape);
	if (a.refusal != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("this statement cannot be cached: %s", a.refusal),
				 errhint("cache_explain() on the statement gives every reason.")));
	check_may_create(a.relids);
	say_how_served(a.untracked);
	if (strcmp(shape, query) != 0)
	{
		ShapeIdArgs ia;
		ErrorData *edata;

		ia.text = shape;
		ia.queryid = 0;
		edata = RunInSubtransaction(shape_id_fn, &ia);
		if (edata != NULL)
			FreeErrorData(edata); /* parameters cannot stand there */
		else
			param_queryid = ia.queryid;
	}

	if (PG_ARGISNULL(3))
		name = psprintf("rule_%016" INT64_MODIFIER "x", queryid);
	else
		name = text_to_cstring(PG_GETARG_TEXT_PP(3));
	if (name[0] == '\0' || strlen(name) >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a rule name must have 1 to %d bytes", NAMEDATALEN - 1)));

	memset(nulls, ' ', sizeof(nulls));
	values[0] = CStringGetTextDatum(name);
	values[1] = Int64GetDatum((int64) queryid);
	if (RunAsTableOwner(relid,
						psprintf("SELECT 1 FROM %s.%s WHERE name = $1", nsp, RULES_TABLE),
						1, dup_types, values, "  ") > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("cache rule \"%s\" already exists", name)));
	SPI_finish();
	if (RulesMatch(queryid) != NULL || (param_queryid != 0 && RulesMatch(param_queryid) != NULL))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("a cache rule for this shape already exists: \"%s\"",
						RulesMatch(queryid) ? RulesMatch(queryid)->name :
											  RulesMatch(param_queryid)->name)));

	values[0] = CStringGetTextDatum(name);
	values[1] = CStringGetTextDatum(query);
	values[2] = CStringGetTextDatum(shape);
	values[3] = Int64GetDatum((int64) queryid);
	values[4] = Int64GetDatum((int64) param_queryid);
	nulls[4] = param_queryid != 0 ? ' ' : 'n';
	values[5] = PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1);
	nulls[5] = PG_ARGISNULL(1) ? 'n' : ' ';
	values[6] = PG_ARGISNULL(2) ? (Datum) 0 : PG_GETARG_DATUM(2);
	nulls[6] = PG_ARGISNULL(2) ? 'n' : ' ';
	values[7] = ObjectIdGetDatum(GetUserId());
	values[8] = CStringGetTextDatum(namespace_search_path);
	(void) RunAsTableOwner(relid,
						   psprintf("INSERT INTO %s.%s (name, query, shape, queryid, param_queryid, ttl, tags, owner, search_path) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
									nsp, RULES_TABLE),
						   9, types, values, nulls);
	SPI_finish();
	RulesCountersFree(name, true);
	(void) RulesCountersSlot(name, true);
	invalidate_plans_of(a.relids);
	PG_RETURN_TEXT_P(cstring_to_text(name));
}

PG_FUNCTION_INFO_V1(cache_rule_drop);

/*
 * cache_rule_drop(name text): drop the rule.  Its owner (or a role with
 * its privileges), a member of cache_ext_rules_admin or a superuser may.
 * Other backends stop serving it at their next statement after the
 * dropping transaction commits.
 */
Datum
cache_rule_drop(PG_FUNCTION_ARGS)
{
	char *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	Oid relid = rules_table_or_error();
	const char *nsp = quote_identifier(get_namespace_name(get_rel_namespace(relid)));
	Oid types[1] = {TEXTOID};
	Datum values[1];
	Oid owner;
	bool isnull;

	values[0] = CStringGetTextDatum(name);
	if (RunAsTableOwner(relid,
						psprintf("SELECT owner FROM %s.%s WHERE name = $1", nsp, RULES_TABLE),
						1, types, values, " ") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("cache rule \"%s\" does not exist", name)));
	owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0],
										   SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	if (!RulesIsAdmin() && !has_privs_of_role(GetUserId(), owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to drop cache rule \"%s\"", name),
				 errdetail("Its owner or a member of role %s may drop it.",
						   RULES_ADMIN_ROLE)));
	(void) RunAsTableOwner(relid,
						   psprintf("DELETE FROM %s.%s WHERE name = $1", nsp, RULES_TABLE),
						   1, types, values, " ");
	SPI_finish();
	RulesCountersFree(name, false);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(cache_rule_for);

/*
 * cache_rule_for(query text) RETURNS text: the name of the rule that would
 * serve query if this session sent it as a top-level statement, or NULL
 * (also when query identifiers are not computed).  The statement is parsed
 * and analysed here (its errors are raised), never run; whether it would
 * then be a hit, a miss or a bypass is cache_explain's answer.
 */
Datum
cache_rule_for(PG_FUNCTION_ARGS)
{
	char *query = text_to_cstring(PG_GETARG_TEXT_PP(0));
	RuleDef *rule;

	if (!IsQueryIdEnabled())
		PG_RETURN_NULL();
	rule = RulesMatch(RulesTextQueryid(query));
	if (rule == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(rule->name));
}

PG_FUNCTION_INFO_V1(cache_rule_verdict);

/*
 * cache_rule_verdict(query text, OUT verdict text, OUT queryid bigint):
 * what cache_rule_create would say of query for the current role, without
 * creating anything: 'cacheable', or the reason it would refuse; and the
 * query id of the text as given.  Raises what cache_rule_create raises
 * before its verdict (parse errors, privileges, who may create).
 */
Datum
cache_rule_verdict(PG_FUNCTION_ARGS)
{
	char *query = text_to_cstring(PG_GETARG_TEXT_PP(0));
	RuleAnalysis a;
	uint64 queryid;
	char *shape;
	TupleDesc desc;
	Datum v[2];
	bool n[2] = {false, false};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	analyse_rule_query(query, &a, &queryid, &shape);
	if (a.refusal == NULL)
		check_may_create(a.relids);
	v[0] = CStringGetTextDatum(a.refusal ? a.refusal : "cacheable");
	v[1] = Int64GetDatum((int64) queryid);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), v, n)));
}

/*-------------------------------------------------------------------------
 *
 * explain.c
 *	  cache_explain(): what cached_query would do with a call, without
 *	  running the query: key, dependencies, TTL, verdict with every reason,
 *	  and the state of the entry in Redis.
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
#include "utils/queryjumble.h"

#include "cache_ext.h"
#include "entry.h"
#include "flight.h"
#include "invalidate.h"
#include "outbox.h"
#include "keys.h"
#include "call.h"
#include "policies.h"
#include "rules.h"
#include "subxact.h"

void
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
 * Append the relations pq's plan reads, as JSON objects separated by
 * commas, to buf: what each is, and whether and by which generation its
 * changes invalidate the result.
 */
static void
append_dependencies(StringInfo buf, PreparedQuery *pq)
{
	bool first = true;
	ListCell *lc;

	foreach(lc, pq->deps.relids)
	{
		Oid relid = lfirst_oid(lc);
		Oid scope;
		const char *why;
		RelCoverage cov = InvalRelationCoverage(relid, &scope, &why);

		if (!first)
			appendStringInfoChar(buf, ',');
		first = false;
		appendStringInfoString(buf, "{\"relation\":");
		escape_json(buf, relation_label(relid));
		appendStringInfoString(buf, ",\"kind\":");
		escape_json(buf, relkind_name(get_rel_relkind(relid)));
		if (cov == REL_IGNORED)
			appendStringInfoString(buf, ",\"tracked\":null,\"note\":\"its tables are dependencies\"}");
		else
		{
			appendStringInfo(buf, ",\"scope\":\"table\",\"tracked\":%s,\"generation_of\":",
							 cov == REL_TRACKED ? "true" : "false");
			escape_json(buf, relation_label(scope));
			if (why)
			{
				appendStringInfoString(buf, ",\"why\":");
				escape_json(buf, why);
			}
			appendStringInfoChar(buf, '}');
		}
	}
}

/*
 * Append the call's TTL (opts's, which a TTL policy may have lowered; by:
 * the relation whose policy did, or InvalidOid) and the cache rule that
 * would serve the statement sent as it is (NULL: none) to buf.
 */
static void
append_ttl_and_rule(StringInfo buf, const CallOptions *opts, Oid by,
					const RuleDef *rule)
{
	appendStringInfo(buf, ",\"ttl_seconds\":%.3f,\"ttl_policy\":", opts->ttl_ms / 1000.0);
	if (OidIsValid(by))
	{
		appendStringInfoString(buf, "{\"relation\":");
		escape_json(buf, relation_label(by));
		appendStringInfo(buf, ",\"ttl_seconds\":%.3f}", opts->ttl_ms / 1000.0);
	}
	else
		appendStringInfoString(buf, "null");
	appendStringInfoString(buf, ",\"rule\":");
	if (rule != NULL)
		escape_json(buf, rule->name);
	else
		appendStringInfoString(buf, "null");
}

/* explain_rule's work, in a subtransaction */
typedef struct RuleForArgs
{
	const char *query;
	RuleDef *rule;
} RuleForArgs;

static void
rule_for_fn(void *arg)
{
	RuleForArgs *a = (RuleForArgs *) arg;

	a->rule = RulesMatch(RulesTextQueryid(a->query));
}

/*
 * The cache rule that would serve query if this session sent it as a
 * top-level statement (cache_rule_for's answer), or NULL.  A text that
 * analyses as a call's (its parameters' types given) but not as a
 * statement (types inferred) has none: never an error here.
 */
static RuleDef *
explain_rule(const char *query)
{
	RuleForArgs a;
	ErrorData *edata;

	if (!IsQueryIdEnabled())
		return NULL;
	a.query = query;
	a.rule = NULL;
	edata = RunInSubtransaction(rule_for_fn, &a);
	if (edata != NULL)
	{
		FreeErrorData(edata);
		return NULL;
	}
	return a.rule;
}

static Datum explain_common(FunctionCallInfo fcinfo, bool with_options);
static List *redis_reasons(void);
static Datum explain_body(FunctionCallInfo fcinfo, bool with_options,
						  PreparedQuery **transient);

/* explain_body's arguments, for RunCall */
typedef struct ExplainArgs
{
	FunctionCallInfo fcinfo;
	bool with_options;
} ExplainArgs;

static Datum
explain_call_body(void *arg, PreparedQuery **transient)
{
	ExplainArgs *a = (ExplainArgs *) arg;

	return explain_body(a->fcinfo, a->with_options, transient);
}

PG_FUNCTION_INFO_V1(cache_explain);

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
	ExplainArgs a;

	a.fcinfo = fcinfo;
	a.with_options = with_options;
	return RunCall(explain_call_body, &a);
}

static Datum
explain_body(FunctionCallInfo fcinfo, bool with_options, PreparedQuery **transient)
{
	int qarg = with_options ? 1 : 0;
	text *query_text = query_arg(fcinfo, qarg);
	char *query = text_to_cstring(query_text);
	CallParams params;
	CallOptions opts;
	uint8 settings[CE_HASH_LEN];
	StringInfoData buf;
	PreparedQuery *pq;
	CachedPlan *cplan;
	List *reasons = NIL;
	ListCell *lc;
	uint8 hash[CE_HASH_LEN];
	char *rkey;
	bool first;
	CallScopes cs;
	RuleDef *rule;
	CallOptions capped;
	const CallOptions *eff;
	Oid policy_rel;

	parse_options(with_options ? options_arg(fcinfo, 0) : NULL, &opts);
	collect_params(fcinfo, qarg + 1, &params);
	settings_key(settings);
	{
		bool is_transient;

		pq = get_prepared(query, &params, settings, &is_transient);
		if (is_transient)
			*transient = pq;
	}
	cplan = GetCachedPlan(pq->plansource, NULL, CurrentResourceOwner, NULL);
	analyze_plan(pq, cplan);
	check_privileges(pq, cplan);
	/* a statement a rule serves: as the rule serves it, unless options are given */
	rule = explain_rule(query);
	if (rule != NULL && !with_options)
		RulesCallOptions(rule, &opts);
	cs.describe = true;
	call_scopes(pq, &opts, &cs, &params);
	eff = PolicyCapOptions(pq, &opts, &capped, &policy_rel);
	(void) bypass_reasons(pq, &cs, &reasons);
	reasons = list_concat(reasons, redis_reasons());
	entry_key(&params, eff, pq, &cs, hash);
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
		escape_json(&buf, ((CallReason *) lfirst(lc))->detail);
	}
	appendStringInfoString(&buf, "],");
	json_key(&buf, "key");
	escape_json(&buf, rkey);
	append_ttl_and_rule(&buf, eff, policy_rel, rule);
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
	append_dependencies(&buf, pq);
	appendStringInfoString(&buf, "],");
	appendStringInfo(&buf, "\"generations\":%d,\"scopes\":[", cs.n);
	for (int i = 0; i < cs.n; i++)
	{
		if (i > 0)
			appendStringInfoChar(&buf, ',');
		escape_json(&buf, cs.desc[i]);
	}
	appendStringInfoString(&buf, "],");
	if (FlightFilling(rkey)) /* single flight: a session here runs it now */
		appendStringInfoString(&buf, "\"fill_in_progress\":true,");
	explain_entry(&buf, rkey, hash, pq, &cs);
	appendStringInfoChar(&buf, '}');
	ReleaseCachedPlan(cplan, CurrentResourceOwner);

	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
}
/* Why hits are not served at all now: pending invalidations, a blind Redis. */
static List *
redis_reasons(void)
{
	List *reasons = NIL;

	if (InvalHitsBlocked(true))
		reasons = lappend(reasons,
						  MakeReason(QS_PENDING, "pending invalidations (this server holds invalidations Redis has not taken yet)"));
	if (InvalRedisBlind())
		reasons = lappend(reasons, MakeReason(QS_REDIS, REASON_BLIND));
	return reasons;
}

/*-------------------------------------------------------------------------
 *
 * call.h
 *	  The call pipeline's own types and the functions its files share:
 *	  a prepared statement and its analysis (stmtcache.c, analysis.c),
 *	  a call's parameters, options and scopes (sql_api.c, scopes.c), and
 *	  running the query (execute.c).  Nothing outside the pipeline's files
 *	  (pipeline.c, lookup.c, sql_api.c, stmtcache.c, analysis.c, scopes.c, execute.c,
 *	  explain.c, and the cache rules' rules.c, rules_exec.c) includes this header.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CACHE_EXT_CALL_H
#define CACHE_EXT_CALL_H

#include "postgres.h"

#include "executor/tuptable.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "nodes/plannodes.h"
#include "utils/plancache.h"
#include "utils/tuplestore.h"

#include "cache_ext.h"
#include "entry.h"
#include "keys.h"
#include "outcome.h"

/*
 * What a prepared statement is found by: the digest of the settings, the
 * role, and hashes of the text and parameter types (the statement holds
 * both, and is used only when they are equal).
 */
typedef struct PreparedKey
{
	uint8 settings[CE_HASH_LEN]; /* settings_key() */
	uint64 text_hash;			 /* hash_bytes_extended of the text */
	uint32 types_hash;			 /* hash_bytes of the parameter types */
	int32 nparams;
	Oid userid;
} PreparedKey;

typedef struct PreparedQuery
{
	PreparedKey key;
	char *query; /* its text, and its parameters' types */
	int nparams;
	Oid *param_types;
	CachedPlanSource *plansource;
	/* the analysis of generation 'generation' of the generic plan */
	int generation;
	MemoryContext analysis_cxt;
	QueryDeps deps;
	TupleDesc resultdesc;
	EntryColumnCodec *codecs;
	char *codec_problem;	   /* why results of this row type can't be stored */
	char literal_problem[160]; /* a 'now'-like literal frozen at prepare */
	/* hash of the rewritten query and of the user functions' definitions */
	uint8 definition[CE_HASH_LEN];
	/* the entry key's part every call shares, from the analysis (entry_key) */
	uint8 statement_key[CE_HASH_LEN];
	bool decode_in_subxact; /* user-defined types: see EntryDecode */
	uint64 queryid;			/* hash of the text, for cache_query_stats */
	uint64 tracking_epoch;	/* InvalTrackingEpoch() the analysis saw */
	List *defn_funcids;		/* functions of the rewritten query (incl.
								 * inlined ones), for the definition hash */
	bool transient;			/* not in the hash: dropped after the call */
	bool plan_per_call;		/* its plan holds what a function computed
								 * while planning: planned again each call */
	int undecodable;		/* authentic entries its row type could not
								 * read back, in a row; at 2 it is not stored */
	bool settings_pinned;	/* the plan may hold the value of a user
									 * IMMUTABLE function PostgreSQL ran when
									 * planning: valid for these settings only */
	uint8 settings_hash[CE_HASH_LEN];
	/* MeaningOfQuery of the query of plan generation meaning_generation */
	uint8 meaning[CE_HASH_LEN];
	int meaning_generation;
	/* invalidation: whose generations stand for the relations it reads */
	List *scope_relids; /* sorted, unique */
	bool has_tracked;	/* some relation is tracked */
	List *untracked;	/* "public.x untracked", ... */
	List *opaque;		/* "function f() may read tables", ... */
	List *narrowed;		/* NarrowedScope: depends on key values only */
	/* generation key names every call shares (scopes.c's scope_names) */
	char *names_prefix; /* cache_ext.key_prefix they have; NULL: none yet */
	char *server_name;
	char *database_name;
	char **table_names; /* whole-table, one per scope_relids entry */
} PreparedQuery;

/*
 * A scope relation whose dependency is narrowed to key values: the entry
 * depends on its structural generation (TRUNCATE, DDL) and on the
 * generation of each key value the equalities name.
 */
typedef struct NarrowedScope
{
	Oid scope;
	List *eqs; /* KeyEquality, one per top-level occurrence */
} NarrowedScope;

/* Per-call options from cache_opts(). */
typedef struct CallOptions
{
	int64 ttl_ms;
	const char *namespace;
	int ntags;
	char **tags;
	bool has_depends_on; /* the call names what its functions read */
	List *depends_on;	 /* relation OIDs */
	/*
	 * A rule's statement prepared before it runs: the meaning of the query
	 * its plan was made from (meaning.c), which the parse of the call's
	 * text must have; NULL for every other call.
	 */
	const uint8 *meaning;
	/*
	 * Look up only (a rule's statement that may be read later or in part):
	 * a HIT fills ts; a MISS or BYPASS runs nothing, stores nothing and
	 * counts nothing, and leaves its outcome (cache_status) for the caller.
	 */
	bool lookup_only;
	/* run the query only to store it: a BYPASS runs nothing, as above */
	bool fill_only;
} CallOptions;

/*
 * The generations one call depends on: the server's and the database's,
 * then one per scope relation, per depends_on relation and per tag.
 */
typedef struct CallScopes
{
	int n;
	char **keys;
	char **labels;			   /* for messages; NULL for server, database */
	char **desc;			   /* for cache_explain: "table public.x", ... */
	Oid *rel;				   /* the relation of a table or key scope */
	bool describe;			   /* fill desc with names (cache_explain only) */
	List *untracked;		   /* descriptions of what is not tracked */
	const char *opaque_reason; /* functions with unseen reads, not opted in */
	bool opted_in;			   /* ... opted in: role and settings are keyed */
	bool has_tracked;		   /* the plan or depends_on names a tracked table */
} CallScopes;

/* The query's parameters as given by the caller. */
typedef struct CallParams
{
	int n;
	Oid *types;
	Datum *values;
	bool *nulls;
} CallParams;


/* sql_api.c: the SQL entry points */
extern void parse_options(HeapTupleHeader opts, CallOptions *o);
extern void collect_params(FunctionCallInfo fcinfo, int first, CallParams *p);
extern text *query_arg(FunctionCallInfo fcinfo, int argno);
extern HeapTupleHeader options_arg(FunctionCallInfo fcinfo, int argno);

/* lookup.c: the cache as the pipeline sees it */
typedef enum LookupOutcome
{
	LOOKUP_HIT,		/* the rows are in ts */
	LOOKUP_MISS,	/* no entry */
	LOOKUP_STALE,	/* an entry computed under older generations */
	LOOKUP_CORRUPT, /* an entry that failed validation (deleted) */
	LOOKUP_REDIS_DOWN,
	LOOKUP_BLOCKED,		/* this server holds undelivered invalidations */
	LOOKUP_IN_FLIGHT,	/* a commit's bumps of its generations are still on
						 * their way to Redis (waited for too long) */
	LOOKUP_UNCONFIRMED, /* hot standby: the primary's watermark is behind
						 * this server's replay position */
	LOOKUP_BLIND		/* the Redis server does not say its run_id
						 * (INFO refused): no hit from it */
} LookupOutcome;

extern LookupOutcome lookup(const char *rkey, const uint8 *hash,
							PreparedQuery *pq, CallScopes *cs,
							Tuplestorestate *ts, EntryGens *gens,
							bool *gens_ok, const char **corrupt,
							StringInfo keep);
extern char *store(const char *rkey, EntryWriter *w, const CallOptions *opts,
				   size_t *stored_len);
extern bool verify_hit(PreparedQuery *pq, const CallParams *params,
					   Tuplestorestate *ts, TupleDesc desc, const char *rkey,
					   const CallScopes *cs);
extern int64 LookupLastEntryBytes(void);
extern TimestampTz LookupLastEntryCreatedAt(void);
extern void explain_entry(StringInfo buf, const char *rkey, const uint8 *hash,
						  PreparedQuery *pq, CallScopes *cs);

/* pipeline.c: the call pipeline */
extern TupleDesc cached_query_common(text *query_text, const CallParams *params,
									 const CallOptions *opts, TupleDesc outdesc,
									 Tuplestorestate *ts);
extern CallReason *bypass_reasons(PreparedQuery *pq, CallScopes *cs, List **all);
extern void check_privileges(PreparedQuery *pq, CachedPlan *cplan);
extern char *CallLastStatus(void);

/* explain.c */
extern void json_key(StringInfo buf, const char *key);

/* stmtcache.c: the backend's prepared statements */
extern void settings_key(uint8 *digest);
extern void all_settings_material(StringInfo m);
extern void all_settings_hash(uint8 *hash);
extern PreparedQuery *get_prepared(const char *query, const CallParams *params,
								   const uint8 *settings, bool *transient);
extern void analyze_plan(PreparedQuery *pq, CachedPlan *cplan);
extern void check_meaning(PreparedQuery *pq, CachedPlan *cplan, const uint8 *meaning,
						  const uint8 *settings);
typedef Datum (*CallBodyFn)(void *arg, PreparedQuery **transient);
extern Datum RunCall(CallBodyFn body, void *arg);
extern void StmtCacheWatchRelation(Oid relid);
extern char *find_time_literal(Node *node, const char *query);

/* analysis.c: what a plan means beyond its text */
extern bool collect_query_funcs(Node *node, void *context);
extern void pin_folded_functions(PreparedQuery *pq);
extern void definition_hash(PreparedQuery *pq, PlannedStmt *stmt);

/* scopes.c: what a call depends on, and its key */
extern char *relation_label(Oid relid);
extern void analyze_scopes(PreparedQuery *pq, PlannedStmt *stmt);
extern void call_scopes(PreparedQuery *pq, const CallOptions *opts,
						CallScopes *cs, const CallParams *params);
extern const char *touched_scope(PreparedQuery *pq, CallScopes *cs);
extern char *untracked_summary(List *untracked);
extern void statement_key(PreparedQuery *pq);
extern void entry_key(const CallParams *params, const CallOptions *opts,
					  const PreparedQuery *pq, const CallScopes *cs,
					  uint8 *hash);

/* execute.c: running the query */
extern char *run_query(PreparedQuery *pq, const CallParams *params,
					   Tuplestorestate *ts, EntryWriter *writer);
extern char **rows_as_sorted_text(Tuplestorestate *ts, TupleDesc desc,
								  int64 *nrows);

#endif /* CACHE_EXT_CALL_H */

/*-------------------------------------------------------------------------
 *
 * rules.h
 *	  Cache rules (docs/rules.md): the registry of statement shapes served
 *	  through the cache without cached_query (rules.c) and the executor
 *	  hooks that serve them (rules_exec.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CACHE_EXT_RULES_H
#define CACHE_EXT_RULES_H

#include "postgres.h"

#include "datatype/timestamp.h"

#include "outcome.h"

/* A rule as a backend holds it (rules.c's hash, by query id). */
typedef struct RuleDef
{
	char name[NAMEDATALEN];
	int64 ttl_ms; /* -1: cache_ext.default_ttl */
	int ntags;
	char **tags;
	int slot; /* its counters (rules.c counters()), or -1 */
} RuleDef;

/* rules.c */
extern RuleDef *RulesMatch(uint64 queryid);
extern void RulesCount(RuleDef *rule, CallStatus status, double us);
extern void RulesShmemRequest(void);
extern void RulesShmemInit(void);
extern void RulesResetLoaded(void);
/* rules.c, for rules_sql.c */
#define RULES_TABLE		 "cache_ext_rules"
#define RULES_ADMIN_ROLE "cache_ext_rules_admin"
extern Oid RulesTable(void);
extern Oid ExtensionTable(const char *name); /* also for policies.c */
extern bool RulesIsAdmin(void);
extern int RulesCountersSlot(const char *name, bool reset);
extern void RulesCountersFree(const char *name, bool keep);
extern int64 RulesTtlMs(const Interval *iv, bool strict);
extern uint64 RulesTextQueryid(const char *text);

/* rules_sql.c: the SQL functions (cache_rule_create, cache_rule_drop) */
extern uint64 RunAsTableOwner(Oid relid, const char *sql, int nargs,
							  Oid *types, Datum *values, const char *nulls);

/* rules_exec.c: the executor hooks, installed from _PG_init */
extern void RulesInit(void);
struct CallOptions;
extern void RulesCallOptions(const RuleDef *rule, struct CallOptions *opts);

#endif /* CACHE_EXT_RULES_H */

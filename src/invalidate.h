/*-------------------------------------------------------------------------
 *
 * invalidate.h
 *	  Commit-ordered invalidation with generations (docs/architecture.md §3): which
 *	  relations are tracked, the per-transaction set of touched scopes,
 *	  the bumps sent at commit (the outbox is outbox.h's).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CACHE_EXT_INVALIDATE_H
#define CACHE_EXT_INVALIDATE_H

#include "postgres.h"

/* cache_ext.untracked */
typedef enum UntrackedPolicy
{
	UNTRACKED_ALLOW,  /* cache under the TTL only, and say so */
	UNTRACKED_BYPASS, /* run such queries uncached */
	UNTRACKED_ERROR	  /* refuse them */
} UntrackedPolicy;

extern int cache_ext_untracked;
extern int cache_ext_invalidation_timeout; /* ms */

/*
 * Longest generation key name, with its NUL.  The longest is a key value's:
 * prefix (at most 64) + database scope (16) + ":g:k:" + OID (at most 10)
 * + ":" + 32 hex digits = 128 characters, so no valid setting reaches it
 * (a write must never fail on a key name).
 */
#define INVAL_KEY_LEN 160

extern void InvalInit(void); /* from _PG_init: callbacks and hooks */

/*
 * How a relation read by a query is covered.  For a tracked relation,
 * *scope is the relation whose generation stands for it (the topmost
 * tracked ancestor: a partition maps to its tracked partitioned table).
 * For an untracked one, *why says why in a few words.
 */
typedef enum RelCoverage
{
	REL_IGNORED, /* a view: its tables are dependencies */
	REL_TRACKED,
	REL_UNTRACKED
} RelCoverage;

extern RelCoverage InvalRelationCoverage(Oid relid, Oid *scope, const char **why);
extern uint64 InvalTrackingEpoch(void);

/* most key columns a table can be tracked by */
#define INVAL_MAX_KEY_COLUMNS 4

/*
 * Key-level tracking.  InvalKeyColumn: whether relid is tracked and its
 * generation's relation (*scope) is tracked by the key column colname.
 * InvalKeyValueName: the generation key of one value of that column, or
 * NULL when values of typid cannot be keys (see InvalKeyTypeSupported).
 */
extern bool InvalKeyColumn(Oid relid, const char *colname, Oid *scope);
extern bool InvalKeyTypeSupported(Oid typid);
extern char *InvalKeyValueName(Oid scope, const char *colname, Oid typid, Datum value);
extern int cache_ext_max_keys_per_xact;

/* Whether this transaction has touched the scope named key. */
extern bool InvalScopeTouched(const char *key);
extern bool InvalTouchedAny(void);

/* the outbox, the server-wide state and the standby lease */
#include "outbox.h"

#endif /* CACHE_EXT_INVALIDATE_H */

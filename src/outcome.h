/*-------------------------------------------------------------------------
 *
 * outcome.h
 *	  What a cached_query call did, as values: a status (HIT, MISS,
 *	  BYPASS), the kind of a bypass with its detail, and the notes of a
 *	  hit or miss.  cache_status(), cache_ext.log_calls and
 *	  cache_query_stats.bypass_reasons render or count them at the edge, so
 *	  rewording a message never moves a count from one kind to another.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CACHE_EXT_OUTCOME_H
#define CACHE_EXT_OUTCOME_H

#include "postgres.h"

#include "cache_ext.h"

typedef enum CallStatus
{
	CALL_HIT,
	CALL_MISS,
	CALL_BYPASS
} CallStatus;

/*
 * A reason a call may not use the cache: its kind (QueryStatsReason in
 * cache_ext.h: what cache_query_stats counts) and the detail shown after
 * "BYPASS: ".
 */
typedef struct CallReason
{
	QueryStatsReason kind;
	const char *detail;
} CallReason;

extern CallReason *MakeReason(QueryStatsReason kind, const char *detail);

typedef struct CallOutcome
{
	CallStatus status;
	CallReason bypass;		/* BYPASS: why */
	const char *ttl_only;	/* HIT, MISS: served or stored under the TTL
								 * only: what is untracked */
	bool invalidated;		/* MISS: the entry was stale */
	const char *corrupt;	/* MISS: a corrupt entry was replaced: why */
	const char *not_stored; /* MISS: why the result was not stored */
	bool verify_mismatch;	/* MISS: cache_ext.verify_rate found the
									 * stored result differed (deleted) */
	bool local;				/* HIT: served by the local tier (L1) */
	bool waited;			/* HIT, MISS: waited for another session's
								 * fill of the same entry (single flight) */
	bool early_refresh;		/* MISS: a hit recomputed before its TTL
								 * ends (cache_ext.early_refresh) */
	const char *text;		/* when set, cache_status() shows this
								 * instead (application values, values.c) */
	/* what the result's key holds beyond the statement and parameters */
	bool keyed_every_setting; /* every setting, not only settings_key's */
	bool keyed_role;		  /* the current role */
	bool keyed_session_user;  /* the session user */
} CallOutcome;

/* cache_status()'s text for o, palloc'd in the current context */
extern char *OutcomeRender(const CallOutcome *o);

/* The last call's outcome in this backend (cache_status()). */
extern void OutcomeSetLast(const CallOutcome *o);
extern void OutcomeClearLast(void);
extern const CallOutcome *OutcomeLast(void);

#endif /* CACHE_EXT_OUTCOME_H */

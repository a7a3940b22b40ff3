/*-------------------------------------------------------------------------
 *
 * outbox.h
 *	  The shared-memory outbox of undelivered invalidations and the
 *	  server-wide invalidation state (docs/architecture.md §2 C3): server-generation
 *	  bumps after a crash, an overflow, a promotion or a Redis restart.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CACHE_EXT_OUTBOX_H
#define CACHE_EXT_OUTBOX_H

#include "postgres.h"

#include "outcome.h"

/* cache_ext.standby_lease, ms */
extern int cache_ext_standby_lease;

extern void InvalShmemRequest(void);
extern void InvalShmemInit(void); /* with AddinShmemInitLock held */

/* Whether the shared outbox exists (cache_ext is preloaded). */
extern bool InvalShmemReady(void);

/* A generation value never used before: 32 hex digits and a NUL in buf. */
extern void InvalFreshValue(char *buf);

/*
 * Whether hits must be refused: this backend's target (its Redis URL and
 * key prefix) holds invalidations Redis has not taken yet, owes a server
 * bump or has not checked this incarnation's token yet; or, on a hot
 * standby, the primary's lease has run out.  Tries to deliver (and to read
 * the lease) first when try_deliver.  InvalHitsBlockedReason() then says
 * why, for cache_status().
 */
extern bool InvalHitsBlocked(bool try_deliver);
extern const char *InvalHitsBlockedReason(void);
extern CallReason *InvalHitsBlockedWhy(void);

/*
 * A lookup reads InvalEpoch() before its round trip and, after it, must
 * treat its result as blocked if InvalHitsBlockedSince(that epoch): another
 * backend may have noticed a Redis restart (and even delivered the server
 * bump) while the lookup's replies, from before the bump, were in flight.
 */
extern uint64 InvalEpoch(void);
extern bool InvalHitsBlockedSince(uint64 epoch);

/* For cache_stats: scopes waiting in the outboxes (+1 per server bump due). */
extern int64 InvalPendingCount(void);
extern int InvalOutboxDepth(void); /* keys waiting, for cache_health */
extern void InvalRedisIdentity(char **addr, int64 *failovers,
							   TimestampTz *last_failover); /* cache_health */

/*
 * Whether the Redis server of this backend's target did not say who it is
 * (INFO refused): then no hit is served from it (outbox_identity.c).
 */
extern bool InvalRedisBlind(void);
#define REASON_BLIND "redis unavailable for hits (INFO is refused to the ACL user, so a restart or failover of Redis behind the same address could not be seen; grant it +info)"

/*
 * A committing transaction's bumps are in flight from its PRE_COMMIT until
 * they were sent or kept: the standby lease is not renewed past them.
 */
extern void OutboxCommitBegin(void);
extern void OutboxCommitEnd(void);

/* From InvalInit (_PG_init): settings, hooks, the background worker. */
extern void OutboxInit(void);

/*
 * Send one fresh value to every key in one MSET, waiting at most
 * timeout_ms.  True when Redis took it.  Throws only on interrupts.
 */
extern bool OutboxSendBumps(char **keys, int n, int timeout_ms);
extern bool OutboxSendBumpsMarked(char **keys, int n, const char *mark_key,
								  const char *mark_val, int timeout_ms);

/* This backend's outbox target (its Redis URL and key prefix), or -1. */
extern int OutboxCurrentTarget(void);

/* Keep keys whose bump could not be delivered, until they are. */
extern void OutboxAdd(char **keys, int n);

/* Invalidate everything this server stored before hits are served again. */
extern void OutboxRequestServerBump(void);

#endif /* CACHE_EXT_OUTBOX_H */

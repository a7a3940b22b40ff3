/*-------------------------------------------------------------------------
 *
 * outbox.h
 *	  The shared-memory outbox of undelivered invalidations and the
 *	  server-wide invalidation state (DESIGN.md §2 C3).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CACHE_EXT_OUTBOX_H
#define CACHE_EXT_OUTBOX_H

#include "postgres.h"

/* From InvalInit (_PG_init): the Redis connect hook, the state file. */
extern void OutboxInit(void);

/*
 * Send one fresh value to every key in one MSET, waiting at most
 * timeout_ms.  True when Redis took it.  Throws only on interrupts.
 */
extern bool OutboxSendBumps(char **keys, int n, int timeout_ms);

/* Keep keys whose bump could not be delivered, until they are. */
extern void OutboxAdd(char **keys, int n);

/* Invalidate everything this server stored before hits are served again. */
extern void OutboxRequestServerBump(void);

#endif							/* CACHE_EXT_OUTBOX_H */

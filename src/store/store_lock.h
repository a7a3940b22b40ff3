/*-------------------------------------------------------------------------
 *
 * store_lock.h
 *	  The store's fill lock: a short-lived Redis key that tells the servers
 *	  sharing one Redis which of them is computing an entry (single flight
 *	  across servers, docs/single-flight.md).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CACHE_EXT_STORE_LOCK_H
#define CACHE_EXT_STORE_LOCK_H

#include "store/store.h"

/* What taking the fill lock found. */
typedef enum StoreLockResult
{
	STORE_LOCK_TAKEN, /* this caller holds it now */
	STORE_LOCK_BUSY,  /* another holder has it */
	STORE_LOCK_FAILED /* Redis failed or refused: no lock */
} StoreLockResult;

/* SET key token NX PX ttl_ms: one round trip. */
extern StoreLockResult StoreLockTake(const char *key, const char *token,
									 int ttl_ms);

/*
 * What a busy lock holds, in one round trip of bounded replies (STRLEN,
 * GETRANGE, PTTL), whatever Redis holds there: *len is the value's length
 * (-1: not a string), buf its first buflen - 1 bytes (NUL-terminated),
 * *pttl_ms its time to live (-1: none, -2: gone).  False when Redis failed.
 */
extern bool StoreLockInspect(const char *key, char *buf, size_t buflen,
							 int64 *len, int64 *pttl_ms);

/*
 * Delete key if it still holds token: a Lua compare-and-delete, one round
 * trip; where Redis refuses scripts, GET then DEL (store_lock.c says when
 * that is safe).  False when Redis failed; the lock then expires by its
 * TTL.
 */
extern bool StoreLockRelease(const char *key, const char *token);

#endif /* CACHE_EXT_STORE_LOCK_H */

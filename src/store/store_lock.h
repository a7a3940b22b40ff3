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
 * GET key into buf (NUL-terminated): false when it does not exist, is not
 * a string shorter than buflen, or Redis failed.
 */
extern bool StoreLockGet(const char *key, char *buf, size_t buflen);

/* EXISTS key: true when some holder has it (false when Redis failed). */
extern bool StoreLockHeld(const char *key);

/*
 * Delete key if it still holds token: a Lua compare-and-delete, one round
 * trip; where Redis refuses scripts, GET then DEL (store_lock.c says when
 * that is safe).  False when Redis failed; the lock then expires by its
 * TTL.
 */
extern bool StoreLockRelease(const char *key, const char *token);

#endif /* CACHE_EXT_STORE_LOCK_H */

/*-------------------------------------------------------------------------
 *
 * sessions.h
 *	  Sessions in Redis (cache_session_*, docs/sessions.md): what the rest
 *	  of the extension needs of them, and what sessions.c and
 *	  sessions_user.c share.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CACHE_EXT_SESSIONS_H
#define CACHE_EXT_SESSIONS_H

#include "postgres.h"

#include "session_format.h"

/* cache_ext.sessions_strict, cache_ext.sessions_allow_unsealed (_PG_init) */
extern void SessionsDefineGucs(void);

/* ---- shared by sessions.c and sessions_user.c ---- */

extern bool cache_ext_sessions_strict;

/* What reading a session found. */
typedef enum SessionVerdict
{
	SESSION_OK,
	SESSION_ABSENT,	 /* no such key (never was, expired, destroyed) */
	SESSION_EXPIRED, /* its absolute deadline has passed */
	SESSION_DOWN,	 /* Redis could not be asked */
	SESSION_CORRUPT	 /* refused: tampered, swapped, foreign (counted,
					  * deleted) */
} SessionVerdict;

/* A session as read from Redis. */
typedef struct LoadedSession
{
	SessionVerdict verdict;
	const char *why; /* DOWN, CORRUPT: why (for messages) */
	char *raw;		 /* OK: the bytes in Redis, for compare and set */
	size_t raw_len;
	CeSession s;	/* OK: its fields (pointing into a palloc'd buffer) */
	int64 pttl_ms;	/* OK: its remaining time to live */
	bool too_large; /* CORRUPT only by cache_ext.max_entry_size: kept */
} LoadedSession;

/* Raise unless sessions can be used (an encryption key, or unsealed allowed). */
extern void SessionsCheckReady(void);

/* The hex of the keyed hash of a user id (the index's name), palloc'd. */
extern char *SessionUserIndex(const char *user, size_t len);

/* The key of the session whose keyed hash is hex (64 characters). */
extern char *SessionKeyFromHex(const char *hex);

/*
 * Check one value read from key (whose keyed hash starts with fp) into
 * *ls: opened, parsed, bound to the key, within its deadline.  Corrupt
 * ones are counted (not deleted: the caller does).
 */
struct StoreSessionValue;
extern void SessionCheckValue(const struct StoreSessionValue *v,
							  const char *key, const uint8 *fp,
							  LoadedSession *ls);

/* Remember the last call's status for cache_session_status(). */
extern void SessionSetStatus(const char *fmt, ...) pg_attribute_printf(1, 2);

#endif /* CACHE_EXT_SESSIONS_H */

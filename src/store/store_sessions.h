/*-------------------------------------------------------------------------
 *
 * store_sessions.h
 *	  The store's operations on sessions (store_sessions.c): read one,
 *	  extend its idle timeout, create, replace (compare and set), rotate,
 *	  delete, and a user's index of sessions.
 *
 * Values are opaque bytes here (sessions.c seals and parses them); keys
 * are names made by keys.c.  Strings returned are palloc'd.  Every
 * operation is one round trip within cache_ext.command_timeout, and
 * reports a failure as a status with *why (palloc'd or constant) rather
 * than raising; only out of memory and interrupts raise.
 *
 * The writes that must be atomic are Lua scripts (EVAL): a Redis whose
 * ACL denies @scripting can read and delete sessions but not create or
 * change them (STORE_REFUSED with the server's words).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CACHE_EXT_STORE_SESSIONS_H
#define CACHE_EXT_STORE_SESSIONS_H

#include "store/store.h"

/* One session value as read. */
typedef struct StoreSessionValue
{
	bool found;		 /* the key exists with a value */
	bool wrong_type; /* the key holds another type */
	bool too_large;	 /* longer than the max_bytes asked for */
	bool no_ttl;	 /* the key has no expiry (cache_ext never
								 * writes one without) */
	char *data;		 /* found: the bytes (palloc'd, NUL after) */
	size_t len;
	int64 pttl_ms; /* found: its remaining time to live */
} StoreSessionValue;

/*
 * Read the values of keys[0..n) (GETRANGE up to max_bytes + PTTL each),
 * in one round trip.  STORE_OK with out[i] filled, else *why.
 */
extern StoreStatus StoreSessionRead(char *const *keys, int n, size_t max_bytes,
									StoreSessionValue *out, const char **why);

/* PEXPIRE key ttl_ms: extend a session's idle timeout (best effort). */
extern StoreStatus StoreSessionTouch(const char *key, int64 ttl_ms,
									 const char **why);

/*
 * Create a session: SET key value PX ttl_ms NX, add member to the index
 * idx and make the index live at least idx_ttl_ms.  *created is false
 * when the key already existed with another value.
 */
extern StoreStatus StoreSessionCreate(const char *key, const char *value,
									  size_t len, int64 ttl_ms,
									  const char *idx, const char *member,
									  int64 idx_ttl_ms, bool *created,
									  const char **why);

/* What a compare and set found. */
typedef enum StoreCasResult
{
	STORE_CAS_DONE,	   /* replaced (or already replaced by this call) */
	STORE_CAS_CHANGED, /* the key holds another value than expected */
	STORE_CAS_GONE,	   /* the key does not exist */
	STORE_CAS_TAKEN	   /* rotate: the new key exists */
} StoreCasResult;

/*
 * Replace key's value by new_value (PX ttl_ms) if it still is old_value,
 * atomically.
 */
extern StoreStatus StoreSessionReplace(const char *key, const char *old_value,
									   size_t old_len, const char *new_value,
									   size_t new_len, int64 ttl_ms,
									   StoreCasResult *result,
									   const char **why);

/*
 * Move a session to a new key, atomically: if old_key still holds
 * old_value, write new_value under new_key (PX ttl_ms, NX), delete
 * old_key, and in the index idx replace old_member by new_member (the
 * index living at least idx_ttl_ms).
 */
extern StoreStatus StoreSessionRotate(const char *old_key, const char *old_value,
									  size_t old_len, const char *new_key,
									  const char *new_value, size_t new_len,
									  int64 ttl_ms, const char *idx,
									  const char *old_member,
									  const char *new_member,
									  int64 idx_ttl_ms,
									  StoreCasResult *result,
									  const char **why);

/*
 * One batch of a logout everywhere, atomic in Redis (EVAL): pop up to
 * batch members of idx and UNLINK the sessions they name (the key name is
 * key_before_member followed by a member of member_len hex digits);
 * *deleted is how many existed, or -1 when idx was empty.
 */
extern StoreStatus StoreSessionDestroyBatch(const char *idx,
											const char *key_before_member,
											int batch, int member_len,
											int64 *deleted, const char **why);

/*
 * UNLINK keys[0..n), and SREM members[0..nmembers) from idx when idx is
 * not NULL, in one round trip; *deleted is how many keys existed.
 */
extern StoreStatus StoreSessionDelete(char *const *keys, int n,
									  const char *idx, char *const *members,
									  int nmembers, int64 *deleted,
									  const char **why);

/*
 * One batch of the members of the index idx: SSCAN from cursor (in: "0"
 * at first; out: the next, "0" when done; STORE_CURSOR_LEN bytes), as
 * palloc'd strings; members that are not strings are left out.
 */
extern StoreStatus StoreSessionMembers(const char *idx, char *cursor,
									   char ***members, int *n,
									   const char **why);

#endif /* CACHE_EXT_STORE_SESSIONS_H */

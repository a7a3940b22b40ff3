/*-------------------------------------------------------------------------
 *
 * store_reply.h
 *	  What Redis's replies to the store's commands mean (store_reply.c):
 *	  pure functions over hiredis reply trees, with no backend dependency,
 *	  so that the RESP fuzz target links the very code the store runs.
 *
 * Included by store.c, store_reply.c and test/fuzz/fuzz_resp.c only.
 * Replies are untrusted input: every function accepts any tree hiredis
 * can build.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CACHE_EXT_STORE_REPLY_H
#define CACHE_EXT_STORE_REPLY_H

#include "c.h"

#include <hiredis/hiredis.h>

#include "store/store.h"

/* A generation value as cache_ext writes them: a string of 1..255 bytes. */
extern bool StoreReplyIsGenValue(const redisReply *e);

/*
 * The verdict on a lookup's GETRANGE (entry) and MGET (gens, ngens keys)
 * replies, into out's verdict, entry, gens, nmissing, entry_bytes and
 * problem (the other fields are left alone).  When the server is not
 * serving (an error reply other than WRONGTYPE to GETRANGE, or any to
 * MGET) the verdict is STORE_LOOKUP_DOWN and *error is the reply to report
 * (MGET's first); otherwise *error is NULL.  When gens is VALID or MISSING
 * the usable values are exactly the elements that are strings.
 */
extern void StoreReplyLookup(const redisReply *entry, const redisReply *gens,
							 int ngens, size_t max_entry_size,
							 StoreLookup *out, const redisReply **error);

/* The MGET after the SET NXs of nmissing generations: all values? */
extern bool StoreReplyInitGens(const redisReply *mget, int nmissing);

/* A write's reply (SET, MSET): +OK, an error, or anything else (not taken). */
extern StoreStatus StoreReplyWrite(const redisReply *r);

/*
 * The reply to SET key token GET: what the key held, compared with
 * file_token and token.  STORE_REFUSED for an error reply.
 */
extern StoreStatus StoreReplyToken(const redisReply *r, const char *token,
								   const char *file_token,
								   StoreTokenPrev *prev);

/* An integer reply's value; false for any other reply. */
extern bool StoreReplyInteger(const redisReply *r, long long *v);

/*
 * SCAN's reply: [cursor of fewer than STORE_CURSOR_LEN bytes, array of
 * keys].  STORE_OK with cursor (NUL-terminated) and *keys set, else
 * STORE_REFUSED (an error reply) or STORE_BAD_REPLY.
 */
extern StoreStatus StoreReplyScan(const redisReply *r, char *cursor,
								  const redisReply **keys);

/*
 * UNLINK's reply to nsent keys: *deleted is the count it gives, clamped
 * to 0..nsent (an untrusted number).
 */
extern StoreStatus StoreReplyUnlinkCount(const redisReply *r, size_t nsent,
										 int64 *deleted);

/*
 * The value of field in INFO's text (NUL-terminated; read up to its first
 * NUL): the rest of the first line "field:...", escaped by RedisSafeText
 * into dst (dstlen bytes).  False when no line has the field.
 */
/*
 * A standby's watermark (commitq.c), read with GETRANGE: true and *value
 * when the reply is 1 to 20 decimal digits that fit in 64 bits.
 */
extern bool StoreReplyMark(const redisReply *r, uint64 *value);

extern bool StoreReplyInfoField(const char *info, const char *field,
								char *dst, size_t dstlen);

#endif /* CACHE_EXT_STORE_REPLY_H */

/*-------------------------------------------------------------------------
 *
 * store_internal.h
 *	  What the files of the store layer (src/store/) share: one exchange
 *	  with Redis, counted and checked against a new master, and the way a
 *	  server's error reply becomes a failure.  Nothing outside src/store/
 *	  includes this; the rest of the extension speaks store.h.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CACHE_EXT_STORE_INTERNAL_H
#define CACHE_EXT_STORE_INTERNAL_H

#include "redis/redis.h"

/* StoreExec's timeout_ms for cache_ext.command_timeout (RedisExec) */
#define STORE_DEFAULT_TIMEOUT (-1)

/*
 * Send ncmds commands in one pipeline and read their replies (malloc'd,
 * freed with RedisFreeReplies; each at most max_reply_bytes).  False when
 * the exchange failed, the client having recorded why; also false, with
 * the replies discarded, when another process found a new Redis master
 * during the exchange.  Counts round trips and failures.
 */
extern bool StoreExec(int ncmds, RedisCommand *cmds, redisReply **replies,
					  size_t max_reply_bytes, int timeout_ms);

/* The server answered but is not serving: a failure for the client. */
extern void StoreReportError(const redisReply *r);

/* An error reply's text, escaped, at most max bytes (palloc'd). */
extern char *StoreErrorText(const redisReply *r, size_t max);

#endif /* CACHE_EXT_STORE_INTERNAL_H */

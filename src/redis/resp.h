/*-------------------------------------------------------------------------
 *
 * resp.h
 *	  The reading of RESP that client.c does around hiredis's reader, in a
 *	  file with no backend dependency (resp.c), so that the RESP fuzz
 *	  target (test/fuzz/fuzz_resp.c) runs the real code: the limit on
 *	  array sizes, feeding received bytes under a byte cap, and the
 *	  server's run_id from the reply to INFO server.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CACHE_EXT_RESP_H
#define CACHE_EXT_RESP_H

#include <stdbool.h>
#include <stddef.h>

#include <hiredis/hiredis.h>

/*
 * No reply of ours has more than a few thousand elements.  A hostile server
 * announcing billions would make hiredis allocate, and later walk, an
 * array of that many pointers: such arrays are refused (the reader then
 * fails with an out-of-memory error, and the connection is dropped).
 */
#define MAX_REPLY_ELEMENTS (1024 * 1024)

/* Make reader refuse arrays of more than MAX_REPLY_ELEMENTS elements. */
extern void RespLimitArrays(redisReader *reader);

typedef enum RespFeedResult
{
	RESP_FED,		/* the bytes are in the reader */
	RESP_TOO_LARGE, /* the reply would pass max_bytes: not fed */
	RESP_BAD		/* the reader refused them (its errstr says) */
} RespFeedResult;

/*
 * Feed len received bytes to reader, counting them in *received, which may
 * not pass max_bytes.
 */
extern RespFeedResult RespFeed(redisReader *reader, const char *buf, size_t len,
							   size_t *received, size_t max_bytes);

/*
 * The value of field in INFO's text (NUL-terminated): what follows the
 * first "field:" that starts a line, up to the end of the text (the caller
 * stops at "\r\n"), or NULL.
 */
extern const char *RespInfoField(const char *info, const char *field);

/* longest run_id kept, with its NUL */
#define RESP_RUN_ID_LEN 64

/*
 * The run_id in the reply to INFO server: the alphanumerics after the
 * first "run_id:" that starts a line of its text, at most RESP_RUN_ID_LEN - 1 of them, into
 * out (always terminated).  Returns whether there was one.
 */
extern bool RespRunId(const redisReply *info, char *out);

/*
 * Sentinel (sentinel.c).  The reply to SENTINEL get-master-addr-by-name:
 * a two-element array of bulk strings, a host (1..255 bytes, letters,
 * digits, '.', '-', ':', '_') and a port (1..65535).  Returns 1 with
 * host (hostlen >= 256) and *port set, 0 when the sentinel does not know
 * the name (nil, or an empty array), -1 for any other shape.
 */
extern int RespMasterAddr(const redisReply *r, char *host, size_t hostlen,
						  int *port);

/*
 * The reply to ROLE: 1 when its first element is "master", 0 for another
 * role ("slave", "sentinel", ...), -1 when it is not a ROLE reply.
 */
extern int RespRoleIsMaster(const redisReply *r);

/*
 * Whether r is an error reply saying that the node is not the master it
 * was (READONLY, MASTERDOWN) or not serving yet (LOADING): the Sentinel
 * client then drops the connection and asks the sentinels again.
 */
extern bool RespNotMaster(const redisReply *r);

#endif /* CACHE_EXT_RESP_H */

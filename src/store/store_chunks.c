/*-------------------------------------------------------------------------
 *
 * store_chunks.c
 *	  The store operations of chunked entries (store_chunks.h): a value
 *	  longer than cache_ext.chunk_size is kept as a head under the entry's
 *	  key and chunks under "<entry key>:c:<set id>:<index>", so that a
 *	  purge of the entries' prefix takes them too.
 *
 * Chunks are named after the random set id of their store: a store never
 * writes over the chunks another head points to, so that a reader that
 * read the previous head still finds its chunks.  Those are given
 * CHUNK_GRACE_MS to live once superseded; chunks live CHUNK_GRACE_MS
 * longer than their head, so that a head read just before it expires
 * still finds them.  A chunk that is missing, of another set, out of place
 * or damaged makes the whole entry corrupt: its head and chunks are
 * deleted.
 *
 * Memory: a round trip carries at most BATCH_BYTES of chunks (one copy
 * of them for the commands, or their replies), beside the caller's whole
 * value.
 *
 * No state.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "cache_ext.h"
#include "entry_frame.h"
#include "redis/redis.h"
#include "redis/redis_text.h"
#include "store/store.h"
#include "store/store_chunks.h"
#include "store/store_internal.h"
#include "store/store_reply.h"

#define CHUNK_GRACE_MS 10000
#define BATCH_BYTES	   (4 * 1024 * 1024)
#define DELETE_BATCH   1024

/* The key of chunk i of the set setid of rkey (palloc'd). */
static char *
chunk_key(const char *rkey, const uint8 *setid, uint32 i)
{
	char hex[CE_CHUNK_SETID_LEN * 2 + 1];

	for (int j = 0; j < CE_CHUNK_SETID_LEN; j++)
		snprintf(hex + 2 * j, 3, "%02x", setid[j]);
	return psprintf("%s:c:%s:%u", rkey, hex, i);
}

/* How many chunks of h one round trip carries. */
static uint32
batch_chunks(const CeChunkHead *h)
{
	return Max(1, BATCH_BYTES / h->chunk_size);
}

/*
 * Delete the chunks of h (with_head: and rkey) or, with expire_ms > 0,
 * give them that long to live; best effort (a failure is the client's to
 * report).
 */
static void
drop_chunks(const char *rkey, const CeChunkHead *h, bool with_head,
			int expire_ms)
{
	/* PEXPIRE takes one key; UNLINK takes DELETE_BATCH at a time */
	int max = expire_ms > 0 ? (int) h->nchunks :
							  (int) h->nchunks / DELETE_BATCH + 2;
	RedisCommand *cmds = palloc(sizeof(RedisCommand) * max);
	redisReply **replies = palloc0(sizeof(redisReply *) * max);
	char msbuf[16];
	int c = 0;

	snprintf(msbuf, sizeof(msbuf), "%d", expire_ms);
	for (uint32 i = 0; i < h->nchunks; i++)
	{
		if (expire_ms > 0)
		{
			RedisCommandInit(&cmds[c], "PEXPIRE");
			RedisCommandArgStr(&cmds[c], chunk_key(rkey, h->setid, i));
			RedisCommandArgStr(&cmds[c++], msbuf);
			continue;
		}
		if (i % DELETE_BATCH == 0)
			RedisCommandInit(&cmds[c++], "UNLINK");
		RedisCommandArgStr(&cmds[c - 1], chunk_key(rkey, h->setid, i));
	}
	if (with_head && expire_ms <= 0)
	{
		RedisCommandInit(&cmds[c], "UNLINK");
		RedisCommandArgStr(&cmds[c++], rkey);
	}
	/* an integer reply per command: a few bytes each */
	if (StoreExec(c, cmds, replies, 4096 + 64 * (size_t) c, STORE_DEFAULT_TIMEOUT))
		RedisFreeReplies(c, replies);
	pfree(cmds);
	pfree(replies);
}

/* StoreDeleteChunked (store_chunks.h) */
void
StoreDeleteChunked(const char *rkey, const char *head, size_t hlen)
{
	CeChunkHead h;

	if (CeChunkHeadParse((const uint8 *) head, hlen, SIZE_MAX, &h) == NULL)
		drop_chunks(rkey, &h, true, 0);
	else
		StoreDeleteEntry(rkey);
}

/*
 * Send chunks [first, first + n) of h, each SET with PX ttl_ms, and (with
 * old_head) a GETRANGE of rkey's current head first in the same round
 * trip, copied into old_head (*old_len bytes).  Returns NULL or why not.
 */
static char *
put_batch(const char *rkey, const CeChunkHead *h, const char *data,
		  uint32 first, uint32 n, const char *pxbuf, char *old_head,
		  size_t *old_len)
{
	int off = old_head != NULL ? 1 : 0;
	RedisCommand *cmds = palloc(sizeof(RedisCommand) * (n + off));
	redisReply **replies = palloc0(sizeof(redisReply *) * (n + off));
	char *buf = palloc((size_t) n * (h->chunk_size + CE_CHUNK_HEADER));
	char *p = buf;
	char endbuf[16];
	char *why = NULL;

	if (old_head != NULL)
	{
		snprintf(endbuf, sizeof(endbuf), "%d", CE_CHUNK_HEAD_LEN - 1);
		RedisCommandInit(&cmds[0], "GETRANGE");
		RedisCommandArgStr(&cmds[0], rkey);
		RedisCommandArgStr(&cmds[0], "0");
		RedisCommandArgStr(&cmds[0], endbuf);
	}
	for (uint32 j = 0; j < n; j++)
	{
		uint32 i = first + j;
		uint32 plen = CeChunkPayloadLen(h, i);
		const uint8 *payload = (const uint8 *) data + (size_t) i * h->chunk_size;

		CeChunkHeaderWrite(h, i, payload, (uint8 *) p);
		memcpy(p + CE_CHUNK_HEADER, payload, plen);
		RedisCommandInit(&cmds[off + j], "SET");
		RedisCommandArgStr(&cmds[off + j], chunk_key(rkey, h->setid, i));
		RedisCommandArg(&cmds[off + j], p, CE_CHUNK_HEADER + plen);
		RedisCommandArgStr(&cmds[off + j], "PX");
		RedisCommandArgStr(&cmds[off + j], pxbuf);
		p += CE_CHUNK_HEADER + plen;
	}
	/* +OK per chunk, and the old head (at most CE_CHUNK_HEAD_LEN bytes) */
	if (!StoreExec(n + off, cmds, replies, 4096 + 64 * (size_t) (n + off),
				   STORE_DEFAULT_TIMEOUT))
		why = psprintf("redis unavailable (%s)", RedisLastError());
	else
	{
		if (old_head != NULL && replies[0]->type == REDIS_REPLY_STRING &&
			replies[0]->len <= CE_CHUNK_HEAD_LEN)
		{
			memcpy(old_head, replies[0]->str, replies[0]->len);
			*old_len = replies[0]->len;
		}
		for (uint32 j = 0; j < n && why == NULL; j++)
		{
			StoreStatus st = StoreReplyWrite(replies[off + j]);
			char shown[121];

			if (st == STORE_OK)
				continue;
			CacheStatsAdd(CS_ERRORS, 1);
			if (st == STORE_REFUSED)
			{
				RedisSafeText(shown, sizeof(shown), replies[off + j]->str,
							  replies[off + j]->len);
				why = psprintf("redis refused a chunk: %s", shown);
			}
			else
				why = pstrdup("unexpected reply from redis");
		}
		RedisFreeReplies(n + off, replies);
	}
	pfree(buf);
	pfree(cmds);
	pfree(replies);
	return why;
}

/* StorePutChunked (store_chunks.h) */
char *
StorePutChunked(const char *rkey, const char *data, size_t len, int64 ttl_ms,
				size_t chunk_size, uint32 gens_crc)
{
	CeChunkHead h;
	CeChunkHead old;
	uint8 head[CE_CHUNK_HEAD_LEN];
	char old_head[CE_CHUNK_HEAD_LEN];
	size_t old_len = 0;
	char pxbuf[32];
	char *why = NULL;
	uint32 per;

	Assert(chunk_size >= CE_MIN_CHUNK_SIZE && chunk_size <= CE_MAX_CHUNK_SIZE);
	if ((len + chunk_size - 1) / chunk_size > CE_MAX_CHUNKS)
		return pstrdup("result needs more chunks than cache_ext allows (raise cache_ext.chunk_size)");
	h.chunk_size = (uint32) chunk_size;
	h.total_len = len;
	h.nchunks = (uint32) ((len + chunk_size - 1) / chunk_size);
	h.gens_crc = gens_crc;
	if (!pg_strong_random(h.setid, sizeof(h.setid)))
		return pstrdup("could not generate a random chunk set id");

	/* the chunks outlive their head: a head read last thing finds them */
	snprintf(pxbuf, sizeof(pxbuf), INT64_FORMAT, ttl_ms + CHUNK_GRACE_MS);
	per = batch_chunks(&h);
	for (uint32 first = 0; first < h.nchunks && why == NULL; first += per)
		why = put_batch(rkey, &h, data, first, Min(per, h.nchunks - first),
						pxbuf, first == 0 ? old_head : NULL, &old_len);
	if (why != NULL)
		return why; /* the chunks sent expire with their TTL */

	CeChunkHeadWrite(&h, head);
	why = StorePutEntry(rkey, (const char *) head, sizeof(head), ttl_ms);

	/* the previous store's chunks: a reader of its head may still want them */
	if (why == NULL && old_len > 0 &&
		CeChunkHeadParse((const uint8 *) old_head, old_len, SIZE_MAX, &old) == NULL &&
		memcmp(old.setid, h.setid, CE_CHUNK_SETID_LEN) != 0)
		drop_chunks(rkey, &old, false, CHUNK_GRACE_MS);
	return why;
}

/*
 * Fetch chunks [first, first + n) of h into out.  Returns the result, with
 * *why on CORRUPT.
 */
static StoreChunksResult
read_batch(const char *rkey, const CeChunkHead *h, uint32 first, uint32 n,
		   char *out, const char **why)
{
	RedisCommand *cmds = palloc(sizeof(RedisCommand) * n);
	redisReply **replies = palloc0(sizeof(redisReply *) * n);
	volatile StoreChunksResult res = STORE_CHUNKS_OK;

	/*
	 * GETRANGE of one byte more than the chunk should hold: a longer value
	 * (corrupt) is then seen as such, not read whole past the round trip's
	 * bound (which would drop the connection and open the breaker).
	 */
	for (uint32 j = 0; j < n; j++)
	{
		RedisCommandInit(&cmds[j], "GETRANGE");
		RedisCommandArgStr(&cmds[j], chunk_key(rkey, h->setid, first + j));
		RedisCommandArgStr(&cmds[j], "0");
		RedisCommandArgStr(&cmds[j],
						   psprintf("%u", CE_CHUNK_HEADER + CeChunkPayloadLen(h, first + j)));
	}
	/* the bound is on all the replies of the round trip */
	if (!StoreExec(n, cmds, replies,
				   (size_t) n * (h->chunk_size + CE_CHUNK_HEADER + 64),
				   STORE_DEFAULT_TIMEOUT))
		return STORE_CHUNKS_DOWN;
	PG_TRY();
	{
		for (uint32 j = 0; j < n && res == STORE_CHUNKS_OK; j++)
		{
			const redisReply *r = replies[j];
			uint32 i = first + j;

			/* a key of another type is corrupt data, not a failing server */
			if (r->type == REDIS_REPLY_ERROR &&
				!(r->len >= 9 && memcmp(r->str, "WRONGTYPE", 9) == 0))
			{
				StoreReportError(r);
				res = STORE_CHUNKS_DOWN;
			}
			else if (r->type == REDIS_REPLY_NIL ||
					 (r->type == REDIS_REPLY_STRING && r->len == 0))
			{
				/* GETRANGE of no key is an empty string */
				*why = "chunk missing";
				res = STORE_CHUNKS_CORRUPT;
			}
			else if (r->type != REDIS_REPLY_STRING)
			{
				*why = "chunk of another type";
				res = STORE_CHUNKS_CORRUPT;
			}
			else if ((*why = CeChunkCheck(h, i, (const uint8 *) r->str, r->len)) != NULL)
				res = STORE_CHUNKS_CORRUPT;
			else
				memcpy(out + (size_t) i * h->chunk_size, r->str + CE_CHUNK_HEADER,
					   r->len - CE_CHUNK_HEADER);
		}
	}
	PG_FINALLY();
	{
		RedisFreeReplies(n, replies);
	}
	PG_END_TRY();
	pfree(cmds);
	pfree(replies);
	return res;
}

/* StoreReadChunks (store_chunks.h) */
StoreChunksResult
StoreReadChunks(const char *rkey, const char *head, size_t hlen,
				size_t max_total, const uint32 *gens_crc, bool delete_corrupt,
				char **out, size_t *outlen, const char **why)
{
	CeChunkHead h;
	StoreChunksResult res = STORE_CHUNKS_OK;
	char *buf;
	uint32 per;

	*out = NULL;
	*why = CeChunkHeadParse((const uint8 *) head, hlen, max_total, &h);
	if (*why != NULL)
	{
		if (delete_corrupt)
			StoreDeleteEntry(rkey);
		return STORE_CHUNKS_CORRUPT;
	}
	/* invalidated since it was stored: not worth reading */
	if (gens_crc != NULL && *gens_crc != h.gens_crc)
		return STORE_CHUNKS_STALE;
	/* bounded by max_total before this allocation */
	buf = palloc((Size) h.total_len + 1);
	per = batch_chunks(&h);
	for (uint32 first = 0; first < h.nchunks && res == STORE_CHUNKS_OK; first += per)
		res = read_batch(rkey, &h, first, Min(per, h.nchunks - first), buf, why);
	if (res != STORE_CHUNKS_OK)
	{
		pfree(buf);
		if (res == STORE_CHUNKS_CORRUPT && delete_corrupt)
			drop_chunks(rkey, &h, true, 0);
		return res;
	}
	buf[h.total_len] = '\0';
	*out = buf;
	*outlen = (size_t) h.total_len;
	return STORE_CHUNKS_OK;
}

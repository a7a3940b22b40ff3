/*-------------------------------------------------------------------------
 *
 * store_reply.c
 *	  What Redis's replies to the store's commands mean, decided once for
 *	  every caller (cached_query and cache_explain see an entry the same
 *	  way).  Pure functions: no palloc, no ereport, no settings; the RESP
 *	  fuzz target (test/fuzz/fuzz_resp.c) links this file as it is.
 *
 *-------------------------------------------------------------------------
 */
#include "c.h"

#include "redis/redis_text.h"
#include "redis/resp.h"
#include "store/store_reply.h"

bool
StoreReplyIsGenValue(const redisReply *e)
{
	return e->type == REDIS_REPLY_STRING && e->len >= 1 && e->len <= 255;
}

/* An error reply whose text starts with prefix. */
static bool
error_is(const redisReply *r, const char *prefix)
{
	size_t n = strlen(prefix);

	return r->type == REDIS_REPLY_ERROR && r->len >= n &&
		memcmp(r->str, prefix, n) == 0;
}

/*
 * Generations: VALID, MISSING (some nil, the rest values) or INVALID;
 * *nmissing counts the nils of a well-formed reply.
 */
static StoreGensState
gens_state(const redisReply *g, int ngens, int *nmissing)
{
	*nmissing = 0;
	if (g->type != REDIS_REPLY_ARRAY || g->elements != (size_t) ngens)
		return STORE_GENS_INVALID;
	for (int i = 0; i < ngens; i++)
	{
		const redisReply *e = g->element[i];

		if (e->type == REDIS_REPLY_NIL)
			(*nmissing)++;
		else if (!StoreReplyIsGenValue(e))
		{
			*nmissing = 0;
			return STORE_GENS_INVALID; /* not a value cache_ext writes */
		}
	}
	return *nmissing > 0 ? STORE_GENS_MISSING : STORE_GENS_VALID;
}

void
StoreReplyLookup(const redisReply *entry, const redisReply *gens, int ngens,
				 size_t max_entry_size, StoreLookup *out,
				 const redisReply **error)
{
	*error = NULL;
	out->problem = NULL;
	out->entry_bytes = 0;
	out->nmissing = 0;

	/* the server is not serving (LOADING, NOAUTH, MISCONF, NOPERM, ...) */
	if (gens->type == REDIS_REPLY_ERROR ||
		(entry->type == REDIS_REPLY_ERROR && !error_is(entry, "WRONGTYPE")))
	{
		*error = gens->type == REDIS_REPLY_ERROR ? gens : entry;
		out->verdict = STORE_LOOKUP_DOWN;
		out->entry = STORE_ENTRY_ABSENT;
		out->gens = STORE_GENS_INVALID;
		return;
	}

	out->gens = gens_state(gens, ngens, &out->nmissing);

	if (entry->type == REDIS_REPLY_STRING && entry->len == 0)
		out->entry = STORE_ENTRY_ABSENT; /* GETRANGE of no key */
	else if (entry->type != REDIS_REPLY_STRING)
	{
		out->entry = STORE_ENTRY_BAD_TYPE;
		out->problem = "unexpected reply type";
	}
	else if (entry->len > max_entry_size)
	{
		out->entry = STORE_ENTRY_TOO_LARGE;
		out->entry_bytes = entry->len;
		out->problem = "entry larger than cache_ext.max_entry_size";
	}
	else
	{
		out->entry = STORE_ENTRY_PRESENT;
		out->entry_bytes = entry->len;
	}

	if (out->entry == STORE_ENTRY_ABSENT)
		out->verdict = STORE_LOOKUP_MISS;
	else if (out->problem != NULL)
		out->verdict = STORE_LOOKUP_CORRUPT;
	else if (out->gens != STORE_GENS_VALID)
		out->verdict = STORE_LOOKUP_STALE; /* unknown generations: not valid */
	else
		out->verdict = STORE_LOOKUP_DECODE;
}

bool
StoreReplyInitGens(const redisReply *mget, int nmissing)
{
	if (mget->type != REDIS_REPLY_ARRAY || mget->elements != (size_t) nmissing)
		return false;
	for (int j = 0; j < nmissing; j++)
		if (!StoreReplyIsGenValue(mget->element[j]))
			return false;
	return true;
}

StoreStatus
StoreReplyWrite(const redisReply *r)
{
	/* SET and MSET answer +OK; any other status is not a write taken */
	if (r->type == REDIS_REPLY_STATUS && r->len == 2 && memcmp(r->str, "OK", 2) == 0)
		return STORE_OK;
	return r->type == REDIS_REPLY_ERROR ? STORE_REFUSED : STORE_BAD_REPLY;
}

StoreStatus
StoreReplyToken(const redisReply *r, const char *token, const char *file_token,
				StoreTokenPrev *prev)
{
	*prev = STORE_TOKEN_NONE;
	if (r->type == REDIS_REPLY_NIL)
		return STORE_OK;
	if (r->type == REDIS_REPLY_STRING)
	{
		bool same_file = r->len == strlen(file_token) &&
			memcmp(r->str, file_token, r->len) == 0;
		bool mine = r->len == strlen(token) &&
			memcmp(r->str, token, r->len) == 0;

		/*
		 * SET ... GET is not idempotent: reading back our own token means an
		 * earlier swap ran but its reply (with what it replaced) was lost.
		 */
		*prev = same_file ? STORE_TOKEN_KNOWN : mine ? STORE_TOKEN_MINE :
													   STORE_TOKEN_OTHER;
		return STORE_OK;
	}
	return r->type == REDIS_REPLY_ERROR ? STORE_REFUSED : STORE_BAD_REPLY;
}

bool
StoreReplyInteger(const redisReply *r, long long *v)
{
	if (r->type != REDIS_REPLY_INTEGER)
		return false;
	*v = r->integer;
	return true;
}

StoreStatus
StoreReplyScan(const redisReply *r, char *cursor, const redisReply **keys)
{
	*keys = NULL;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
		r->element[0]->type != REDIS_REPLY_STRING ||
		r->element[0]->len >= STORE_CURSOR_LEN ||
		r->element[1]->type != REDIS_REPLY_ARRAY)
		return r->type == REDIS_REPLY_ERROR ? STORE_REFUSED : STORE_BAD_REPLY;
	memcpy(cursor, r->element[0]->str, r->element[0]->len);
	cursor[r->element[0]->len] = '\0';
	*keys = r->element[1];
	return STORE_OK;
}

StoreStatus
StoreReplyUnlinkCount(const redisReply *r, size_t nsent, int64 *deleted)
{
	*deleted = 0;
	if (r->type != REDIS_REPLY_INTEGER)
		return r->type == REDIS_REPLY_ERROR ? STORE_REFUSED : STORE_BAD_REPLY;
	if (r->integer > 0)
		*deleted = (uint64) r->integer > (uint64) nsent ? (int64) nsent : (int64) r->integer;
	return STORE_OK;
}

bool
StoreReplyInfoField(const char *info, const char *field, char *dst,
					size_t dstlen)
{
	const char *v = RespInfoField(info, field);

	if (v == NULL)
		return false;
	/* INFO is untrusted text: kept escaped */
	RedisSafeText(dst, dstlen, v, strcspn(v, "\r\n"));
	return true;
}

/*
 * StoreReplyMark (store_reply.h): a watermark is 1 to 20 decimal digits
 * that fit in 64 bits; anything else (nil, an error, another type, a
 * sign, a space, an overflow) is no watermark.
 */
bool
StoreReplyMark(const redisReply *r, uint64 *value)
{
	uint64 v = 0;

	*value = 0;
	if (r == NULL || r->type != REDIS_REPLY_STRING || r->len == 0 || r->len > 20)
		return false;
	for (size_t i = 0; i < r->len; i++)
	{
		unsigned d;

		if (r->str[i] < '0' || r->str[i] > '9')
			return false;
		d = (unsigned) (r->str[i] - '0');
		if (v > (PG_UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*value = v;
	return true;
}

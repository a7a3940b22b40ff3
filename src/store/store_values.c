/*-------------------------------------------------------------------------
 *
 * store_values.c
 *	  Store operations of application values (store_values.h): MGET of
 *	  generations alone (the generations of a value's tags, read once the
 *	  value said which), and UNLINK with its count.  Each is one round trip
 *	  through StoreExec (store_internal.h); replies are freed on every path.
 *
 * No state of its own.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "store/store_internal.h"
#include "store/store_reply.h"
#include "store/store_values.h"

/* StoreReadGenerations (store_values.h) */
StoreStatus
StoreReadGenerations(char *const *keys, int n, char **vals, size_t *lens,
					 StoreGensState *state)
{
	RedisCommand cmd;
	redisReply *reply = NULL;
	volatile StoreStatus st = STORE_OK;

	*state = STORE_GENS_INVALID;
	RedisCommandInit(&cmd, "MGET");
	for (int i = 0; i < n; i++)
		RedisCommandArgStr(&cmd, keys[i]);
	if (!StoreExec(1, &cmd, &reply, 1024 + 300 * (size_t) n, STORE_DEFAULT_TIMEOUT))
		return STORE_UNAVAILABLE;
	PG_TRY();
	{
		if (reply->type == REDIS_REPLY_ERROR)
		{
			StoreReportError(reply);
			st = STORE_REFUSED;
		}
		else if (reply->type != REDIS_REPLY_ARRAY || reply->elements != (size_t) n)
			st = STORE_BAD_REPLY;
		else
		{
			*state = STORE_GENS_VALID;
			for (int i = 0; i < n; i++)
			{
				const redisReply *e = reply->element[i];

				if (e->type == REDIS_REPLY_NIL)
				{
					if (*state == STORE_GENS_VALID)
						*state = STORE_GENS_MISSING;
				}
				else if (!StoreReplyIsGenValue(e))
					*state = STORE_GENS_INVALID;
				else
				{
					vals[i] = pnstrdup(e->str, e->len);
					lens[i] = e->len;
				}
			}
		}
	}
	PG_FINALLY();
	{
		RedisFreeReplies(1, &reply);
	}
	PG_END_TRY();
	return st;
}

/* StoreValueDelete (store_values.h): UNLINK rkey. */
StoreStatus
StoreValueDelete(const char *rkey, bool *deleted)
{
	RedisCommand cmd;
	redisReply *reply = NULL;
	int64 count = 0;
	const char *why;
	StoreStatus st;

	*deleted = false;
	if (!RedisUsable(&why))
		return STORE_UNAVAILABLE;
	RedisCommandInit(&cmd, "UNLINK");
	RedisCommandArgStr(&cmd, rkey);
	if (!StoreExec(1, &cmd, &reply, 1024, STORE_DEFAULT_TIMEOUT))
		return STORE_UNAVAILABLE;
	st = StoreReplyUnlinkCount(reply, 1, &count);
	if (st == STORE_REFUSED)
		StoreReportError(reply);
	RedisFreeReplies(1, &reply);
	*deleted = st == STORE_OK && count == 1;
	return st;
}

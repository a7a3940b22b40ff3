/*-------------------------------------------------------------------------
 *
 * store_sessions.c
 *	  The store's operations on sessions (store_sessions.h): the Redis
 *	  commands and Lua scripts behind cache_session_*().
 *
 * Each operation is one exchange through StoreExec (counted, bounded by
 * cache_ext.command_timeout, interruptible).  Replies are hiredis objects
 * (malloc'd), freed before returning, also when something in between
 * raises (PG_FINALLY).
 *
 * The client may send an exchange twice when a connection that had been
 * idle turns out closed (client.c, exec_pipeline): every script here is
 * written so that running it again after it succeeded reports success
 * (it recognises its own new value, whose random nonce no other write
 * repeats).
 *
 * No state.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "cache_ext.h"
#include "redis/redis.h"
#include "redis/redis_text.h"
#include "store/store.h"
#include "store/store_internal.h"
#include "store/store_reply.h"
#include "store/store_sessions.h"

/*
 * KEYS: session, index.  ARGV: value, ttl ms, member, index ttl ms.
 * 1 created (or created by this call's first run), 0 the key exists.
 */
static const char create_script[] =
	"if not redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then "
	"  if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end "
	"end "
	"redis.call('SADD', KEYS[2], ARGV[3]) "
	"if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[4]) then "
	"  redis.call('PEXPIRE', KEYS[2], ARGV[4]) "
	"end "
	"return 1";

/*
 * KEYS: session.  ARGV: old value, new value, ttl ms.  1 replaced, 0
 * another value, -1 no key.
 */
static const char replace_script[] =
	"local v = redis.call('GET', KEYS[1]) "
	"if not v then return -1 end "
	"if v == ARGV[2] then return 1 end "
	"if v ~= ARGV[1] then return 0 end "
	"redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) "
	"return 1";

/*
 * KEYS: old session, new session, index.  ARGV: old value, new value,
 * ttl ms, old member, new member, index ttl ms.  1 moved, 0 the old key
 * holds another value, -1 no old key, -2 the new key exists.
 */
static const char rotate_script[] =
	"local v = redis.call('GET', KEYS[1]) "
	"if v ~= ARGV[1] then "
	"  if redis.call('GET', KEYS[2]) == ARGV[2] then return 1 end "
	"  if not v then return -1 end "
	"  return 0 "
	"end "
	"if not redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3], 'NX') then return -2 end "
	"redis.call('DEL', KEYS[1]) "
	"redis.call('SREM', KEYS[3], ARGV[4]) "
	"redis.call('SADD', KEYS[3], ARGV[5]) "
	"if redis.call('PTTL', KEYS[3]) < tonumber(ARGV[6]) then "
	"  redis.call('PEXPIRE', KEYS[3], ARGV[6]) "
	"end "
	"return 1";

/*
 * Logout everywhere, one batch, atomic with the other scripts (review15b
 * F4: a rotation between reading the index and deleting escaped): KEYS[1]
 * the user's index; ARGV: the key name before a member, batch size,
 * member length.  Pops up to a batch of members and unlinks the sessions
 * they name; -1 when the index was empty, else how many existed.
 */
static const char destroy_script[] =
	"local m = redis.call('SPOP', KEYS[1], tonumber(ARGV[2])) "
	"if #m == 0 then return -1 end "
	"local d = 0 "
	"for i = 1, #m do "
	"  if string.len(m[i]) == tonumber(ARGV[3]) and string.match(m[i], '^[0-9a-f]+$') then "
	"    d = d + redis.call('UNLINK', ARGV[1] .. m[i]) "
	"  end "
	"end "
	"return d";

static bool
is_wrongtype(const redisReply *r)
{
	return r->type == REDIS_REPLY_ERROR && r->len >= 9 &&
		memcmp(r->str, "WRONGTYPE", 9) == 0;
}

/* why an exchange failed, for the caller's message */
static const char *
unavailable(void)
{
	return pstrdup(StoreLastError());
}

/*
 * A write the server refused or answered oddly: counted as an error (the
 * server is up: no breaker), *why says what it said.
 */
static StoreStatus
refused(const redisReply *r, const char *what, const char **why)
{
	CacheStatsAdd(CS_ERRORS, 1);
	if (r->type == REDIS_REPLY_ERROR)
	{
		*why = psprintf("Redis refused %s: %s", what, StoreErrorText(r, 150));
		return STORE_REFUSED;
	}
	*why = psprintf("unexpected reply from Redis to %s", what);
	return STORE_BAD_REPLY;
}

/*
 * Run a script with nkeys keys and nargs arguments (lens[i] bytes each;
 * -1 for a C string); its integer result into *result.
 */
static StoreStatus
eval_int(const char *script, int nkeys, const char *const *keys,
		 int nargs, const char *const *args, const ssize_t *lens,
		 long long *result, const char **why)
{
	RedisCommand cmd;
	redisReply *r = NULL;
	char nk[8];
	volatile StoreStatus st = STORE_OK;

	snprintf(nk, sizeof(nk), "%d", nkeys);
	RedisCommandInit(&cmd, "EVAL");
	RedisCommandArgStr(&cmd, script);
	RedisCommandArgStr(&cmd, nk);
	for (int i = 0; i < nkeys; i++)
		RedisCommandArgStr(&cmd, keys[i]);
	for (int i = 0; i < nargs; i++)
	{
		if (lens[i] < 0)
			RedisCommandArgStr(&cmd, args[i]);
		else
			RedisCommandArg(&cmd, args[i], (size_t) lens[i]);
	}
	if (!StoreExec(1, &cmd, &r, 4096, STORE_DEFAULT_TIMEOUT))
	{
		*why = unavailable();
		return STORE_UNAVAILABLE;
	}
	PG_TRY();
	{
		if (!StoreReplyInteger(r, result))
			st = refused(r, "a session script (EVAL)", why);
	}
	PG_FINALLY();
	{
		RedisFreeReplies(1, &r);
	}
	PG_END_TRY();
	return st;
}

/* StoreSessionDestroyBatch (store_sessions.h) */
StoreStatus
StoreSessionDestroyBatch(const char *idx, const char *key_before_member,
						 int batch, int member_len, int64 *deleted,
						 const char **why)
{
	const char *keys[1] = {idx};
	char nb[16];
	char ml[16];
	const char *args[3] = {key_before_member, nb, ml};
	ssize_t lens[3] = {-1, -1, -1};
	long long res = 0;
	StoreStatus st;

	snprintf(nb, sizeof(nb), "%d", batch);
	snprintf(ml, sizeof(ml), "%d", member_len);
	st = eval_int(destroy_script, 1, keys, 3, args, lens, &res, why);
	/* an untrusted number */
	*deleted = res < 0 ? -1 : Min(res, (long long) batch);
	return st;
}

/* one GETRANGE + PTTL pair of StoreSessionRead's replies into *v */
static StoreStatus
read_one(const redisReply *g, const redisReply *t, size_t max_bytes,
		 StoreSessionValue *v, const char **why)
{
	long long pttl;

	memset(v, 0, sizeof(*v));
	if (is_wrongtype(g))
	{
		v->wrong_type = true;
		return STORE_OK;
	}
	if (g->type == REDIS_REPLY_ERROR)
	{
		/* the server is not serving (-LOADING, -NOAUTH, ...) */
		*why = psprintf("Redis answered: %s", StoreErrorText(g, 150));
		StoreReportError(g);
		return STORE_UNAVAILABLE;
	}
	if (g->type != REDIS_REPLY_STRING || !StoreReplyInteger(t, &pttl))
	{
		*why = "unexpected reply from Redis to GETRANGE or PTTL";
		CacheStatsAdd(CS_ERRORS, 1);
		return STORE_BAD_REPLY;
	}
	/* GETRANGE says "" for no key: PTTL, sent after it, tells them apart */
	if (pttl == -2)
		return STORE_OK;
	v->found = true;
	v->no_ttl = pttl < 0;
	v->pttl_ms = (int64) pttl;
	if (g->len > max_bytes)
	{
		v->too_large = true;
		v->len = g->len;
		return STORE_OK;
	}
	v->data = palloc(g->len + 1);
	memcpy(v->data, g->str, g->len);
	v->data[g->len] = '\0';
	v->len = g->len;
	return STORE_OK;
}

/* StoreSessionRead (store_sessions.h): GETRANGE + PTTL per key. */
StoreStatus
StoreSessionRead(char *const *keys, int n, size_t max_bytes,
				 StoreSessionValue *out, const char **why)
{
	RedisCommand *cmds;
	redisReply **replies;
	char endbuf[32];
	volatile StoreStatus st = STORE_OK;

	if (n == 0)
		return STORE_OK;
	cmds = palloc(sizeof(RedisCommand) * 2 * n);
	replies = palloc0(sizeof(redisReply *) * 2 * n);
	snprintf(endbuf, sizeof(endbuf), "%zu", max_bytes);
	for (int i = 0; i < n; i++)
	{
		RedisCommandInit(&cmds[2 * i], "GETRANGE");
		RedisCommandArgStr(&cmds[2 * i], keys[i]);
		RedisCommandArgStr(&cmds[2 * i], "0");
		RedisCommandArgStr(&cmds[2 * i], endbuf);
		RedisCommandInit(&cmds[2 * i + 1], "PTTL");
		RedisCommandArgStr(&cmds[2 * i + 1], keys[i]);
	}
	if (!StoreExec(2 * n, cmds, replies, (max_bytes + 1024) * (size_t) n,
				   STORE_DEFAULT_TIMEOUT))
	{
		*why = unavailable();
		return STORE_UNAVAILABLE;
	}
	PG_TRY();
	{
		for (int i = 0; i < n && st == STORE_OK; i++)
			st = read_one(replies[2 * i], replies[2 * i + 1], max_bytes,
						  &out[i], why);
	}
	PG_FINALLY();
	{
		RedisFreeReplies(2 * n, replies);
	}
	PG_END_TRY();
	pfree(cmds);
	pfree(replies);
	return st;
}

/* StoreSessionTouch (store_sessions.h): PEXPIRE key ttl_ms. */
StoreStatus
StoreSessionTouch(const char *key, int64 ttl_ms, const char **why)
{
	RedisCommand cmd;
	redisReply *r = NULL;
	char ttl[32];
	long long n;
	StoreStatus st = STORE_OK;

	snprintf(ttl, sizeof(ttl), INT64_FORMAT, ttl_ms);
	RedisCommandInit(&cmd, "PEXPIRE");
	RedisCommandArgStr(&cmd, key);
	RedisCommandArgStr(&cmd, ttl);
	if (!StoreExec(1, &cmd, &r, 4096, STORE_DEFAULT_TIMEOUT))
	{
		*why = unavailable();
		return STORE_UNAVAILABLE;
	}
	if (!StoreReplyInteger(r, &n))
		st = refused(r, "PEXPIRE", why);
	RedisFreeReplies(1, &r);
	return st;
}

/* StoreSessionCreate (store_sessions.h): create_script. */
StoreStatus
StoreSessionCreate(const char *key, const char *value, size_t len,
				   int64 ttl_ms, const char *idx, const char *member,
				   int64 idx_ttl_ms, bool *created, const char **why)
{
	char ttl[32];
	char ittl[32];
	const char *keys[2] = {key, idx};
	const char *args[4] = {value, ttl, member, ittl};
	ssize_t lens[4] = {(ssize_t) len, -1, -1, -1};
	long long res = 0;
	StoreStatus st;

	snprintf(ttl, sizeof(ttl), INT64_FORMAT, ttl_ms);
	snprintf(ittl, sizeof(ittl), INT64_FORMAT, idx_ttl_ms);
	st = eval_int(create_script, 2, keys, 4, args, lens, &res, why);
	*created = st == STORE_OK && res == 1;
	return st;
}

static StoreCasResult
cas_result(long long res)
{
	switch (res)
	{
		case 1:
			return STORE_CAS_DONE;
		case -1:
			return STORE_CAS_GONE;
		case -2:
			return STORE_CAS_TAKEN;
		default:
			return STORE_CAS_CHANGED;
	}
}

/* StoreSessionReplace (store_sessions.h): replace_script. */
StoreStatus
StoreSessionReplace(const char *key, const char *old_value, size_t old_len,
					const char *new_value, size_t new_len, int64 ttl_ms,
					StoreCasResult *result, const char **why)
{
	char ttl[32];
	const char *keys[1] = {key};
	const char *args[3] = {old_value, new_value, ttl};
	ssize_t lens[3] = {(ssize_t) old_len, (ssize_t) new_len, -1};
	long long res = 0;
	StoreStatus st;

	snprintf(ttl, sizeof(ttl), INT64_FORMAT, ttl_ms);
	st = eval_int(replace_script, 1, keys, 3, args, lens, &res, why);
	*result = cas_result(res);
	return st;
}

/* StoreSessionRotate (store_sessions.h): rotate_script. */
StoreStatus
StoreSessionRotate(const char *old_key, const char *old_value, size_t old_len,
				   const char *new_key, const char *new_value, size_t new_len,
				   int64 ttl_ms, const char *idx, const char *old_member,
				   const char *new_member, int64 idx_ttl_ms,
				   StoreCasResult *result, const char **why)
{
	char ttl[32];
	char ittl[32];
	const char *keys[3] = {old_key, new_key, idx};
	const char *args[6] = {old_value, new_value, ttl, old_member, new_member, ittl};
	ssize_t lens[6] = {(ssize_t) old_len, (ssize_t) new_len, -1, -1, -1, -1};
	long long res = 0;
	StoreStatus st;

	snprintf(ttl, sizeof(ttl), INT64_FORMAT, ttl_ms);
	snprintf(ittl, sizeof(ittl), INT64_FORMAT, idx_ttl_ms);
	st = eval_int(rotate_script, 3, keys, 6, args, lens, &res, why);
	*result = cas_result(res);
	return st;
}

/* StoreSessionDelete (store_sessions.h): UNLINK [+ SREM]. */
StoreStatus
StoreSessionDelete(char *const *keys, int n, const char *idx,
				   char *const *members, int nmembers, int64 *deleted,
				   const char **why)
{
	RedisCommand cmds[2];
	redisReply *r[2] = {NULL, NULL};
	volatile int ncmds = 0;
	volatile int ui = -1;
	long long count = 0;
	volatile StoreStatus st = STORE_OK;

	*deleted = 0;
	if (n > 0)
	{
		ui = ncmds++;
		RedisCommandInit(&cmds[ui], "UNLINK");
		for (int i = 0; i < n; i++)
			RedisCommandArgStr(&cmds[ui], keys[i]);
	}
	if (idx != NULL && nmembers > 0)
	{
		RedisCommandInit(&cmds[ncmds], "SREM");
		RedisCommandArgStr(&cmds[ncmds], idx);
		for (int i = 0; i < nmembers; i++)
			RedisCommandArgStr(&cmds[ncmds], members[i]);
		ncmds++;
	}
	if (ncmds == 0)
		return STORE_OK;
	if (!StoreExec(ncmds, cmds, r, 4096, STORE_DEFAULT_TIMEOUT))
	{
		*why = unavailable();
		return STORE_UNAVAILABLE;
	}
	PG_TRY();
	{
		for (int i = 0; i < ncmds && st == STORE_OK; i++)
			if (!StoreReplyInteger(r[i], &count))
				st = refused(r[i], i == ui ? "UNLINK" : "SREM", why);
			else if (i == ui)
				*deleted = Max(0, Min(count, n)); /* an untrusted number */
	}
	PG_FINALLY();
	{
		RedisFreeReplies(ncmds, r);
	}
	PG_END_TRY();
	return st;
}

/* StoreSessionMembers (store_sessions.h): SSCAN idx cursor COUNT 256. */
StoreStatus
StoreSessionMembers(const char *idx, char *cursor, char ***members, int *n,
					const char **why)
{
	RedisCommand cmd;
	redisReply *r = NULL;
	const redisReply *found;
	volatile StoreStatus st = STORE_OK;

	*members = NULL;
	*n = 0;
	RedisCommandInit(&cmd, "SSCAN");
	RedisCommandArgStr(&cmd, idx);
	RedisCommandArgStr(&cmd, cursor);
	RedisCommandArgStr(&cmd, "COUNT");
	RedisCommandArgStr(&cmd, "256");
	if (!StoreExec(1, &cmd, &r, 4 * 1024 * 1024, STORE_DEFAULT_TIMEOUT))
	{
		*why = unavailable();
		return STORE_UNAVAILABLE;
	}
	PG_TRY();
	{
		if (is_wrongtype(r))
		{
			/* an index of another type: cache_ext never made it */
			*why = "the index of the user's sessions is not a set";
			st = STORE_BAD_REPLY;
		}
		else if (r->type == REDIS_REPLY_ERROR)
		{
			*why = psprintf("Redis answered: %s", StoreErrorText(r, 150));
			StoreReportError(r);
			st = STORE_UNAVAILABLE;
		}
		else if (StoreReplyScan(r, cursor, &found) != STORE_OK)
		{
			*why = "unexpected reply from Redis to SSCAN";
			CacheStatsAdd(CS_ERRORS, 1);
			st = STORE_BAD_REPLY;
		}
		else
		{
			*members = palloc(sizeof(char *) * (found->elements + 1));
			for (size_t i = 0; i < found->elements; i++)
				if (found->element[i]->type == REDIS_REPLY_STRING)
					(*members)[(*n)++] = pnstrdup(found->element[i]->str,
												  found->element[i]->len);
		}
	}
	PG_FINALLY();
	{
		RedisFreeReplies(1, &r);
	}
	PG_END_TRY();
	return st;
}

/*-------------------------------------------------------------------------
 *
 * store_lock.c
 *	  The fill lock of single flight across servers (docs/single-flight.md):
 *	  SET NX PX to take it, a token-checked delete to release it.
 *
 * The release is a compare-and-delete in one EVAL, so that a filler whose
 * lock expired never deletes a lock taken since.  A server that refuses
 * scripts (an ACL without @scripting, some managed services) is
 * remembered for the backend's life, and the release is then GET and, if
 * the token is still there, DEL.  Between the two the lock may expire and
 * be taken by another holder, whose lock the DEL then deletes.  Who can
 * that be?  The lock key embeds the entry key's database scope, a hash of
 * the system identifier: only servers of this system identifier use it,
 * that is this primary (its hot standbys only look).  Another backend of
 * this server takes the lock only while holding the key's slot in shared
 * memory, which the releasing filler holds until its release returns
 * (flight.c releases the lock first).  That leaves a second primary of
 * the same system identifier (an old primary still up after its standby
 * was promoted), for which the cost is one more execution of the query:
 * the lock is a hint, what is served is decided by the lookup.
 *
 * State (backend-local): whether the server refused EVAL.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "redis/redis.h"
#include "store/store_internal.h"
#include "store/store_lock.h"

/* KEYS[1]: the lock; ARGV[1]: the holder's token */
#define RELEASE_SCRIPT \
	"if redis.call('get', KEYS[1]) == ARGV[1] then " \
	"return redis.call('del', KEYS[1]) else return 0 end"

static bool eval_refused = false;

/* StoreLockTake (store_lock.h) */
StoreLockResult
StoreLockTake(const char *key, const char *token, int ttl_ms)
{
	RedisCommand cmd;
	redisReply *r = NULL;
	char ttlbuf[16];
	StoreLockResult res;

	snprintf(ttlbuf, sizeof(ttlbuf), "%d", Max(ttl_ms, 1));
	RedisCommandInit(&cmd, "SET");
	RedisCommandArgStr(&cmd, key);
	RedisCommandArgStr(&cmd, token);
	RedisCommandArgStr(&cmd, "NX");
	RedisCommandArgStr(&cmd, "PX");
	RedisCommandArgStr(&cmd, ttlbuf);
	if (!StoreExec(1, &cmd, &r, 1024, STORE_DEFAULT_TIMEOUT))
		return STORE_LOCK_FAILED;
	/* +OK: taken; nil: held by another; anything else: no lock */
	if (r->type == REDIS_REPLY_STATUS && r->len == 2 && memcmp(r->str, "OK", 2) == 0)
		res = STORE_LOCK_TAKEN;
	else if (r->type == REDIS_REPLY_NIL)
		res = STORE_LOCK_BUSY;
	else
		res = STORE_LOCK_FAILED;
	RedisFreeReplies(1, &r);
	return res;
}

/* StoreLockInspect (store_lock.h): no reply can exceed the limit */
bool
StoreLockInspect(const char *key, char *buf, size_t buflen, int64 *len,
				 int64 *pttl_ms)
{
	RedisCommand cmds[3];
	redisReply *r[3] = {NULL, NULL, NULL};
	char endbuf[16];

	buf[0] = '\0';
	*len = -1;
	*pttl_ms = -2;
	snprintf(endbuf, sizeof(endbuf), "%d", (int) buflen - 2);
	RedisCommandInit(&cmds[0], "STRLEN");
	RedisCommandArgStr(&cmds[0], key);
	RedisCommandInit(&cmds[1], "GETRANGE");
	RedisCommandArgStr(&cmds[1], key);
	RedisCommandArgStr(&cmds[1], "0");
	RedisCommandArgStr(&cmds[1], endbuf);
	RedisCommandInit(&cmds[2], "PTTL");
	RedisCommandArgStr(&cmds[2], key);
	if (!StoreExec(3, cmds, r, 1024, STORE_DEFAULT_TIMEOUT))
		return false;
	/* another type answers STRLEN and GETRANGE with an error: *len stays -1 */
	if (r[0]->type == REDIS_REPLY_INTEGER)
		*len = r[0]->integer;
	if (r[1]->type == REDIS_REPLY_STRING && r[1]->len < buflen)
	{
		memcpy(buf, r[1]->str, r[1]->len);
		buf[r[1]->len] = '\0';
	}
	if (r[2]->type == REDIS_REPLY_INTEGER)
		*pttl_ms = r[2]->integer;
	RedisFreeReplies(3, r);
	return true;
}

/*
 * The release without EVAL: GET, and DEL when it still holds token.  Two
 * round trips, with a window between them (see the banner).
 */
static bool
release_without_script(const char *key, const char *token)
{
	char held[128];
	int64 len;
	int64 pttl;
	RedisCommand cmd;
	redisReply *r = NULL;
	bool ok;

	/* bounded replies: a value of any size there is read as not ours */
	if (!StoreLockInspect(key, held, sizeof(held), &len, &pttl))
		return false;
	if (len != (int64) strlen(token) || strcmp(held, token) != 0)
		return true; /* expired, and another holder has it now */
	RedisCommandInit(&cmd, "DEL");
	RedisCommandArgStr(&cmd, key);
	if (!StoreExec(1, &cmd, &r, 1024, STORE_DEFAULT_TIMEOUT))
		return false;
	ok = r->type == REDIS_REPLY_INTEGER;
	RedisFreeReplies(1, &r);
	return ok;
}

/* StoreLockRelease (store_lock.h) */
bool
StoreLockRelease(const char *key, const char *token)
{
	RedisCommand cmd;
	redisReply *r = NULL;
	bool ok;

	if (eval_refused)
		return release_without_script(key, token);
	RedisCommandInit(&cmd, "EVAL");
	RedisCommandArgStr(&cmd, RELEASE_SCRIPT);
	RedisCommandArgStr(&cmd, "1");
	RedisCommandArgStr(&cmd, key);
	RedisCommandArgStr(&cmd, token);
	if (!StoreExec(1, &cmd, &r, 1024, STORE_DEFAULT_TIMEOUT))
		return false;
	/* an error reply is a refusal (NOPERM, scripts disabled), not a failure */
	ok = r->type == REDIS_REPLY_INTEGER;
	if (r->type == REDIS_REPLY_ERROR)
		eval_refused = true;
	RedisFreeReplies(1, &r);
	if (eval_refused)
		return release_without_script(key, token);
	return ok;
}

/*-------------------------------------------------------------------------
 *
 * store.c
 *	  The store layer: the only code outside src/redis/ that issues Redis
 *	  commands.  Each operation builds its commands, sends them through the
 *	  client in one round trip, hands the replies to store_reply.c for their
 *	  meaning and returns plain values (store.h).
 *
 * Replies are hiredis objects (malloc'd): none outlives the function that
 * received it, also when something in between raises (PG_FINALLY).  The
 * store counts what it sees in cache_ext's statistics (see
 * count_failures); the client does not.
 *
 * State: the server listener (backend-local, set once from _PG_init).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "portability/instr_time.h"

#include "cache_ext.h"
#include "redis/redis.h"
#include "redis/resp.h"
#include "redis/redis_text.h"
#include "store/store.h"
#include "store/store_internal.h"
#include "store/store_reply.h"

static StoreServerListener server_listener = NULL;
static StoreIdentityFn identity_fn = NULL;
static StoreHomeKeyFn home_key_fn = NULL;

StaticAssertDecl(STORE_ADDR_LEN == REDIS_ADDR_LEN, "store.h and redis.h agree");

/* the identity sequence this backend's connection was made under */
static uint64 conn_identity = 0;

/* the client's failure count already added to cache_stats.errors */
static uint64 failures_seen = 0;

/*
 * The one place where the store turns the client's failures into
 * statistics (cache_stats.errors), called after every exchange and every
 * error reply reported to the client.  The client counts its failures
 * (RedisFailureCount) and never calls up into the statistics.
 */
static void
count_failures(void)
{
	uint64 now = RedisFailureCount();

	if (now != failures_seen)
	{
		CacheStatsAdd(CS_ERRORS, now - failures_seen);
		failures_seen = now;
	}
}

/*
 * A connection the client made for the last exchange: tell the listener
 * (the outbox) its server's run_id, before anyone reads the replies, so
 * that a restarted Redis blocks hits at once.
 */
static void
tell_new_connection(void)
{
	char run_id[RESP_RUN_ID_LEN];
	char addr[REDIS_ADDR_LEN];

	if (RedisTakeNewConnection(run_id, addr) && server_listener != NULL)
		conn_identity = server_listener(run_id[0] ? run_id : NULL, addr);
}

/*
 * StoreExec (store_internal.h): RedisExecTimeout, or RedisExec when
 * timeout_ms is STORE_DEFAULT_TIMEOUT; then count.
 */
bool
StoreExec(int ncmds, RedisCommand *cmds, redisReply **replies,
		  size_t max_reply_bytes, int timeout_ms)
{
	bool ok;

	if (home_key_fn != NULL && RedisClusterMode())
		RedisClusterSetHome(home_key_fn());
	/* made before another process found a new master: not used again */
	if (identity_fn != NULL && RedisConnected() && conn_identity != identity_fn())
		RedisDisconnect();
	if (timeout_ms != STORE_DEFAULT_TIMEOUT)
		ok = RedisExecTimeout(ncmds, cmds, replies, max_reply_bytes, timeout_ms);
	else
		ok = RedisExec(ncmds, cmds, replies, max_reply_bytes);
	PG_TRY();
	{
		tell_new_connection();

		/*
		 * Found during the exchange: the replies may come from the former
		 * master, and a write it took may be lost with it.  Not a failure
		 * of the server: no breaker, the next call reconnects.
		 */
		if (ok && identity_fn != NULL && conn_identity != identity_fn())
		{
			RedisFreeReplies(ncmds, replies);
			ok = false;
			RedisAbandon("the Redis master changed during the call");
		}
	}
	PG_CATCH();
	{
		/* the replies are malloc'd: not left behind by an error */
		if (ok)
			RedisFreeReplies(ncmds, replies);
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (ok)
		CacheStatsAdd(CS_ROUND_TRIPS, 1);
	count_failures();
	return ok;
}

/* The server answered but is not serving: a failure for the client. */
void
StoreReportError(const redisReply *r)
{
	RedisReportError(r->str, r->len);
	count_failures();
}

/* An error reply's text, escaped, at most max bytes (palloc'd). */
char *
StoreErrorText(const redisReply *r, size_t max)
{
	return RedisReplyText(r->str, r->len, max);
}

/*
 * StoreLookupEntry (store.h): GETRANGE [+ PTTL] + MGET, one round trip.
 * The entry's bytes are handed to decode while the reply still holds them
 * (no copy on the hit path).
 */
void
StoreLookupEntry(const char *rkey, char *const *genkeys, int ngens,
				 size_t max_entry_size, bool for_explain, const char *mark_key,
				 char **vals, size_t *lens,
				 StoreDecodeFn decode, void *arg, StoreLookup *out)
{
	RedisCommand cmds[4];
	redisReply *replies[4] = {NULL, NULL, NULL, NULL};
	bool with_ttl = for_explain;
	int ei = mark_key != NULL ? 1 : 0; /* the mark is read first */
	int ncmds = ei + (with_ttl ? 3 : 2);
	int gi = ncmds - 1;
	char endbuf[32];

	memset(out, 0, sizeof(*out));
	out->verdict = STORE_LOOKUP_DOWN;
	out->ttl_ms = -1;
	out->decoded = -1; /* not ENTRY_VALID until decode says so */

	snprintf(endbuf, sizeof(endbuf), "%zu", max_entry_size);
	if (mark_key != NULL)
	{
		/* at most 31 bytes: Redis's bytes are not trusted to be short */
		RedisCommandInit(&cmds[0], "GETRANGE");
		RedisCommandArgStr(&cmds[0], mark_key);
		RedisCommandArgStr(&cmds[0], "0");
		RedisCommandArgStr(&cmds[0], "31");
	}
	RedisCommandInit(&cmds[ei], "GETRANGE");
	RedisCommandArgStr(&cmds[ei], rkey);
	RedisCommandArgStr(&cmds[ei], "0");
	RedisCommandArgStr(&cmds[ei], endbuf);
	if (with_ttl)
	{
		RedisCommandInit(&cmds[ei + 1], "PTTL");
		RedisCommandArgStr(&cmds[ei + 1], rkey);
	}
	RedisCommandInit(&cmds[gi], "MGET");
	for (int i = 0; i < ngens; i++)
		RedisCommandArgStr(&cmds[gi], genkeys[i]);

	if (!StoreExec(ncmds, cmds, replies,
				   max_entry_size + 1024 + 300 * (size_t) ngens, STORE_DEFAULT_TIMEOUT))
		return;

	PG_TRY();
	{
		const redisReply *error;
		const redisReply *g = replies[gi];

		if (mark_key != NULL)
			out->has_mark = StoreReplyMark(replies[0], &out->mark);
		StoreReplyLookup(replies[ei], g, ngens, max_entry_size, out, &error);
		if (error != NULL && for_explain)
		{
			char safe[160];

			RedisSafeText(safe, sizeof(safe), error->str, error->len);
			snprintf(out->error, sizeof(out->error), "Redis answered: %s", safe);
		}
		else if (error != NULL)
			StoreReportError(error);
		else
		{
			if (out->gens != STORE_GENS_INVALID)
			{
				for (int i = 0; i < ngens; i++)
					if (g->element[i]->type == REDIS_REPLY_STRING)
					{
						vals[i] = pnstrdup(g->element[i]->str, g->element[i]->len);
						lens[i] = g->element[i]->len;
					}
			}
			if (with_ttl)
			{
				long long ttl;

				out->has_ttl = StoreReplyInteger(replies[ei + 1], &ttl);
				if (out->has_ttl)
					out->ttl_ms = (int64) ttl;
			}
			if (out->verdict == STORE_LOOKUP_DECODE && decode != NULL)
				out->decoded = decode(replies[ei]->str, replies[ei]->len, arg);
		}
	}
	PG_FINALLY();
	{
		RedisFreeReplies(ncmds, replies);
	}
	PG_END_TRY();
}

/* StoreInitGenerations (store.h): SET NX each, then MGET them all. */
bool
StoreInitGenerations(char *const *keys, const int *which, int nmissing,
					 const char *value, char **vals, size_t *lens)
{
	RedisCommand *cmds;
	redisReply **replies;
	redisReply *r;
	int ncmds = nmissing + 1;
	volatile bool ok = false;

	cmds = palloc(sizeof(RedisCommand) * ncmds);
	replies = palloc0(sizeof(redisReply *) * ncmds);
	for (int j = 0; j < nmissing; j++)
	{
		RedisCommandInit(&cmds[j], "SET");
		RedisCommandArgStr(&cmds[j], keys[which[j]]);
		RedisCommandArg(&cmds[j], value, 32);
		RedisCommandArgStr(&cmds[j], "NX");
	}
	RedisCommandInit(&cmds[nmissing], "MGET");
	for (int j = 0; j < nmissing; j++)
		RedisCommandArgStr(&cmds[nmissing], keys[which[j]]);
	if (!StoreExec(ncmds, cmds, replies, 64 * 1024, STORE_DEFAULT_TIMEOUT))
		return false;

	PG_TRY();
	{
		r = replies[nmissing];
		ok = StoreReplyInitGens(r, nmissing);
		for (int j = 0; ok && j < nmissing; j++)
		{
			vals[which[j]] = pnstrdup(r->element[j]->str, r->element[j]->len);
			lens[which[j]] = r->element[j]->len;
		}
	}
	PG_FINALLY();
	{
		RedisFreeReplies(ncmds, replies);
	}
	PG_END_TRY();
	return ok;
}

/* StorePutEntry (store.h): SET rkey data PX ttl. */
char *
StorePutEntry(const char *rkey, const char *data, size_t len, int64 ttl_ms)
{
	RedisCommand cmd;
	redisReply *reply = NULL;
	char ttlbuf[32];
	char shown[121];
	StoreStatus st;

	snprintf(ttlbuf, sizeof(ttlbuf), INT64_FORMAT, ttl_ms);
	RedisCommandInit(&cmd, "SET");
	RedisCommandArgStr(&cmd, rkey);
	RedisCommandArg(&cmd, data, len);
	RedisCommandArgStr(&cmd, "PX");
	RedisCommandArgStr(&cmd, ttlbuf);
	if (!StoreExec(1, &cmd, &reply, 4096, STORE_DEFAULT_TIMEOUT))
		return psprintf("redis unavailable (%s)", RedisLastError());
	st = StoreReplyWrite(reply);
	if (st == STORE_REFUSED)
		RedisSafeText(shown, sizeof(shown), reply->str, reply->len);
	RedisFreeReplies(1, &reply);
	if (st == STORE_OK)
		return NULL;
	/* the server is up but did not take it: not the client's failure */
	CacheStatsAdd(CS_ERRORS, 1);
	if (st == STORE_REFUSED)
		return psprintf("redis refused it: %s", shown);
	return pstrdup("unexpected reply from redis");
}

/* StoreDeleteEntry (store.h) */
void
StoreDeleteEntry(const char *rkey)
{
	RedisCommand del;
	redisReply *r = NULL;

	RedisCommandInit(&del, "UNLINK");
	RedisCommandArgStr(&del, rkey);
	if (StoreExec(1, &del, &r, 1024, STORE_DEFAULT_TIMEOUT))
		RedisFreeReplies(1, &r);
}

/* StoreBump (store.h): one MSET, with the mark when there is one. */
bool
StoreBump(char *const *keys, int n, const char *value,
		  const char *mark_key, const char *mark_val, int timeout_ms)
{
	RedisCommand cmd[2];
	redisReply *reply[2] = {NULL, NULL};
	const char *why;
	StoreStatus st;
	int nwait = cache_ext_redis_wait_replicas;
	char nbuf[16];
	char tbuf[16];

	if (n == 0 && mark_key == NULL)
		return true;
	if (!RedisUsable(&why))
		return false;
	RedisCommandInit(&cmd[0], "MSET");
	for (int i = 0; i < n; i++)
	{
		RedisCommandArgStr(&cmd[0], keys[i]);
		RedisCommandArg(&cmd[0], value, 32);
	}
	if (mark_key != NULL)
	{
		/* last: the same MSET, so Redis applies the bumps with it */
		RedisCommandArgStr(&cmd[0], mark_key);
		RedisCommandArgStr(&cmd[0], mark_val);
	}

	/*
	 * cache_ext.redis_wait_replicas: the bump counts only when that many
	 * replicas have it, so that a failover to one of them keeps it.  WAIT
	 * gets three quarters of the round trip's time.
	 */
	if (nwait > 0)
	{
		snprintf(nbuf, sizeof(nbuf), "%d", nwait);
		snprintf(tbuf, sizeof(tbuf), "%d",
				 Max(1, (timeout_ms > 0 ? timeout_ms : cache_ext_command_timeout) * 3 / 4));
		RedisCommandInit(&cmd[1], "WAIT");
		RedisCommandArgStr(&cmd[1], nbuf);
		RedisCommandArgStr(&cmd[1], tbuf);
	}
	if (!StoreExec(nwait > 0 ? 2 : 1, cmd, reply, 4096, timeout_ms))
		return false;
	st = StoreReplyWrite(reply[0]);
	if (st == STORE_REFUSED)
		StoreReportError(reply[0]);
	else if (st == STORE_OK && nwait > 0)
	{
		long long acked = -1;

		if (reply[1]->type == REDIS_REPLY_ERROR)
			StoreReportError(reply[1]); /* WAIT refused: not confirmed */
		if (!StoreReplyInteger(reply[1], &acked) || acked < nwait)
		{
			char *msg = psprintf("%lld of the %d replicas asked for (cache_ext.redis_wait_replicas) confirmed the invalidation",
								 Max(acked, 0), nwait);

			RedisNoteFailure(msg);
			st = STORE_REFUSED;
		}
	}
	RedisFreeReplies(nwait > 0 ? 2 : 1, reply);
	return st == STORE_OK;
}

/* StoreSwapToken (store.h): SET key token GET (Redis 6.2). */
StoreStatus
StoreSwapToken(const char *key, const char *token, const char *file_token,
			   StoreTokenPrev *prev)
{
	RedisCommand cmd;
	redisReply *r = NULL;
	const char *why;
	StoreStatus st;

	*prev = STORE_TOKEN_NONE;
	if (!RedisUsable(&why))
		return STORE_UNAVAILABLE;
	RedisCommandInit(&cmd, "SET");
	RedisCommandArgStr(&cmd, key);
	RedisCommandArgStr(&cmd, token);
	RedisCommandArgStr(&cmd, "GET");
	if (!StoreExec(1, &cmd, &r, 4096, STORE_DEFAULT_TIMEOUT))
		return STORE_UNAVAILABLE;
	st = StoreReplyToken(r, token, file_token, prev);
	if (st == STORE_REFUSED)
		StoreReportError(r);
	RedisFreeReplies(1, &r);
	return st;
}

/* StoreLeaseTtl (store.h): PTTL key. */
StoreStatus
StoreLeaseTtl(const char *key, int64 *ttl_ms)
{
	RedisCommand cmd;
	redisReply *r = NULL;
	long long ms;
	StoreStatus st = STORE_OK;

	*ttl_ms = -1;
	RedisCommandInit(&cmd, "PTTL");
	RedisCommandArgStr(&cmd, key);
	if (!StoreExec(1, &cmd, &r, 4096, STORE_DEFAULT_TIMEOUT))
		return STORE_UNAVAILABLE;
	if (StoreReplyInteger(r, &ms))
		*ttl_ms = (int64) ms;
	else
		st = r->type == REDIS_REPLY_ERROR ? STORE_REFUSED : STORE_BAD_REPLY;
	RedisFreeReplies(1, &r);
	return st;
}

/* StoreReadMark (store.h): GETRANGE key 0 31, parsed by StoreReplyMark. */
StoreStatus
StoreReadMark(const char *key, bool *has, uint64 *value)
{
	RedisCommand cmd;
	redisReply *r = NULL;
	StoreStatus st = STORE_OK;

	*has = false;
	*value = 0;
	RedisCommandInit(&cmd, "GETRANGE");
	RedisCommandArgStr(&cmd, key);
	RedisCommandArgStr(&cmd, "0");
	RedisCommandArgStr(&cmd, "31");
	if (!StoreExec(1, &cmd, &r, 4096, STORE_DEFAULT_TIMEOUT))
		return STORE_UNAVAILABLE;
	if (r->type == REDIS_REPLY_ERROR)
		st = STORE_REFUSED;
	else
		*has = StoreReplyMark(r, value);
	RedisFreeReplies(1, &r);
	return st;
}

/* StoreLeaseSet (store.h): SET key token PX px_ms. */
StoreStatus
StoreLeaseSet(const char *key, const char *token, int px_ms, int timeout_ms)
{
	RedisCommand cmd;
	redisReply *r = NULL;
	char pxbuf[16];
	const char *why;
	StoreStatus st;

	if (!RedisUsable(&why))
		return STORE_UNAVAILABLE;
	snprintf(pxbuf, sizeof(pxbuf), "%d", px_ms);
	RedisCommandInit(&cmd, "SET");
	RedisCommandArgStr(&cmd, key);
	RedisCommandArgStr(&cmd, token);
	RedisCommandArgStr(&cmd, "PX");
	RedisCommandArgStr(&cmd, pxbuf);
	if (!StoreExec(1, &cmd, &r, 4096, timeout_ms))
		return STORE_UNAVAILABLE;
	st = StoreReplyWrite(r);
	RedisFreeReplies(1, &r);
	return st;
}

/* StoreLeaseDelete (store.h): UNLINK key. */
StoreStatus
StoreLeaseDelete(const char *key, int timeout_ms, bool *dropped)
{
	RedisCommand cmd;
	redisReply *r = NULL;
	long long n;
	const char *why;

	*dropped = false;
	if (!RedisUsable(&why))
		return STORE_UNAVAILABLE;
	RedisCommandInit(&cmd, "UNLINK");
	RedisCommandArgStr(&cmd, key);
	if (!StoreExec(1, &cmd, &r, 4096, timeout_ms))
		return STORE_UNAVAILABLE;
	*dropped = StoreReplyInteger(r, &n);
	RedisFreeReplies(1, &r);
	return *dropped ? STORE_OK : STORE_BAD_REPLY;
}

/*
 * One purge exchange: on the backend's connection, or with a Redis
 * Cluster on the master being scanned.
 */
static bool
purge_exec(StorePurgeBatch *b, int n, RedisCommand *cmds, redisReply **replies,
		   size_t max_reply_bytes)
{
	bool ok;

	if (b->nnodes == 0)
		return StoreExec(n, cmds, replies, max_reply_bytes, STORE_DEFAULT_TIMEOUT);
	ok = RedisExecAt(b->nodes[b->node], n, cmds, replies, max_reply_bytes);
	if (ok)
		CacheStatsAdd(CS_ROUND_TRIPS, 1);
	count_failures();
	return ok;
}

/*
 * UNLINK the keys of a SCAN reply: one command (one slot per command in a
 * cluster, so one each there), adding what was deleted to b.
 */
static StoreStatus
purge_unlink(StorePurgeBatch *b, const redisReply *keys)
{
	RedisCommand *del = palloc(sizeof(RedisCommand) * keys->elements);
	redisReply **dreply = palloc0(sizeof(redisReply *) * keys->elements); /* note */
	volatile StoreStatus st = STORE_OK;
	int ncmds = 0;

	for (size_t i = 0; i < keys->elements; i++)
	{
		if (keys->element[i]->type != REDIS_REPLY_STRING)
			continue;
		if (ncmds == 0 || b->nnodes > 0)
			RedisCommandInit(&del[ncmds++], "UNLINK");
		RedisCommandArg(&del[ncmds - 1], keys->element[i]->str,
						keys->element[i]->len);
	}
	if (ncmds == 0)
		return STORE_OK;
	if (!purge_exec(b, ncmds, del, dreply, 4096 + 64 * (size_t) ncmds))
	{
		b->problem = pstrdup(RedisLastError());
		return STORE_UNAVAILABLE;
	}
	PG_TRY();
	{
		for (int c = 0; c < ncmds && st == STORE_OK; c++)
		{
			int64 got;

			st = StoreReplyUnlinkCount(dreply[c], keys->elements, &got);
			b->deleted += got;
			b->unlink_failed = st != STORE_OK;
			if (st == STORE_REFUSED)
				b->problem = psprintf("Redis refused UNLINK: %s",
									  StoreErrorText(dreply[c], 150));
			else if (st != STORE_OK)
				b->problem = "unexpected reply to UNLINK";
		}
	}
	PG_FINALLY();
	{
		RedisFreeReplies(ncmds, dreply);
	}
	PG_END_TRY();
	return st;
}

/*
 * StorePurge (store.h): SCAN cursor MATCH pattern COUNT 1000, then UNLINK
 * the keys it gave; never KEYS.
 */
StoreStatus
StorePurge(const char *pattern, StorePurgeBatch *b)
{
	RedisCommand cmd;
	redisReply *reply = NULL;
	const redisReply *keys;
	const char *why;
	volatile StoreStatus st = STORE_BAD_REPLY;

	b->deleted = 0;
	b->problem = NULL;
	b->unlink_failed = false;
	if (!RedisUsable(&why))
	{
		b->problem = why;
		return STORE_UNAVAILABLE;
	}
	if (RedisClusterMode() && b->nnodes == 0)
	{
		b->nodes = palloc(sizeof(*b->nodes) * STORE_PURGE_NODES);
		b->nnodes = RedisClusterMasters(b->nodes, STORE_PURGE_NODES);
		count_failures();
		if (b->nnodes <= 0)
		{
			b->nnodes = 0;
			b->problem = pstrdup(RedisLastError());
			return STORE_UNAVAILABLE;
		}
	}
	RedisCommandInit(&cmd, "SCAN");
	RedisCommandArgStr(&cmd, b->cursor);
	RedisCommandArgStr(&cmd, "MATCH");
	RedisCommandArgStr(&cmd, pattern);
	RedisCommandArgStr(&cmd, "COUNT");
	RedisCommandArgStr(&cmd, "1000");
	if (!purge_exec(b, 1, &cmd, &reply, 16 * 1024 * 1024))
	{
		b->problem = pstrdup(RedisLastError());
		return STORE_UNAVAILABLE;
	}

	/* the UNLINK's arguments point into the SCAN reply: freed after it */
	PG_TRY();
	{
		st = StoreReplyScan(reply, b->cursor, &keys);
		if (st == STORE_REFUSED)
			b->problem = psprintf("Redis refused SCAN: %s", StoreErrorText(reply, 150));
		else if (st != STORE_OK)
			b->problem = "unexpected reply to SCAN";
		else if (keys->elements > 0)
			st = purge_unlink(b, keys);
	}
	PG_FINALLY();
	{
		RedisFreeReplies(1, &reply);
	}
	PG_END_TRY();
	/* a node scanned to its end: the next master, if any */
	if (st == STORE_OK && strcmp(b->cursor, "0") == 0)
		b->done = ++b->node >= b->nnodes;
	return st;
}

/* One INFO field into a palloc'd buffer, or NULL. */
static char *
info_field(const char *info, const char *field)
{
	char *v = palloc(201);

	if (StoreReplyInfoField(info, field, v, 201))
		return v;
	pfree(v);
	return NULL;
}

/*
 * INFO everything: its text (palloc'd, NUL-terminated), or NULL; a refusal
 * goes to h->info_refused.
 */
static char *
fetch_info(StoreHealth *h)
{
	RedisCommand cmd;
	redisReply *reply = NULL;
	char *volatile info = NULL;

	RedisCommandInit(&cmd, "INFO");
	RedisCommandArgStr(&cmd, "everything");
	if (!StoreExec(1, &cmd, &reply, 1024 * 1024, STORE_DEFAULT_TIMEOUT))
		return NULL;
	PG_TRY();
	{
		if (reply->type == REDIS_REPLY_STRING)
			info = pnstrdup(reply->str, reply->len);
		else if (reply->type == REDIS_REPLY_ERROR)
			h->info_refused = StoreErrorText(reply, 80);
	}
	PG_FINALLY();
	{
		RedisFreeReplies(1, &reply);
	}
	PG_END_TRY();
	return info;
}

/*
 * StoreGetHealth (store.h): the connection and breaker, a PING's round
 * trip, and what INFO everything says of the server.
 */
void
StoreGetHealth(StoreHealth *h)
{
	const char *why = NULL;
	char *info = NULL;

	memset(h, 0, sizeof(*h));
	h->rtt_ms = -1;
	h->breaker_open = RedisBreakerOpen(&h->breaker_remaining_ms);
	if (RedisUsable(&why))
	{
		RedisCommand ping;
		redisReply *reply = NULL;
		instr_time t0,
			t1;

		RedisCommandInit(&ping, "PING");
		INSTR_TIME_SET_CURRENT(t0);
		if (StoreExec(1, &ping, &reply, 1024, STORE_DEFAULT_TIMEOUT))
		{
			INSTR_TIME_SET_CURRENT(t1);
			INSTR_TIME_SUBTRACT(t1, t0);
			if (reply->type == REDIS_REPLY_STATUS)
				h->rtt_ms = INSTR_TIME_GET_MILLISEC(t1);
			RedisFreeReplies(1, &reply);

			info = fetch_info(h);
		}
		h->breaker_open = RedisBreakerOpen(&h->breaker_remaining_ms);
	}
	h->connected = RedisConnected();
	if (RedisLastError()[0] != '\0')
		h->last_error = pstrdup(RedisLastError());
	else
		h->last_error = why;
	{
		/* while the breaker is open, the kind of the failure that opened it */
		RedisFailureKind kind = h->breaker_open ? RedisBreakerCause() :
												  RedisLastFailureKind();

		if (kind != REDIS_FAIL_NONE)
			h->last_error_kind = RedisFailureKindName(kind);
	}
	if (info != NULL)
	{
		/* read up to the first NUL, as a C string */
		h->has_info = true;
		h->version = info_field(info, "redis_version");
		h->role = info_field(info, "role");
		h->used_memory = info_field(info, "used_memory");
		h->maxmemory = info_field(info, "maxmemory");
		h->maxmemory_policy = info_field(info, "maxmemory_policy");
		h->aof_enabled = info_field(info, "aof_enabled");
		h->evicted_keys = info_field(info, "evicted_keys");
		h->expired_keys = info_field(info, "expired_keys");
	}
}

/* StoreUsable (store.h) */
bool
StoreUsable(const char **why)
{
	return RedisUsable(why);
}

/* StoreLastError (store.h) */
const char *
StoreLastError(void)
{
	return RedisLastError();
}

/* StoreDropConnection (store.h) */
void
StoreDropConnection(void)
{
	RedisDisconnect();
}

/* StoreMode (store.h) */
const char *
StoreMode(void)
{
	return RedisSentinelMode() ? "sentinel" : RedisClusterMode() ? "cluster" :
																   "single";
}

/* StoreSetHomeKey (store.h) */
void
StoreSetHomeKey(StoreHomeKeyFn fn)
{
	home_key_fn = fn;
}

/* StoreSetServerListener (store.h) */
void
StoreSetServerListener(StoreServerListener fn, StoreIdentityFn identity)
{
	server_listener = fn;
	identity_fn = identity;
	/* with Sentinel the listener hears of a master before it is used */
	RedisSetConnectHook(tell_new_connection);
}

/* StoreClusterNodes (store.h) */
int
StoreClusterNodes(StoreNodeInfo *out, int max)
{
	RedisNodeInfo *r;
	int n;

	if (!RedisClusterMode())
		return 0;
	if (home_key_fn != NULL)
		RedisClusterSetHome(home_key_fn());
	r = palloc(sizeof(RedisNodeInfo) * max);
	n = RedisClusterNodes(r, max);
	count_failures();
	for (int i = 0; i < n; i++)
	{
		memset(&out[i], 0, sizeof(StoreNodeInfo));
		strlcpy(out[i].addr, r[i].addr, sizeof(out[i].addr));
		out[i].master = r[i].master;
		strlcpy(out[i].master_addr, r[i].master_addr, sizeof(out[i].master_addr));
		out[i].slots = r[i].slots;
		out[i].online = r[i].online;
		out[i].used = r[i].used;
		out[i].pinged = r[i].pinged;
		out[i].ping_ms = r[i].ping_ms;
		strlcpy(out[i].error, r[i].error, sizeof(out[i].error));
	}
	pfree(r);
	return n;
}

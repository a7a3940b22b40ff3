/*-------------------------------------------------------------------------
 *
 * client.c
 *	  One Redis connection per backend: connect (TCP, unix socket or TLS,
 *	  then AUTH and SELECT), pipelined command execution through hiredis's
 *	  formatter and reader, reply size limits, and the circuit breaker.
 *
 * State: everything here is backend-local and static.  The connection is
 * usable only when 'conn.connected' is set, which happens after every
 * allocation and the handshake succeeded.  Any failure, and any error
 * thrown while a command is in flight (cancel, statement_timeout), drops
 * the connection entirely (socket, TLS state, descriptor reservation,
 * hiredis reader) so that the next use starts clean; a failure also opens
 * the breaker for cache_ext.retry_interval, during which RedisUsable() says
 * no without touching the network.  A TLS failure (certificate, name,
 * handshake) is a failure like any other: never a retry in plain text.
 *
 * Failures: each one has a kind (RedisFailureKind, see redis.h), taken from
 * the transport (t->failure, decided there from errno and OpenSSL's codes)
 * or decided here (reply too large, invalid RESP, AUTH or SELECT refused,
 * an error reply handed to RedisReportError, bad settings), and a message
 * for people in last_error.  Only the kind is ever tested: an idle
 * connection the server closed or reset (REDIS_FAIL_CLOSED) is retried once
 * on a new one, whatever language lc_messages gives strerror.  Failures are
 * counted in failure_count; this file calls nothing above src/redis/ (it
 * reads cache_ext.h's settings only), so the layer above turns the count
 * into statistics.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>

#include <ctype.h>

#include "common/hashfn.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "cache_ext.h" /* settings only */
#include "redis/client_internal.h"
#include "redis/redis_text.h"

static RedisConn conn = {.transport = {.sock = PGINVALID_SOCKET}};

/* sentinel.c's setting, defined with the TLS settings (tls.c) */
char *cache_ext_sentinel_password_file = NULL;
bool cache_ext_sentinel_hostnames = false;

static TimestampTz breaker_until = 0;
static uint32 breaker_url_hash = 0; /* the URL the breaker opened for */
static bool warned_this_outage = false;
static char last_error[256] = "";

/* the kind of the failure last_error describes */
static RedisFailureKind last_kind = REDIS_FAIL_NONE;

/* the kind of the failure that opened the breaker */
static RedisFailureKind breaker_kind = REDIS_FAIL_NONE;

/* failures so far (fail() calls); the layer above counts the increase */
static uint64 failure_count = 0;

/* replies of the exchange in flight, freed if an interrupt throws */
static redisReply **inflight = NULL;
static int inflight_n = 0;

#define RECV_CHUNK 65536
static char *recv_chunk = NULL; /* in TopMemoryContext, reused */


static bool exec_pipeline(int ncmds, RedisCommand *cmds, redisReply **replies,
						  size_t max_reply_bytes, int timeout_ms, int connect_ms);

void
RedisCommandInit(RedisCommand *cmd, const char *name)
{
	cmd->argc = 0;
	cmd->cap = lengthof(cmd->argv_inline);
	cmd->argv = cmd->argv_inline;
	cmd->argvlen = cmd->argvlen_inline;
	RedisCommandArgStr(cmd, name);
}

void
RedisCommandArg(RedisCommand *cmd, const char *arg, size_t len)
{
	if (cmd->argc == cmd->cap)
	{
		int cap = cmd->cap * 2;
		const char **argv = palloc(sizeof(char *) * cap);
		size_t *argvlen = palloc(sizeof(size_t) * cap);

		memcpy(argv, cmd->argv, sizeof(char *) * cmd->argc);
		memcpy(argvlen, cmd->argvlen, sizeof(size_t) * cmd->argc);
		cmd->argv = argv;
		cmd->argvlen = argvlen;
		cmd->cap = cap;
	}
	cmd->argv[cmd->argc] = arg;
	cmd->argvlen[cmd->argc] = len;
	cmd->argc++;
}

void
RedisCommandArgStr(RedisCommand *cmd, const char *arg)
{
	RedisCommandArg(cmd, arg, strlen(arg));
}

const char *
RedisLastError(void)
{
	return last_error;
}

RedisFailureKind
RedisLastFailureKind(void)
{
	return last_kind;
}

RedisFailureKind
RedisBreakerCause(void)
{
	return breaker_kind;
}

uint64
RedisFailureCount(void)
{
	return failure_count;
}

/* A stable lower-case name of kind, for statistics and logs. */
const char *
RedisFailureKindName(RedisFailureKind kind)
{
	switch (kind)
	{
		case REDIS_FAIL_NONE:
			return "none";
		case REDIS_FAIL_CONFIG:
			return "config";
		case REDIS_FAIL_RESOURCES:
			return "resources";
		case REDIS_FAIL_RESOLVE:
			return "resolve";
		case REDIS_FAIL_REFUSED:
			return "refused";
		case REDIS_FAIL_UNREACHABLE:
			return "unreachable";
		case REDIS_FAIL_TIMEOUT:
			return "timeout";
		case REDIS_FAIL_INTERRUPTED:
			return "interrupted";
		case REDIS_FAIL_TLS_VERIFY:
			return "tls_verify";
		case REDIS_FAIL_TLS:
			return "tls";
		case REDIS_FAIL_CLOSED:
			return "closed";
		case REDIS_FAIL_IO:
			return "io";
		case REDIS_FAIL_PROTOCOL:
			return "protocol";
		case REDIS_FAIL_REPLY_TOO_LARGE:
			return "reply_too_large";
		case REDIS_FAIL_AUTH:
			return "auth";
		case REDIS_FAIL_SERVER_ERROR:
			return "server_error";
		case REDIS_FAIL_BREAKER_OPEN:
			return "breaker_open";
	}
	return "unknown";
}

/* Note a failure of this attempt: its kind, and its message for people. */
static void
set_failure(RedisFailureKind kind, const char *msg)
{
	last_kind = kind;
	if (msg != last_error)
		strlcpy(last_error, msg, sizeof(last_error));
}

/* ClientSetFailure (client_internal.h) */
void
ClientSetFailure(RedisFailureKind kind, const char *fmt, ...)
{
	va_list ap;
	char msg[sizeof(last_error)];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	set_failure(kind, msg);
}

/* ClientClose (client_internal.h) */
void
ClientClose(RedisConn *c)
{
	c->connected = false;
	TransportClose(&c->transport);
	if (c->reader)
	{
		redisReaderFree(c->reader);
		c->reader = NULL;
	}
}

/* Drop the connection and everything it owns; safe to call at any time. */
void
RedisDisconnect(void)
{
	ClientClose(&conn);
	if (conn.url)
	{
		free(conn.url);
		conn.url = NULL;
	}
}

/* RedisAbandon (redis.h) */
void
RedisAbandon(const char *why)
{
	RedisDisconnect();
	set_failure(REDIS_FAIL_SERVER_ERROR, why);
	failure_count++;
}

/* ClientSoftFailure (client_internal.h) */
void
ClientSoftFailure(RedisFailureKind kind, const char *why)
{
	set_failure(kind == REDIS_FAIL_NONE ? REDIS_FAIL_SERVER_ERROR : kind, why);
	failure_count++;
}

/* RedisNoteFailure (redis.h) */
void
RedisNoteFailure(const char *why)
{
	set_failure(REDIS_FAIL_SERVER_ERROR, why);
}

static uint32
url_hash(void)
{
	return hash_bytes((const unsigned char *) cache_ext_redis_url,
					  strlen(cache_ext_redis_url));
}

/*
 * Record the failure in last_kind / last_error: drop the connection, open
 * the breaker, count it and warn once per outage.
 */
static void
fail(void)
{
	RedisDisconnect();
	breaker_until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
												cache_ext_retry_interval);
	breaker_url_hash = url_hash();
	breaker_kind = last_kind;
	failure_count++;
	ereport(DEBUG1,
			(errmsg_internal("cache_ext: Redis failure of kind %s: %s",
							 RedisFailureKindName(last_kind), last_error)));
	if (!warned_this_outage)
	{
		warned_this_outage = true;
		ereport(WARNING,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("cache_ext could not use Redis, so queries run uncached"),
				 errdetail_internal("The error was: %s.", last_error),
				 cache_ext_redis_url && strncmp(cache_ext_redis_url, "rediss://", 9) == 0 ?
					 errhint("Check cache_ext.redis_url, the cache_ext.tls_* settings and the Redis server; cache_ext retries after cache_ext.retry_interval.") :
					 errhint("Check cache_ext.redis_url and the Redis server; cache_ext retries after cache_ext.retry_interval.")));
	}
}

/* ClientOpenBreaker (client_internal.h) */
void
ClientOpenBreaker(void)
{
	fail();
}

/*
 * The server answered, but is not serving (-LOADING, -NOAUTH, -MISCONF,
 * ...): treat it as a failure, so the breaker spares the next calls.
 */
void
RedisReportError(const char *msg, size_t len)
{
	char safe[160];

	RedisSafeText(safe, sizeof(safe), msg, len);
	snprintf(last_error, sizeof(last_error), "Redis answered: %s", safe);
	last_kind = REDIS_FAIL_SERVER_ERROR;
	fail();
}

char *
RedisReplyText(const char *s, size_t len, size_t max)
{
	char *out = palloc(max + 1);

	RedisSafeText(out, max + 1, s, len);
	return out;
}

/* For cache_health(): the connection and breaker state of this backend. */
bool
RedisConnected(void)
{
	return conn.connected;
}

bool
RedisBreakerOpen(int *remaining_ms)
{
	TimestampTz now = GetCurrentTimestamp();

	*remaining_ms = 0;
	if (breaker_until == 0 || cache_ext_redis_url == NULL ||
		breaker_url_hash != url_hash() || now >= breaker_until)
		return false;
	*remaining_ms = (int) TimestampDifferenceMilliseconds(now, breaker_until);
	return true;
}

/*
 * Whether a Redis call may be attempted now.  When it may not, *why says
 * so in a few words for cache_status(), and RedisLastFailureKind() says
 * config or breaker_open (RedisLastError() keeps the failure's message).
 */
bool
RedisUsable(const char **why)
{
	if (cache_ext_redis_url == NULL || cache_ext_redis_url[0] == '\0')
	{
		*why = "redis unavailable (cache_ext.redis_url is not set)";
		last_kind = REDIS_FAIL_CONFIG;
		return false;
	}
	/* the breaker is for the server that failed: a new URL is tried at once */
	if (breaker_until != 0 && breaker_url_hash == url_hash() &&
		GetCurrentTimestamp() < breaker_until)
	{
		*why = "redis unavailable (circuit open after a failure)";
		last_kind = REDIS_FAIL_BREAKER_OPEN;
		return false;
	}
	return true;
}

/* A protocol error; hiredis quotes bytes of the reply in its message. */
static void
reader_error(redisReader *reader)
{
	char safe[200];

	last_kind = REDIS_FAIL_PROTOCOL;
	RedisSafeText(safe, sizeof(safe), reader->errstr,
				  strnlen(reader->errstr, sizeof(reader->errstr)));
	snprintf(last_error, sizeof(last_error), "invalid reply from Redis: %s", safe);
}

/* ClientReceive (client_internal.h) */
bool
ClientReceive(RedisConn *c, int n, redisReply **replies,
			  size_t max_reply_bytes, TimestampTz deadline, bool ready)
{
	char err[200];
	size_t received = 0;
	char *chunk;
	int got = 0;

	memset(replies, 0, n * sizeof(redisReply *));
	inflight = replies;
	inflight_n = n;
	if (recv_chunk == NULL)
		recv_chunk = MemoryContextAlloc(TopMemoryContext, RECV_CHUNK);
	chunk = recv_chunk;
	while (got < n)
	{
		void *reply = NULL;
		ssize_t r;
		RespFeedResult fed;

		if (redisReaderGetReply(c->reader, &reply) != REDIS_OK)
		{
			reader_error(c->reader);
			break;
		}
		if (reply != NULL)
		{
			replies[got++] = (redisReply *) reply;
			continue;
		}
		/* the first read waits, unless the reply is likely there already */
		r = TransportRecv(&c->transport, chunk, RECV_CHUNK,
						  received == 0 && !ready, deadline, err, sizeof(err));
		if (r < 0)
		{
			set_failure(c->transport.failure, err);
			break;
		}
		fed = RespFeed(c->reader, chunk, r, &received, max_reply_bytes);
		if (fed == RESP_TOO_LARGE)
		{
			last_kind = REDIS_FAIL_REPLY_TOO_LARGE;
			snprintf(last_error, sizeof(last_error),
					 "Redis reply exceeds %zu bytes", max_reply_bytes);
			break;
		}
		if (fed == RESP_BAD)
		{
			reader_error(c->reader);
			break;
		}
	}
	inflight = NULL;

	if (got < n)
	{
		RedisFreeReplies(got, replies);
		return false;
	}
	return true;
}

/* ClientDropInflight (client_internal.h) */
void
ClientDropInflight(void)
{
	if (inflight)
		RedisFreeReplies(inflight_n, inflight);
	inflight = NULL;
}

/* Append one command in RESP form to buf. */
static bool
format_command(StringInfo buf, const RedisCommand *cmd)
{
	char *formatted = NULL;
	int len;

	len = redisFormatCommandArgv(&formatted, cmd->argc, (const char **) cmd->argv,
								 cmd->argvlen);
	if (len < 0 || formatted == NULL)
		return false;
	PG_TRY();
	{
		appendBinaryStringInfo(buf, formatted, len);
	}
	PG_FINALLY();
	{
		redisFreeCommand(formatted);
	}
	PG_END_TRY();
	return true;
}

/* ClientSend (client_internal.h) */
bool
ClientSend(RedisConn *c, int n, RedisCommand *cmds, TimestampTz deadline)
{
	StringInfoData buf;
	char err[200];
	bool ok = true;

	initStringInfo(&buf);
	for (int i = 0; i < n && ok; i++)
		ok = format_command(&buf, &cmds[i]);
	if (!ok)
		set_failure(REDIS_FAIL_RESOURCES, "could not format a command");
	else if (!TransportSend(&c->transport, buf.data, buf.len, deadline, err,
							sizeof(err)))
	{
		set_failure(c->transport.failure, err);
		ok = false;
	}
	/* it may have held a password */
	explicit_bzero(buf.data, buf.len);
	pfree(buf.data);
	return ok;
}

/* ClientRun (client_internal.h) */
bool
ClientRun(RedisConn *c, int n, RedisCommand *cmds, redisReply **replies,
		  size_t max_reply_bytes, TimestampTz deadline)
{
	return ClientSend(c, n, cmds, deadline) &&
		ClientReceive(c, n, replies, max_reply_bytes, deadline, false);
}

/*
 * A connection made since the store last asked (RedisTakeNewConnection),
 * its server's run_id ("" when INFO did not say) and address.
 */
static bool new_connection = false;
static char new_run_id[RESP_RUN_ID_LEN];
static char new_addr[REDIS_ADDR_LEN];
static void (*connect_hook)(void) = NULL;

/* Redis Cluster: the slot the pipeline being sent names (cluster.c) */
static int cluster_slot = -1;

/* the failure of the last attempt should not open the breaker (TRYAGAIN) */
static bool soft_failure = false;

/*
 * The reply to INFO server, sent with the first pipeline of a connection
 * (without Sentinel): note the server's run_id for the store to take.
 * INFO may be refused to an ACL user; then restarts go unnoticed.
 */
static void
report_run_id(redisReply *info)
{
	(void) RespRunId(info, new_run_id);
	strlcpy(new_addr, conn.addr, sizeof(new_addr));
	new_connection = true;
}

bool
RedisTakeNewConnection(char *run_id, char *addr)
{
	if (!new_connection)
		return false;
	new_connection = false;
	strlcpy(run_id, new_run_id, RESP_RUN_ID_LEN);
	strlcpy(addr, new_addr, REDIS_ADDR_LEN);
	return true;
}

void
RedisSetConnectHook(void (*hook)(void))
{
	connect_hook = hook;
}

bool
RedisSentinelMode(void)
{
	return cache_ext_redis_url != NULL &&
		(strncmp(cache_ext_redis_url, "redis-sentinel://", 17) == 0 ||
		 strncmp(cache_ext_redis_url, "rediss-sentinel://", 18) == 0);
}

/* ClientErrorReply (client_internal.h) */
bool
ClientErrorReply(const redisReply *r, const char *what)
{
	char safe[160];

	if (r->type != REDIS_REPLY_ERROR)
		return false;
	/* the error text of AUTH never contains the password */
	RedisSafeText(safe, sizeof(safe), r->str, r->len);
	ClientSetFailure(strcmp(what, "AUTH") == 0 ? REDIS_FAIL_AUTH : REDIS_FAIL_SERVER_ERROR,
					 "%s failed: %s", what, safe);
	return true;
}

/* ClientOpen (client_internal.h) */
bool
ClientOpen(RedisConn *c, const RedisEndpoint *ep, TimestampTz deadline)
{
	char err[200];

	c->reader = redisReaderCreate();
	if (c->reader == NULL)
	{
		set_failure(REDIS_FAIL_RESOURCES, "out of memory");
		return false;
	}
	RespLimitArrays(c->reader);
	if (ep->kind == REDIS_EP_UNIX)
		c->addr[0] = '\0';
	else if (strchr(ep->host, ':') != NULL)
		snprintf(c->addr, sizeof(c->addr), "[%s]:%d", ep->host, ep->port);
	else
		snprintf(c->addr, sizeof(c->addr), "%s:%d", ep->host, ep->port);
	if (!TransportConnect(&c->transport, ep, deadline, err, sizeof(err)))
	{
		if (ep->kind == REDIS_EP_UNIX)
			ClientSetFailure(c->transport.failure, "%s (socket \"%s\")", err,
							 ep->path);
		else
			ClientSetFailure(c->transport.failure, "%s (%s)", err, c->addr);
		return false;
	}
	return true;
}

/*
 * Open the connection: through Sentinel, or to the URL's server with AUTH
 * and SELECT as it asks.
 */
static bool
connect_redis(int timeout_ms)
{
	RedisEndpoint ep;
	char *perr;
	TimestampTz deadline;
	RedisCommand cmds[2];
	redisReply *replies[2];
	char *password = NULL;
	int n = 0;
	bool ok;

	perr = RedisParseUrl(cache_ext_redis_url, &ep);
	if (perr)
	{
		ClientSetFailure(REDIS_FAIL_CONFIG, "invalid cache_ext.redis_url: %s",
						 perr);
		return false;
	}
	conn.url = strdup(cache_ext_redis_url);
	if (conn.url == NULL)
	{
		set_failure(REDIS_FAIL_RESOURCES, "out of memory");
		return false;
	}
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	conn.sentinel = ep.nsentinels > 0;
	conn.cluster = ep.nseeds > 0;
	if (conn.cluster)
	{
		if (!ClusterConnect(&conn, &ep, cluster_slot, deadline, new_run_id))
			return false;
		strlcpy(new_addr, conn.addr, sizeof(new_addr));
		new_connection = true;
		return true;
	}
	if (conn.sentinel)
	{
		if (!SentinelConnect(&conn, &ep, deadline, new_run_id))
			return false;
		strlcpy(new_addr, conn.addr, sizeof(new_addr));
		new_connection = true;
		return true;
	}

	if (!ClientOpen(&conn, &ep, deadline))
		return false;
	if (!ClientAuthCommand(cmds, &n, ep.user, ep.password,
						   cache_ext_redis_password_file,
						   "cache_ext.redis_password_file", &password))
		return false;
	if (ep.db != 0)
	{
		RedisCommandInit(&cmds[n], "SELECT");
		RedisCommandArgStr(&cmds[n], psprintf("%d", ep.db));
		n++;
	}
	if (n == 0)
		return true;

	ok = ClientRun(&conn, n, cmds, replies, 65536, deadline);
	if (password)
		explicit_bzero(password, strlen(password));
	if (!ok)
		return false;
	for (int i = 0; i < n && ok; i++)
		if (ClientErrorReply(replies[i], cmds[i].argv[0]))
			ok = false;
	RedisFreeReplies(n, replies);
	return ok;
}

/*
 * Run ncmds commands as one pipeline (one round trip) and return their
 * replies in replies[], which the caller frees with RedisFreeReplies.
 *
 * Returns false when Redis could not be used: the connection is dropped,
 * the breaker opened, replies[] holds nothing, RedisLastError() says why.
 * Error replies (REDIS_REPLY_ERROR) are returned as replies: the command
 * failed, not the connection.  The total reply size is limited to
 * max_reply_bytes: a larger reply is not read (the connection is dropped).
 * Throws only on interrupts (cancel, statement_timeout), after dropping the
 * connection.
 */
bool
RedisExec(int ncmds, RedisCommand *cmds, redisReply **replies,
		  size_t max_reply_bytes)
{
	return exec_pipeline(ncmds, cmds, replies, max_reply_bytes,
						 cache_ext_command_timeout, cache_ext_connect_timeout);
}

/*
 * RedisExec where timeout_ms bounds connecting too (each step): for
 * the commit-time bumps, which hold the transaction's locks.
 */
bool
RedisExecTimeout(int ncmds, RedisCommand *cmds, redisReply **replies,
				 size_t max_reply_bytes, int timeout_ms)
{
	return exec_pipeline(ncmds, cmds, replies, max_reply_bytes, timeout_ms,
						 Min(timeout_ms, cache_ext_connect_timeout));
}

/*
 * With Sentinel: whether the replies say that the server is not the
 * master any more (ROLE, sent first on a connection made earlier, or an
 * error such as READONLY): then they are freed, the failure noted, and
 * the caller asks the sentinels again.
 */
static bool
moved_master(redisReply **all, int n, bool role_first)
{
	if (role_first && RespRoleIsMaster(all[0]) != 1)
	{
		ClientSetFailure(REDIS_FAIL_SERVER_ERROR,
						 "%s is no longer the Redis master", conn.addr);
		RedisFreeReplies(n, all);
		return true;
	}
	for (int i = role_first ? 1 : 0; i < n; i++)
		if (RespNotMaster(all[i]))
		{
			char safe[120];

			RedisSafeText(safe, sizeof(safe), all[i]->str, all[i]->len);
			ClientSetFailure(REDIS_FAIL_SERVER_ERROR,
							 "%s is no longer the Redis master: it answered %s",
							 conn.addr, safe);
			RedisFreeReplies(n, all);
			return true;
		}
	return false;
}

/*
 * One attempt at a pipeline: connect if needed (then *fresh), send, read.
 * Returns false with last_kind and last_error set (*moved when the server
 * is no longer the master); throws only on interrupts.
 *
 * One command goes first when needed: INFO server on a new connection
 * made without Sentinel (has the server restarted?), ROLE on an older
 * connection made through Sentinel (is it still the master?).
 */
static bool
exec_once(int ncmds, RedisCommand *cmds, redisReply **replies,
		  size_t max_reply_bytes, int timeout_ms, int connect_ms,
		  bool *fresh_out, bool *moved)
{
	bool ok = false;
	volatile bool fresh = false;
	redisReply **volatile all = replies;
	volatile int extra = 0;

	*moved = false;
	*fresh_out = false;
	/* a new URL, or new TLS settings, apply from the next call */
	if (conn.connected && (strcmp(conn.url, cache_ext_redis_url) != 0 || TransportStale(&conn.transport)))
		RedisDisconnect();
	/* Redis Cluster: to the master of the slot the commands name */
	if (RedisClusterMode())
	{
		if (!ClusterPipelineSlot(ncmds, cmds, &cluster_slot))
			return false;
		if (conn.connected && !ClusterServes(&conn, cluster_slot))
			RedisDisconnect();
	}

	PG_TRY();
	{
		if (!conn.connected)
		{
			ok = connect_redis(connect_ms);
			conn.connected = ok;
			fresh = ok;
			/* Sentinel: the master is known before any command reaches it */
			if (ok && new_connection && connect_hook != NULL)
				connect_hook();
		}
		else
			ok = true;

		if (ok)
		{
			RedisCommand *run = cmds;

			/* a cluster connection's INFO was in its handshake */
			if (!conn.cluster && fresh != conn.sentinel)
			{
				extra = 1;
				run = palloc(sizeof(RedisCommand) * (ncmds + 1));
				RedisCommandInit(&run[0], conn.sentinel ? "ROLE" : "INFO");
				if (!conn.sentinel)
					RedisCommandArgStr(&run[0], "server");
				/* the copies' argv point into the originals, still alive */
				memcpy(&run[1], cmds, sizeof(RedisCommand) * ncmds);
				all = palloc(sizeof(redisReply *) * (ncmds + 1));
			}
			ok = ClientRun(&conn, ncmds + extra, run, all,
						   max_reply_bytes + (extra ? 65536 : 0),
						   TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   timeout_ms));
			if (ok && conn.sentinel)
				*moved = moved_master(all, ncmds + extra, extra == 1);
			if (ok && conn.cluster)
				ok = ClusterCheckReplies(&conn, ncmds, cmds, all, max_reply_bytes,
										 TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
																	 timeout_ms),
										 moved, &soft_failure);
			ok = ok && !*moved;
			if (ok && extra)
			{
				memcpy(replies, all + 1, sizeof(redisReply *) * ncmds);
				if (!conn.sentinel)
					report_run_id(all[0]);
				RedisFreeReplies(1, all);
			}
		}
	}
	PG_CATCH();
	{
		ClientDropInflight();
		RedisDisconnect();
		PG_RE_THROW();
	}
	PG_END_TRY();
	*fresh_out = fresh;
	return ok;
}

/*
 * A call: with a Redis Cluster whose commands live on several masters,
 * split by cluster_side.c; else on the backend's connection.
 */
static bool
exec_pipeline(int ncmds, RedisCommand *cmds, redisReply **replies,
			  size_t max_reply_bytes, int timeout_ms, int connect_ms)
{
	if (RedisClusterMode() && ClusterNeedsSides(ncmds, cmds))
		return ClusterExecSpread(ncmds, cmds, replies, max_reply_bytes,
								 timeout_ms, connect_ms);
	return ClientExecHome(ncmds, cmds, replies, max_reply_bytes, timeout_ms,
						  connect_ms);
}

/* ClientExecHome (client_internal.h) */
bool
ClientExecHome(int ncmds, RedisCommand *cmds, redisReply **replies,
			   size_t max_reply_bytes, int timeout_ms, int connect_ms)
{
	bool fresh;
	bool moved;
	bool ok;

	soft_failure = false;
	ok = exec_once(ncmds, cmds, replies, max_reply_bytes, timeout_ms,
				   connect_ms, &fresh, &moved);

	/*
	 * A connection that had been idle may have been closed or reset by the
	 * server (Redis's "timeout" setting, a firewall), and this command was
	 * the first to find out: try once more on a new one.  So too when the
	 * server is no longer the master (Sentinel): the new connection asks
	 * the sentinels where it is now.  A command may then run twice: reads,
	 * SET NX, MSET of fresh values, SET PX and UNLINK give the same state
	 * either way; the one command whose reply says what it replaced (the
	 * incarnation token's SET ... GET) reads back its own value on the
	 * second run, which the store treats as "unknown" and the outbox as a
	 * mismatch (store_reply.c, StoreReplyToken).
	 */
	if (!ok && ((!fresh && last_kind == REDIS_FAIL_CLOSED) || moved))
	{
		RedisDisconnect();
		soft_failure = false;
		ok = exec_once(ncmds, cmds, replies, max_reply_bytes, timeout_ms,
					   connect_ms, &fresh, &moved);
	}
	if (!ok && soft_failure)
	{
		/* the cluster is serving, the call could not be: no breaker */
		RedisDisconnect();
		failure_count++;
		return false;
	}
	if (!ok)
	{
		fail();
		return false;
	}
	warned_this_outage = false;
	breaker_until = 0;
	return true;
}

void
RedisFreeReplies(int n, redisReply **replies)
{
	for (int i = 0; i < n; i++)
	{
		if (replies[i])
			freeReplyObject(replies[i]);
		replies[i] = NULL;
	}
}

/* ClientIsNumericAddress (client_internal.h) */
bool
ClientIsNumericAddress(const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, buf) == 1 ||
		inet_pton(AF_INET6, host, buf) == 1;
}

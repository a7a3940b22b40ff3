/*-------------------------------------------------------------------------
 *
 * sentinel.c
 *	  Finding the Redis master through Sentinel, as Redis documents for
 *	  clients: ask the sentinels in turn (a short timeout each) for the
 *	  master's address (SENTINEL get-master-addr-by-name), connect to it,
 *	  and accept it only when ROLE says it is the master; otherwise pause
 *	  and ask again, until the connection's deadline.
 *
 * This runs at every new connection of the backend (client.c), so every
 * reconnection asks the sentinels again; a connection made here is
 * checked again by client.c before each later pipeline (ROLE first, and
 * READONLY / MASTERDOWN / LOADING replies), because a demoted master
 * keeps answering reads.
 *
 * State: 'first', the sentinel that answered last, asked first next time
 * (backend-local).  Sentinel connections live only within one call.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "redis/client_internal.h"

/* the longest wait for one sentinel's answer */
#define SENTINEL_ASK_MS 250

/* the pause before asking again when no answer led to a master */
#define SENTINEL_PAUSE_MS 100

static int first = 0;

/*
 * ask_sentinel's exchange on the open connection s; *password receives
 * the AUTH password for the caller to wipe.
 */
static bool
ask_on(RedisConn *s, const RedisEndpoint *ep, TimestampTz deadline,
	   char *host, int *port, char **password)
{
	RedisCommand cmds[2];
	/* not on the stack: a cancel mid-exchange frees what it holds later */
	redisReply **replies = palloc0(sizeof(redisReply *) * 2);
	int n = 0;
	int got = 0;

	/* AUTH needs a password: a user alone would be ignored in silence */
	if (ep->sentinel_user != NULL &&
		(cache_ext_sentinel_password_file == NULL ||
		 cache_ext_sentinel_password_file[0] == '\0'))
	{
		ClientSetFailure(REDIS_FAIL_CONFIG,
						 "sentinel_user=%s needs cache_ext.sentinel_password_file",
						 ep->sentinel_user);
		return false;
	}
	if (!ClientAuthCommand(cmds, &n, ep->sentinel_user, NULL,
						   cache_ext_sentinel_password_file,
						   "cache_ext.sentinel_password_file", password))
		return false;
	RedisCommandInit(&cmds[n], "SENTINEL");
	RedisCommandArgStr(&cmds[n], "get-master-addr-by-name");
	RedisCommandArgStr(&cmds[n], ep->master_name);
	n++;
	if (!ClientRun(s, n, cmds, replies, 65536, deadline))
		return false;
	if (ClientErrorReply(replies[0], cmds[0].argv[0]) ||
		ClientErrorReply(replies[n - 1], "SENTINEL get-master-addr-by-name"))
		ClientSetFailure(RedisLastFailureKind(), "sentinel %s: %s",
						 s->addr, RedisLastError());
	else if ((got = RespMasterAddr(replies[n - 1], host, 256, port)) == 0)
		ClientSetFailure(REDIS_FAIL_CONFIG,
						 "sentinel %s does not know a master named \"%s\"",
						 s->addr, ep->master_name);
	else if (got < 0)
		ClientSetFailure(REDIS_FAIL_PROTOCOL,
						 "sentinel %s gave an unexpected reply to SENTINEL get-master-addr-by-name",
						 s->addr);
	else if (!cache_ext_sentinel_hostnames && !ClientIsNumericAddress(host))
	{
		/* getaddrinfo() waits for the resolver without bound (review15 F4) */
		ClientSetFailure(REDIS_FAIL_CONFIG,
						 "sentinel %s answered a host name, not an address (set cache_ext.sentinel_hostnames to resolve names)",
						 s->addr);
		got = 0;
	}
	RedisFreeReplies(n, replies);
	return got == 1;
}

/*
 * Ask sentinel i of ep for the master's address: true with host (256
 * bytes) and *port, else false with the failure noted.  The connection
 * lives only within the call, also when an interrupt throws.
 */
static bool
ask_sentinel(const RedisEndpoint *ep, int i, TimestampTz deadline,
			 char *host, int *port)
{
	RedisConn s = {.transport = {.sock = PGINVALID_SOCKET}};
	RedisEndpoint sep;
	char *password = NULL;
	bool ok;

	memset(&sep, 0, sizeof(sep));
	sep.kind = ep->kind;
	sep.host = ep->sentinel_host[i];
	sep.port = ep->sentinel_port[i];
	PG_TRY();
	{
		ok = ClientOpen(&s, &sep, deadline) &&
			ask_on(&s, ep, deadline, host, port, &password);
	}
	PG_CATCH();
	{
		ClientClose(&s);
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (password)
		explicit_bzero(password, strlen(password));
	ClientClose(&s);
	return ok;
}

/*
 * Connect c to host:port as the data node of ep: AUTH, SELECT, ROLE and
 * INFO server in one round trip.  True when ROLE says master (run_id then
 * holds INFO's run_id, or "" when INFO was refused); else false with the
 * failure noted and c closed.
 */
static bool
connect_master(RedisConn *c, RedisEndpoint *ep, const char *host, int port,
			   TimestampTz deadline, char *run_id)
{
	RedisCommand cmds[4];
	char *password = NULL;
	int n = 0;
	int is_master;
	bool refused;

	ep->host = pstrdup(host);
	ep->port = port;
	if (!ClientOpen(c, ep, deadline) ||
		!ClientAuthCommand(cmds, &n, ep->user, ep->password,
						   cache_ext_redis_password_file,
						   "cache_ext.redis_password_file", &password))
	{
		ClientClose(c);
		return false;
	}
	if (ep->db != 0)
	{
		RedisCommandInit(&cmds[n], "SELECT");
		RedisCommandArgStr(&cmds[n], psprintf("%d", ep->db));
		n++;
	}
	if (!ClientMasterHandshake(c, cmds, n, password, deadline, run_id,
							   &is_master, &refused))
		return false;
	if (is_master != 1)
	{
		/* a refused ROLE cannot prove it is the master: fail closed */
		ClientSetFailure(REDIS_FAIL_SERVER_ERROR,
						 "%s, named by the sentinels as master \"%s\", %s",
						 c->addr, ep->master_name,
						 refused ?
							 "refused ROLE, so it cannot be shown to be the master" :
							 "is not the master (yet)");
		ClientClose(c);
		return false;
	}
	return true;
}

/* Wait ms (not past deadline), interruptibly; false when deadline passed. */
static bool
pause_until(TimestampTz deadline, int ms)
{
	long left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);

	if (left <= 0)
		return false;
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 Min(left, ms), PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
	return true;
}

/* SentinelConnect (client_internal.h) */
bool
SentinelConnect(RedisConn *c, RedisEndpoint *ep, TimestampTz deadline,
				char *run_id)
{
	char host[256];
	int port;

	run_id[0] = '\0';
	for (;;)
	{
		/*
		 * One round: every sentinel in turn, from the one whose answer was
		 * verified last.  An answer that does not verify (a replica, a port
		 * that is not Redis, an address that never answers) moves on to
		 * the next sentinel, as a silent sentinel does: one wrong sentinel
		 * must not keep the cache off.  Each master gets at most half of
		 * the time left, so that the others can still be tried.
		 */
		for (int k = 0; k < ep->nsentinels; k++)
		{
			int i = (first + k) % ep->nsentinels;
			TimestampTz now = GetCurrentTimestamp();
			long left = TimestampDifferenceMilliseconds(now, deadline);

			if (left <= 0)
				break;
			if (!ask_sentinel(ep, i, Min(deadline, TimestampTzPlusMilliseconds(now, SENTINEL_ASK_MS)),
							  host, &port))
				continue;
			if (connect_master(c, ep, host, port,
							   TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														   Max(left / 2, Min(left, SENTINEL_ASK_MS))),
							   run_id))
			{
				first = i;
				return true;
			}
		}
		/* nobody named a master that is one (yet): a failover in progress */
		if (!pause_until(deadline, SENTINEL_PAUSE_MS))
			break;
	}
	ClientSetFailure(RedisLastFailureKind(),
					 "found no master \"%s\" through Sentinel in time: %s",
					 ep->master_name, RedisLastError());
	return false;
}

/*-------------------------------------------------------------------------
 *
 * cluster.c
 *	  Redis Cluster routing for client.c (redis-cluster://, 0.8): which
 *	  hash slot a pipeline names, the slot map (CLUSTER SHARDS, else
 *	  CLUSTER SLOTS, asked of the seeds in turn at every new connection),
 *	  connecting to the master that serves the slot, and what a node's
 *	  redirect replies ask (docs/store.md, "Redis Cluster").
 *
 * Every key cache_ext writes for one database carries that database's
 * hash tag (keys.c), so every pipeline names one slot and goes to one
 * master over the backend's one connection, as with a single Redis.
 * Redirects:
 *	 MOVED			when nothing of the pipeline ran there, the caller drops
 *					the connection and tries once more, which fetches a new
 *					map; otherwise the call fails (the breaker stays closed);
 *	 ASK			the commands that got it run once more on the node named,
 *					each after ASKING, over a connection of that call only;
 *	 TRYAGAIN		the call fails without opening the breaker (a migration
 *					split a multi-key command's keys);
 *	 CLUSTERDOWN	the call fails and opens the breaker.
 * Reads go to masters only (no READONLY): a replica answers MOVED.
 *
 * Reply arrays are palloc'd, never on the stack: if an interrupt throws
 * while they fill, client.c's error path frees what they hold after this
 * file's frames are gone ("note" below).
 *
 * State (backend-local, static, touched only by the backend itself): the
 * slot map (in TopMemoryContext, 344 kB, built into a spare copy and
 * swapped in only once it parsed), and the home slot, where pipelines
 * naming no key go: that of the outbox target's keys, which the store sets
 * before each call (RedisClusterSetHome).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "cache_ext.h" /* settings only */
#include "redis/client_internal.h"
#include "redis/cluster_map.h"
#include "redis/redis_text.h"

/* the longest wait for one seed's slot map */
#define CLUSTER_ASK_MS 250

/* what a slot map may take: 1024 nodes with their fields */
#define CLUSTER_MAP_REPLY_MAX (4 * 1024 * 1024)

static ClusterMap *map = NULL;	 /* the map in use, or NULL */
static ClusterMap *spare = NULL; /* where the next one is built */
static int home_slot = -1;

bool
RedisClusterMode(void)
{
	return CeClusterUrl(cache_ext_redis_url);
}

static bool
cmd_is(const RedisCommand *cmd, const char *name)
{
	return cmd->argvlen[0] == strlen(name) &&
		pg_strncasecmp(cmd->argv[0], name, cmd->argvlen[0]) == 0;
}

/* Note the slot of key k (len bytes) in *slot; false when it differs. */
static bool
same_slot(const char *k, size_t len, int *slot)
{
	int s = ClusterKeySlot(k, len);

	if (*slot >= 0 && *slot != s)
		return false;
	*slot = s;
	return true;
}

/*
 * The keys of one command, as the commands the store sends place them:
 * every argument of MGET, UNLINK, DEL, EXISTS; every other one of MSET;
 * EVAL's numkeys after the script; SCAN's MATCH pattern (which keeps the
 * database's tag); none for commands that name no key; else the first
 * argument.  False when two keys are in different slots.
 */
static bool
command_slot(const RedisCommand *cmd, int *slot)
{
	static const char *const keyless[] = {
		"PING", "INFO", "WAIT", "ROLE", "ASKING", "AUTH", "SELECT", "CLUSTER",
		"CLIENT", "HELLO", "ECHO", "TIME", "DBSIZE", "SENTINEL"};
	bool ok = true;

	for (int i = 0; i < lengthof(keyless); i++)
		if (cmd_is(cmd, keyless[i]))
			return true;
	if (cmd->argc < 2)
		return true;
	if (cmd_is(cmd, "MGET") || cmd_is(cmd, "UNLINK") || cmd_is(cmd, "DEL") ||
		cmd_is(cmd, "EXISTS"))
	{
		for (int i = 1; i < cmd->argc && ok; i++)
			ok = same_slot(cmd->argv[i], cmd->argvlen[i], slot);
	}
	else if (cmd_is(cmd, "MSET"))
	{
		for (int i = 1; i < cmd->argc && ok; i += 2)
			ok = same_slot(cmd->argv[i], cmd->argvlen[i], slot);
	}
	else if (cmd_is(cmd, "EVAL") || cmd_is(cmd, "EVALSHA"))
	{
		int nkeys = cmd->argc >= 3 ? atoi(pnstrdup(cmd->argv[2], cmd->argvlen[2])) : 0;

		for (int i = 3; i < 3 + nkeys && i < cmd->argc && ok; i++)
			ok = same_slot(cmd->argv[i], cmd->argvlen[i], slot);
	}
	else if (cmd_is(cmd, "SCAN"))
	{
		for (int i = 2; i + 1 < cmd->argc && ok; i++)
			if (cmd->argvlen[i] == 5 && pg_strncasecmp(cmd->argv[i], "MATCH", 5) == 0)
				ok = same_slot(cmd->argv[i + 1], cmd->argvlen[i + 1], slot);
	}
	else
		ok = same_slot(cmd->argv[1], cmd->argvlen[1], slot);
	return ok;
}

/* ClusterCommandSlot (client_internal.h) */
int
ClusterCommandSlot(const RedisCommand *cmd)
{
	int slot = -1;

	return command_slot(cmd, &slot) ? slot : -2;
}

/* ClusterHomeSlot (client_internal.h) */
int
ClusterHomeSlot(int n, const RedisCommand *cmds)
{
	if (home_slot >= 0)
		return home_slot;
	for (int i = 0; i < n; i++)
	{
		int s = ClusterCommandSlot(&cmds[i]);

		if (s >= 0)
			return s;
	}
	return -1;
}

/* ClusterPipelineSlot (client_internal.h) */
bool
ClusterPipelineSlot(int n, const RedisCommand *cmds, int *slot)
{
	int home = -1;

	*slot = -1;
	for (int i = 0; i < n; i++)
	{
		int s = ClusterCommandSlot(&cmds[i]);

		if (s == -2)
		{
			ClientSetFailure(REDIS_FAIL_CONFIG,
							 "a command of one call names keys of several Redis Cluster hash slots");
			return false;
		}
		if (s < 0 || s == *slot)
			continue;
		if (*slot < 0)
			*slot = s;
		/* another slot of the same master (cluster_side.c routes them so) */
		else if (map == NULL || ClusterMapMaster(map, s) < 0 ||
				 ClusterMapMaster(map, s) != ClusterMapMaster(map, *slot))
		{
			ClientSetFailure(REDIS_FAIL_CONFIG,
							 "the commands of one call name keys of several Redis Cluster masters");
			return false;
		}
	}
	home = ClusterHomeSlot(n, cmds);
	if (*slot < 0 || (home >= 0 && map != NULL && ClusterMapMaster(map, home) == ClusterMapMaster(map, *slot)))
		*slot = home;
	return true;
}

/* ClusterMapInUse (client_internal.h) */
const ClusterMap *
ClusterMapInUse(void)
{
	return map;
}

/* RedisClusterSetHome (redis.h) */
void
RedisClusterSetHome(const char *key)
{
	home_slot = key ? ClusterKeySlot(key, strlen(key)) : -1;
}

/*
 * Open c to host:port with ep's kind and credentials and append AUTH (if
 * any) to cmds[*n]; *password is for the caller to wipe.  A host name a
 * node announced is resolved only with cache_ext.sentinel_hostnames
 * (getaddrinfo waits without bound); the seeds are the URL's own.
 */
static bool
open_node(RedisConn *c, const RedisEndpoint *ep, const char *host, int port,
		  bool from_url, TimestampTz deadline, RedisCommand *cmds, int *n,
		  char **password)
{
	RedisEndpoint nep = *ep;

	*password = NULL;
	if (!from_url && !cache_ext_sentinel_hostnames && !ClientIsNumericAddress(host))
	{
		ClientSetFailure(REDIS_FAIL_CONFIG,
						 "a Redis Cluster node is announced as \"%s\", a host name, not an address (set cache_ext.sentinel_hostnames to resolve names)",
						 host);
		return false;
	}
	nep.host = unconstify(char *, host);
	nep.port = port;
	if (!ClientOpen(c, &nep, deadline))
		return false;
	return ClientAuthCommand(cmds, n, ep->user, ep->password,
							 cache_ext_redis_password_file,
							 "cache_ext.redis_password_file", password);
}

/*
 * Ask one node for the slot map into spare: true when it gave one that
 * parsed (CLUSTER SHARDS preferred, CLUSTER SLOTS before Redis 7).
 */
static bool
map_from(const RedisEndpoint *ep, const char *host, int port, bool from_url,
		 TimestampTz deadline)
{
	RedisConn s = {.transport = {.sock = PGINVALID_SOCKET}};
	RedisCommand cmds[3];
	redisReply **replies = palloc0(sizeof(redisReply *) * 3); /* note */
	char *password = NULL;
	char err[CLUSTER_ERR_LEN];
	int n = 0;
	volatile bool ok = false;

	PG_TRY();
	{
		if (open_node(&s, ep, host, port, from_url, deadline, cmds, &n, &password))
		{
			RedisCommandInit(&cmds[n], "CLUSTER");
			RedisCommandArgStr(&cmds[n++], "SHARDS");
			RedisCommandInit(&cmds[n], "CLUSTER");
			RedisCommandArgStr(&cmds[n++], "SLOTS");
			ok = ClientRun(&s, n, cmds, replies, CLUSTER_MAP_REPLY_MAX, deadline);
		}
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
	if (!ok)
		return false;
	if (n == 3 && ClientErrorReply(replies[0], "AUTH"))
		ok = false;
	else if (!ClusterMapFromShards(replies[n - 2], host, ep->kind == REDIS_EP_TLS,
								   spare, err, sizeof(err)) &&
			 !ClusterMapFromSlots(replies[n - 1], host, spare, err, sizeof(err)))
	{
		ClientSetFailure(REDIS_FAIL_PROTOCOL,
						 "%s:%d gave no usable Redis Cluster slot map: %s",
						 host, port, err);
		ok = false;
	}
	RedisFreeReplies(n, replies);
	return ok;
}

/*
 * Fetch the slot map: the seeds in turn, then the nodes of the map held,
 * each with a short deadline.  True with map replaced.
 */
static bool
fetch_map(const RedisEndpoint *ep, TimestampTz deadline)
{
	ClusterMap *old = map;
	int ncand = ep->nseeds + (old ? old->nnodes : 0);

	if (spare == NULL)
		spare = MemoryContextAllocHuge(TopMemoryContext, sizeof(ClusterMap));
	for (int i = 0; i < ncand; i++)
	{
		TimestampTz now = GetCurrentTimestamp();
		bool seed = i < ep->nseeds;
		const char *host = seed ? ep->seed_host[i] : old->nodes[i - ep->nseeds].host;
		int port = seed ? ep->seed_port[i] : old->nodes[i - ep->nseeds].port;

		if (now >= deadline)
			break;
		if (!seed && old->nodes[i - ep->nseeds].unknown_endpoint)
			continue;
		if (map_from(ep, host, port, seed,
					 Min(deadline, TimestampTzPlusMilliseconds(now, CLUSTER_ASK_MS))))
		{
			map = spare;
			spare = old;
			return true;
		}
	}
	ClientSetFailure(RedisLastFailureKind(),
					 "no Redis Cluster seed gave a slot map in time: %s",
					 RedisLastError());
	return false;
}

/* The master serving slot (or, for -1, any slot), or -1. */
static int
master_of(int slot)
{
	if (slot >= 0)
		return ClusterMapMaster(map, slot);
	for (int s = 0; s < CLUSTER_NSLOTS; s++)
		if (ClusterMapMaster(map, s) >= 0)
			return ClusterMapMaster(map, s);
	return -1;
}

/* ClusterNodeAddr (client_internal.h) */
void
ClusterNodeAddr(char *out, const char *host, int port)
{
	if (strchr(host, ':') != NULL)
		snprintf(out, REDIS_ADDR_LEN, "[%s]:%d", host, port);
	else
		snprintf(out, REDIS_ADDR_LEN, "%s:%d", host, port);
}

/* ClusterServes (client_internal.h) */
bool
ClusterServes(const RedisConn *c, int slot)
{
	int m;
	char addr[REDIS_ADDR_LEN];

	if (map == NULL || slot < 0)
		return true; /* a pipeline naming no key goes where c goes */
	m = ClusterMapMaster(map, slot);
	if (m < 0)
		return false;
	ClusterNodeAddr(addr, map->nodes[m].host, map->nodes[m].port);
	return strcmp(addr, c->addr) == 0;
}

/*
 * Connect c to node m of the map: AUTH, ROLE and INFO server in one round
 * trip; true when ROLE says master (run_id then holds INFO's run_id, ""
 * when INFO was refused), else false with c closed.
 */
static bool
connect_master(RedisConn *c, const RedisEndpoint *ep, int m,
			   TimestampTz deadline, char *run_id)
{
	RedisCommand cmds[3];
	char *password = NULL;
	int n = 0;
	int is_master;
	bool refused;

	if (!open_node(c, ep, map->nodes[m].host, map->nodes[m].port, false,
				   deadline, cmds, &n, &password))
	{
		ClientClose(c);
		return false;
	}
	if (!ClientMasterHandshake(c, cmds, n, password, deadline, run_id,
							   &is_master, &refused))
		return false;
	if (is_master != 1)
	{
		ClientSetFailure(REDIS_FAIL_SERVER_ERROR,
						 "%s, a master in the Redis Cluster slot map, is not one (any more)",
						 c->addr);
		ClientClose(c);
		return false;
	}
	return true;
}

/* ClusterConnect (client_internal.h) */
bool
ClusterConnect(RedisConn *c, const RedisEndpoint *ep, int slot,
			   TimestampTz deadline, char *run_id)
{
	int m;

	run_id[0] = '\0';
	/*
	 * The prefix comes before the tag: a brace in it would send every key
	 * to one slot, whatever its database (the settings' checks refuse it
	 * too; this holds whatever order they were set in).
	 */
	if (cache_ext_key_prefix != NULL &&
		(strpbrk(cache_ext_key_prefix, "{}") != NULL ||
		 strlen(cache_ext_key_prefix) > CE_CLUSTER_PREFIX_MAX_LEN))
	{
		ClientSetFailure(REDIS_FAIL_CONFIG,
						 "cache_ext.key_prefix must have at most %d characters and no { or } with a Redis Cluster URL",
						 CE_CLUSTER_PREFIX_MAX_LEN);
		return false;
	}
	/* a new map at every connection: it is made after a failure or MOVED */
	if (!fetch_map(ep, deadline))
		return false;
	m = master_of(slot);
	if (m < 0)
	{
		ClientSetFailure(REDIS_FAIL_SERVER_ERROR,
						 "no reachable master serves Redis Cluster hash slot %d", slot);
		return false;
	}
	return connect_master(c, ep, m, deadline, run_id);
}

/* ClusterRefreshMap (client_internal.h) */
bool
ClusterRefreshMap(TimestampTz deadline)
{
	RedisEndpoint ep;
	char *perr = RedisParseUrl(cache_ext_redis_url, &ep);

	if (perr != NULL || ep.nseeds == 0)
	{
		ClientSetFailure(REDIS_FAIL_CONFIG, "invalid cache_ext.redis_url: %s",
						 perr ? perr : "not a Redis Cluster URL");
		return false;
	}
	return fetch_map(&ep, deadline);
}

/* ClusterOpenMaster (client_internal.h) */
bool
ClusterOpenMaster(RedisConn *c, int m, TimestampTz deadline)
{
	RedisEndpoint ep;
	RedisCommand cmds[1];
	redisReply **replies = palloc0(sizeof(redisReply *)); /* note */
	char *password = NULL;
	int n = 0;
	bool ok;

	if (RedisParseUrl(cache_ext_redis_url, &ep) != NULL || map == NULL ||
		m < 0 || m >= map->nnodes)
	{
		ClientSetFailure(REDIS_FAIL_CONFIG, "no Redis Cluster slot map to connect with");
		return false;
	}
	if (!open_node(c, &ep, map->nodes[m].host, map->nodes[m].port, false,
				   deadline, cmds, &n, &password))
	{
		ClientClose(c);
		return false;
	}
	ok = n == 0 || ClientRun(c, n, cmds, replies, 65536, deadline);
	if (password)
		explicit_bzero(password, strlen(password));
	if (ok && n > 0 && ClientErrorReply(replies[0], "AUTH"))
		ok = false;
	RedisFreeReplies(n, replies);
	if (!ok)
		ClientClose(c);
	return ok;
}

/*
 * Run the commands that got ASK (their indexes in idx[0..nask-1]) once
 * more on host:port, each after ASKING, and put their replies in place of
 * the ASK errors.  False with the failure noted (replies untouched).
 */
static bool
follow_ask(const ClusterRedirect *to, int nask, const int *idx,
		   RedisCommand *cmds, redisReply **replies, size_t max_reply_bytes,
		   TimestampTz deadline)
{
	RedisConn a = {.transport = {.sock = PGINVALID_SOCKET}};
	RedisEndpoint ep;
	RedisCommand *run = palloc(sizeof(RedisCommand) * (2 * nask + 1));
	redisReply **got = palloc0(sizeof(redisReply *) * (2 * nask + 1));
	ClusterRedirect again;
	char *password = NULL;
	int n = 0;
	volatile bool ok = false;

	if (RedisParseUrl(cache_ext_redis_url, &ep) != NULL)
		return false; /* not after it connected with it */
	PG_TRY();
	{
		if (open_node(&a, &ep, to->host, to->port, false, deadline, run, &n, &password))
		{
			int first = n;

			for (int i = 0; i < nask; i++)
			{
				RedisCommandInit(&run[n++], "ASKING");
				run[n++] = cmds[idx[i]]; /* argv still points into the caller's */
			}
			ok = ClientRun(&a, n, run, got, max_reply_bytes, deadline);
			for (int i = 0; ok && i < first; i++)
				if (ClientErrorReply(got[i], "AUTH"))
					ok = false;
			for (int i = 0; ok && i < nask; i++)
			{
				redisReply *r = got[first + 2 * i + 1];

				if (ClientErrorReply(got[first + 2 * i], "ASKING") ||
					(r->type == REDIS_REPLY_ERROR &&
					 ClusterParseRedirect(r, to->host, &again, NULL, 0) != CLUSTER_REDIRECT_OTHER))
				{
					ClientSetFailure(REDIS_FAIL_SERVER_ERROR,
									 "a Redis Cluster slot being migrated could not serve the call (ASK was not followed)");
					ok = false;
				}
			}
			if (ok)
				for (int i = 0; i < nask; i++)
				{
					freeReplyObject(replies[idx[i]]);
					replies[idx[i]] = got[first + 2 * i + 1];
					got[first + 2 * i + 1] = NULL;
				}
		}
	}
	PG_FINALLY();
	{
		if (password)
			explicit_bzero(password, strlen(password));
		RedisFreeReplies(n, got); /* what was not moved to replies[] */
		ClientClose(&a);
	}
	PG_END_TRY();
	return ok;
}

/*
 * ClusterCheckReplies (client_internal.h).  A MOVED when some command of
 * the pipeline ran is not retried: running it twice is not always the
 * same (the incarnation token's SET ... GET).
 */
bool
ClusterCheckReplies(RedisConn *c, int n, RedisCommand *cmds, redisReply **replies,
					size_t max_reply_bytes, TimestampTz deadline,
					bool *moved, bool *soft)
{
	ClusterRedirect to;
	ClusterRedirect r;
	int *ask = palloc(sizeof(int) * n);
	int nask = 0;
	int nmoved = 0;
	int nkeyed = 0;
	bool waits = false;
	const char *why = NULL;
	char host[CLUSTER_HOST_MAX + 1];

	*moved = false;
	*soft = false;
	memset(&to, 0, sizeof(to));
	/* the host asked, for a redirect naming none: c->addr less its port */
	strlcpy(host, c->addr[0] == '[' ? c->addr + 1 : c->addr, sizeof(host));
	if (strrchr(host, ':'))
		*strrchr(host, ':') = '\0';
	if (c->addr[0] == '[' && strrchr(host, ']'))
		*strrchr(host, ']') = '\0';
	for (int i = 0; i < n && why == NULL; i++)
	{
		int slot = -1;

		(void) command_slot(&cmds[i], &slot);
		nkeyed += slot >= 0;
		waits = waits || cmd_is(&cmds[i], "WAIT");
		if (replies[i]->type != REDIS_REPLY_ERROR)
			continue;
		switch (ClusterParseRedirect(replies[i], host, &r, NULL, 0))
		{
			case CLUSTER_REDIRECT_MOVED:
				nmoved++;
				break;
			case CLUSTER_REDIRECT_ASK:
				if (r.unknown_endpoint || (nask > 0 && (strcmp(r.host, to.host) != 0 || r.port != to.port)))
					why = "a Redis Cluster node answered ASK to an unknown node, or to two nodes";
				to = r;
				ask[nask++] = i;
				break;
			case CLUSTER_REDIRECT_TRYAGAIN:
				why = "a Redis Cluster node answered TRYAGAIN (a slot is being migrated)";
				*soft = true;
				break;
			case CLUSTER_REDIRECT_CLUSTERDOWN:
				why = "a Redis Cluster node answered CLUSTERDOWN";
				break;
			default:
				break;
		}
	}
	if (why == NULL && nmoved > 0)
	{
		/* the slot moved: the caller reconnects (a new map) and retries */
		*moved = nmoved == nkeyed && nask == 0;
		*soft = true;
		why = psprintf("%s no longer serves the keys (MOVED)", c->addr);
	}
	/* WAIT counted the replicas of the node asked, not of the one written */
	if (why == NULL && nask > 0 && waits)
		why = "a write was redirected by ASK, so WAIT could not confirm it";
	if (why == NULL && nask > 0 &&
		follow_ask(&to, nask, ask, cmds, replies, max_reply_bytes, deadline))
		return true;
	if (why == NULL && nask == 0)
		return true;
	if (why != NULL)
		ClientSetFailure(REDIS_FAIL_SERVER_ERROR, "%s", why);
	RedisFreeReplies(n, replies);
	return false;
}

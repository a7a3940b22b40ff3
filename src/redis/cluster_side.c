/*-------------------------------------------------------------------------
 *
 * cluster_side.c
 *	  Redis Cluster: calls whose commands live on several masters (0.10,
 *	  docs/store.md, "Spreading one database over the masters").
 *
 * A database's generation keys (and everything else it keeps) carry the
 * database's hash tag and live on its home master, reached over the
 * backend's connection (client.c), whose server identity the store
 * tracks.  Its entries carry a tag of their own (keys.c), so they spread
 * over every master.  A call naming both (a lookup: GETRANGE of the entry,
 * MGET of its generations) is split here by master: the commands of other
 * masters are sent first, each group on a side connection to its node,
 * then the home group runs as any call (client.c, with its retry, breaker
 * and identity), then the side replies are read.  The nodes work in
 * parallel; every wait is bounded by the call's deadline.
 *
 * Side connections carry entries only, whose validity is decided by the
 * generations alone: so their server's identity is never recorded, and a
 * side node that fails opens no breaker for the others.  It is marked
 * down for cache_ext.retry_interval (the calls that need it fail at once,
 * bypassing: "a node down: BYPASS for its keys, others still hit"), and the
 * next call that needs a side reads a new slot map first.
 *
 * State: backend-local and static: SIDE_MAX connections, each with the
 * node's address and its down-until time, reused least recently used
 * first.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "utils/timestamp.h"

#include "cache_ext.h" /* settings only */
#include "redis/client_internal.h"
#include "redis/cluster_map.h"

/* side connections a backend keeps open (more nodes: the oldest closes) */
#define SIDE_MAX 8

/* distinct side nodes one call may name */
#define SIDE_GROUPS 4
StaticAssertDecl(SIDE_GROUPS < SIDE_MAX, "a call's sides are never reused within it");

typedef struct Side
{
	RedisConn c;
	char addr[REDIS_ADDR_LEN]; /* the node, "" when the slot is free */
	TimestampTz down_until;	   /* after a failure: not tried before */
	bool warned;			   /* this outage was reported */
	uint64 used;			   /* for reuse: the last call's stamp */
} Side;

static Side sides[SIDE_MAX];
static bool sides_ready = false; /* sides[] hold no socket 0 */
static uint64 side_clock = 0;
static bool map_stale = false; /* a side failed or moved: read a new map */
static uint32 sides_url = 0;   /* the URL the sides were made for */

/* One group of a call: the commands that go to one side node. */
typedef struct SideGroup
{
	Side *side;
	int n;
	int *idx;			/* the commands' indexes in the call */
	RedisCommand *cmds; /* copies; argv point into the caller's */
	redisReply **replies;
	bool fresh;	   /* its connection was made for this call */
	bool home_ran; /* a home group ran since it was sent: read at once */
	bool sent;
} SideGroup;

/* Forget every side: closed, no address, not down. */
static void
sides_reset(void)
{
	for (int i = 0; i < SIDE_MAX; i++)
	{
		if (sides_ready)
			ClientClose(&sides[i].c);
		memset(&sides[i], 0, sizeof(Side));
		sides[i].c.transport.sock = PGINVALID_SOCKET;
	}
	sides_ready = true;
}

/* A new URL (or the first call): nothing of the old cluster is used. */
static void
sides_check_url(void)
{
	uint32 url = hash_bytes((const unsigned char *) cache_ext_redis_url,
							strlen(cache_ext_redis_url));

	if (!sides_ready || url != sides_url)
	{
		sides_reset();
		sides_url = url;
		map_stale = true;
	}
}

static void
node_addr(char *out, const ClusterNode *node)
{
	ClusterNodeAddr(out, node->host, node->port);
}

/* The index in map of the node at addr, or -1. */
static int
node_at(const ClusterMap *map, const char *addr)
{
	for (int i = 0; map != NULL && i < map->nnodes; i++)
	{
		char a[REDIS_ADDR_LEN];

		node_addr(a, &map->nodes[i]);
		if (strcmp(a, addr) == 0)
			return i;
	}
	return -1;
}

/* The side of node m of the map: the one kept for it, or a free one. */
static Side *
side_for(const ClusterMap *map, int m)
{
	char addr[REDIS_ADDR_LEN];
	Side *victim = &sides[0];

	node_addr(addr, &map->nodes[m]);
	for (int i = 0; i < SIDE_MAX; i++)
		if (strcmp(sides[i].addr, addr) == 0)
		{
			sides[i].used = ++side_clock;
			return &sides[i];
		}
	/* the least recently used: never one this call took (fewer groups) */
	for (int i = 1; i < SIDE_MAX; i++)
		if (sides[i].used < victim->used)
			victim = &sides[i];
	ClientClose(&victim->c);
	memset(victim, 0, sizeof(*victim));
	victim->c.transport.sock = PGINVALID_SOCKET;
	strlcpy(victim->addr, addr, sizeof(victim->addr));
	victim->used = ++side_clock;
	return victim;
}

/* A side failed: close it, keep it down a while, note it without breaker. */
static void
side_failed(Side *s, const char *what)
{
	char why[256];

	snprintf(why, sizeof(why), "Redis Cluster node %s: %s", s->addr, what);
	ClientClose(&s->c);
	s->down_until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
												cache_ext_retry_interval);
	map_stale = true;
	ClientSoftFailure(RedisLastFailureKind(), why);
	if (!s->warned)
	{
		s->warned = true;
		ereport(WARNING,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("cache_ext could not use Redis Cluster node %s, so the entries it holds are bypassed",
						s->addr),
				 errdetail_internal("The error was: %s.", what),
				 errhint("The other masters still serve their entries; cache_ext retries the node after cache_ext.retry_interval.")));
	}
}

/*
 * Route the call's commands: dest[i] is -1 for the home group, else the
 * group index in groups[] (*ngroups of them).  False with the failure
 * noted (a slot no master serves, too many nodes, a node down).
 */
static bool
route(int n, RedisCommand *cmds, int *dest, SideGroup *groups, int *ngroups,
	  TimestampTz deadline)
{
	const ClusterMap *map = ClusterMapInUse();
	int home = ClusterHomeSlot(n, cmds);
	int hm;

	sides_check_url();
	if (map == NULL || map_stale)
	{
		/* no node gave a map: the cluster is out, not a side */
		if (!ClusterRefreshMap(deadline))
		{
			ClientOpenBreaker();
			return false;
		}
		map_stale = false;
		map = ClusterMapInUse();
	}
	hm = home >= 0 ? ClusterMapMaster(map, home) : -1;
	*ngroups = 0;
	for (int i = 0; i < n; i++)
	{
		int s = ClusterCommandSlot(&cmds[i]);
		int m = s >= 0 ? ClusterMapMaster(map, s) : -1;
		Side *side;
		int g;

		dest[i] = -1;
		if (s < 0 || s == home || (m >= 0 && m == hm))
			continue;
		if (m < 0)
		{
			ClientSoftFailure(REDIS_FAIL_SERVER_ERROR, psprintf("no reachable master serves Redis Cluster hash slot %d", s));
			return false;
		}
		side = side_for(map, m);
		for (g = 0; g < *ngroups && groups[g].side != side; g++)
			;
		if (g == *ngroups)
		{
			if (g == SIDE_GROUPS)
			{
				ClientSoftFailure(REDIS_FAIL_CONFIG, "one call names more Redis Cluster masters than it may");
				return false;
			}
			if (side->down_until > GetCurrentTimestamp())
			{
				ClientSoftFailure(REDIS_FAIL_SERVER_ERROR, psprintf("Redis Cluster node %s is down (retried after cache_ext.retry_interval)", side->addr));
				return false;
			}
			memset(&groups[g], 0, sizeof(SideGroup));
			groups[g].side = side;
			groups[g].idx = palloc(sizeof(int) * n);
			groups[g].cmds = palloc(sizeof(RedisCommand) * n);
			(*ngroups)++;
		}
		groups[g].idx[groups[g].n] = i;
		groups[g].cmds[groups[g].n++] = cmds[i];
		dest[i] = g;
	}
	return true;
}

/* Connect side s to its node of map, with AUTH; false with the failure noted. */
static bool
open_side(Side *s, const ClusterMap *map, TimestampTz deadline)
{
	int m = node_at(map, s->addr);

	if (m < 0)
	{
		ClientSoftFailure(REDIS_FAIL_SERVER_ERROR, "not in the slot map any more");
		return false;
	}
	if (!ClusterOpenMaster(&s->c, m, deadline))
		return false;
	s->c.connected = true;
	s->c.cluster = true;
	return true;
}

/* Connect g's side if needed and send its commands; false when it failed. */
static bool
send_group(SideGroup *g, const ClusterMap *map, TimestampTz deadline)
{
	Side *s = g->side;
	bool ok;

	/* new TLS settings apply from the next call */
	if (s->c.connected && TransportStale(&s->c.transport))
		ClientClose(&s->c);
	g->fresh = !s->c.connected;
	if (g->fresh && !open_side(s, map, deadline))
	{
		side_failed(s, RedisLastError());
		return false;
	}
	if (g->replies == NULL)
		g->replies = palloc0(sizeof(redisReply *) * g->n); /* note */
	ok = ClientSend(&s->c, g->n, g->cmds, deadline);
	if (!ok && !g->fresh && RedisLastFailureKind() == REDIS_FAIL_CLOSED)
	{
		/* a connection the server closed since the last call: once more */
		ClientClose(&s->c);
		g->fresh = true;
		ok = open_side(s, map, deadline) &&
			ClientSend(&s->c, g->n, g->cmds, deadline);
	}
	if (!ok)
	{
		side_failed(s, RedisLastError());
		return false;
	}
	g->sent = true;
	return true;
}

/*
 * Read g's replies and act on redirects; false when it failed.  A
 * connection made before this call that the server had closed (an idle
 * timeout, CLIENT KILL) is made again and the group sent once more: its
 * commands are reads and writes of whole entries, the same run twice.
 */
static bool
receive_group(SideGroup *g, size_t max_reply_bytes, TimestampTz deadline)
{
	Side *s = g->side;
	bool moved = false;
	bool soft = false;
	bool ok;

	g->sent = false;
	ok = s->c.connected &&
		ClientReceive(&s->c, g->n, g->replies, max_reply_bytes, deadline,
					  g->home_ran);
	if (!ok && !g->fresh && RedisLastFailureKind() == REDIS_FAIL_CLOSED)
	{
		ClientClose(&s->c);
		ok = open_side(s, ClusterMapInUse(), deadline) &&
			ClientRun(&s->c, g->n, g->cmds, g->replies, max_reply_bytes, deadline);
	}
	if (!ok)
	{
		side_failed(s, RedisLastError());
		return false;
	}
	if (!ClusterCheckReplies(&s->c, g->n, g->cmds, g->replies, max_reply_bytes,
							 deadline, &moved, &soft))
	{
		/* a moved slot or a migration: the node is fine, the map is old */
		if (soft)
		{
			map_stale = true;
			ClientSoftFailure(RedisLastFailureKind(), RedisLastError());
		}
		else
			side_failed(s, RedisLastError());
		return false;
	}
	s->down_until = 0;
	s->warned = false;
	return true;
}

/* Close the sides of groups sent but not read (their replies are unread). */
static void
close_unread(SideGroup *groups, int ngroups)
{
	for (int g = 0; g < ngroups; g++)
		if (groups[g].sent)
		{
			ClientClose(&groups[g].side->c);
			groups[g].sent = false;
		}
}

/*
 * ClusterExecSpread (client_internal.h).  The side groups are sent, the
 * home group run (client.c), the side replies read; then the replies go
 * back in the call's order.
 */
bool
ClusterExecSpread(int ncmds, RedisCommand *cmds, redisReply **replies,
				  size_t max_reply_bytes, int timeout_ms, int connect_ms)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   timeout_ms);
	int *dest = palloc(sizeof(int) * ncmds);
	SideGroup groups[SIDE_GROUPS];
	int ngroups = 0;
	int nhome = 0;
	RedisCommand *hcmds = palloc(sizeof(RedisCommand) * ncmds);
	redisReply **hreplies = palloc0(sizeof(redisReply *) * ncmds); /* note */
	volatile bool ok = true;

	memset(replies, 0, sizeof(redisReply *) * ncmds);
	if (!route(ncmds, cmds, dest, groups, &ngroups,
			   TimestampTzPlusMilliseconds(GetCurrentTimestamp(), connect_ms)))
		return false;
	for (int i = 0; i < ncmds; i++)
		if (dest[i] < 0)
			hcmds[nhome++] = cmds[i];

	PG_TRY();
	{
		for (int g = 0; g < ngroups && ok; g++)
			ok = send_group(&groups[g], ClusterMapInUse(), deadline);
		if (ok && nhome > 0)
		{
			ok = ClientExecHome(nhome, hcmds, hreplies, max_reply_bytes,
								timeout_ms, connect_ms);

			/*
			 * The home group has bounds of its own (a new connection, a
			 * retry): a side's reply, waiting since, gets a command's time
			 * from now, so that a slow home never fails a healthy side.
			 */
			deadline = Max(deadline,
						   TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms));
			for (int g = 0; g < ngroups; g++)
				groups[g].home_ran = true;
		}
		if (!ok)
			close_unread(groups, ngroups);
		else
		{
			for (int g = 0; g < ngroups && ok; g++)
				ok = receive_group(&groups[g], max_reply_bytes, deadline);
			close_unread(groups, ngroups);
		}
	}
	PG_CATCH();
	{
		ClientDropInflight();
		for (int g = 0; g < ngroups; g++)
		{
			if (groups[g].replies)
				RedisFreeReplies(groups[g].n, groups[g].replies);
			ClientClose(&groups[g].side->c);
		}
		RedisFreeReplies(nhome, hreplies);
		PG_RE_THROW();
	}
	PG_END_TRY();

	if (!ok)
	{
		for (int g = 0; g < ngroups; g++)
			if (groups[g].replies)
				RedisFreeReplies(groups[g].n, groups[g].replies);
		RedisFreeReplies(nhome, hreplies);
		return false;
	}
	for (int i = 0, h = 0; i < ncmds; i++)
		replies[i] = dest[i] < 0 ? hreplies[h++] : NULL;
	for (int g = 0; g < ngroups; g++)
		for (int j = 0; j < groups[g].n; j++)
			replies[groups[g].idx[j]] = groups[g].replies[j];
	return true;
}

/* ClusterNeedsSides (client_internal.h): a keyed command off the home master */
bool
ClusterNeedsSides(int ncmds, const RedisCommand *cmds)
{
	int home = ClusterHomeSlot(ncmds, cmds);
	const ClusterMap *map = ClusterMapInUse();

	for (int i = 0; i < ncmds; i++)
	{
		int s = ClusterCommandSlot(&cmds[i]);

		if (s < 0 || s == home)
			continue;
		if (map == NULL || map_stale || home < 0 ||
			ClusterMapMaster(map, s) != ClusterMapMaster(map, home))
			return true;
	}
	return false;
}


/* RedisClusterMasters (redis.h) */
int
RedisClusterMasters(char (*addrs)[REDIS_ADDR_LEN], int max)
{
	const ClusterMap *map;
	int n = 0;

	if (!ClusterRefreshMap(TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   cache_ext_connect_timeout)))
		return -1;
	map = ClusterMapInUse();
	for (int i = 0; i < map->nnodes; i++)
	{
		bool serves = false;

		if (map->nodes[i].master >= 0 || map->nodes[i].unknown_endpoint)
			continue;
		for (int s = 0; s < CLUSTER_NSLOTS && !serves; s++)
			serves = map->slot[s] == i;
		/* a failed master whose slots a replica took holds nothing served */
		if (!serves && !map->nodes[i].online)
			continue;
		if (n == max)
		{
			ClientSoftFailure(REDIS_FAIL_SERVER_ERROR,
							  psprintf("the Redis Cluster has more than %d masters", max));
			return -1;
		}
		node_addr(addrs[n++], &map->nodes[i]);
	}
	return n;
}

/* RedisExecAt (redis.h) */
bool
RedisExecAt(const char *addr, int ncmds, RedisCommand *cmds,
			redisReply **replies, size_t max_reply_bytes)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   cache_ext_command_timeout);
	const ClusterMap *map = ClusterMapInUse();
	SideGroup g;
	int m;
	bool ok;

	sides_check_url();
	m = node_at(map, addr);
	if (m < 0)
	{
		ClientSoftFailure(REDIS_FAIL_SERVER_ERROR,
						  psprintf("%s is no longer in the Redis Cluster slot map", addr));
		return false;
	}
	memset(&g, 0, sizeof(g));
	g.side = side_for(map, m);
	g.n = ncmds;
	g.cmds = cmds;
	PG_TRY();
	{
		ok = send_group(&g, map, deadline) &&
			receive_group(&g, max_reply_bytes, deadline);
	}
	PG_CATCH();
	{
		ClientDropInflight();
		if (g.replies)
			RedisFreeReplies(g.n, g.replies);
		ClientClose(&g.side->c);
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (ok)
		memcpy(replies, g.replies, sizeof(redisReply *) * ncmds);
	else if (g.sent)
		ClientClose(&g.side->c);
	return ok;
}

/*
 * RedisClusterNodes (redis.h): the nodes of a fresh slot map, each master
 * asked PING over a side connection (timed; a failure marks it down as
 * any side failure does).
 */
int
RedisClusterNodes(RedisNodeInfo *out, int max)
{
	const ClusterMap *map;
	int hm;
	int n = 0;

	if (!ClusterRefreshMap(TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   cache_ext_connect_timeout)))
		return -1;
	sides_check_url();
	map = ClusterMapInUse();
	hm = ClusterHomeSlot(0, NULL) >= 0 ? ClusterMapMaster(map, ClusterHomeSlot(0, NULL)) : -1;
	for (int i = 0; i < map->nnodes && n < max; i++)
	{
		const ClusterNode *node = &map->nodes[i];
		RedisNodeInfo *r = &out[n++];

		memset(r, 0, sizeof(*r));
		node_addr(r->addr, node);
		r->master = node->master < 0;
		r->online = node->online && !node->unknown_endpoint;
		if (!r->master)
			node_addr(r->master_addr, &map->nodes[node->master]);
		for (int s = 0; s < CLUSTER_NSLOTS; s++)
			r->slots += map->slot[s] == i;
		r->used = i == hm ? "home" : NULL;
		for (int k = 0; r->used == NULL && k < SIDE_MAX; k++)
			if (strcmp(sides[k].addr, r->addr) == 0)
				r->used = sides[k].down_until > GetCurrentTimestamp() ? "down" :
					sides[k].c.connected							  ? "side" :
																		NULL;
	}
	/* PING each master after the map was read: the sides may change map */
	for (int i = 0; i < n; i++)
	{
		RedisCommand ping;
		redisReply *reply = NULL;
		TimestampTz t0 = GetCurrentTimestamp();

		if (!out[i].master || !out[i].online)
			continue;
		RedisCommandInit(&ping, "PING");
		out[i].pinged = RedisExecAt(out[i].addr, 1, &ping, &reply, 1024) &&
			reply->type == REDIS_REPLY_STATUS;
		if (out[i].pinged)
			out[i].ping_ms = (double) (GetCurrentTimestamp() - t0) / 1000.0;
		else
			strlcpy(out[i].error, reply ? "unexpected reply to PING" : RedisLastError(),
					sizeof(out[i].error));
		RedisFreeReplies(1, &reply);
	}
	return n;
}

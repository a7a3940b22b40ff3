/*-------------------------------------------------------------------------
 *
 * cluster_probe.c
 *	  A small driver of src/redis/cluster_map.c for test/t/240_cluster_map.pl:
 *	  reads one raw RESP reply from stdin (as a live cluster sent it),
 *	  through hiredis's reader configured as the client configures it, and
 *	  prints what the parser made of it, as text the test compares with
 *	  what redis-cli and the cluster itself say.
 *
 *	  cluster_probe slots ASKED_HOST		  < reply to CLUSTER SLOTS
 *	  cluster_probe shards ASKED_HOST [tls]	  < reply to CLUSTER SHARDS
 *	  cluster_probe redirect ASKED_HOST	  < an error reply
 *	  cluster_probe keyslot					  < keys in hex, one a line
 *
 * Output of slots and shards: "ok nodes=N masters=M", then a line per node
 * "node HOST:PORT ID master|replica-of HOST:PORT online|offline" (and
 * " unknown-endpoint" for a "?" endpoint), then a
 * line per run of slots with the same master "range LO-HI HOST:PORT" (or
 * "none"); or "error TEXT" (exit status 1).  Of redirect: "moved SLOT
 * HOST:PORT", "ask SLOT HOST:PORT", "tryagain", "clusterdown", "other
 * [TEXT]" or "not-error".  Of keyslot: a slot a line.  Exit status 2 when
 * the input is not one whole RESP reply.
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis/cluster_map.h"
#include "redis/resp.h"

static char *
read_all(size_t *len)
{
	size_t cap = 1 << 16;
	size_t n = 0;
	char *buf = malloc(cap);

	while (buf != NULL)
	{
		size_t got = fread(buf + n, 1, cap - n, stdin);

		n += got;
		if (got == 0)
			break;
		if (n == cap)
		{
			char *bigger = cap < (64u << 20) ? realloc(buf, cap * 2) : NULL;

			if (bigger == NULL)
			{
				free(buf);
				return NULL;
			}
			buf = bigger;
			cap *= 2;
		}
	}
	*len = n;
	return buf;
}

/* The one reply in stdin, or NULL (the reason printed). */
static redisReply *
read_reply(void)
{
	size_t len;
	char *buf = read_all(&len);
	redisReader *reader = redisReaderCreate();
	void *reply = NULL;
	void *extra = NULL;

	if (buf == NULL || reader == NULL)
	{
		printf("input: out of memory\n");
		exit(2);
	}
	RespLimitArrays(reader);
	if (redisReaderFeed(reader, buf, len) != REDIS_OK ||
		redisReaderGetReply(reader, &reply) != REDIS_OK || reply == NULL ||
		redisReaderGetReply(reader, &extra) != REDIS_OK || extra != NULL)
	{
		printf("input: not exactly one RESP reply (%s)\n",
			   reader->err ? reader->errstr : "incomplete or more than one");
		exit(2);
	}
	redisReaderFree(reader);
	free(buf);
	return reply;
}

static void
print_map(const ClusterMap *map)
{
	printf("ok nodes=%d masters=%d\n", map->nnodes, map->nmasters);
	for (int i = 0; i < map->nnodes; i++)
	{
		const ClusterNode *n = &map->nodes[i];

		printf("node %s:%d %s ", n->host, n->port, n->id[0] ? n->id : "-");
		if (n->master < 0)
			printf("master");
		else
			printf("replica-of %s:%d", map->nodes[n->master].host,
				   map->nodes[n->master].port);
		printf(" %s%s\n", n->online ? "online" : "offline",
			   n->unknown_endpoint ? " unknown-endpoint" : "");
	}
	for (int lo = 0; lo < CLUSTER_NSLOTS;)
	{
		int hi = lo;
		int m = map->slot[lo];

		while (hi + 1 < CLUSTER_NSLOTS && map->slot[hi + 1] == m)
			hi++;
		if (m == CLUSTER_NO_NODE)
			printf("range %d-%d none\n", lo, hi);
		else
			printf("range %d-%d %s:%d\n", lo, hi, map->nodes[m].host,
				   map->nodes[m].port);
		lo = hi + 1;
	}
}

static int
keyslots(void)
{
	char line[8192];
	char key[4096];

	while (fgets(line, sizeof(line), stdin) != NULL)
	{
		size_t n = strcspn(line, "\r\n");
		size_t k = 0;

		if (n % 2 != 0 || n / 2 > sizeof(key))
			return 2;
		for (size_t i = 0; i < n; i += 2)
		{
			unsigned int b;

			if (sscanf(line + i, "%2x", &b) != 1)
				return 2;
			key[k++] = (char) b;
		}
		printf("%d\n", ClusterKeySlot(key, k));
	}
	return 0;
}

int
main(int argc, char **argv)
{
	char err[CLUSTER_ERR_LEN];
	redisReply *reply;
	int rc = 0;

	if (argc == 2 && strcmp(argv[1], "keyslot") == 0)
		return keyslots();
	if (argc < 3)
	{
		fprintf(stderr, "usage: cluster_probe slots|shards|redirect ASKED_HOST [tls]\n");
		return 2;
	}
	reply = read_reply();
	if (strcmp(argv[1], "slots") == 0 || strcmp(argv[1], "shards") == 0)
	{
		ClusterMap *map = malloc(sizeof(ClusterMap));
		bool ok;

		if (map == NULL)
			return 2;
		if (argv[1][1] == 'l')
			ok = ClusterMapFromSlots(reply, argv[2], map, err, sizeof(err));
		else
			ok = ClusterMapFromShards(reply, argv[2], argc > 3 && strcmp(argv[3], "tls") == 0,
									  map, err, sizeof(err));
		if (ok)
			print_map(map);
		else
		{
			printf("error %s\n", err);
			rc = 1;
		}
		free(map);
	}
	else if (strcmp(argv[1], "redirect") == 0)
	{
		ClusterRedirect r;

		switch (ClusterParseRedirect(reply, argv[2], &r, err, sizeof(err)))
		{
			case CLUSTER_REDIRECT_MOVED:
			case CLUSTER_REDIRECT_ASK:
				printf("%s %d %s:%d%s\n", r.kind == CLUSTER_REDIRECT_MOVED ? "moved" : "ask",
					   r.slot, r.host, r.port, r.unknown_endpoint ? " unknown" : "");
				break;
			case CLUSTER_REDIRECT_TRYAGAIN:
				printf("tryagain\n");
				break;
			case CLUSTER_REDIRECT_CLUSTERDOWN:
				printf("clusterdown\n");
				break;
			case CLUSTER_REDIRECT_OTHER:
				printf("other%s%s\n", err[0] ? " " : "", err);
				break;
			case CLUSTER_REPLY_NOT_ERROR:
				printf("not-error\n");
				break;
		}
	}
	else
		rc = 2;
	freeReplyObject(reply);
	return rc;
}

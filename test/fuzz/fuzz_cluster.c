/*-------------------------------------------------------------------------
 *
 * fuzz_cluster.c
 *	  libFuzzer target for Redis Cluster's routing (src/redis/cluster_map.c,
 *	  linked as it is): replies to CLUSTER SLOTS and CLUSTER SHARDS, and
 *	  error replies that may be redirects, as a hostile or broken node
 *	  could send them.
 *
 * The input is the bytes a node sends.  They go through the system
 * libhiredis's reader, configured as src/redis/client.c configures it
 * (RespLimitArrays, src/redis/resp.c), and every reply it hands out (at
 * most 8) is given to ClusterMapFromSlots, ClusterMapFromShards (with and
 * without TLS ports) and ClusterParseRedirect, each time with the asked
 * host "127.0.0.1" and, for the second half of the replies, "::1".  The
 * input's bytes are also a key for ClusterKeySlot.
 *
 * Oracles (besides ASan / UBSan / LSan):
 *
 *	- a map that was accepted is well-formed: every node has a printable
 *	  host of the allowed characters (or "?" with unknown_endpoint), a port
 *	  in 1..65535, an id that is empty or 40 hex digits, a master that is a
 *	  master; no two reachable nodes share an address; every served slot
 *	  names a master; nmasters counts them; for CLUSTER SLOTS, every slot
 *	  of every entry is served by a node with the entry's master port; for
 *	  CLUSTER SHARDS, every slot of a shard by a master with the port of
 *	  the shard's "master" node, or by none when it has no master.
 *	  A refused map is empty and its error is printable text.
 *
 *	- a MOVED or ASK redirect, printed back as "KIND SLOT HOST:PORT", is
 *	  the reply's text (when the reply named its host); its slot and port
 *	  are in range.
 *
 *	- ClusterKeySlot agrees with an independent reading of the spec: a
 *	  table-driven CRC16-XMODEM, and the hash tag found by a scan written
 *	  differently.
 *
 * Built and run by test/fuzz/run.sh (target "cluster"); with
 * -DFZ_CLUSTER_MAKE_SEEDS it is instead a program writing the seed corpus
 * and a dictionary: fz_make_cluster_seeds DIR DICT.
 *
 *-------------------------------------------------------------------------
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis.h>

#include "redis/cluster_map.h"
#include "redis/resp.h"

#define FZ_NAME "fuzz_cluster"
#include "fuzz_check.h"

#ifndef FZ_CLUSTER_MAKE_SEEDS

static ClusterMap *the_map;
static uint16_t crc_table[256];
static uint16_t unserved[CLUSTER_NSLOTS]; /* all CLUSTER_NO_NODE */

static void
check_text(const char *t, size_t room)
{
	size_t n = strnlen(t, room);

	CHECK(n < room);
	for (size_t i = 0; i < n; i++)
		CHECK(t[i] >= 0x20 && t[i] <= 0x7e);
}

static bool
host_char(char c)
{
	return isalnum((unsigned char) c) || strchr(".-_:%", c) != NULL;
}

/* The invariants of an accepted map (see the file's comment). */
static void
check_map(const ClusterMap *map)
{
	int masters = 0;

	CHECK(map->nnodes >= 0 && map->nnodes <= CLUSTER_MAX_NODES);
	for (int i = 0; i < map->nnodes; i++)
	{
		const ClusterNode *n = &map->nodes[i];
		size_t hl = strnlen(n->host, sizeof(n->host));

		CHECK(hl >= 1 && hl <= CLUSTER_HOST_MAX);
		if (n->unknown_endpoint)
			CHECK(strcmp(n->host, "?") == 0);
		else
			for (size_t k = 0; k < hl; k++)
				CHECK(host_char(n->host[k]));
		CHECK(n->port >= 1 && n->port <= 65535);
		CHECK(n->id[0] == '\0' || strlen(n->id) == CLUSTER_NODE_ID_LEN);
		for (size_t k = 0; n->id[k]; k++)
			CHECK(isxdigit((unsigned char) n->id[k]));
		if (n->master < 0)
		{
			CHECK(n->master == -1);
			masters++;
		}
		else
			CHECK(n->master < map->nnodes && map->nodes[n->master].master == -1);
		for (int j = 0; j < i; j++)
			CHECK(n->unknown_endpoint || map->nodes[j].unknown_endpoint ||
				  n->port != map->nodes[j].port ||
				  strcmp(n->host, map->nodes[j].host) != 0);
	}
	CHECK(masters == map->nmasters);
	for (int s = 0; s < CLUSTER_NSLOTS; s++)
	{
		int m = map->slot[s];
		int r = ClusterMapMaster(map, s);

		if (m == CLUSTER_NO_NODE)
			CHECK(r == -1);
		else
		{
			CHECK(m < map->nnodes && map->nodes[m].master == -1);
			CHECK(r == (map->nodes[m].unknown_endpoint ? -1 : m));
		}
	}
	CHECK(ClusterMapMaster(map, -1) == -1 && ClusterMapMaster(map, CLUSTER_NSLOTS) == -1);
	for (int i = 0; i < map->nnodes; i++)
	{
		int out[4];
		int n = ClusterMapReplicas(map, i, out, 4);

		for (int k = 0; k < n && k < 4; k++)
			CHECK(map->nodes[out[k]].master == i);
	}
}

static void
check_refused(const ClusterMap *map, const char *err)
{
	CHECK(map->nnodes == 0 && map->nmasters == 0);
	CHECK(memcmp(map->slot, unserved, sizeof(unserved)) == 0);
	CHECK(err[0] != '\0');
	check_text(err, CLUSTER_ERR_LEN);
}

/* For CLUSTER SLOTS: each entry's slots go to a node with its master's port. */
static void
check_slots_entries(const redisReply *r, const ClusterMap *map)
{
	for (size_t i = 0; i < r->elements; i++)
	{
		const redisReply *e = r->element[i];
		long long port = e->element[2]->element[1]->integer;

		for (long long s = e->element[0]->integer; s <= e->element[1]->integer; s++)
			CHECK(map->slot[s] != CLUSTER_NO_NODE && map->nodes[map->slot[s]].port == port);
	}
}

/* The value of name in an accepted map (a flat array), or NULL. */
static const redisReply *
field(const redisReply *m, const char *name)
{
	for (size_t i = 0; i + 1 < m->elements; i += 2)
		if (m->element[i]->len == strlen(name) &&
			memcmp(m->element[i]->str, name, m->element[i]->len) == 0)
			return m->element[i + 1];
	return NULL;
}

/*
 * For CLUSTER SHARDS: each shard's slots go to a master with the port of
 * the shard's node whose role is "master", or to none without one.
 */
static void
check_shards_entries(const redisReply *r, const ClusterMap *map, bool tls)
{
	for (size_t i = 0; i < r->elements; i++)
	{
		const redisReply *slots = field(r->element[i], "slots");
		const redisReply *nodes = field(r->element[i], "nodes");
		long long port = -1;

		for (size_t j = 0; j < nodes->elements; j++)
		{
			const redisReply *role = field(nodes->element[j], "role");

			if (role->len == 6 && memcmp(role->str, "master", 6) == 0)
				port = field(nodes->element[j], tls ? "tls-port" : "port")->integer;
		}
		for (size_t k = 0; k + 1 < slots->elements; k += 2)
			for (long long s = slots->element[k]->integer; s <= slots->element[k + 1]->integer; s++)
			{
				if (port < 0)
					CHECK(map->slot[s] == CLUSTER_NO_NODE);
				else
					CHECK(map->slot[s] != CLUSTER_NO_NODE &&
						  map->nodes[map->slot[s]].port == port &&
						  map->nodes[map->slot[s]].master == -1);
			}
	}
}

static void
run_maps(const redisReply *r, const char *asked)
{
	char err[CLUSTER_ERR_LEN];

	memset(err, 0x7f, sizeof(err));
	if (ClusterMapFromSlots(r, asked, the_map, err, sizeof(err)))
	{
		check_map(the_map);
		check_slots_entries(r, the_map);
	}
	else
		check_refused(the_map, err);
	for (int tls = 0; tls <= 1; tls++)
	{
		memset(err, 0x7f, sizeof(err));
		if (ClusterMapFromShards(r, asked, tls, the_map, err, sizeof(err)))
		{
			check_map(the_map);
			check_shards_entries(r, the_map, tls);
		}
		else
			check_refused(the_map, err);
	}
	/* a short error buffer is still terminated */
	memset(err, 0x7f, sizeof(err));
	if (!ClusterMapFromSlots(r, asked, the_map, err, 7))
		CHECK(strnlen(err, 7) < 7);
}

static void
run_redirect(const redisReply *r, const char *asked)
{
	ClusterRedirect rd;
	char err[CLUSTER_ERR_LEN];
	ClusterRedirectKind k;

	memset(err, 0x7f, sizeof(err));
	k = ClusterParseRedirect(r, asked, &rd, err, sizeof(err));
	CHECK(k == rd.kind);
	check_text(err, sizeof(err));
	if (r->type != REDIS_REPLY_ERROR)
		CHECK(k == CLUSTER_REPLY_NOT_ERROR);
	if (k == CLUSTER_REDIRECT_MOVED || k == CLUSTER_REDIRECT_ASK)
	{
		char back[CLUSTER_HOST_MAX + 40];
		const char *word = k == CLUSTER_REDIRECT_MOVED ? "MOVED" : "ASK";
		size_t wl = strlen(word);
		const char *sp;
		const char *colon;

		CHECK(rd.slot >= 0 && rd.slot < CLUSTER_NSLOTS);
		CHECK(rd.port >= 1 && rd.port <= 65535);
		check_text(rd.host, sizeof(rd.host));
		CHECK(rd.host[0] != '\0');
		CHECK(r->len > wl && memcmp(r->str, word, wl) == 0 && r->str[wl] == ' ');
		sp = memchr(r->str + wl + 1, ' ', r->len - wl - 1);
		CHECK(sp != NULL);
		colon = sp;
		for (const char *c = sp; c < r->str + r->len; c++)
			if (*c == ':')
				colon = c;
		/* with a host of its own (not ":port"), the text is exactly ours */
		if (colon != sp + 1)
		{
			int n = snprintf(back, sizeof(back), "%s %d %s:%d", word, rd.slot,
							 rd.host, rd.port);

			/* leading zeros in slot or port are accepted: compare numbers */
			if ((size_t) n == r->len)
				CHECK(memcmp(back, r->str, r->len) == 0);
		}
		else
			CHECK(strcmp(rd.host, asked) == 0);
	}
	else
		CHECK(rd.slot == -1 && rd.port == 0 && rd.host[0] == '\0');
	/* and with no room for a reason */
	(void) ClusterParseRedirect(r, asked, &rd, NULL, 0);
}

/* The reference: table-driven CRC16-XMODEM, hash tag found by index. */
static int
ref_keyslot(const uint8_t *k, size_t len)
{
	size_t start = 0,
		   end = len;
	uint16_t crc = 0;

	for (size_t i = 0; i < len; i++)
		if (k[i] == '{')
		{
			for (size_t j = i + 1; j < len; j++)
				if (k[j] == '}')
				{
					if (j > i + 1)
					{
						start = i + 1;
						end = j;
					}
					break;
				}
			break;
		}
	for (size_t i = start; i < end; i++)
		crc = (uint16_t) ((crc << 8) ^ crc_table[((crc >> 8) ^ k[i]) & 0xff]);
	return crc % CLUSTER_NSLOTS;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void) argc;
	(void) argv;
	the_map = malloc(sizeof(ClusterMap));
	CHECK(the_map != NULL);
	for (int i = 0; i < 256; i++)
	{
		uint16_t c = (uint16_t) (i << 8);

		for (int b = 0; b < 8; b++)
			c = (c & 0x8000) ? (uint16_t) ((c << 1) ^ 0x1021) : (uint16_t) (c << 1);
		crc_table[i] = c;
	}
	for (int s = 0; s < CLUSTER_NSLOTS; s++)
		unserved[s] = CLUSTER_NO_NODE;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	redisReader *reader = redisReaderCreate();
	int n = 0;

	CHECK(ClusterKeySlot((const char *) data, size) == ref_keyslot(data, size));
	CHECK(reader != NULL);
	RespLimitArrays(reader);
	if (redisReaderFeed(reader, (const char *) data, size) == REDIS_OK)
	{
		void *reply;

		while (n < 8 && redisReaderGetReply(reader, &reply) == REDIS_OK && reply != NULL)
		{
			const char *asked = n % 2 ? "::1" : "127.0.0.1";

			run_maps(reply, asked);
			run_redirect(reply, asked);
			/* a reply's elements one level down, as if each were the reply */
			if (((redisReply *) reply)->type == REDIS_REPLY_ARRAY)
				for (size_t i = 0; i < ((redisReply *) reply)->elements && i < 4; i++)
					run_redirect(((redisReply *) reply)->element[i], asked);
			freeReplyObject(reply);
			n++;
		}
	}
	redisReaderFree(reader);
	return 0;
}

#else /* FZ_CLUSTER_MAKE_SEEDS */

static const char *dir;
static int nseeds;

static void
seed(const char *text)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/seed-%03d", dir, nseeds++);
	f = fopen(path, "wb");
	CHECK(f != NULL);
	CHECK(fwrite(text, 1, strlen(text), f) == strlen(text));
	CHECK(fclose(f) == 0);
}

#define ID_A "$40\r\n07c37dfeb235213a872192d90877d0cd55635b91\r\n"
#define ID_B "$40\r\n67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1\r\n"
#define ID_C "$40\r\n292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f\r\n"
#define ID_D "$40\r\ne7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca\r\n"

int
main(int argc, char **argv)
{
	FILE *dict;
	static const char *const words[] = {
		"slots", "nodes", "id", "port", "tls-port", "ip", "endpoint", "hostname",
		"role", "master", "replica", "health", "online", "failed", "loading",
		"replication-offset", "MOVED ", "ASK ", "TRYAGAIN", "CLUSTERDOWN",
		"127.0.0.1", "::1", "?", ":16383", ":6379", "$40\r\n", "*2\r\n", "*3\r\n",
		"*4\r\n", "$-1\r\n", ":0\r\n", ":65535\r\n", ":65536\r\n", ":16384\r\n"};

	if (argc != 3)
	{
		fprintf(stderr, "usage: %s DIR DICT\n", argv[0]);
		return 2;
	}
	dir = argv[1];
	/* CLUSTER SLOTS, three masters with a replica each (ids, metadata map) */
	seed("*3\r\n"
		 "*4\r\n:0\r\n:5460\r\n*4\r\n$9\r\n127.0.0.1\r\n:7000\r\n" ID_A "*0\r\n"
		 "*4\r\n$9\r\n127.0.0.1\r\n:7003\r\n" ID_D "*2\r\n$8\r\nhostname\r\n$4\r\nhost\r\n"
		 "*3\r\n:5461\r\n:10922\r\n*3\r\n$9\r\n127.0.0.1\r\n:7001\r\n" ID_B
		 "*3\r\n:10923\r\n:16383\r\n*3\r\n$0\r\n\r\n:7002\r\n" ID_C);
	/* old style: host and port only; nil and "?" endpoints */
	seed("*2\r\n*4\r\n:0\r\n:8191\r\n*2\r\n$9\r\n10.0.0.1\r\n:6379\r\n"
		 "*2\r\n$9\r\n10.0.0.2\r\n:6379\r\n"
		 "*3\r\n:8192\r\n:16383\r\n*2\r\n$-1\r\n:6380\r\n");
	seed("*1\r\n*3\r\n:0\r\n:16383\r\n*3\r\n$1\r\n?\r\n:7000\r\n" ID_A);
	/* overlapping ranges, a slot out of range, a port out of range */
	seed("*2\r\n*3\r\n:0\r\n:100\r\n*2\r\n$1\r\na\r\n:1\r\n*3\r\n:100\r\n:200\r\n*2\r\n$1\r\nb\r\n:1\r\n");
	seed("*1\r\n*3\r\n:0\r\n:16384\r\n*2\r\n$1\r\na\r\n:1\r\n");
	seed("*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$1\r\na\r\n:65536\r\n");
	/* CLUSTER SHARDS, two shards, one with a replica, as Redis 7 sends it */
	seed("*2\r\n"
		 "*4\r\n$5\r\nslots\r\n*4\r\n:0\r\n:100\r\n:200\r\n:8191\r\n$5\r\nnodes\r\n*2\r\n"
		 "*14\r\n$2\r\nid\r\n" ID_A "$4\r\nport\r\n:7000\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n"
		 "$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$6\r\nmaster\r\n"
		 "$18\r\nreplication-offset\r\n:42\r\n$6\r\nhealth\r\n$6\r\nonline\r\n"
		 "*16\r\n$2\r\nid\r\n" ID_D "$4\r\nport\r\n:7003\r\n$8\r\ntls-port\r\n:8003\r\n"
		 "$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$0\r\n\r\n$4\r\nrole\r\n$7\r\nreplica\r\n"
		 "$18\r\nreplication-offset\r\n:42\r\n$6\r\nhealth\r\n$7\r\nloading\r\n"
		 "*4\r\n$5\r\nslots\r\n*2\r\n:8192\r\n:16383\r\n$5\r\nnodes\r\n*1\r\n"
		 "*10\r\n$2\r\nid\r\n" ID_B "$4\r\nport\r\n:7001\r\n$8\r\ntls-port\r\n:8001\r\n"
		 "$8\r\nendpoint\r\n$3\r\n::1\r\n$4\r\nrole\r\n$6\r\nmaster\r\n");
	/* redirects and other errors */
	seed("-MOVED 3999 127.0.0.1:6381\r\n");
	seed("-ASK 3999 127.0.0.1:6381\r\n");
	seed("-ASK 16383 2001:db8::1:7000\r\n");
	seed("-MOVED 0 :6380\r\n");
	seed("-MOVED 12 ?:6380\r\n");
	seed("-TRYAGAIN Multiple keys request during rehashing of slot\r\n");
	seed("-CLUSTERDOWN The cluster is down\r\n");
	seed("-CLUSTERDOWN Hash slot not served\r\n");
	seed("-ERR unknown command\r\n-MOVED 99999 a:1\r\n-ASK 1 a:0\r\n");
	/* keys with hash tags */
	seed("{user1000}.following");
	seed("foo{}{bar}");
	seed("foo{{bar}}zap");

	dict = fopen(argv[2], "w");
	CHECK(dict != NULL);
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
	{
		fputc('"', dict);
		for (const char *c = words[i]; *c; c++)
			if (*c < 0x20 || *c == '"' || *c == '\\')
				fprintf(dict, "\\x%02X", (unsigned char) *c);
			else
				fputc(*c, dict);
		fputs("\"\n", dict);
	}
	CHECK(fclose(dict) == 0);
	printf("%d cluster seeds in %s, dictionary %s\n", nseeds, dir, argv[2]);
	return 0;
}

#endif /* FZ_CLUSTER_MAKE_SEEDS */

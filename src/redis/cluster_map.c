/*-------------------------------------------------------------------------
 *
 * cluster_map.c
 *	  Redis Cluster's routing (cluster_map.h): the hash slot of a key, the
 *	  slot map from CLUSTER SLOTS or CLUSTER SHARDS, and the classification
 *	  of redirect errors.
 *
 * Written from Redis's cluster specification and the documentation of the
 * two commands.  Like the other parsers of untrusted bytes it needs
 * nothing from a backend and allocates nothing (the caller owns the map),
 * so that test/fuzz/fuzz_cluster.c and test/fuzz/cluster_probe.c link it
 * as it is.  No state: every function works on its arguments only.
 *
 *-------------------------------------------------------------------------
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "redis/cluster_map.h"

_Static_assert(CLUSTER_NO_NODE == 0xFFFF, "map_reset fills slot[] with 0xFF bytes");
_Static_assert(CLUSTER_MAX_NODES < CLUSTER_NO_NODE, "a node index fits slot[]");

/* A node as one reply describes it, before it is merged into the map. */
typedef struct NodeDesc
{
	char host[CLUSTER_HOST_MAX + 1];
	int port;
	char id[CLUSTER_NODE_ID_LEN + 1];
	bool unknown_endpoint;
	bool online;
} NodeDesc;

/*
 * CRC16 as Redis Cluster specifies it (XMODEM: polynomial 0x1021, initial
 * value 0, bits not reflected, no final xor), a bit at a time: keys are
 * short, and a table would be one more thing to get wrong.
 */
static uint16_t
crc16_xmodem(const unsigned char *p, size_t len)
{
	uint16_t crc = 0;

	for (size_t i = 0; i < len; i++)
	{
		crc ^= (uint16_t) (p[i] << 8);
		for (int b = 0; b < 8; b++)
			crc = (crc & 0x8000) ? (uint16_t) ((crc << 1) ^ 0x1021) : (uint16_t) (crc << 1);
	}
	return crc;
}

int
ClusterKeySlot(const char *key, size_t len)
{
	const char *open = len > 0 ? memchr(key, '{', len) : NULL;

	if (open != NULL)
	{
		size_t from = (size_t) (open - key) + 1;
		const char *close = memchr(key + from, '}', len - from);

		/* "{}" hashes the whole key: the tag must not be empty */
		if (close != NULL && close > key + from)
			return crc16_xmodem((const unsigned char *) key + from,
								(size_t) (close - (key + from))) &
				(CLUSTER_NSLOTS - 1);
	}
	return crc16_xmodem((const unsigned char *) key, len) & (CLUSTER_NSLOTS - 1);
}

/*
 * Set err (if any room) from a format, always terminated; returns false.
 * Texts about a reply start with "%%s", which becomes "%s" here and the
 * command's name in name_error(); they quote no byte of the reply.
 */
#if defined(__GNUC__) || defined(__clang__)
static bool fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
#endif

static bool
fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0)
	{
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return false;
}

static void
map_reset(ClusterMap *map)
{
	map->nnodes = 0;
	map->nmasters = 0;
	/* CLUSTER_NO_NODE is all ones */
	memset(map->slot, 0xFF, sizeof(map->slot));
}

/*
 * Whether len bytes are a host we may connect to: 1..CLUSTER_HOST_MAX
 * bytes of letters, digits and . - _ : % (names, IPv4, IPv6 with a zone).
 */
static bool
host_ok(const char *s, size_t len)
{
	if (len == 0 || len > CLUSTER_HOST_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_' ||
			  c == ':' || c == '%'))
			return false;
	}
	return true;
}

/*
 * An endpoint into d: nil or "" is asked_host, "?" unknown, else a valid
 * host.  len is ignored for nil (s NULL).
 */
static bool
set_endpoint(NodeDesc *d, const char *s, size_t len, const char *asked_host)
{
	d->unknown_endpoint = false;
	if (s == NULL || len == 0)
	{
		s = asked_host;
		len = asked_host ? strlen(asked_host) : 0;
	}
	else if (len == 1 && s[0] == '?')
	{
		d->unknown_endpoint = true;
		strcpy(d->host, "?");
		return true;
	}
	if (s == NULL || !host_ok(s, len))
		return false;
	memcpy(d->host, s, len);
	d->host[len] = '\0';
	return true;
}

/* A node id: exactly 40 hex digits, into d->id. */
static bool
set_id(NodeDesc *d, const redisReply *r)
{
	if (r->type != REDIS_REPLY_STRING || r->len != CLUSTER_NODE_ID_LEN)
		return false;
	for (size_t i = 0; i < r->len; i++)
	{
		char c = r->str[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
			  (c >= 'A' && c <= 'F')))
			return false;
	}
	memcpy(d->id, r->str, CLUSTER_NODE_ID_LEN);
	d->id[CLUSTER_NODE_ID_LEN] = '\0';
	return true;
}

static bool
is_int_in(const redisReply *r, long long lo, long long hi)
{
	return r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer >= lo &&
		r->integer <= hi;
}

static bool
same_address(const ClusterNode *n, const NodeDesc *d)
{
	return n->port == d->port && strcmp(n->host, d->host) == 0;
}

/*
 * Merge d into the map as a master (master -1) or a replica of master;
 * returns its index, or -1 with err set.  A node is the same node when
 * its id is (or, without ids, its address); two ids at one known address,
 * a node that changes role or master, or one node too many are refused.
 */
static int
add_node(ClusterMap *map, const NodeDesc *d, int master, char *err,
		 size_t errlen)
{
	int found = -1;

	for (int i = 0; i < map->nnodes; i++)
	{
		const ClusterNode *n = &map->nodes[i];
		bool same;

		if (n->id[0] != '\0' && d->id[0] != '\0')
			same = strcmp(n->id, d->id) == 0;
		else
			same = same_address(n, d);
		if (same)
		{
			found = i;
			break;
		}
		if (!d->unknown_endpoint && !n->unknown_endpoint && same_address(n, d))
		{
			fail(err, errlen, "%%s: two node ids at the address of node %d",
				 i);
			return -1;
		}
	}
	if (found >= 0)
	{
		if (map->nodes[found].master != master)
		{
			fail(err, errlen, "%%s: node %d changes role or master between entries",
				 found);
			return -1;
		}
		if (!same_address(&map->nodes[found], d))
		{
			fail(err, errlen, "%%s: node %d changes address between entries",
				 found);
			return -1;
		}
		return found;
	}
	if (map->nnodes >= CLUSTER_MAX_NODES)
	{
		fail(err, errlen, "%%s: more than %d nodes", CLUSTER_MAX_NODES);
		return -1;
	}
	{
		ClusterNode *n = &map->nodes[map->nnodes];

		memcpy(n->host, d->host, sizeof(n->host));
		memcpy(n->id, d->id, sizeof(n->id));
		n->port = d->port;
		n->master = master;
		n->unknown_endpoint = d->unknown_endpoint;
		n->online = d->online;
	}
	if (master < 0)
		map->nmasters++;
	return map->nnodes++;
}

/*
 * The error texts start with a "%s" for the command's name: put it in,
 * once, at the end, so that the helpers need not pass the name down.
 */
static bool
name_error(char *err, size_t errlen, const char *what)
{
	char tmp[CLUSTER_ERR_LEN];
	char *s;

	if (err == NULL || errlen == 0)
		return false;
	s = strstr(err, "%s");
	if (s == NULL)
		return false;
	snprintf(tmp, sizeof(tmp), "%.*s%s%s", (int) (s - err), err, what, s + 2);
	snprintf(err, errlen, "%s", tmp);
	return false;
}

/* Give slots lo..hi to node (CLUSTER_NO_NODE: claim them unserved). */
static bool
assign_slots(ClusterMap *map, uint8_t *claimed, int lo, int hi, int node,
			 char *err, size_t errlen)
{
	for (int s = lo; s <= hi; s++)
	{
		if (claimed[s >> 3] & (1 << (s & 7)))
			return fail(err, errlen, "%%s: slot %d is in two ranges", s);
		claimed[s >> 3] |= (uint8_t) (1 << (s & 7));
		map->slot[s] = (uint16_t) node;
	}
	return true;
}

/*
 * One node of CLUSTER SLOTS: [endpoint (string or nil), port, id?, ...].
 */
static bool
slots_node(const redisReply *r, const char *asked_host, NodeDesc *d,
		   char *err, size_t errlen, int entry)
{
	const redisReply *ep;

	memset(d, 0, sizeof(*d));
	d->online = true;
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
		r->element[0] == NULL || r->element[1] == NULL)
		return fail(err, errlen, "%%s: entry %d: a node is not [endpoint, port, ...]",
					entry);
	ep = r->element[0];
	if (ep->type == REDIS_REPLY_NIL)
	{
		if (!set_endpoint(d, NULL, 0, asked_host))
			return fail(err, errlen, "%%s: entry %d: no endpoint, and no valid host asked",
						entry);
	}
	else if (ep->type != REDIS_REPLY_STRING ||
			 !set_endpoint(d, ep->str, ep->len, asked_host))
		return fail(err, errlen, "%%s: entry %d: an endpoint is not a valid host",
					entry);
	if (!is_int_in(r->element[1], 1, 65535))
		return fail(err, errlen, "%%s: entry %d: a port is not an integer in 1..65535",
					entry);
	d->port = (int) r->element[1]->integer;
	if (r->elements >= 3 &&
		(r->element[2] == NULL || !set_id(d, r->element[2])))
		return fail(err, errlen, "%%s: entry %d: a node id is not 40 hex digits",
					entry);
	return true;
}

/* One entry of CLUSTER SLOTS: [start, end, master, replica...]. */
static bool
slots_entry(const redisReply *e, int i, const char *asked_host, ClusterMap *map,
			uint8_t *claimed, char *err, size_t errlen)
{
	NodeDesc d;
	int lo,
		hi,
		master;

	if (e == NULL || e->type != REDIS_REPLY_ARRAY || e->elements < 3)
		return fail(err, errlen, "%%s: entry %d is not [start, end, master, ...]", i);
	if (!is_int_in(e->element[0], 0, CLUSTER_NSLOTS - 1) ||
		!is_int_in(e->element[1], 0, CLUSTER_NSLOTS - 1) ||
		e->element[0]->integer > e->element[1]->integer)
		return fail(err, errlen, "%%s: entry %d: not a slot range within 0..%d", i,
					CLUSTER_NSLOTS - 1);
	lo = (int) e->element[0]->integer;
	hi = (int) e->element[1]->integer;
	if (e->elements - 2 > CLUSTER_MAX_NODES)
		return fail(err, errlen, "%%s: entry %d: more than %d nodes", i, CLUSTER_MAX_NODES);
	if (!slots_node(e->element[2], asked_host, &d, err, errlen, i))
		return false;
	if ((master = add_node(map, &d, -1, err, errlen)) < 0)
		return false;
	for (size_t j = 3; j < e->elements; j++)
	{
		if (!slots_node(e->element[j], asked_host, &d, err, errlen, i))
			return false;
		if (add_node(map, &d, master, err, errlen) < 0)
			return false;
	}
	return assign_slots(map, claimed, lo, hi, master, err, errlen);
}

bool
ClusterMapFromSlots(const redisReply *reply, const char *asked_host,
					ClusterMap *map, char *err, size_t errlen)
{
	uint8_t claimed[CLUSTER_NSLOTS / 8];
	const char *what = "CLUSTER SLOTS";

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	map_reset(map);
	memset(claimed, 0, sizeof(claimed));
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY)
	{
		fail(err, errlen, "%%s: the reply is not an array");
		return name_error(err, errlen, what);
	}
	for (size_t i = 0; i < reply->elements; i++)
	{
		if (!slots_entry(reply->element[i], (int) i, asked_host, map, claimed,
						 err, errlen))
		{
			map_reset(map);
			return name_error(err, errlen, what);
		}
	}
	return true;
}

/*
 * The value of name in a RESP2 map (a flat array of name, value), or NULL;
 * *dup is set when the name is there twice, *bad when the array is not a
 * map (odd length, a name that is not a string).
 */
static const redisReply *
map_get(const redisReply *m, const char *name, bool *bad)
{
	const redisReply *v = NULL;
	size_t nlen = strlen(name);

	if (m == NULL || m->type != REDIS_REPLY_ARRAY || m->elements % 2 != 0)
	{
		*bad = true;
		return NULL;
	}
	for (size_t i = 0; i < m->elements; i += 2)
	{
		const redisReply *k = m->element[i];

		if (k == NULL || m->element[i + 1] == NULL ||
			(k->type != REDIS_REPLY_STRING && k->type != REDIS_REPLY_STATUS))
		{
			*bad = true;
			return NULL;
		}
		if (k->len == nlen && memcmp(k->str, name, nlen) == 0)
		{
			if (v != NULL)
			{
				*bad = true; /* twice */
				return NULL;
			}
			v = m->element[i + 1];
		}
	}
	return v;
}

static bool
str_is(const redisReply *r, const char *s)
{
	return r != NULL && r->type == REDIS_REPLY_STRING && r->len == strlen(s) &&
		memcmp(r->str, s, r->len) == 0;
}

/*
 * One node of CLUSTER SHARDS into d; *is_master from its role.  sh, nd:
 * the shard's and node's positions, for the error text.
 */
static bool
shards_node(const redisReply *m, const char *asked_host, bool tls, NodeDesc *d,
			bool *is_master, int sh, int nd, char *err, size_t errlen)
{
	bool bad = false;
	const redisReply *id = map_get(m, "id", &bad);
	const redisReply *ep = map_get(m, "endpoint", &bad);
	const redisReply *ip = map_get(m, "ip", &bad);
	const redisReply *port = map_get(m, tls ? "tls-port" : "port", &bad);
	const redisReply *role = map_get(m, "role", &bad);
	const redisReply *health = map_get(m, "health", &bad);

	memset(d, 0, sizeof(*d));
	if (bad)
		return fail(err, errlen, "%%s: shard %d: node %d is not a map of distinct fields",
					sh, nd);
	if (id != NULL && !set_id(d, id))
		return fail(err, errlen, "%%s: shard %d: node %d: id is not 40 hex digits", sh, nd);
	if (ep == NULL)
		ep = ip;
	if (ep == NULL || ep->type != REDIS_REPLY_STRING ||
		!set_endpoint(d, ep->str, ep->len, asked_host))
		return fail(err, errlen, "%%s: shard %d: node %d: no valid endpoint or ip", sh, nd);
	if (!is_int_in(port, 1, 65535))
		return fail(err, errlen, "%%s: shard %d: node %d: port is not an integer in 1..65535",
					sh, nd);
	d->port = (int) port->integer;
	if (str_is(role, "master"))
		*is_master = true;
	else if (str_is(role, "replica"))
		*is_master = false;
	else
		return fail(err, errlen, "%%s: shard %d: node %d: role is neither master nor replica",
					sh, nd);
	/* an unknown health is not "online": fail closed */
	d->online = health == NULL || str_is(health, "online");
	return true;
}

/* One shard: {slots: [lo, hi, ...], nodes: [{...}, ...]}. */
static bool
shards_entry(const redisReply *s, int sh, const char *asked_host, bool tls,
			 ClusterMap *map, uint8_t *claimed, char *err, size_t errlen)
{
	bool bad = false;
	const redisReply *slots = map_get(s, "slots", &bad);
	const redisReply *nodes = map_get(s, "nodes", &bad);
	NodeDesc d;
	bool is_master;
	int master = -1;

	if (bad || slots == NULL || nodes == NULL ||
		slots->type != REDIS_REPLY_ARRAY || nodes->type != REDIS_REPLY_ARRAY ||
		slots->elements % 2 != 0)
		return fail(err, errlen, "%%s: shard %d is not {slots: [start, end, ...], nodes: [...]}",
					sh);
	if (nodes->elements > CLUSTER_MAX_NODES)
		return fail(err, errlen, "%%s: shard %d: more than %d nodes", sh, CLUSTER_MAX_NODES);
	/* the master first, whatever the order, so that replicas can name it */
	for (size_t j = 0; j < nodes->elements; j++)
	{
		if (!shards_node(nodes->element[j], asked_host, tls, &d, &is_master, sh,
						 (int) j, err, errlen))
			return false;
		if (!is_master)
			continue;
		if (master >= 0)
			return fail(err, errlen, "%%s: shard %d has more than one master", sh);
		if ((master = add_node(map, &d, -1, err, errlen)) < 0)
			return false;
	}
	/* replicas of a shard with no master are of no use for routing */
	for (size_t j = 0; j < nodes->elements && master >= 0; j++)
	{
		(void) shards_node(nodes->element[j], asked_host, tls, &d, &is_master, sh,
						   (int) j, err, errlen);
		if (!is_master && add_node(map, &d, master, err, errlen) < 0)
			return false;
	}
	for (size_t k = 0; k < slots->elements; k += 2)
	{
		const redisReply *lo = slots->element[k];
		const redisReply *hi = slots->element[k + 1];

		if (!is_int_in(lo, 0, CLUSTER_NSLOTS - 1) || !is_int_in(hi, 0, CLUSTER_NSLOTS - 1) ||
			lo->integer > hi->integer)
			return fail(err, errlen, "%%s: shard %d: not a slot range within 0..%d", sh,
						CLUSTER_NSLOTS - 1);
		if (!assign_slots(map, claimed, (int) lo->integer, (int) hi->integer,
						  master >= 0 ? master : CLUSTER_NO_NODE, err, errlen))
			return false;
	}
	return true;
}

bool
ClusterMapFromShards(const redisReply *reply, const char *asked_host, bool tls,
					 ClusterMap *map, char *err, size_t errlen)
{
	uint8_t claimed[CLUSTER_NSLOTS / 8];
	const char *what = "CLUSTER SHARDS";

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	map_reset(map);
	memset(claimed, 0, sizeof(claimed));
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY)
	{
		fail(err, errlen, "%%s: the reply is not an array");
		return name_error(err, errlen, what);
	}
	for (size_t i = 0; i < reply->elements; i++)
	{
		if (!shards_entry(reply->element[i], (int) i, asked_host, tls, map, claimed,
						  err, errlen))
		{
			map_reset(map);
			return name_error(err, errlen, what);
		}
	}
	return true;
}

int
ClusterMapMaster(const ClusterMap *map, int slot)
{
	int n;

	if (slot < 0 || slot >= CLUSTER_NSLOTS)
		return -1;
	n = map->slot[slot];
	if (n == CLUSTER_NO_NODE || n >= map->nnodes || map->nodes[n].unknown_endpoint)
		return -1;
	return n;
}

int
ClusterMapReplicas(const ClusterMap *map, int master, int *out, int max)
{
	int count = 0;

	for (int i = 0; i < map->nnodes; i++)
		if (master >= 0 && map->nodes[i].master == master)
		{
			if (count < max)
				out[count] = i;
			count++;
		}
	return count;
}

/* Digits only, 1..5 of them, as a number in lo..hi; else -1. */
static int
small_number(const char *s, size_t len, int lo, int hi)
{
	int v = 0;

	if (len == 0 || len > 5)
		return -1;
	for (size_t i = 0; i < len; i++)
	{
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v >= lo && v <= hi ? v : -1;
}

/* "<slot> <host>:<port>" (s, len: what follows "MOVED " or "ASK ") into out. */
static bool
redirect_target(const char *s, size_t len, const char *asked_host,
				ClusterRedirect *out, char *err, size_t errlen)
{
	const char *sp = memchr(s, ' ', len);
	const char *t;
	const char *colon = NULL;
	size_t tlen;
	NodeDesc d;

	if (sp == NULL ||
		(out->slot = small_number(s, (size_t) (sp - s), 0, CLUSTER_NSLOTS - 1)) < 0)
		return fail(err, errlen, "redirect: no slot in 0..%d", CLUSTER_NSLOTS - 1);
	t = sp + 1;
	tlen = len - (size_t) (t - s);
	for (size_t i = 0; i < tlen; i++)
		if (t[i] == ':')
			colon = t + i;
	if (colon == NULL ||
		(out->port = small_number(colon + 1, tlen - (size_t) (colon + 1 - t), 1, 65535)) < 0)
		return fail(err, errlen, "redirect: no port in 1..65535 after the last ':'");
	memset(&d, 0, sizeof(d));
	if (!set_endpoint(&d, t, (size_t) (colon - t), asked_host))
		return fail(err, errlen, "redirect: the host is not valid");
	memcpy(out->host, d.host, sizeof(out->host));
	out->unknown_endpoint = d.unknown_endpoint;
	return true;
}

/* Whether the error reply's first word is word. */
static bool
first_word(const redisReply *r, const char *word)
{
	size_t n = strlen(word);

	return r->len >= n && memcmp(r->str, word, n) == 0 &&
		(r->len == n || r->str[n] == ' ');
}

ClusterRedirectKind
ClusterParseRedirect(const redisReply *reply, const char *asked_host,
					 ClusterRedirect *out, char *err, size_t errlen)
{
	bool moved;

	memset(out, 0, sizeof(*out));
	out->slot = -1;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (reply == NULL || reply->type != REDIS_REPLY_ERROR)
		return out->kind = CLUSTER_REPLY_NOT_ERROR;
	if (first_word(reply, "TRYAGAIN"))
		return out->kind = CLUSTER_REDIRECT_TRYAGAIN;
	if (first_word(reply, "CLUSTERDOWN"))
		return out->kind = CLUSTER_REDIRECT_CLUSTERDOWN;
	moved = first_word(reply, "MOVED");
	if (moved || first_word(reply, "ASK"))
	{
		size_t skip = moved ? 6 : 4;

		if (reply->len > skip &&
			redirect_target(reply->str + skip, reply->len - skip, asked_host, out,
							err, errlen))
			return out->kind = moved ? CLUSTER_REDIRECT_MOVED : CLUSTER_REDIRECT_ASK;
		if (reply->len <= skip)
			fail(err, errlen, "redirect: no slot in 0..%d", CLUSTER_NSLOTS - 1);
		memset(out, 0, sizeof(*out));
		out->slot = -1;
	}
	return out->kind = CLUSTER_REDIRECT_OTHER;
}

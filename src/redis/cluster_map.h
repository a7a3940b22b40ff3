/*-------------------------------------------------------------------------
 *
 * cluster_map.h
 *	  Redis Cluster's routing, as pure functions with no backend dependency
 *	  (cluster_map.c), so that the cluster fuzz target and the TAP test's
 *	  probe link the very code the client will run: the hash slot of a key,
 *	  the slot map built from CLUSTER SLOTS or CLUSTER SHARDS, and the
 *	  meaning of an error reply (MOVED, ASK, TRYAGAIN, CLUSTERDOWN).
 *
 * Foundations only (0.6): nothing in the extension calls these yet; the
 * wiring into src/redis/client.c is designed in docs/store.md ("Redis
 * Cluster").  Replies are untrusted input: every function accepts any
 * tree hiredis can build, never reads past a string's len, and reports
 * what it refused as a fixed text that quotes no byte of the reply.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CACHE_EXT_CLUSTER_MAP_H
#define CACHE_EXT_CLUSTER_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

/* the number of hash slots of every Redis Cluster */
#define CLUSTER_NSLOTS 16384

/*
 * Bounds on what a map may hold.  Redis documents clusters of up to about
 * 1000 nodes; a reply naming more is refused.  A host is an IP address or
 * a DNS name (at most 253 bytes); a node id is 40 hex digits.
 */
#define CLUSTER_MAX_NODES	1024
#define CLUSTER_HOST_MAX	255
#define CLUSTER_NODE_ID_LEN 40

/* ClusterMap.slot[] of a slot no master serves */
#define CLUSTER_NO_NODE 0xFFFF

/* room for an error text of the functions below, with its NUL */
#define CLUSTER_ERR_LEN 160

typedef struct ClusterNode
{
	/*
	 * Where to connect: the node's preferred endpoint, or the host the reply
	 * came from (asked_host) when the reply gave none (nil or "", which the
	 * command's documentation says mean "the endpoint you asked").
	 * Printable ASCII, NUL-terminated.
	 */
	char host[CLUSTER_HOST_MAX + 1];
	int port;						  /* 1..65535 */
	char id[CLUSTER_NODE_ID_LEN + 1]; /* "" when the reply gave none */
	int master;						  /* -1 for a master, else its master's index */

	/*
	 * The endpoint is "?": the node announces a hostname it does not have.
	 * It is not "the host asked" (the documentation says so), so nothing can
	 * reach it: ClusterMapMaster() reports its slots as unserved.
	 */
	bool unknown_endpoint;

	/* CLUSTER SHARDS' health is "online" (CLUSTER SLOTS lists no failed node) */
	bool online;
} ClusterNode;

/*
 * The slot map: every node once, and for each slot the index of the master
 * that serves it.  Identity of a node is its (host, port).  About 330 kB:
 * allocate it (palloc, malloc), do not put it on the stack.
 */
typedef struct ClusterMap
{
	int nnodes;
	int nmasters;
	uint16_t slot[CLUSTER_NSLOTS]; /* node index or CLUSTER_NO_NODE */
	ClusterNode nodes[CLUSTER_MAX_NODES];
} ClusterMap;

/*
 * The hash slot of a key (0..16383): CRC16-XMODEM of the key, modulo 16384;
 * if the key has a '{' and a '}' after the first '{' with at least one byte
 * between them, of those bytes only.
 */
extern int ClusterKeySlot(const char *key, size_t len);

/*
 * Build *map from the reply to CLUSTER SLOTS (any RESP2 tree), asked_host
 * being the host the command was sent to (NUL-terminated).  True on
 * success; false with a reason in err (errlen bytes, always terminated)
 * and *map empty (no node, no slot served) when the reply is not a valid
 * slot map: a field of the wrong type, a slot outside 0..16383, a range
 * that overlaps another, a port outside 1..65535, a host that is too long
 * or not printable, a node id that is not 40 hex digits, more than
 * CLUSTER_MAX_NODES nodes, or a node that is master in one range and
 * replica in another.  Elements beyond those documented are ignored.
 */
extern bool ClusterMapFromSlots(const redisReply *reply, const char *asked_host,
								ClusterMap *map, char *err, size_t errlen);

/*
 * The same from the reply to CLUSTER SHARDS (Redis 7; maps arrive as flat
 * arrays of name, value in RESP2).  A node's address is its "endpoint",
 * else its "ip"; its port is "tls-port" when tls, else "port".  A shard
 * with more than one master, or a field given twice, is refused; slots of
 * a shard with no master stay unserved.  Unknown fields are ignored.
 */
extern bool ClusterMapFromShards(const redisReply *reply, const char *asked_host,
								 bool tls, ClusterMap *map, char *err,
								 size_t errlen);

/*
 * The index of the master serving slot, or -1 if none does, the slot is
 * out of range, or the master's endpoint is unknown.
 */
extern int ClusterMapMaster(const ClusterMap *map, int slot);

/*
 * The indexes of master's replicas, in map order, into out (at most max);
 * returns how many there are (which may exceed max).
 */
extern int ClusterMapReplicas(const ClusterMap *map, int master, int *out,
							  int max);

/* What an error reply asks of a cluster client. */
typedef enum ClusterRedirectKind
{
	CLUSTER_REPLY_NOT_ERROR,	  /* not an error reply at all */
	CLUSTER_REDIRECT_MOVED,		  /* the slot is served elsewhere: refresh */
	CLUSTER_REDIRECT_ASK,		  /* this key, once: ASKING, then retry there */
	CLUSTER_REDIRECT_TRYAGAIN,	  /* a multi-key command during resharding */
	CLUSTER_REDIRECT_CLUSTERDOWN, /* the cluster (or this slot) is down */
	CLUSTER_REDIRECT_OTHER		  /* any other error, or a malformed redirect */
} ClusterRedirectKind;

typedef struct ClusterRedirect
{
	ClusterRedirectKind kind;
	int slot;						 /* MOVED, ASK: 0..16383; else -1 */
	char host[CLUSTER_HOST_MAX + 1]; /* MOVED, ASK: where; else "" */
	int port;						 /* MOVED, ASK: 1..65535; else 0 */
	bool unknown_endpoint;			 /* MOVED, ASK to "?": refresh the map */
} ClusterRedirect;

/*
 * Classify an error reply.  MOVED and ASK are "<KIND> <slot> <host>:<port>"
 * exactly, the host being everything before the last ':' (an IPv6 address
 * is not bracketed), and an empty host meaning asked_host.  A MOVED or ASK
 * that does not parse is CLUSTER_REDIRECT_OTHER, with the reason in err
 * (errlen bytes; may be NULL with errlen 0).
 */
extern ClusterRedirectKind ClusterParseRedirect(const redisReply *reply,
												const char *asked_host,
												ClusterRedirect *out,
												char *err, size_t errlen);

#endif /* CACHE_EXT_CLUSTER_MAP_H */

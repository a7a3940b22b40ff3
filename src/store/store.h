/*-------------------------------------------------------------------------
 *
 * store.h
 *	  The store layer: every Redis command cache_ext issues, as operations
 *	  in the cache's own terms (look up an entry with its generations, put
 *	  one, delete one, bump scopes, purge, health, ...).
 *
 * Only store.c (and the client under src/redis/) issues Redis commands; no
 * hiredis type appears here.  Results are plain structs and status enums;
 * strings they hold are palloc'd in the caller's memory context unless
 * said otherwise.  Which reply means what is decided once, by the pure
 * functions of store_reply.c, for every caller.
 *
 * This header needs only c.h's types: store_reply.c, which is built
 * without the backend (the RESP fuzz target links it), includes it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CACHE_EXT_STORE_H
#define CACHE_EXT_STORE_H

/* How an operation went. */
typedef enum StoreStatus
{
	STORE_OK,
	STORE_UNAVAILABLE, /* Redis could not be used or failed (the
								 * client recorded why: StoreLastError) */
	STORE_REFUSED,	   /* the server answered with an error */
	STORE_BAD_REPLY	   /* a reply of a shape cache_ext never asks for */
} StoreStatus;

/* What the reply to an entry's GETRANGE says (store_reply.c decides). */
typedef enum StoreEntryState
{
	STORE_ENTRY_ABSENT,	  /* no such key */
	STORE_ENTRY_PRESENT,  /* bytes to open and decode */
	STORE_ENTRY_BAD_TYPE, /* a key of another type, or a reply that is
								 * not a string */
	STORE_ENTRY_TOO_LARGE /* longer than cache_ext.max_entry_size */
} StoreEntryState;

/* What the reply to the generations' MGET says. */
typedef enum StoreGensState
{
	STORE_GENS_VALID,	/* each a value of 1..255 bytes */
	STORE_GENS_MISSING, /* well formed, some do not exist (nil) */
	STORE_GENS_INVALID	/* wrong shape, or a value cache_ext does not
								 * write */
} StoreGensState;

/*
 * The one verdict on a lookup's replies, shared by cached_query and
 * cache_explain.
 */
typedef enum StoreLookupVerdict
{
	STORE_LOOKUP_DOWN,	  /* Redis failed or is not serving */
	STORE_LOOKUP_MISS,	  /* no entry */
	STORE_LOOKUP_CORRUPT, /* an entry cache_ext cannot have written */
	STORE_LOOKUP_STALE,	  /* generations missing or unusable */
	STORE_LOOKUP_DECODE	  /* entry and generations usable: decode */
} StoreLookupVerdict;

/*
 * Called with an entry's bytes when the verdict is STORE_LOOKUP_DECODE:
 * valid only during the call, writable, with a NUL after len that may be
 * modified temporarily.  Its result is passed back in StoreLookup.decoded.
 * It may raise: the store frees what it holds.
 */
typedef int (*StoreDecodeFn)(char *data, size_t len, void *arg);

/* A lookup's result. */
typedef struct StoreLookup
{
	StoreLookupVerdict verdict;
	StoreEntryState entry; /* unless DOWN */
	StoreGensState gens;   /* unless DOWN */
	int nmissing;		   /* STORE_GENS_MISSING: how many */
	size_t entry_bytes;	   /* PRESENT / TOO_LARGE: its length */
	const char *problem;   /* CORRUPT: why (a constant string) */
	bool has_ttl;		   /* with_ttl and the server said */
	int64 ttl_ms;
	int decoded;	 /* DECODE: what decode returned; -1 until it ran */
	char error[200]; /* for_explain, DOWN on a server's error reply:
							* "Redis answered: ..." (escaped) */
	bool has_mark;	 /* mark_key was asked for and held a watermark */
	uint64 mark;	 /* its value (StoreReplyMark) */
} StoreLookup;

/*
 * Fetch the entry rkey (at most max_entry_size bytes) and the generations
 * genkeys[0..ngens) in one round trip.  vals/lens (ngens each, zeroed by
 * the caller) receive the values of the generations that are usable
 * (palloc'd).  A server error reply gives STORE_LOOKUP_DOWN; it is reported
 * to the client (the circuit opens, the error is counted) unless
 * for_explain, which also asks for the entry's PTTL: cache_explain looks
 * and changes nothing.  With mark_key, that key is read first in the same
 * round trip (has_mark, mark: a hot standby's watermark).  Does not check
 * StoreUsable first.
 */
extern void StoreLookupEntry(const char *rkey, char *const *genkeys, int ngens,
							 size_t max_entry_size, bool for_explain,
							 const char *mark_key,
							 char **vals, size_t *lens,
							 StoreDecodeFn decode, void *arg,
							 StoreLookup *out);

/*
 * Create the generations keys[which[j]] (j < nmissing) that do not exist
 * with value (32 bytes), then read all of them back (another session may
 * have been first) into vals/lens[which[j]].  Returns false when Redis
 * failed or a value is not one cache_ext writes.
 */
extern bool StoreInitGenerations(char *const *keys, const int *which,
								 int nmissing, const char *value,
								 char **vals, size_t *lens);

/*
 * Put an entry (already sealed if it is to be) with a TTL.  Returns NULL
 * when Redis took it, else why not (palloc'd, for cache_status).
 */
extern char *StorePutEntry(const char *rkey, const char *data, size_t len,
						   int64 ttl_ms);

/* Delete an entry, best effort (a failure is the client's to report). */
extern void StoreDeleteEntry(const char *rkey);

/*
 * Set every key to value (32 bytes) in one MSET within timeout_ms, and
 * mark_key (when not NULL) to mark_val in the same MSET.  True when Redis
 * took it.  Checks StoreUsable first.
 */
extern bool StoreBump(char *const *keys, int n, const char *value,
					  const char *mark_key, const char *mark_val,
					  int timeout_ms);

/* What the incarnation token held before StoreSwapToken replaced it. */
typedef enum StoreTokenPrev
{
	STORE_TOKEN_NONE,  /* no token (Redis lost it or never had it) */
	STORE_TOKEN_KNOWN, /* file_token: the last clean shutdown's */
	STORE_TOKEN_MINE,  /* this incarnation's own: an earlier swap was
						* executed but its reply lost, so what it
						* replaced is unknown */
	STORE_TOKEN_OTHER  /* another incarnation's */
} StoreTokenPrev;

/*
 * SET key token GET: store this incarnation's token and say what was
 * there.  STORE_OK with *prev, or why not.  Checks StoreUsable first.
 */
extern StoreStatus StoreSwapToken(const char *key, const char *token,
								  const char *file_token,
								  StoreTokenPrev *prev);

/* The standby lease: PTTL (ms, or -1 when none or unknown). */
extern StoreStatus StoreLeaseTtl(const char *key, int64 *ttl_ms);

/* A hot standby's watermark alone (*has false: none, or not a watermark). */
extern StoreStatus StoreReadMark(const char *key, bool *has, uint64 *value);

/*
 * Renew the lease (SET PX) or drop it (UNLINK, *dropped when the server
 * answered with a count), within timeout_ms.  Both check StoreUsable
 * first.
 */
extern StoreStatus StoreLeaseSet(const char *key, const char *token,
								 int px_ms, int timeout_ms);
extern StoreStatus StoreLeaseDelete(const char *key, int timeout_ms,
									bool *dropped);

/*
 * One batch of cache_purge: SCAN from cursor, UNLINK what it found.  With
 * a Redis Cluster, every master in turn (the masters of the map at the
 * first batch).  Zero it, set cursor to "0", and call until done.
 */
#define STORE_CURSOR_LEN  32
#define STORE_ADDR_LEN	  272  /* REDIS_ADDR_LEN */
#define STORE_PURGE_NODES 1024 /* CLUSTER_MAX_NODES */
typedef struct StorePurgeBatch
{
	char cursor[STORE_CURSOR_LEN]; /* the next SCAN cursor of the node */
	int64 deleted;				   /* out: keys this batch deleted */
	const char *problem;		   /* out, unless STORE_OK */
	bool unlink_failed;			   /* out: UNLINK was refused (an ACL matter) */
	bool done;					   /* out: every key was scanned */
	int node;					   /* cluster: the master being scanned */
	int nnodes;					   /* cluster: masters (0 before the first) */
	char (*nodes)[STORE_ADDR_LEN]; /* cluster: their addresses */
} StorePurgeBatch;

extern StoreStatus StorePurge(const char *pattern, StorePurgeBatch *b);

/* cache_health's view of the store; strings are escaped, palloc'd or NULL. */
typedef struct StoreHealth
{
	bool connected;
	bool breaker_open;
	int breaker_remaining_ms;
	const char *last_error;		 /* the last failure, else why Redis cannot
								 * be used, or NULL */
	const char *last_error_kind; /* its kind (RedisFailureKindName), or
								  * NULL */
	double rtt_ms;				 /* PING's round trip, -1 when none */
	char *info_refused;			 /* INFO's error reply, or NULL */
	bool has_info;				 /* INFO answered: the fields below */
	char *version;
	char *role;
	char *used_memory;
	char *maxmemory;
	char *maxmemory_policy;
	char *aof_enabled;
	char *evicted_keys;
	char *expired_keys;
} StoreHealth;

extern void StoreGetHealth(StoreHealth *h);

/* Whether Redis may be tried now; when not, *why says so (constant). */
extern bool StoreUsable(const char **why);

/* Drop this backend's connection: the next operation makes a new one. */
extern void StoreDropConnection(void);

/* How Redis is reached: "single", "sentinel" or "cluster" (the URL's form). */
extern const char *StoreMode(void);

/* The client's last failure, or "". */
extern const char *StoreLastError(void);

/*
 * Called after every new connection with the server's run_id, or NULL
 * when it did not say (INFO refused), and its address ("host:port", ""
 * for a unix socket).  A new run_id means the server restarted or another
 * master took over (a failover) and may have lost writes.  Returns the
 * identity sequence the connection is valid under.  One listener (the
 * outbox), with the function giving the current sequence: a connection
 * made under an older one is dropped before its next use, and an
 * exchange during which the sequence moved counts as failed (its replies
 * may come from the former master).
 */
/*
 * With a Redis Cluster, commands that name no key (PING, INFO) go to the
 * master of the slot of the key this function names (palloc'd, or NULL:
 * any master): the outbox gives its target's base, which carries the
 * database's hash tag, so that they reach the node its keys are on.
 */
typedef char *(*StoreHomeKeyFn)(void);
extern void StoreSetHomeKey(StoreHomeKeyFn fn);

typedef uint64 (*StoreServerListener)(const char *run_id, const char *addr);
typedef uint64 (*StoreIdentityFn)(void);
extern void StoreSetServerListener(StoreServerListener fn,
								   StoreIdentityFn identity);

/* One node of a Redis Cluster (StoreClusterNodes, for cache_redis_nodes). */
typedef struct StoreNodeInfo
{
	char addr[STORE_ADDR_LEN];
	bool master;
	char master_addr[STORE_ADDR_LEN]; /* a replica's master */
	int slots;						  /* slots it serves */
	bool online;					  /* the map says so */
	const char *used;				  /* by this backend: home, side, down, NULL */
	bool pinged;					  /* a master that answered PING */
	double ping_ms;
	char error[160]; /* why PING failed */
} StoreNodeInfo;

/*
 * The nodes of a fresh slot map (at most max), each online master asked
 * PING; "home" is the master of this database's slot.  -1 when no map
 * could be read (StoreLastError says why); 0 without a cluster URL.
 */
extern int StoreClusterNodes(StoreNodeInfo *out, int max);

#endif /* CACHE_EXT_STORE_H */

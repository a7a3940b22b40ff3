/*-------------------------------------------------------------------------
 *
 * redis.h
 *	  The Redis client of cache_ext: URL parsing, transport (our own socket
 *	  I/O, every wait through the latch), RESP through hiredis's reader and
 *	  formatter, pipelining and the circuit breaker.
 *
 * Only files under src/redis/ touch a socket.  Replies are hiredis objects
 * (malloc'd): whoever receives them frees them with RedisFreeReplies, also
 * on error paths.
 *
 * The client calls nothing above it: a failure is reported as a kind
 * (RedisFailureKind, decided from errno, SSL_get_error, OpenSSL's error
 * queue and the certificate verification result where it happens, never
 * from message text) plus a message for people (RedisLastError), and
 * counted in a backend-local counter (RedisFailureCount) that the layer
 * above turns into statistics.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CACHE_EXT_REDIS_H
#define CACHE_EXT_REDIS_H

#include "postgres.h"

#include <hiredis/hiredis.h>

#include "datatype/timestamp.h"

/*
 * Why the client could not serve a call.  The names (RedisFailureKindName)
 * are stable: they may appear in statistics and logs.
 */
typedef enum RedisFailureKind
{
	REDIS_FAIL_NONE,			/* no failure yet */
	REDIS_FAIL_CONFIG,			/* redis_url unset or invalid, password file,
								 * TLS settings or their files */
	REDIS_FAIL_RESOURCES,		/* out of memory or file descriptors */
	REDIS_FAIL_RESOLVE,			/* the host name did not resolve */
	REDIS_FAIL_REFUSED,			/* nobody listens (ECONNREFUSED, no socket
								 * file) */
	REDIS_FAIL_UNREACHABLE,		/* other connect errors (no route, ...) */
	REDIS_FAIL_TIMEOUT,			/* a deadline passed (connect, TLS, reply) */
	REDIS_FAIL_INTERRUPTED,		/* cancel or terminate while interrupts were
								 * held */
	REDIS_FAIL_TLS_VERIFY,		/* the server's certificate or name did not
								 * verify */
	REDIS_FAIL_TLS,				/* any other TLS failure, including the server
								 * refusing our certificate */
	REDIS_FAIL_CLOSED,			/* the server closed or reset the connection
								 * (EOF, ECONNRESET, EPIPE, TLS end of stream) */
	REDIS_FAIL_IO,				/* any other socket error */
	REDIS_FAIL_PROTOCOL,		/* the reply is not valid RESP */
	REDIS_FAIL_REPLY_TOO_LARGE, /* the replies exceed the caller's limit */
	REDIS_FAIL_AUTH,			/* AUTH was refused */
	REDIS_FAIL_SERVER_ERROR,	/* the server answered with an error that
								 * means it is not serving (SELECT refused,
								 * -LOADING, -NOAUTH, ... via
								 * RedisReportError) */
	REDIS_FAIL_BREAKER_OPEN		/* not tried: the circuit breaker is open */
} RedisFailureKind;

#define REDIS_FAIL_NUM_KINDS (REDIS_FAIL_BREAKER_OPEN + 1)

/* url.c */
typedef enum RedisEndpointKind
{
	REDIS_EP_TCP,
	REDIS_EP_UNIX,
	REDIS_EP_TLS /* rediss://: TCP with TLS */
} RedisEndpointKind;

#define REDIS_MAX_SENTINELS 16
#define REDIS_MAX_SEEDS		16

/* "host:port" of a server, with its NUL (hosts are at most 255 bytes) */
#define REDIS_ADDR_LEN 272

typedef struct RedisEndpoint
{
	RedisEndpointKind kind; /* of the data node (TCP or TLS for Sentinel) */
	char *host;				/* TCP: host name or address; Sentinel: the
							 * master's, once resolved */
	int port;				/* TCP */
	char *path;				/* UNIX: socket path */
	char *user;				/* ACL user, or NULL */
	char *password;			/* or NULL */
	int db;					/* SELECT index */

	/* redis-sentinel:// and rediss-sentinel:// (nsentinels > 0) */
	int nsentinels;
	char *sentinel_host[REDIS_MAX_SENTINELS];
	int sentinel_port[REDIS_MAX_SENTINELS];
	char *master_name;	 /* the name the sentinels monitor */
	char *sentinel_user; /* ?sentinel_user=: their ACL user, or NULL */

	/* redis-cluster:// and rediss-cluster:// (nseeds > 0): seed nodes */
	int nseeds;
	char *seed_host[REDIS_MAX_SEEDS];
	int seed_port[REDIS_MAX_SEEDS];
} RedisEndpoint;

/*
 * Parses url into *ep (palloc'd in the current context): redis://,
 * rediss://, unix://, redis-sentinel://, rediss-sentinel://,
 * redis-cluster:// and rediss-cluster:// (url.c has the syntax).  Returns NULL on
 * success, or a palloc'd message describing the problem; the message never
 * contains the password.
 */
extern char *RedisParseUrl(const char *url, RedisEndpoint *ep);

/* transport.c */
typedef struct WaitEventSet WaitEventSet;

typedef struct RedisTransport
{
	pgsocket sock;
	bool fd_reserved;		  /* AcquireExternalFD() succeeded */
	WaitEventSet *wes;		  /* latch, postmaster death and the socket,
								 * kept for the connection's life */
	int sock_pos;			  /* the socket's event in wes */
	uint32 sock_events;		  /* what it waits for now */
	struct ssl_st *ssl;		  /* rediss://: OpenSSL's connection (malloc'd,
								 * freed by TransportClose), else NULL */
	uint64 tls_generation;	  /* the TLS settings it was made under */
	RedisFailureKind failure; /* set by a Transport* call that failed */
} RedisTransport;

extern bool TransportConnect(RedisTransport *t, const RedisEndpoint *ep,
							 TimestampTz deadline, char *err, size_t errlen);
extern bool TransportSend(RedisTransport *t, const char *buf, size_t len,
						  TimestampTz deadline, char *err, size_t errlen);
extern ssize_t TransportRecv(RedisTransport *t, char *buf, size_t len,
							 bool wait_first, TimestampTz deadline,
							 char *err, size_t errlen);
extern void TransportClose(RedisTransport *t);
extern bool TransportStale(const RedisTransport *t);

/* cache_ext.redis_password_file (client.c), defined with the TLS settings */
extern char *cache_ext_redis_password_file;
extern char *cache_ext_sentinel_password_file; /* defined in client.c */
extern bool cache_ext_sentinel_hostnames;	   /* defined in client.c */

/* The transport's settings (TLS), defined from _PG_init. */
extern char *cache_ext_tls_ca_file;
extern char *cache_ext_tls_cert_file;
extern char *cache_ext_tls_key_file;
extern bool cache_ext_tls_verify;
extern void TransportDefineGucs(void);

/* client.c */
/*
 * A command's arguments point to memory the caller keeps alive until the
 * command is sent.  Up to 8 arguments live in the struct; more are
 * palloc'd in the current memory context.
 */
typedef struct RedisCommand
{
	int argc;
	int cap;
	const char **argv;
	size_t *argvlen;
	const char *argv_inline[8];
	size_t argvlen_inline[8];
} RedisCommand;

extern void RedisCommandInit(RedisCommand *cmd, const char *name);
extern void RedisCommandArg(RedisCommand *cmd, const char *arg, size_t len);
extern void RedisCommandArgStr(RedisCommand *cmd, const char *arg);

extern bool RedisUsable(const char **why);
extern bool RedisExec(int ncmds, RedisCommand *cmds, redisReply **replies,
					  size_t max_reply_bytes);
extern bool RedisExecTimeout(int ncmds, RedisCommand *cmds, redisReply **replies,
							 size_t max_reply_bytes, int timeout_ms);

/*
 * Whether a connection was made since the last call, and then its server's
 * run_id (from INFO server) into run_id (64 bytes: RESP_RUN_ID_LEN), ""
 * when the server did not say.  A new run_id means the server restarted
 * and may have lost writes or loaded an old snapshot.  The client calls
 * nothing above it: the store asks after every exchange.
 */
extern bool RedisTakeNewConnection(char *run_id, char *addr);

/*
 * The address (REDIS_ADDR_LEN) of the server a new connection reached,
 * for RedisTakeNewConnection; "" for a unix socket.  With Sentinel, the
 * master found.
 */

/*
 * Called after a connection is made and before any command is sent on
 * it, when the server's run_id is already known (Sentinel: INFO is part
 * of the handshake); without Sentinel the run_id comes with the first
 * pipeline's replies and the store asks after it.  One hook (the store's).
 */
extern void RedisSetConnectHook(void (*hook)(void));

/* Whether the URL in use is a Sentinel URL (cheap: no parsing). */
extern bool RedisSentinelMode(void);

/* Whether it is a Redis Cluster URL (cluster.c; cheap: no parsing). */
extern bool RedisClusterMode(void);

/*
 * With a Redis Cluster: pipelines that name no key go to the master of
 * key's slot (NULL: of any slot) until the next call.
 */
extern void RedisClusterSetHome(const char *key);

/*
 * Redis Cluster: the addresses of the masters of a new slot map (at most
 * max; -1 with the failure noted); a call on the master at addr, over a
 * connection of its own (RedisExec's contract, but no breaker).
 */
extern int RedisClusterMasters(char (*addrs)[REDIS_ADDR_LEN], int max);

/* One node of a Redis Cluster, for cache_redis_nodes() (health_nodes.c). */
typedef struct RedisNodeInfo
{
	char addr[REDIS_ADDR_LEN];
	bool master;
	char master_addr[REDIS_ADDR_LEN]; /* a replica's master */
	int slots;						  /* slots it serves */
	bool online;					  /* the map says so, and it is reachable */
	const char *used;				  /* home (the home slot's master), side, down, NULL */
	bool pinged;					  /* a master that answered PING */
	double ping_ms;
	char error[160]; /* why PING failed */
} RedisNodeInfo;

/*
 * The nodes of a fresh slot map (at most max), each master asked PING;
 * -1 with the failure noted.
 */
extern int RedisClusterNodes(RedisNodeInfo *out, int max);

extern bool RedisExecAt(const char *addr, int ncmds, RedisCommand *cmds,
						redisReply **replies, size_t max_reply_bytes);
extern void RedisFreeReplies(int n, redisReply **replies);
extern void RedisDisconnect(void);

/*
 * Drop the connection because its replies cannot be used (why says so,
 * kind server_error), without opening the breaker: the next call
 * connects again at once.
 */
extern void RedisAbandon(const char *why);

/*
 * Note why a call the server answered did not do what it had to (kind
 * server_error, for StoreLastError), keeping the connection and the
 * breaker closed.
 */
extern void RedisNoteFailure(const char *why);
extern void RedisReportError(const char *msg, size_t len);

/*
 * Text from Redis (len bytes at s, an error reply, an INFO field, ...) made
 * safe to show: at most max bytes of printable ASCII, other bytes as \xNN
 * (see text.c), palloc'd.  Everything Redis says goes through this (or
 * RedisSafeText) before it reaches a message, a log line or a SQL result.
 */
extern char *RedisReplyText(const char *s, size_t len, size_t max);
extern const char *RedisLastError(void);
extern bool RedisConnected(void);
extern bool RedisBreakerOpen(int *remaining_ms);

/*
 * The kind of this backend's last failure: of the last call that returned
 * false (RedisExec, RedisExecTimeout, RedisUsable), or of the last
 * RedisReportError.  Sticky like RedisLastError(): a success leaves it.
 * RedisBreakerCause() is the kind of the failure that opened the breaker.
 */
extern RedisFailureKind RedisLastFailureKind(void);
extern RedisFailureKind RedisBreakerCause(void);
extern const char *RedisFailureKindName(RedisFailureKind kind);

/*
 * Failures of this backend so far (each one that dropped the connection
 * and opened the breaker, RedisReportError included; a refusal by
 * RedisUsable is not one).  Monotonic: the caller counts the difference.
 */
extern uint64 RedisFailureCount(void);

#endif /* CACHE_EXT_REDIS_H */

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
 *-------------------------------------------------------------------------
 */
#ifndef CACHE_EXT_REDIS_H
#define CACHE_EXT_REDIS_H

#include "postgres.h"

#include <hiredis/hiredis.h>

#include "datatype/timestamp.h"

/* url.c */
typedef enum RedisEndpointKind
{
	REDIS_EP_TCP,
	REDIS_EP_UNIX,
	REDIS_EP_TLS				/* rediss://: TCP with TLS */
} RedisEndpointKind;

typedef struct RedisEndpoint
{
	RedisEndpointKind kind;
	char	   *host;			/* TCP: host name or address */
	int			port;			/* TCP */
	char	   *path;			/* UNIX: socket path */
	char	   *user;			/* ACL user, or NULL */
	char	   *password;		/* or NULL */
	int			db;				/* SELECT index */
} RedisEndpoint;

/*
 * Parses url into *ep (palloc'd in the current context).  Returns NULL on
 * success, or a palloc'd message describing the problem; the message never
 * contains the password.
 */
extern char *RedisParseUrl(const char *url, RedisEndpoint *ep);

/* transport.c */
typedef struct WaitEventSet WaitEventSet;

typedef struct RedisTransport
{
	pgsocket	sock;
	bool		fd_reserved;	/* AcquireExternalFD() succeeded */
	WaitEventSet *wes;			/* latch, postmaster death and the socket,
								 * kept for the connection's life */
	int			sock_pos;		/* the socket's event in wes */
	uint32		sock_events;	/* what it waits for now */
	struct ssl_st *ssl;			/* rediss://: OpenSSL's connection (malloc'd,
								 * freed by TransportClose), else NULL */
	uint64		tls_generation; /* the TLS settings it was made under */
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
	int			argc;
	int			cap;
	const char **argv;
	size_t	   *argvlen;
	const char *argv_inline[8];
	size_t		argvlen_inline[8];
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
 * Called after every new connection with the server's run_id (from INFO
 * server), or NULL when the server did not say.  A new run_id means the
 * server restarted and may have lost writes or loaded an old snapshot.
 */
typedef void (*RedisConnectHook) (const char *run_id);
extern RedisConnectHook redis_connect_hook;
extern void RedisFreeReplies(int n, redisReply **replies);
extern void RedisDisconnect(void);
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

#endif							/* CACHE_EXT_REDIS_H */

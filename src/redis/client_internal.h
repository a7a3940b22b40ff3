/*-------------------------------------------------------------------------
 *
 * client_internal.h
 *	  What client.c (the connection of this backend, pipelines, the
 *	  breaker) and sentinel.c (finding the master through Sentinel) share.
 *	  Nothing outside src/redis/ includes it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CACHE_EXT_CLIENT_INTERNAL_H
#define CACHE_EXT_CLIENT_INTERNAL_H

#include "postgres.h"

#include "lib/stringinfo.h"

#include "redis/redis.h"
#include "redis/resp.h"

/* One connection: a transport and the hiredis reader of its replies. */
typedef struct RedisConn
{
	bool connected;
	char *url;				   /* malloc'd copy of the URL it was made for, or NULL */
	bool sentinel;			   /* found through Sentinel: every
									 * pipeline checks ROLE first */
	char addr[REDIS_ADDR_LEN]; /* host:port, or the socket path */
	RedisTransport transport;
	redisReader *reader;
} RedisConn;

/* Note a failure: its kind and its message for people (client.c). */
extern void ClientSetFailure(RedisFailureKind kind, const char *fmt, ...) pg_attribute_printf(2, 3);

/*
 * Open c's transport to ep (ep->host/port or path) and a reader; false
 * with the failure noted, naming the address.  ClientClose releases both.
 */
extern bool ClientOpen(RedisConn *c, const RedisEndpoint *ep, TimestampTz deadline);
extern void ClientClose(RedisConn *c);

/*
 * Send n commands as one pipeline on c and read their replies, at most
 * max_reply_bytes in all; false with the failure noted.  Throws only
 * through CHECK_FOR_INTERRUPTS (the replies in flight are freed by
 * client.c's error path).
 */
extern bool ClientRun(RedisConn *c, int n, RedisCommand *cmds,
					  redisReply **replies, size_t max_reply_bytes,
					  TimestampTz deadline);

/*
 * AUTH with user (or none) and the password: password_file's first line
 * when the setting is not empty, else the URL's password (or no AUTH).
 * Appends the command to cmds[*n]; the palloc'd password is returned
 * for the caller to wipe after sending, NULL when none.  False when the
 * file cannot be read (failure noted).
 */
extern bool ClientAuthCommand(RedisCommand *cmds, int *n, const char *user,
							  const char *url_password,
							  const char *password_file, const char *setting,
							  char **password);

/* A reply that is an error: note it as the failure of what (AUTH: auth). */
extern bool ClientErrorReply(const redisReply *r, const char *what);

/*
 * sentinel.c: ask the sentinels of ep for the master's address, connect c
 * to it (AUTH, SELECT, ROLE and INFO server in one round trip), and
 * accept it only if ROLE says master; ask again (bounded by deadline)
 * when it does not.  On success c->addr names the master and run_id
 * (RESP_RUN_ID_LEN) holds its INFO run_id ("" when INFO was refused).
 */
extern bool SentinelConnect(RedisConn *c, RedisEndpoint *ep,
							TimestampTz deadline, char *run_id);

#endif /* CACHE_EXT_CLIENT_INTERNAL_H */

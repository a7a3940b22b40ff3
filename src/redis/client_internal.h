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
	bool cluster;			   /* a Redis Cluster master (cluster.c) */
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
 * ClientRun in two steps, so that several connections can wait at once:
 * send the n commands on c, then read their n replies (ready: the reply
 * is likely there already, so the first read tries before it waits).
 * ClientReceive throws only through CHECK_FOR_INTERRUPTS; the caller then
 * calls ClientDropInflight, which frees the replies being read.
 */
extern bool ClientSend(RedisConn *c, int n, RedisCommand *cmds,
					   TimestampTz deadline);
extern bool ClientReceive(RedisConn *c, int n, redisReply **replies,
						  size_t max_reply_bytes, TimestampTz deadline,
						  bool ready);
extern void ClientDropInflight(void);

/*
 * A call on the backend's connection (its retry, breaker and identity):
 * what RedisExec does when the call names one master.
 */
extern bool ClientExecHome(int ncmds, RedisCommand *cmds, redisReply **replies,
						   size_t max_reply_bytes, int timeout_ms, int connect_ms);

/* A failure that opens no breaker (a side node, a moved slot): noted, counted. */
extern void ClientSoftFailure(RedisFailureKind kind, const char *why);

/* The failure noted last is an outage: drop the connection, open the breaker. */
extern void ClientOpenBreaker(void);

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

/*
 * The handshake of a connection to a master: append ROLE and INFO server
 * to the n commands in cmds (AUTH, SELECT; room for two more), run them on
 * c, then wipe password (when not NULL).  False, with c closed and the
 * failure noted, when the exchange failed or a command before ROLE was
 * refused; else *is_master holds RespRoleIsMaster's answer,
 * *role_refused whether ROLE was an error, and run_id (RESP_RUN_ID_LEN)
 * INFO's run_id when it is the master.  The caller closes c when it is not.
 */
extern bool ClientMasterHandshake(RedisConn *c, RedisCommand *cmds, int n,
								  char *password, TimestampTz deadline,
								  char *run_id, int *is_master,
								  bool *role_refused);

/* A reply that is an error: note it as the failure of what (AUTH: auth). */
extern bool ClientErrorReply(const redisReply *r, const char *what);

/* An IPv4 or IPv6 address in text, which connecting does not resolve. */
extern bool ClientIsNumericAddress(const char *host);

/*
 * sentinel.c: ask the sentinels of ep for the master's address, connect c
 * to it (AUTH, SELECT, ROLE and INFO server in one round trip), and
 * accept it only if ROLE says master; ask again (bounded by deadline)
 * when it does not.  On success c->addr names the master and run_id
 * (RESP_RUN_ID_LEN) holds its INFO run_id ("" when INFO was refused).
 */
extern bool SentinelConnect(RedisConn *c, RedisEndpoint *ep,
							TimestampTz deadline, char *run_id);

/*
 * cluster.c: the slot the keys of cmds name into *slot (the home slot
 * when they name none, -1 when there is none); false with the failure noted when they name keys of
 * several slots.
 */
extern bool ClusterPipelineSlot(int n, const RedisCommand *cmds, int *slot);

/*
 * The slot of cmd's keys (-1: it names none, -2: keys of several slots);
 * the home slot of a call (RedisClusterSetHome's, else the first keyed
 * command's, -1 when none).
 */
extern int ClusterCommandSlot(const RedisCommand *cmd);
extern int ClusterHomeSlot(int n, const RedisCommand *cmds);

/* The slot map in use, NULL before the first; a new one from the seeds. */
struct ClusterMap;
extern const struct ClusterMap *ClusterMapInUse(void);
extern bool ClusterRefreshMap(TimestampTz deadline);

/* "host:port" ("[host]:port" for IPv6) into out (REDIS_ADDR_LEN). */
extern void ClusterNodeAddr(char *out, const char *host, int port);

/* Connect c to node m of the map, with AUTH; false with the failure noted. */
extern bool ClusterOpenMaster(RedisConn *c, int m, TimestampTz deadline);

/*
 * cluster_side.c: whether a call names keys off its home master; then run
 * it split by master (RedisExec's contract).
 */
extern bool ClusterNeedsSides(int ncmds, const RedisCommand *cmds);
extern bool ClusterExecSpread(int ncmds, RedisCommand *cmds, redisReply **replies,
							  size_t max_reply_bytes, int timeout_ms, int connect_ms);

/* Whether c is connected to the master the slot map names for slot. */
extern bool ClusterServes(const RedisConn *c, int slot);

/*
 * Fetch the slot map from ep's seeds (or the nodes known), then connect c
 * to the master serving slot (any master for -1): AUTH, ROLE and INFO
 * server in one round trip, accepted only when ROLE says master; run_id
 * (RESP_RUN_ID_LEN) then holds INFO's run_id, "" when INFO was refused.
 * False with the failure noted.
 */
extern bool ClusterConnect(RedisConn *c, const RedisEndpoint *ep, int slot,
						   TimestampTz deadline, char *run_id);

/*
 * After a pipeline on c: act on its redirects.  ASK: the commands that got
 * it run once more where it says (ASKING first), their replies replacing
 * the errors.  True when replies[] can be used; else false with replies
 * freed and the failure noted, *moved when the whole pipeline got MOVED
 * (reconnect, with a new map, and retry once), *soft when the breaker
 * should stay closed (TRYAGAIN).
 */
extern bool ClusterCheckReplies(RedisConn *c, int n, RedisCommand *cmds,
								redisReply **replies,
								size_t max_reply_bytes, TimestampTz deadline,
								bool *moved, bool *soft);

#endif /* CACHE_EXT_CLIENT_INTERNAL_H */

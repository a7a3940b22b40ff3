/*-------------------------------------------------------------------------
 *
 * transport_internal.h
 *	  What transport.c (sockets, waits) and tls.c (OpenSSL: the context,
 *	  the handshake, TLS reads and writes, the TLS settings) share.
 *	  Nothing outside src/redis/ includes it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CACHE_EXT_TRANSPORT_INTERNAL_H
#define CACHE_EXT_TRANSPORT_INTERNAL_H

#include "postgres.h"

#include <openssl/ssl.h>

#include "redis/redis.h"


/* transport.c */
extern RedisFailureKind errno_kind(int e, bool connecting);
extern bool wait_socket(RedisTransport *t, uint32 want, TimestampTz deadline, char *err, size_t errlen);

/* tls.c */
extern SSL_CTX *tls_connect_ctx(char *err, size_t errlen, uint64 *generation);
extern uint64 tls_current_generation(void);
extern bool tls_handshake(RedisTransport *t, SSL_CTX *ctx, const RedisEndpoint *ep, TimestampTz deadline, char *err, size_t errlen);
extern bool tls_send(RedisTransport *t, const char *buf, size_t len, TimestampTz deadline, char *err, size_t errlen);
extern ssize_t tls_recv(RedisTransport *t, char *buf, size_t len, bool wait_first, TimestampTz deadline, char *err, size_t errlen);

#endif /* CACHE_EXT_TRANSPORT_INTERNAL_H */

/*-------------------------------------------------------------------------
 *
 * transport.c
 *	  Non-blocking socket I/O to Redis over TCP, a unix socket, or TLS
 *	  (rediss://, OpenSSL on our own non-blocking socket).  Every wait goes
 *	  through a WaitEventSet with a deadline, so that it is bounded and
 *	  interruptible (cancel, statement_timeout, terminate, postmaster death).
 *
 * Functions here return false (or -1) with a message in err on failure and
 * never raise an ERROR, except through CHECK_FOR_INTERRUPTS() while
 * waiting; the caller (client.c) owns the connection and closes it with
 * TransportClose() on every error path, which frees the TLS state too.
 * The one message of their own is the WARNING, once per session, that
 * cache_ext.tls_verify is off.
 *
 * Failure kinds: with the message, a failed call leaves in t->failure what
 * went wrong (RedisFailureKind), decided where it happened from the codes,
 * never from the text (strerror follows lc_messages):
 *   errno of connect()      ECONNREFUSED, ENOENT (no socket file): refused;
 *                           ETIMEDOUT: timeout; other: unreachable
 *   getaddrinfo()           resolve
 *   errno of send/recv      ECONNRESET, EPIPE, ECONNABORTED, or recv() = 0:
 *                           closed (client.c retries an idle connection
 *                           once); ETIMEDOUT: timeout; other: io
 *   SSL_get_error()         ZERO_RETURN, or SYSCALL with nothing queued and
 *                           no errno: closed; SYSCALL with errno: as above
 *   ERR_get_error()         SSL_R_UNEXPECTED_EOF_WHILE_READING: closed; a
 *                           system error: its errno, as above; other: tls
 *   SSL_get_verify_result() not X509_V_OK, with verification on: tls_verify
 *   our deadline / latch    timeout / interrupted
 *   settings, their files   config; descriptors, memory: resources
 *
 * TLS (the context, the handshake, TLS reads and writes, the TLS
 * settings) is tls.c's.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "miscadmin.h"
#include "pgstat.h"
#include "storage/fd.h"
#include "storage/latch.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "redis/redis.h"
#include "redis/transport_internal.h"


/*
 * The kind of a failed socket call from its errno; connecting tells
 * connect()'s errors (nobody listens, no route) from those of an open
 * connection.
 */
RedisFailureKind
errno_kind(int e, bool connecting)
{
	switch (e)
	{
		case ECONNREFUSED:
		case ENOENT: /* a unix socket's file is missing */
			return connecting ? REDIS_FAIL_REFUSED : REDIS_FAIL_IO;
		case ETIMEDOUT:
			return REDIS_FAIL_TIMEOUT;
		case ECONNRESET:
		case EPIPE:
		case ECONNABORTED:
			return REDIS_FAIL_CLOSED;
		case ENOMEM:
		case ENOBUFS:
		case EMFILE:
		case ENFILE:
			return REDIS_FAIL_RESOURCES;
		default:
			return connecting ? REDIS_FAIL_UNREACHABLE : REDIS_FAIL_IO;
	}
}

/*
 * Wait until the socket is ready for 'want' (WL_SOCKET_READABLE or
 * WL_SOCKET_WRITEABLE), or the deadline passes.  Returns false with a
 * message on timeout.  May throw through CHECK_FOR_INTERRUPTS().
 *
 * The wait event set is made once per connection: building one per wait
 * (as WaitLatchOrSocket does) costs an epoll instance and three system
 * calls on every round trip.
 */
bool
wait_socket(RedisTransport *t, uint32 want, TimestampTz deadline,
			char *err, size_t errlen)
{
	if (t->wes == NULL)
	{
		t->wes = CreateWaitEventSet(TopMemoryContext, 3);
		AddWaitEventToSet(t->wes, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
		AddWaitEventToSet(t->wes, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
		t->sock_pos = AddWaitEventToSet(t->wes, want, t->sock, NULL, NULL);
		t->sock_events = want;
	}
	else if (t->sock_events != want)
	{
		ModifyWaitEvent(t->wes, t->sock_pos, want, NULL);
		t->sock_events = want;
	}

	for (;;)
	{
		long remaining;
		WaitEvent event;
		int n;

		remaining = TimestampDifferenceMilliseconds(GetCurrentTimestamp(),
													deadline);
		if (remaining <= 0)
		{
			t->failure = REDIS_FAIL_TIMEOUT;
			snprintf(err, errlen, "timed out");
			return false;
		}
		n = WaitEventSetWait(t->wes, remaining, &event, 1, PG_WAIT_EXTENSION);
		if (n == 0)
			continue; /* timeout: the loop checks the deadline */
		if (event.events & WL_LATCH_SET)
		{
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();

			/*
			 * With interrupts held (the bumps sent while COMMIT finishes),
			 * a cancel or terminate cannot throw: give up the wait instead,
			 * and let the interrupt be served once they are resumed.
			 */
			if (InterruptHoldoffCount > 0 &&
				(QueryCancelPending || ProcDiePending))
			{
				t->failure = REDIS_FAIL_INTERRUPTED;
				snprintf(err, errlen, "interrupted");
				return false;
			}
		}
		if (event.events & want)
			return true;
	}
}

/* ---- TLS helpers ---------------------------------------------------------- */

/* ---- sockets -------------------------------------------------------------- */

static bool
connect_fd(RedisTransport *t, int family, const struct sockaddr *addr,
		   socklen_t addrlen, TimestampTz deadline, char *err, size_t errlen)
{
	int flags;
	int one = 1;

	t->sock = socket(family, SOCK_STREAM, 0);
	if (t->sock == PGINVALID_SOCKET)
	{
		t->failure = REDIS_FAIL_RESOURCES;
		snprintf(err, errlen, "could not create socket: %m");
		return false;
	}
	flags = fcntl(t->sock, F_GETFL);
	if (flags < 0 || fcntl(t->sock, F_SETFL, flags | O_NONBLOCK) < 0 ||
		fcntl(t->sock, F_SETFD, FD_CLOEXEC) < 0)
	{
		t->failure = REDIS_FAIL_IO;
		snprintf(err, errlen, "could not set socket flags: %m");
		return false;
	}
	if (family != AF_UNIX)
		(void) setsockopt(t->sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

	if (connect(t->sock, addr, addrlen) < 0)
	{
		int soerr = 0;
		socklen_t len = sizeof(soerr);

		if (errno != EINPROGRESS && errno != EINTR)
		{
			t->failure = errno_kind(errno, true);
			snprintf(err, errlen, "could not connect: %m");
			return false;
		}
		if (!wait_socket(t, WL_SOCKET_WRITEABLE, deadline, err, errlen))
		{
			snprintf(err, errlen, "connection timed out");
			return false;
		}
		if (getsockopt(t->sock, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
		{
			t->failure = REDIS_FAIL_IO;
			snprintf(err, errlen, "could not connect: %m");
			return false;
		}
		if (soerr != 0)
		{
			t->failure = errno_kind(soerr, true);
			errno = soerr;
			snprintf(err, errlen, "could not connect: %m");
			return false;
		}
	}
	return true;
}

/*
 * Open a connection to ep; for rediss://, also the TLS handshake, within
 * the same deadline.  On failure, everything opened is closed again.  A
 * TLS failure never falls back to plain text.
 */
bool
TransportConnect(RedisTransport *t, const RedisEndpoint *ep,
				 TimestampTz deadline, char *err, size_t errlen)
{
	bool ok = false;
	SSL_CTX *ctx = NULL;

	t->sock = PGINVALID_SOCKET;
	t->fd_reserved = false;
	t->wes = NULL;
	t->ssl = NULL;
	t->tls_generation = 0;
	t->failure = REDIS_FAIL_NONE;

	/* settings that cannot work fail before anything goes on the network */
	if (ep->kind == REDIS_EP_TLS)
	{
		ctx = tls_connect_ctx(err, errlen, &t->tls_generation);
		if (ctx == NULL)
		{
			t->failure = REDIS_FAIL_CONFIG;
			return false;
		}
	}

	if (!AcquireExternalFD())
	{
		t->failure = REDIS_FAIL_RESOURCES;
		snprintf(err, errlen, "no file descriptor available for a Redis connection");
		return false;
	}
	t->fd_reserved = true;

	if (ep->kind == REDIS_EP_UNIX)
	{
		struct sockaddr_un sun;

		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		strlcpy(sun.sun_path, ep->path, sizeof(sun.sun_path));
		ok = connect_fd(t, AF_UNIX, (struct sockaddr *) &sun, sizeof(sun),
						deadline, err, errlen);
	}
	else
	{
		struct addrinfo hints;
		struct addrinfo *res = NULL;
		struct sockaddr_storage addrs[4];
		socklen_t addrlens[4];
		int families[4];
		int naddrs = 0;
		char portstr[16];
		int rc;

		/*
		 * Copy the addresses out of the getaddrinfo() result so that nothing
		 * malloc'd is held while we wait (a wait may throw).
		 */
		memset(&hints, 0, sizeof(hints));
		hints.ai_family = AF_UNSPEC;
		hints.ai_socktype = SOCK_STREAM;
		snprintf(portstr, sizeof(portstr), "%d", ep->port);
		rc = getaddrinfo(ep->host, portstr, &hints, &res);
		if (rc != 0)
		{
			t->failure = (rc == EAI_MEMORY	   ? REDIS_FAIL_RESOURCES :
							  rc == EAI_SYSTEM ? errno_kind(errno, true) :
												 REDIS_FAIL_RESOLVE);
			snprintf(err, errlen, "could not resolve \"%s\": %s",
					 ep->host, gai_strerror(rc));
		}
		else if (res == NULL)
		{
			t->failure = REDIS_FAIL_RESOLVE;
			snprintf(err, errlen, "could not resolve \"%s\"", ep->host);
		}
		for (struct addrinfo *ai = res; ai != NULL && naddrs < 4; ai = ai->ai_next)
		{
			if (ai->ai_addrlen > sizeof(struct sockaddr_storage))
				continue;
			memcpy(&addrs[naddrs], ai->ai_addr, ai->ai_addrlen);
			addrlens[naddrs] = ai->ai_addrlen;
			families[naddrs] = ai->ai_family;
			naddrs++;
		}
		if (res)
			freeaddrinfo(res);

		for (int i = 0; i < naddrs && !ok; i++)
		{
			if (t->sock != PGINVALID_SOCKET)
			{
				if (t->wes)
				{
					FreeWaitEventSet(t->wes);
					t->wes = NULL;
				}
				close(t->sock);
				t->sock = PGINVALID_SOCKET;
			}
			ok = connect_fd(t, families[i], (struct sockaddr *) &addrs[i],
							addrlens[i], deadline, err, errlen);
		}

		if (ok && ep->kind == REDIS_EP_TLS)
			ok = tls_handshake(t, ctx, ep, deadline, err, errlen);
	}

	if (!ok)
		TransportClose(t);
	return ok;
}

/*
 * Whether the connection was made under TLS settings that have changed
 * since: the caller reconnects, so that new settings apply at once.
 */
bool
TransportStale(const RedisTransport *t)
{
	return t->ssl != NULL && t->tls_generation != tls_current_generation();
}

/* Write all of buf. */
bool
TransportSend(RedisTransport *t, const char *buf, size_t len,
			  TimestampTz deadline, char *err, size_t errlen)
{
	if (t->ssl)
		return tls_send(t, buf, len, deadline, err, errlen);

	while (len > 0)
	{
		ssize_t n = send(t->sock, buf, len, MSG_NOSIGNAL);

		if (n > 0)
		{
			buf += n;
			len -= n;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		{
			if (!wait_socket(t, WL_SOCKET_WRITEABLE, deadline, err, errlen))
				return false;
			continue;
		}
		t->failure = errno_kind(errno, false);
		snprintf(err, errlen, "could not send to Redis: %m");
		return false;
	}
	return true;
}

/*
 * Read at least one byte into buf.  Returns the count, or -1 with a message
 * (timeout, error, or the server closed the connection).  With wait_first,
 * waits for the socket before the first read: right after sending a
 * request the reply cannot be there yet, and a read would only fail with
 * EAGAIN.
 */
ssize_t
TransportRecv(RedisTransport *t, char *buf, size_t len, bool wait_first,
			  TimestampTz deadline, char *err, size_t errlen)
{
	if (t->ssl)
		return tls_recv(t, buf, len, wait_first, deadline, err, errlen);

	if (wait_first &&
		!wait_socket(t, WL_SOCKET_READABLE, deadline, err, errlen))
		return -1;
	for (;;)
	{
		ssize_t n = recv(t->sock, buf, len, 0);

		if (n > 0)
			return n;
		if (n == 0)
		{
			t->failure = REDIS_FAIL_CLOSED;
			snprintf(err, errlen, "Redis closed the connection");
			return -1;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		{
			if (!wait_socket(t, WL_SOCKET_READABLE, deadline, err, errlen))
				return -1;
			continue;
		}
		t->failure = errno_kind(errno, false);
		snprintf(err, errlen, "could not receive from Redis: %m");
		return -1;
	}
}

/*
 * Close the connection: free the TLS state, close the socket, give back
 * the descriptor reservation.  Idempotent, and safe at any point of
 * TransportConnect or after an ERROR thrown while waiting.  No close_notify
 * is sent: after a failure OpenSSL forbids it, and Redis does not need it.
 */
void
TransportClose(RedisTransport *t)
{
	if (t->ssl)
	{
		SSL_free(t->ssl);
		t->ssl = NULL;
		ERR_clear_error();
	}
	if (t->wes)
	{
		FreeWaitEventSet(t->wes);
		t->wes = NULL;
	}
	if (t->sock != PGINVALID_SOCKET)
	{
		close(t->sock);
		t->sock = PGINVALID_SOCKET;
	}
	if (t->fd_reserved)
	{
		ReleaseExternalFD();
		t->fd_reserved = false;
	}
}

/* ---- settings ------------------------------------------------------------- */

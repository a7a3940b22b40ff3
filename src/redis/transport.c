/*-------------------------------------------------------------------------
 *
 * transport.c
 *	  Non-blocking socket I/O to Redis over TCP or a unix socket.  Every
 *	  wait goes through WaitLatchOrSocket with a deadline, so that it is
 *	  bounded and interruptible (cancel, statement_timeout, terminate,
 *	  postmaster death).
 *
 * Functions here return false (or -1) with a message in err on failure and
 * never ereport, except through CHECK_FOR_INTERRUPTS() while waiting; the
 * caller (client.c) owns the socket and closes it on any error path.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "miscadmin.h"
#include "pgstat.h"
#include "storage/fd.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "redis/redis.h"

/*
 * Wait until the socket is ready for 'want' (WL_SOCKET_READABLE or
 * WL_SOCKET_WRITEABLE), or the deadline passes.  Returns false with a
 * message on timeout.  May throw through CHECK_FOR_INTERRUPTS().
 *
 * The wait event set is made once per connection: building one per wait
 * (as WaitLatchOrSocket does) costs an epoll instance and three system
 * calls on every round trip.
 */
static bool
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
		long		remaining;
		WaitEvent	event;
		int			n;

		remaining = TimestampDifferenceMilliseconds(GetCurrentTimestamp(),
													deadline);
		if (remaining <= 0)
		{
			snprintf(err, errlen, "timed out");
			return false;
		}
		n = WaitEventSetWait(t->wes, remaining, &event, 1, PG_WAIT_EXTENSION);
		if (n == 0)
			continue;			/* timeout: the loop checks the deadline */
		if (event.events & WL_LATCH_SET)
		{
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
		if (event.events & want)
			return true;
	}
}

static bool
connect_fd(RedisTransport *t, int family, const struct sockaddr *addr,
		   socklen_t addrlen, TimestampTz deadline, char *err, size_t errlen)
{
	int			flags;
	int			one = 1;

	t->sock = socket(family, SOCK_STREAM, 0);
	if (t->sock == PGINVALID_SOCKET)
	{
		snprintf(err, errlen, "could not create socket: %m");
		return false;
	}
	flags = fcntl(t->sock, F_GETFL);
	if (flags < 0 || fcntl(t->sock, F_SETFL, flags | O_NONBLOCK) < 0 ||
		fcntl(t->sock, F_SETFD, FD_CLOEXEC) < 0)
	{
		snprintf(err, errlen, "could not set socket flags: %m");
		return false;
	}
	if (family != AF_UNIX)
		(void) setsockopt(t->sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

	if (connect(t->sock, addr, addrlen) < 0)
	{
		int			soerr = 0;
		socklen_t	len = sizeof(soerr);

		if (errno != EINPROGRESS && errno != EINTR)
		{
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
			snprintf(err, errlen, "could not connect: %m");
			return false;
		}
		if (soerr != 0)
		{
			errno = soerr;
			snprintf(err, errlen, "could not connect: %m");
			return false;
		}
	}
	return true;
}

/*
 * Open a connection to ep.  On failure, everything opened is closed again.
 */
bool
TransportConnect(RedisTransport *t, const RedisEndpoint *ep,
				 TimestampTz deadline, char *err, size_t errlen)
{
	bool		ok = false;

	t->sock = PGINVALID_SOCKET;
	t->fd_reserved = false;
	t->wes = NULL;

	if (!AcquireExternalFD())
	{
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
		socklen_t	addrlens[4];
		int			families[4];
		int			naddrs = 0;
		char		portstr[16];
		int			rc;

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
			snprintf(err, errlen, "could not resolve \"%s\": %s",
					 ep->host, gai_strerror(rc));
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
	}

	if (!ok)
		TransportClose(t);
	return ok;
}

/* Write all of buf. */
bool
TransportSend(RedisTransport *t, const char *buf, size_t len,
			  TimestampTz deadline, char *err, size_t errlen)
{
	while (len > 0)
	{
		ssize_t		n = send(t->sock, buf, len, MSG_NOSIGNAL);

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
	if (wait_first &&
		!wait_socket(t, WL_SOCKET_READABLE, deadline, err, errlen))
		return -1;
	for (;;)
	{
		ssize_t		n = recv(t->sock, buf, len, 0);

		if (n > 0)
			return n;
		if (n == 0)
		{
			snprintf(err, errlen, "Redis closed the connection");
			return -1;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		{
			if (!wait_socket(t, WL_SOCKET_READABLE, deadline, err, errlen))
				return -1;
			continue;
		}
		snprintf(err, errlen, "could not receive from Redis: %m");
		return -1;
	}
}

/* Close the socket and give back the descriptor reservation; idempotent. */
void
TransportClose(RedisTransport *t)
{
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

void
TransportDefineGucs(void)
{
}

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
 * TLS state: the SSL_CTX (CA bundle, client certificate and key) is built
 * once per backend and rebuilt when a TLS setting changes or one of its
 * files is replaced on disk; each connection has its own SSL object.  Both
 * are OpenSSL's (malloc'd): the context lives in a static pointer from the
 * moment it is complete, and a connection's SSL in RedisTransport from the
 * moment it is created, so an ERROR thrown while waiting leaks neither.
 * OpenSSL's per-thread error queue is cleared before each TLS call and
 * after reading an error from it, so that other users of OpenSSL in this
 * process (PostgreSQL's own TLS, pgcrypto) never see our errors.
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

char	   *cache_ext_tls_ca_file = NULL;
char	   *cache_ext_tls_cert_file = NULL;
char	   *cache_ext_tls_key_file = NULL;
bool		cache_ext_tls_verify = true;

/* bumped whenever a TLS setting takes a new value */
static uint64 tls_settings_generation = 1;

/* the identity of a file the context was loaded from */
typedef struct TlsFileStamp
{
	dev_t		dev;
	ino_t		ino;
	off_t		size;
	struct timespec mtime;
} TlsFileStamp;

#define TLS_NFILES 3			/* CA bundle, certificate, key */

static SSL_CTX *tls_ctx = NULL;
static uint64 tls_ctx_generation = 0;
static TlsFileStamp tls_ctx_stamps[TLS_NFILES];

static bool warned_no_verify = false;

/*
 * The kind of a failed socket call from its errno; connecting tells
 * connect()'s errors (nobody listens, no route) from those of an open
 * connection.
 */
static RedisFailureKind
errno_kind(int e, bool connecting)
{
	switch (e)
	{
		case ECONNREFUSED:
		case ENOENT:			/* a unix socket's file is missing */
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
			t->failure = REDIS_FAIL_TIMEOUT;
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

/*
 * Describe the first error in OpenSSL's queue as "what: reason" and clear
 * the queue.  Reasons are OpenSSL's fixed strings, or strerror for system
 * errors: never data from a file or the peer.
 */
static void
tls_error(char *err, size_t errlen, const char *what)
{
	unsigned long code = ERR_get_error();
	const char *reason = NULL;

	if (code != 0 && ERR_SYSTEM_ERROR(code))
	{
		errno = ERR_GET_REASON(code);
		snprintf(err, errlen, "%s: %m", what);
	}
	else
	{
		if (code != 0)
			reason = ERR_reason_error_string(code);
		if (reason)
			snprintf(err, errlen, "%s: %s", what, reason);
		else if (code != 0)
			snprintf(err, errlen, "%s: OpenSSL error %lu", what, code);
		else
			snprintf(err, errlen, "%s", what);
	}
	ERR_clear_error();
}

/* The identity of the file at path; all zero when unset or missing. */
static void
stamp_file(const char *path, TlsFileStamp *stamp)
{
	struct stat st;

	memset(stamp, 0, sizeof(*stamp));
	if (path == NULL || path[0] == '\0' || stat(path, &st) != 0)
		return;
	stamp->dev = st.st_dev;
	stamp->ino = st.st_ino;
	stamp->size = st.st_size;
	stamp->mtime = st.st_mtim;
}

static void
stamp_files(TlsFileStamp *stamps)
{
	stamp_file(cache_ext_tls_ca_file, &stamps[0]);
	stamp_file(cache_ext_tls_cert_file, &stamps[1]);
	stamp_file(cache_ext_tls_key_file, &stamps[2]);
}

/* Key files hold secrets: refuse one others may read, as libpq does. */
static bool
check_key_file(const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (stat(path, &st) != 0)
	{
		snprintf(err, errlen,
				 "could not access the client key (cache_ext.tls_key_file): %m");
		return false;
	}
	if (!S_ISREG(st.st_mode))
	{
		snprintf(err, errlen,
				 "the client key (cache_ext.tls_key_file) is not a regular file");
		return false;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO))
	{
		snprintf(err, errlen,
				 "the client key (cache_ext.tls_key_file) has group or world access; it must be readable by the server's user only");
		return false;
	}
	return true;
}

/*
 * OpenSSL would ask for the passphrase of an encrypted key on the
 * terminal; a backend has none.  Refuse instead.
 */
static int
no_passphrase(char *buf, int size, int rwflag, void *userdata)
{
	return -1;
}

/*
 * Build a client context from the current settings.  Returns NULL with a
 * message on failure, having freed everything.
 */
static SSL_CTX *
build_tls_ctx(char *err, size_t errlen)
{
	const char *ca = cache_ext_tls_ca_file ? cache_ext_tls_ca_file : "";
	const char *cert = cache_ext_tls_cert_file ? cache_ext_tls_cert_file : "";
	const char *key = cache_ext_tls_key_file ? cache_ext_tls_key_file : "";
	SSL_CTX    *ctx;

	if ((cert[0] == '\0') != (key[0] == '\0'))
	{
		snprintf(err, errlen,
				 "cache_ext.tls_cert_file and cache_ext.tls_key_file must be set together (%s is empty)",
				 cert[0] == '\0' ? "cache_ext.tls_cert_file" : "cache_ext.tls_key_file");
		return NULL;
	}
	if (key[0] != '\0' && !check_key_file(key, err, errlen))
		return NULL;

	ERR_clear_error();
	ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL)
	{
		tls_error(err, errlen, "could not create a TLS context");
		return NULL;
	}

	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION))
	{
		tls_error(err, errlen, "could not set the minimum TLS version");
		goto fail;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);

	if (ca[0] != '\0')
	{
		if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1)
		{
			tls_error(err, errlen,
					  "could not load the CA bundle (cache_ext.tls_ca_file)");
			goto fail;
		}
	}
	else if (SSL_CTX_set_default_verify_paths(ctx) != 1)
	{
		tls_error(err, errlen,
				  "could not load the system's default certificate authorities");
		goto fail;
	}

	if (cert[0] != '\0')
	{
		if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
		{
			tls_error(err, errlen,
					  "could not load the client certificate (cache_ext.tls_cert_file)");
			goto fail;
		}
		if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
			SSL_CTX_check_private_key(ctx) != 1)
		{
			unsigned long code = ERR_peek_error();

			if (!ERR_SYSTEM_ERROR(code) &&
				ERR_GET_LIB(code) == ERR_LIB_X509 &&
				ERR_GET_REASON(code) == X509_R_KEY_VALUES_MISMATCH)
				tls_error(err, errlen,
						  "the client key (cache_ext.tls_key_file) does not match the client certificate (cache_ext.tls_cert_file)");
			else
				tls_error(err, errlen,
						  "could not load the client key (cache_ext.tls_key_file)");
			goto fail;
		}
	}
	return ctx;

fail:
	SSL_CTX_free(ctx);
	ERR_clear_error();
	return NULL;
}

/*
 * The backend's client context, (re)built if the settings changed or one
 * of its files was replaced.  Returns NULL with a message on failure.
 */
static SSL_CTX *
get_tls_ctx(char *err, size_t errlen)
{
	TlsFileStamp stamps[TLS_NFILES];

	stamp_files(stamps);
	if (tls_ctx != NULL &&
		tls_ctx_generation == tls_settings_generation &&
		memcmp(stamps, tls_ctx_stamps, sizeof(stamps)) == 0)
		return tls_ctx;

	/* connections made with the old one keep their own reference */
	if (tls_ctx != NULL)
	{
		SSL_CTX_free(tls_ctx);
		tls_ctx = NULL;
	}
	tls_ctx = build_tls_ctx(err, errlen);
	if (tls_ctx != NULL)
	{
		tls_ctx_generation = tls_settings_generation;
		memcpy(tls_ctx_stamps, stamps, sizeof(stamps));
	}
	return tls_ctx;
}

/* Whether host is an IPv4 or IPv6 address rather than a name. */
static bool
host_is_ip(const char *host)
{
	unsigned char addr[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, addr) == 1 ||
		inet_pton(AF_INET6, host, addr) == 1;
}

/*
 * After a failed SSL call: what went wrong, as a kind in t->failure and in
 * words.  sslerr is SSL_get_error()'s verdict, saved_errno errno right
 * after the call.  Certificate problems are named by the verification
 * result (tls_verify); an end of stream, with or without close_notify, is
 * closed (client.c retries once when an idle connection was closed by the
 * server); a system error is judged by its errno; anything else is tls,
 * with OpenSSL's reason.
 */
static void
tls_failure(RedisTransport *t, int sslerr, int saved_errno, bool handshake,
			const char *what, char *err, size_t errlen)
{
	unsigned long code = ERR_peek_error();
	long		vr = SSL_get_verify_result(t->ssl);

	if (vr != X509_V_OK && cache_ext_tls_verify &&
		(code == 0 || ERR_GET_REASON(code) == SSL_R_CERTIFICATE_VERIFY_FAILED))
	{
		t->failure = REDIS_FAIL_TLS_VERIFY;
		snprintf(err, errlen, "TLS certificate verification failed: %s",
				 X509_verify_cert_error_string(vr));
		ERR_clear_error();
		return;
	}
	if (sslerr == SSL_ERROR_ZERO_RETURN ||
		(sslerr == SSL_ERROR_SYSCALL && code == 0 && saved_errno == 0) ||
		(sslerr == SSL_ERROR_SSL && code != 0 && !ERR_SYSTEM_ERROR(code) &&
		 ERR_GET_REASON(code) == SSL_R_UNEXPECTED_EOF_WHILE_READING))
	{
		t->failure = REDIS_FAIL_CLOSED;
		snprintf(err, errlen, "Redis closed the connection%s",
				 handshake ? " during the TLS handshake" : "");
		ERR_clear_error();
		return;
	}
	t->failure = REDIS_FAIL_TLS;
	/* TLS 1.3: the server's verdict on us comes after our handshake ended */
	if (sslerr == SSL_ERROR_SSL && code != 0 && !ERR_SYSTEM_ERROR(code) &&
		ERR_GET_REASON(code) == SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED)
	{
		snprintf(err, errlen,
				 "Redis requires a client certificate (cache_ext.tls_cert_file and cache_ext.tls_key_file)");
		ERR_clear_error();
		return;
	}
	/* other alerts from the server after the handshake: it refused us */
	if (!handshake && sslerr == SSL_ERROR_SSL && code != 0 &&
		!ERR_SYSTEM_ERROR(code) && ERR_GET_LIB(code) == ERR_LIB_SSL &&
		ERR_GET_REASON(code) >= SSL_AD_REASON_OFFSET)
	{
		tls_error(err, errlen, "Redis refused the TLS connection");
		return;
	}
	if (sslerr == SSL_ERROR_SYSCALL && code == 0)
	{
		t->failure = errno_kind(saved_errno, false);
		errno = saved_errno;
		snprintf(err, errlen, "%s: %m", what);
		ERR_clear_error();
		return;
	}
	if (code != 0 && ERR_SYSTEM_ERROR(code))
		t->failure = errno_kind(ERR_GET_REASON(code), false);
	tls_error(err, errlen, what);
}

/*
 * The TLS handshake on the connected socket, bounded by deadline: peer
 * verification (unless cache_ext.tls_verify is off), the host name or
 * address checked against the certificate, SNI for names.
 */
static bool
tls_handshake(RedisTransport *t, SSL_CTX *ctx, const RedisEndpoint *ep,
			  TimestampTz deadline, char *err, size_t errlen)
{
	bool		is_ip = host_is_ip(ep->host);

	ERR_clear_error();
	t->failure = REDIS_FAIL_TLS;	/* until it fails otherwise */
	t->ssl = SSL_new(ctx);
	if (t->ssl == NULL)
	{
		t->failure = REDIS_FAIL_RESOURCES;
		tls_error(err, errlen, "could not create a TLS connection");
		return false;
	}
	if (SSL_set_fd(t->ssl, t->sock) != 1)
	{
		tls_error(err, errlen, "could not create a TLS connection");
		return false;
	}
	SSL_set_verify(t->ssl,
				   cache_ext_tls_verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE,
				   NULL);
	if (is_ip)
	{
		/* an address is checked against the certificate's IP SANs; no SNI */
		if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), ep->host) != 1)
		{
			tls_error(err, errlen, "could not set the expected server address");
			return false;
		}
	}
	else
	{
		SSL_set_hostflags(t->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (SSL_set1_host(t->ssl, ep->host) != 1)
		{
			tls_error(err, errlen, "could not set the expected server name");
			return false;
		}
		if (SSL_set_tlsext_host_name(t->ssl, ep->host) != 1)
		{
			tls_error(err, errlen, "could not set the server name indication");
			return false;
		}
	}

	for (;;)
	{
		int			rc;
		int			sslerr;
		int			saved_errno;

		ERR_clear_error();
		errno = 0;
		rc = SSL_connect(t->ssl);
		saved_errno = errno;
		if (rc == 1)
			break;
		sslerr = SSL_get_error(t->ssl, rc);
		if (sslerr == SSL_ERROR_WANT_READ || sslerr == SSL_ERROR_WANT_WRITE)
		{
			if (!wait_socket(t, sslerr == SSL_ERROR_WANT_READ ?
							 WL_SOCKET_READABLE : WL_SOCKET_WRITEABLE,
							 deadline, err, errlen))
			{
				snprintf(err, errlen, "TLS handshake timed out");
				return false;
			}
			continue;
		}
		tls_failure(t, sslerr, saved_errno, true, "TLS handshake failed", err, errlen);
		return false;
	}
	ERR_clear_error();
	return true;
}

/* ---- sockets -------------------------------------------------------------- */

static bool
connect_fd(RedisTransport *t, int family, const struct sockaddr *addr,
		   socklen_t addrlen, TimestampTz deadline, char *err, size_t errlen)
{
	int			flags;
	int			one = 1;

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
		int			soerr = 0;
		socklen_t	len = sizeof(soerr);

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
	bool		ok = false;
	SSL_CTX    *ctx = NULL;

	t->sock = PGINVALID_SOCKET;
	t->fd_reserved = false;
	t->wes = NULL;
	t->ssl = NULL;
	t->tls_generation = 0;
	t->failure = REDIS_FAIL_NONE;

	/* settings that cannot work fail before anything goes on the network */
	if (ep->kind == REDIS_EP_TLS)
	{
		if (!cache_ext_tls_verify && !warned_no_verify)
		{
			warned_no_verify = true;
			ereport(WARNING,
					(errcode(ERRCODE_WARNING),
					 errmsg("cache_ext.tls_verify is off: the Redis server's certificate is not verified"),
					 errdetail("The connection to Redis is encrypted but not authenticated: whoever can intercept it can read and change cached results."),
					 errhint("Set cache_ext.tls_verify = on, with cache_ext.tls_ca_file naming the certificate authority of the Redis server.")));
		}
		ctx = get_tls_ctx(err, errlen);
		if (ctx == NULL)
		{
			t->failure = REDIS_FAIL_CONFIG;
			return false;
		}
		t->tls_generation = tls_settings_generation;
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
		{
			t->failure = (rc == EAI_MEMORY ? REDIS_FAIL_RESOURCES :
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
	return t->ssl != NULL && t->tls_generation != tls_settings_generation;
}

/* Write all of buf over TLS. */
static bool
tls_send(RedisTransport *t, const char *buf, size_t len,
		 TimestampTz deadline, char *err, size_t errlen)
{
	while (len > 0)
	{
		/* a retry after WANT_* must pass the same buffer and length */
		int			chunk = (int) Min(len, (size_t) 1 << 30);
		int			n;
		int			sslerr;
		int			saved_errno;

		ERR_clear_error();
		errno = 0;
		n = SSL_write(t->ssl, buf, chunk);
		saved_errno = errno;
		if (n > 0)
		{
			buf += n;
			len -= n;
			continue;
		}
		sslerr = SSL_get_error(t->ssl, n);
		if (sslerr == SSL_ERROR_WANT_WRITE || sslerr == SSL_ERROR_WANT_READ)
		{
			if (!wait_socket(t, sslerr == SSL_ERROR_WANT_WRITE ?
							 WL_SOCKET_WRITEABLE : WL_SOCKET_READABLE,
							 deadline, err, errlen))
				return false;
			continue;
		}
		/*
		 * With TLS 1.3 the server judges our certificate after our side of
		 * the handshake has ended: when it refused it, the reason is an
		 * alert waiting to be read, more telling than the reset that the
		 * write ran into.
		 */
		if (sslerr == SSL_ERROR_SYSCALL &&
			(saved_errno == ECONNRESET || saved_errno == EPIPE))
		{
			char		byte;

			ERR_clear_error();
			n = SSL_read(t->ssl, &byte, 1);
			if (n <= 0 && SSL_get_error(t->ssl, n) == SSL_ERROR_SSL)
			{
				tls_failure(t, SSL_ERROR_SSL, 0, false,
							"could not send to Redis", err, errlen);
				return false;
			}
		}
		tls_failure(t, sslerr, saved_errno, false, "could not send to Redis", err, errlen);
		return false;
	}
	return true;
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
		t->failure = errno_kind(errno, false);
		snprintf(err, errlen, "could not send to Redis: %m");
		return false;
	}
	return true;
}

/*
 * TransportRecv over TLS.  Data OpenSSL already holds (decrypted, or a
 * record read but not yet processed) is returned without waiting on the
 * socket: the socket may have nothing more to say.
 */
static ssize_t
tls_recv(RedisTransport *t, char *buf, size_t len, bool wait_first,
		 TimestampTz deadline, char *err, size_t errlen)
{
	if (wait_first && !SSL_has_pending(t->ssl) &&
		!wait_socket(t, WL_SOCKET_READABLE, deadline, err, errlen))
		return -1;
	for (;;)
	{
		int			n;
		int			sslerr;
		int			saved_errno;

		ERR_clear_error();
		errno = 0;
		n = SSL_read(t->ssl, buf, (int) Min(len, (size_t) INT_MAX));
		saved_errno = errno;
		if (n > 0)
			return n;
		sslerr = SSL_get_error(t->ssl, n);
		if (sslerr == SSL_ERROR_WANT_READ || sslerr == SSL_ERROR_WANT_WRITE)
		{
			if (!wait_socket(t, sslerr == SSL_ERROR_WANT_READ ?
							 WL_SOCKET_READABLE : WL_SOCKET_WRITEABLE,
							 deadline, err, errlen))
				return -1;
			continue;
		}
		tls_failure(t, sslerr, saved_errno, false, "could not receive from Redis", err, errlen);
		return -1;
	}
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
		ssize_t		n = recv(t->sock, buf, len, 0);

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

/*
 * Assign hooks: a new value of a TLS setting makes the context and the
 * connections made under the old one stale.  The variable still holds the
 * old value when the hook runs.
 */
static void
note_change(const char *oldval, const char *newval)
{
	if (strcmp(oldval ? oldval : "", newval ? newval : "") != 0)
		tls_settings_generation++;
}

static void
assign_tls_ca_file(const char *newval, void *extra)
{
	note_change(cache_ext_tls_ca_file, newval);
}

static void
assign_tls_cert_file(const char *newval, void *extra)
{
	note_change(cache_ext_tls_cert_file, newval);
}

static void
assign_tls_key_file(const char *newval, void *extra)
{
	note_change(cache_ext_tls_key_file, newval);
}

static void
assign_tls_verify(bool newval, void *extra)
{
	if (newval != cache_ext_tls_verify)
		tls_settings_generation++;
}

void
TransportDefineGucs(void)
{
	DefineCustomStringVariable("cache_ext.redis_password_file",
							   "File whose first line is the password for Redis's AUTH (with the URL's user, if any).",
							   "Preferred to a password in cache_ext.redis_url: a reload logs the new value of a setting, never a file's contents.",
							   &cache_ext_redis_password_file,
							   "",
							   PGC_SUSET, GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("cache_ext.tls_ca_file",
							   "PEM file of the certificate authorities trusted to sign the Redis server's certificate (rediss://).",
							   "Empty: the system's default certificate authorities.",
							   &cache_ext_tls_ca_file,
							   "",
							   PGC_SUSET, 0,
							   NULL, assign_tls_ca_file, NULL);

	DefineCustomStringVariable("cache_ext.tls_cert_file",
							   "PEM file of the client certificate presented to Redis (rediss://).",
							   "Optional; set together with cache_ext.tls_key_file.",
							   &cache_ext_tls_cert_file,
							   "",
							   PGC_SUSET, GUC_SUPERUSER_ONLY,
							   NULL, assign_tls_cert_file, NULL);

	DefineCustomStringVariable("cache_ext.tls_key_file",
							   "PEM file of the private key of the client certificate (rediss://).",
							   "Optional; set together with cache_ext.tls_cert_file. Must not be readable by group or others, nor encrypted.",
							   &cache_ext_tls_key_file,
							   "",
							   PGC_SUSET, GUC_SUPERUSER_ONLY,
							   NULL, assign_tls_key_file, NULL);

	DefineCustomBoolVariable("cache_ext.tls_verify",
							 "Verify the Redis server's certificate and name (rediss://).",
							 "Turn off only for testing: the connection is then not authenticated.",
							 &cache_ext_tls_verify,
							 true,
							 PGC_SUSET, 0,
							 NULL, assign_tls_verify, NULL);
}

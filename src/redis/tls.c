/*-------------------------------------------------------------------------
 *
 * tls.c
 *	  TLS to Redis (rediss://) with OpenSSL on transport.c's non-blocking
 *	  socket: the context, the handshake with verification of the server's
 *	  certificate and name, TLS reads and writes (every wait through
 *	  transport.c's wait_socket: bounded and interruptible), the failure
 *	  kinds of OpenSSL's codes, and the TLS settings.
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
#include "redis/transport_internal.h"

#define TLS_NFILES 3 /* CA bundle, certificate, key */

char *cache_ext_tls_ca_file = NULL;

char *cache_ext_tls_cert_file = NULL;

char *cache_ext_tls_key_file = NULL;

bool cache_ext_tls_verify = true;

/* bumped whenever a TLS setting takes a new value */
static uint64 tls_settings_generation = 1;

/* the identity of a file the context was loaded from */
typedef struct TlsFileStamp
{
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
} TlsFileStamp;

static SSL_CTX *tls_ctx = NULL;

static uint64 tls_ctx_generation = 0;

static TlsFileStamp tls_ctx_stamps[TLS_NFILES];

static bool warned_no_verify = false;

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
	SSL_CTX *ctx;

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
	long vr = SSL_get_verify_result(t->ssl);

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
bool
tls_handshake(RedisTransport *t, SSL_CTX *ctx, const RedisEndpoint *ep,
			  TimestampTz deadline, char *err, size_t errlen)
{
	bool is_ip = host_is_ip(ep->host);

	ERR_clear_error();
	t->failure = REDIS_FAIL_TLS; /* until it fails otherwise */
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
		int rc;
		int sslerr;
		int saved_errno;

		ERR_clear_error();
		errno = 0;
		rc = SSL_connect(t->ssl);
		saved_errno = errno;
		if (rc == 1)
			break;
		sslerr = SSL_get_error(t->ssl, rc);
		if (sslerr == SSL_ERROR_WANT_READ || sslerr == SSL_ERROR_WANT_WRITE)
		{
			if (!wait_socket(t, sslerr == SSL_ERROR_WANT_READ ? WL_SOCKET_READABLE : WL_SOCKET_WRITEABLE,
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

/* Write all of buf over TLS. */
bool
tls_send(RedisTransport *t, const char *buf, size_t len,
		 TimestampTz deadline, char *err, size_t errlen)
{
	while (len > 0)
	{
		/* a retry after WANT_* must pass the same buffer and length */
		int chunk = (int) Min(len, (size_t) 1 << 30);
		int n;
		int sslerr;
		int saved_errno;

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
			if (!wait_socket(t, sslerr == SSL_ERROR_WANT_WRITE ? WL_SOCKET_WRITEABLE : WL_SOCKET_READABLE,
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
			char byte;

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

/*
 * TransportRecv over TLS.  Data OpenSSL already holds (decrypted, or a
 * record read but not yet processed) is returned without waiting on the
 * socket: the socket may have nothing more to say.
 */
ssize_t
tls_recv(RedisTransport *t, char *buf, size_t len, bool wait_first,
		 TimestampTz deadline, char *err, size_t errlen)
{
	if (wait_first && !SSL_has_pending(t->ssl) &&
		!wait_socket(t, WL_SOCKET_READABLE, deadline, err, errlen))
		return -1;
	for (;;)
	{
		int n;
		int sslerr;
		int saved_errno;

		ERR_clear_error();
		errno = 0;
		n = SSL_read(t->ssl, buf, (int) Min(len, (size_t) INT_MAX));
		saved_errno = errno;
		if (n > 0)
			return n;
		sslerr = SSL_get_error(t->ssl, n);
		if (sslerr == SSL_ERROR_WANT_READ || sslerr == SSL_ERROR_WANT_WRITE)
		{
			if (!wait_socket(t, sslerr == SSL_ERROR_WANT_READ ? WL_SOCKET_READABLE : WL_SOCKET_WRITEABLE,
							 deadline, err, errlen))
				return -1;
			continue;
		}
		tls_failure(t, sslerr, saved_errno, false, "could not receive from Redis", err, errlen);
		return -1;
	}
}

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

	DefineCustomStringVariable("cache_ext.sentinel_password_file",
							   "File whose first line is the password for the sentinels' AUTH (Sentinel URLs; with ?sentinel_user=, if given).",
							   "Empty: the sentinels are asked without AUTH.  The data nodes' password is cache_ext.redis_password_file's or the URL's.",
							   &cache_ext_sentinel_password_file,
							   "",
							   PGC_SUSET, GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomBoolVariable("cache_ext.sentinel_hostnames",
							 "Accept host names, not only addresses, in the sentinels' answers (resolved with getaddrinfo).",
							 "Off: a sentinel that answers a name is not followed, because resolving waits for the system resolver without bound; on for sentinels run with announce-hostnames yes.",
							 &cache_ext_sentinel_hostnames,
							 false,
							 PGC_SUSET, 0,
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

/*
 * The TLS context for a new connection, or NULL with err set; *generation
 * receives the generation of the settings it was built under.  Warns once
 * per session when cache_ext.tls_verify is off.
 */
SSL_CTX *
tls_connect_ctx(char *err, size_t errlen, uint64 *generation)
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
	*generation = tls_settings_generation;
	return get_tls_ctx(err, errlen);
}

/* The generation of the TLS settings now (TransportStale compares it). */
uint64
tls_current_generation(void)
{
	return tls_settings_generation;
}

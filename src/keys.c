/*-------------------------------------------------------------------------
 *
 * keys.c
 *	  Canonical key material, SHA-256 or HMAC-SHA256, Redis key names, and
 *	  the secrets: the HMAC secret and the encryption keys.
 *
 * Secrets are read from files named by cache_ext.secret_file and
 * cache_ext.encryption_key_file, once, when the library is loaded (in the
 * postmaster when preloaded): they cannot change while the server runs, so
 * key names never switch between namespaces under running sessions, and
 * their values never reach a GUC, a log line or an error message.  A file
 * that cannot be used stops the server from starting, as PostgreSQL does
 * with ssl_key_file.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/stat.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "access/xlog.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "cache_ext.h"
#include "invalidate.h"
#include "keys.h"

static char db_scope[17] = "";

/*
 * Fetched once: an implicit fetch per digest takes OpenSSL's locks; and
 * one digest context, reused (EVP_Digest allocates and frees one per
 * call).  Backend-local, malloc'd by OpenSSL, kept for the backend's life.
 */
static EVP_MD *sha256 = NULL;
static EVP_MD_CTX *sha256_ctx = NULL;

/*
 * The HMAC context, keyed once with hmac_key: each digest re-initialises
 * it without a key, reusing the key's precomputed state (HMAC() fetches
 * the algorithm and keys a new context on every call, 4x the cost).
 */
static EVP_MAC_CTX *hmac_ctx = NULL;

void
KeyAddField(StringInfo material, const void *data, uint32 len)
{
	appendBinaryStringInfo(material, (const char *) &len, sizeof(len));
	appendBinaryStringInfo(material, (const char *) data, len);
}

void
KeyAddString(StringInfo material, const char *s)
{
	KeyAddField(material, s ? s : "", s ? strlen(s) : 0);
}

void
KeyAddU32(StringInfo material, uint32 v)
{
	KeyAddField(material, &v, sizeof(v));
}

/* ---- secrets ---- */

static char *secret_file = NULL;
static char *encryption_key_file = NULL;

static uint8 hmac_key[CE_HASH_LEN];
static bool hmac_on = false;

static int nenc_keys = 0;
static uint8 enc_keys[CE_MAX_ENC_KEYS][CE_ENC_KEY_LEN];
static uint32 enc_key_ids[CE_MAX_ENC_KEYS];

void
SecretsDefineGucs(void)
{
	DefineCustomStringVariable("cache_ext.secret_file",
							   "File holding the secret keys are HMAC'd with (at least 16 bytes).",
							   "Read when the server starts. Without it (and without an encryption key), keys are plain SHA-256.",
							   &secret_file,
							   "",
							   CE_PGC_POSTMASTER, GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("cache_ext.encryption_key_file",
							   "File holding AES-256 keys, 64 hex digits a line: the first encrypts, all decrypt.",
							   "Read when the server starts. With it, every stored value is encrypted and authenticated (AES-256-GCM).",
							   &encryption_key_file,
							   "",
							   CE_PGC_POSTMASTER, GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);
}

/* The contents of a secret file; refuses files others may read. */
static char *
read_secret_file(const char *path, const char *what, size_t *len)
{
	struct stat st;
	FILE *f;
	char *buf;
	size_t n;

	if (stat(path, &st) != 0)
		ereport(FATAL,
				(errcode_for_file_access(),
				 errmsg("could not access %s \"%s\": %m", what, path)));
	if (!S_ISREG(st.st_mode))
		ereport(FATAL,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("%s \"%s\" is not a regular file", what, path)));
	if (st.st_mode & (S_IRWXG | S_IRWXO))
		ereport(FATAL,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("%s \"%s\" has group or world access", what, path),
				 errdetail("It must be readable by the server's user only."),
				 errhint("chmod 0600 \"%s\"", path)));
	if (st.st_size > 64 * 1024)
		ereport(FATAL,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("%s \"%s\" is larger than 64 kB", what, path)));
	f = fopen(path, "r");
	if (f == NULL)
		ereport(FATAL,
				(errcode_for_file_access(),
				 errmsg("could not open %s \"%s\": %m", what, path)));
	buf = palloc(st.st_size + 1);
	n = fread(buf, 1, st.st_size, f);
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Read the secret and the encryption keys.  Called from _PG_init after the
 * GUCs are defined; a bad file is FATAL (the server does not start).
 */
void
SecretsLoad(void)
{
	size_t len;
	uint8 digest[CE_HASH_LEN];
	unsigned int dlen;

	if (encryption_key_file && encryption_key_file[0])
	{
		char *buf = read_secret_file(encryption_key_file, "cache_ext encryption key file", &len);
		char *line = buf;
		int lineno = 0;

		while (line && *line)
		{
			char *next = strchr(line, '\n');
			size_t l;

			if (next)
				*next++ = '\0';
			lineno++;
			l = strlen(line);
			while (l > 0 && (line[l - 1] == '\r' || line[l - 1] == ' '))
				line[--l] = '\0';
			if (l == 0 || line[0] == '#')
			{
				line = next;
				continue;
			}
			if (l != 2 * CE_ENC_KEY_LEN || nenc_keys == CE_MAX_ENC_KEYS)
				ereport(FATAL,
						(errcode(ERRCODE_CONFIG_FILE_ERROR),
						 errmsg("line %d of cache_ext encryption key file \"%s\" is not a key",
								lineno, encryption_key_file),
						 errdetail("Each line must hold 64 hexadecimal digits (256 bits), at most %d keys.",
								   CE_MAX_ENC_KEYS)));
			for (int i = 0; i < CE_ENC_KEY_LEN; i++)
			{
				int hi = hexval(line[2 * i]);
				int lo = hexval(line[2 * i + 1]);

				if (hi < 0 || lo < 0)
					ereport(FATAL,
							(errcode(ERRCODE_CONFIG_FILE_ERROR),
							 errmsg("line %d of cache_ext encryption key file \"%s\" is not hexadecimal",
									lineno, encryption_key_file)));
				enc_keys[nenc_keys][i] = (uint8) (hi * 16 + lo);
			}
			/* the key's id: the first bytes of a digest, never the key */
			dlen = CE_HASH_LEN;
			if (EVP_Digest(enc_keys[nenc_keys], CE_ENC_KEY_LEN, digest, &dlen,
						   EVP_sha256(), NULL) != 1)
				ereport(FATAL, (errmsg("could not compute SHA-256")));
			memcpy(&enc_key_ids[nenc_keys], digest, sizeof(uint32));
			nenc_keys++;
			line = next;
		}
		explicit_bzero(buf, len);
		pfree(buf);
		if (nenc_keys == 0)
			ereport(FATAL,
					(errcode(ERRCODE_CONFIG_FILE_ERROR),
					 errmsg("cache_ext encryption key file \"%s\" holds no key", encryption_key_file)));
	}

	if (secret_file && secret_file[0])
	{
		char *buf = read_secret_file(secret_file, "cache_ext secret file", &len);

		while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
			len--;
		if (len < 16)
			ereport(FATAL,
					(errcode(ERRCODE_CONFIG_FILE_ERROR),
					 errmsg("cache_ext secret file \"%s\" holds fewer than 16 bytes", secret_file)));
		/* the HMAC key: a digest of the secret, so any length works */
		dlen = CE_HASH_LEN;
		if (EVP_Digest(buf, len, hmac_key, &dlen, EVP_sha256(), NULL) != 1)
			ereport(FATAL, (errmsg("could not compute SHA-256")));
		explicit_bzero(buf, len);
		pfree(buf);
		hmac_on = true;
	}
	else if (nenc_keys > 0)
	{
		/* keys are HMAC'd with a key derived from the encryption key */
		dlen = CE_HASH_LEN;
		if (HMAC(EVP_sha256(), enc_keys[0], CE_ENC_KEY_LEN,
				 (const unsigned char *) "cache_ext key names", 19,
				 hmac_key, &dlen) == NULL)
			ereport(FATAL, (errmsg("could not compute HMAC-SHA256")));
		hmac_on = true;
	}
}

bool
KeyEncryptionOn(void)
{
	return nenc_keys > 0;
}

/* The key that encrypts new entries. */
const uint8 *
KeyCurrentEncryptionKey(uint32 *id)
{
	*id = enc_key_ids[0];
	return enc_keys[0];
}

/* The key with this id, or NULL. */
const uint8 *
KeyFindEncryptionKey(uint32 id)
{
	for (int i = 0; i < nenc_keys; i++)
		if (enc_key_ids[i] == id)
			return enc_keys[i];
	return NULL;
}

bool
KeyHmacOn(void)
{
	return hmac_on;
}

/*
 * SHA-256 of the material, or HMAC-SHA256 with the secret when one is set,
 * so that nobody reading Redis can confirm a guessed query or parameter.
 * Never throws except out of memory.
 */
/* hmac_ctx, keyed with hmac_key; NULL when OpenSSL refused. */
static EVP_MAC_CTX *
keyed_hmac_ctx(void)
{
	if (hmac_ctx == NULL)
	{
		EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
		EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
		OSSL_PARAM params[2];

		EVP_MAC_free(mac); /* the context holds its own reference */
		params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
													 (char *) "SHA256", 0);
		params[1] = OSSL_PARAM_construct_end();
		if (ctx == NULL || EVP_MAC_init(ctx, hmac_key, CE_HASH_LEN, params) != 1)
		{
			EVP_MAC_CTX_free(ctx);
			return NULL;
		}
		hmac_ctx = ctx;
	}
	return hmac_ctx;
}

void
KeyHash(const StringInfo material, uint8 *hash)
{
	unsigned int len = CE_HASH_LEN;

	if (hmac_on)
	{
		EVP_MAC_CTX *ctx = keyed_hmac_ctx();
		size_t outlen = 0;

		/* a NULL key: the key hmac_ctx was keyed with */
		if (ctx == NULL ||
			EVP_MAC_init(ctx, NULL, 0, NULL) != 1 ||
			EVP_MAC_update(ctx, (const unsigned char *) material->data,
						   material->len) != 1 ||
			EVP_MAC_final(ctx, hash, &outlen, CE_HASH_LEN) != 1 ||
			outlen != CE_HASH_LEN)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not compute HMAC-SHA256")));
		return;
	}
	if (sha256 == NULL)
		sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (sha256_ctx == NULL)
		sha256_ctx = EVP_MD_CTX_new();
	if (sha256 == NULL || sha256_ctx == NULL ||
		EVP_DigestInit_ex(sha256_ctx, sha256, NULL) != 1 ||
		EVP_DigestUpdate(sha256_ctx, material->data, material->len) != 1 ||
		EVP_DigestFinal_ex(sha256_ctx, hash, &len) != 1 ||
		len != CE_HASH_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not compute SHA-256")));
}

static void
hex_encode_to(const uint8 *src, int n, char *dst)
{
	static const char hex[] = "0123456789abcdef";

	for (int i = 0; i < n; i++)
	{
		dst[2 * i] = hex[src[i] >> 4];
		dst[2 * i + 1] = hex[src[i] & 15];
	}
	dst[2 * n] = '\0';
}

static const char *
database_scope(void)
{
	if (db_scope[0] == '\0')
	{
		StringInfoData m;
		uint8 hash[CE_HASH_LEN];
		uint64 sysid = GetSystemIdentifier();

		initStringInfo(&m);
		KeyAddString(&m, "cache_ext database");
		KeyAddField(&m, &sysid, sizeof(sysid));
		KeyAddU32(&m, MyDatabaseId);
		KeyHash(&m, hash);
		hex_encode_to(hash, 8, db_scope);
		pfree(m.data);
	}
	return db_scope;
}

/*
 * The database part of every key name of this database: its scope, as a
 * hash tag with a Redis Cluster URL, so that all of a database's keys are
 * in one slot, served by one master, and every pipeline and script of one
 * call names one slot (docs/store.md, "Redis Cluster").  Without one,
 * names stay as they were.
 */
static const char *
db_part(void)
{
	static char tagged[2 + sizeof(db_scope)];

	if (!CeClusterUrl(cache_ext_redis_url))
		return database_scope();
	snprintf(tagged, sizeof(tagged), "{%s}", database_scope());
	return tagged;
}

StaticAssertDecl(CE_CLUSTER_PREFIX_MAX_LEN == KEY_PREFIX_MAX_LEN - 2,
				 "the cluster bound leaves room for the tag's braces");

/*
 * An entry's key.  With a Redis Cluster URL (and
 * cache_ext.cluster_spread_entries, the default) its tag is the database's
 * scope and one of KEY_ENTRY_BUCKETS buckets taken from the entry's hash,
 * so that one database's entries spread over every master, while its
 * generations stay in the database's slot: an entry's validity is
 * decided by its generations alone (docs/store.md, "Spreading one
 * database over the masters").  Its chunks carry the same tag.
 */
#define KEY_ENTRY_BUCKETS 1024

/* cache_ext.cluster_spread_entries (off: entries in the database's slot) */
static bool cluster_spread_entries = true;

char *
KeyEntryName(const uint8 *hash)
{
	char hex[2 * CE_HASH_LEN + 1];

	hex_encode_to(hash, CE_HASH_LEN, hex);
	if (cluster_spread_entries && CeClusterUrl(cache_ext_redis_url))
		return psprintf("%s{%s.%u}:e:%s", cache_ext_key_prefix,
						database_scope(),
						(((uint32) hash[0] << 8) | hash[1]) % KEY_ENTRY_BUCKETS,
						hex);
	return psprintf("%s%s:e:%s", cache_ext_key_prefix, db_part(), hex);
}

/* the bound on the prefix keeps every generation key name in its slot */
StaticAssertDecl(KEY_PREFIX_MAX_LEN + KEY_GEN_SUFFIX_MAX + 1 <= INVAL_KEY_LEN,
				 "cache_ext.key_prefix bound too large for INVAL_KEY_LEN");
StaticAssertDecl(sizeof("0123456789abcdef:g:tag:") - 1 + 32 <= KEY_GEN_SUFFIX_MAX &&
					 sizeof("0123456789abcdef:g:ns:") - 1 + 32 <= KEY_GEN_SUFFIX_MAX &&
					 sizeof("0123456789abcdef:g:td:4294967295") - 1 <= KEY_GEN_SUFFIX_MAX &&
					 sizeof("s0123456789abcdef:g") - 1 <= KEY_GEN_SUFFIX_MAX &&
					 sizeof("0123456789abcdef:g:k:4294967295:") - 1 + 32 == KEY_GEN_SUFFIX_MAX,
				 "KEY_GEN_SUFFIX_MAX does not match the generation key names");

/*
 * Generation keys (docs/architecture.md §3).  They carry no TTL.  The server's
 * generation is shared by every database of this PostgreSQL server (it is
 * bumped after a crash or a lost invalidation); the others belong to one
 * database.
 */
char *
KeyServerGenName(void)
{
	static char server_scope[17] = "";

	if (server_scope[0] == '\0')
	{
		StringInfoData m;
		uint8 hash[CE_HASH_LEN];
		uint64 sysid = GetSystemIdentifier();

		initStringInfo(&m);
		KeyAddString(&m, "cache_ext server");
		KeyAddField(&m, &sysid, sizeof(sysid));
		KeyHash(&m, hash);
		hex_encode_to(hash, 8, server_scope);
		pfree(m.data);
	}
	/*
	 * With a Redis Cluster each database has its own copy, under its tag:
	 * lookups read it with the database's generations (one slot), and
	 * server-wide bumps reach every copy, since each database is an outbox
	 * target of its own (outbox.c) and every target delivers them.
	 */
	if (CeClusterUrl(cache_ext_redis_url))
		return psprintf("%s%ss%s:g", cache_ext_key_prefix, db_part(), server_scope);
	return psprintf("%ss%s:g", cache_ext_key_prefix, server_scope);
}

char *
KeyDatabaseGenName(void)
{
	return psprintf("%s%s:g", cache_ext_key_prefix, db_part());
}

char *
KeyTableGenName(Oid relid)
{
	return psprintf("%s%s:g:t:%u", cache_ext_key_prefix, db_part(), relid);
}

/* Table changes that key-level entries depend on too: TRUNCATE, DDL. */
char *
KeyTableDdlGenName(Oid relid)
{
	return psprintf("%s%s:g:td:%u", cache_ext_key_prefix, db_part(), relid);
}

/* One key value of a key-tracked table: hashed, keys hold no plaintext. */
char *
KeyKeyGenName(Oid relid, const char *column, const StringInfo value)
{
	StringInfoData m;
	uint8 hash[CE_HASH_LEN];
	char hex[33];

	initStringInfo(&m);
	KeyAddString(&m, "cache_ext key");
	KeyAddString(&m, column);
	KeyAddField(&m, value->data, value->len);
	KeyHash(&m, hash);
	hex_encode_to(hash, 16, hex);
	pfree(m.data);
	return psprintf("%s%s:g:k:%u:%s", cache_ext_key_prefix, db_part(), relid, hex);
}

/* Tags are hashed: keys hold no plaintext. */
char *
KeyTagGenName(const char *tag)
{
	uint8 digest[KEY_TAG_DIGEST_LEN];

	KeyTagDigest(tag, digest);
	return KeyTagGenNameFromDigest(digest);
}

/* A tag's digest: what its generation key name shows in hex. */
void
KeyTagDigest(const char *tag, uint8 *digest)
{
	StringInfoData m;
	uint8 hash[CE_HASH_LEN];

	initStringInfo(&m);
	KeyAddString(&m, "cache_ext tag");
	KeyAddString(&m, tag);
	KeyHash(&m, hash);
	memcpy(digest, hash, KEY_TAG_DIGEST_LEN);
	pfree(m.data);
}

/* The generation key name of the tag with this digest. */
char *
KeyTagGenNameFromDigest(const uint8 *digest)
{
	char hex[2 * KEY_TAG_DIGEST_LEN + 1];

	hex_encode_to(digest, KEY_TAG_DIGEST_LEN, hex);
	return psprintf("%s%s:g:tag:%s", cache_ext_key_prefix, db_part(), hex);
}

/*
 * An application value (values.c): "<prefix><database scope>:v:<64 hex>",
 * the hash of its namespace and key (HMAC with a secret), which *hash
 * receives.  Key names hold neither in clear.
 */
char *
KeyValueName(const char *ns, const char *key, uint8 *hash)
{
	StringInfoData m;
	char hex[2 * CE_HASH_LEN + 1];

	initStringInfo(&m);
	KeyAddString(&m, "cache_ext value");
	KeyAddString(&m, ns);
	KeyAddString(&m, key);
	KeyHash(&m, hash);
	hex_encode_to(hash, CE_HASH_LEN, hex);
	pfree(m.data);
	return psprintf("%s%s:v:%s", cache_ext_key_prefix, db_part(), hex);
}

/* A value namespace's generation: "<prefix><db>:g:ns:<32 hex>". */
char *
KeyNamespaceGenName(const char *ns)
{
	StringInfoData m;
	uint8 hash[CE_HASH_LEN];
	char hex[33];

	initStringInfo(&m);
	KeyAddString(&m, "cache_ext namespace");
	KeyAddString(&m, ns);
	KeyHash(&m, hash);
	hex_encode_to(hash, 16, hex);
	pfree(m.data);
	return psprintf("%s%s:g:ns:%s", cache_ext_key_prefix, db_part(), hex);
}

/*
 * A session's key (kind 's') or a user's index of sessions (kind 'u'),
 * "<prefix><database scope>:s<kind>:<hex>", where hex is the keyed hash
 * (KeyHash) of the session id or user id made by sessions.c: keys hold
 * neither in clear.
 */
char *
KeySessionName(char kind, const char *hex)
{
	return psprintf("%s%s:s%c:%s", cache_ext_key_prefix, db_part(), kind, hex);
}

/*
 * What key names depend on besides the database (palloc'd): the prefix,
 * and "*" (which a prefix never holds) after it with a Redis Cluster URL.
 */
char *
KeyNamesStamp(void)
{
	return psprintf("%s%s", cache_ext_key_prefix,
					CeClusterUrl(cache_ext_redis_url) ? "*" : "");
}

/* Whether stamp is KeyNamesStamp()'s value now, with no allocation. */
bool
KeyNamesStampIs(const char *stamp)
{
	size_t n = strlen(cache_ext_key_prefix);

	return strncmp(stamp, cache_ext_key_prefix, n) == 0 &&
		strcmp(stamp + n, CeClusterUrl(cache_ext_redis_url) ? "*" : "") == 0;
}

/* The SCAN pattern matching every entry of this database. */
char *
KeyEntryPattern(void)
{
	/* "{<scope>*}": the database's own tag (entries before 0.10) and its buckets */
	if (CeClusterUrl(cache_ext_redis_url))
		return psprintf("%s{%s*}:e:*", cache_ext_key_prefix, database_scope());
	return psprintf("%s%s:e:*", cache_ext_key_prefix, db_part());
}

char *cache_ext_key_prefix = NULL;

static bool
check_key_prefix(char **newval, void **extra, GucSource source)
{
	const char *p = *newval;

	if (p == NULL || p[0] == '\0' || strlen(p) > KEY_PREFIX_MAX_LEN)
	{
		GUC_check_errdetail("The key prefix must have 1 to %d characters, so that every key name fits in %d bytes.",
							KEY_PREFIX_MAX_LEN, INVAL_KEY_LEN);
		GUC_check_errhint("Use a shorter prefix, such as \"app1:\".");
		return false;
	}
	for (; *p; p++)
	{
		if (*p <= ' ' || *p > '~' || strchr("*?[]\\", *p))
		{
			GUC_check_errdetail("The key prefix may contain only printable ASCII characters other than space, *, ?, [, ] and \\.");
			return false;
		}
	}
	/* the other order is checked by cache_ext.redis_url's check */
	if (CeClusterUrl(cache_ext_redis_url) &&
		(strpbrk(*newval, "{}") != NULL || strlen(*newval) > CE_CLUSTER_PREFIX_MAX_LEN))
	{
		GUC_check_errdetail("With a Redis Cluster URL the key prefix must have at most %d characters and no { or }: each database's keys carry its hash tag.",
							CE_CLUSTER_PREFIX_MAX_LEN);
		GUC_check_errhint("Use a prefix without braces, such as \"app1:\".");
		return false;
	}
	return true;
}

/* cache_ext.key_prefix, cache_ext.cluster_spread_entries. */
void
KeysDefineGucs(void)
{
	DefineCustomStringVariable("cache_ext.key_prefix",
							   "Prefix of every Redis key cache_ext writes.",
							   NULL,
							   &cache_ext_key_prefix,
							   "cache_ext:",
							   PGC_SUSET, 0,
							   check_key_prefix, NULL, NULL);
	DefineCustomBoolVariable("cache_ext.cluster_spread_entries",
							 "With a Redis Cluster URL, spreads each database's entries over every master.",
							 "Off keeps them in the database's hash slot: one master per lookup, less capacity.",
							 &cluster_spread_entries,
							 true,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);
}

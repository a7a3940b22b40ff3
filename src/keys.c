/*-------------------------------------------------------------------------
 *
 * keys.c
 *	  Canonical key material, SHA-256, and Redis key names.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <openssl/evp.h>

#include "access/xlog.h"
#include "miscadmin.h"

#include "cache_ext.h"
#include "keys.h"

static char db_scope[17] = "";

/* fetched once: an implicit fetch per digest takes OpenSSL's locks */
static EVP_MD *sha256 = NULL;

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

void
KeyHash(const StringInfo material, uint8 *hash)
{
	unsigned int len = CE_HASH_LEN;

	if (sha256 == NULL)
		sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (sha256 == NULL ||
		EVP_Digest(material->data, material->len, hash, &len,
				   sha256, NULL) != 1 || len != CE_HASH_LEN)
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
		uint8		hash[CE_HASH_LEN];
		uint64		sysid = GetSystemIdentifier();

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

char *
KeyEntryName(const uint8 *hash)
{
	char		hex[2 * CE_HASH_LEN + 1];

	hex_encode_to(hash, CE_HASH_LEN, hex);
	return psprintf("%s%s:e:%s", cache_ext_key_prefix, database_scope(), hex);
}

/*
 * Generation keys (DESIGN.md §3).  They carry no TTL.  The server's
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
		uint8		hash[CE_HASH_LEN];
		uint64		sysid = GetSystemIdentifier();

		initStringInfo(&m);
		KeyAddString(&m, "cache_ext server");
		KeyAddField(&m, &sysid, sizeof(sysid));
		KeyHash(&m, hash);
		hex_encode_to(hash, 8, server_scope);
		pfree(m.data);
	}
	return psprintf("%ss%s:g", cache_ext_key_prefix, server_scope);
}

char *
KeyDatabaseGenName(void)
{
	return psprintf("%s%s:g", cache_ext_key_prefix, database_scope());
}

char *
KeyTableGenName(Oid relid)
{
	return psprintf("%s%s:g:t:%u", cache_ext_key_prefix, database_scope(), relid);
}

/* Table changes that key-level entries depend on too: TRUNCATE, DDL. */
char *
KeyTableDdlGenName(Oid relid)
{
	return psprintf("%s%s:g:td:%u", cache_ext_key_prefix, database_scope(), relid);
}

/* One key value of a key-tracked table: hashed, keys hold no plaintext. */
char *
KeyKeyGenName(Oid relid, const char *column, const StringInfo value)
{
	StringInfoData m;
	uint8		hash[CE_HASH_LEN];
	char		hex[33];

	initStringInfo(&m);
	KeyAddString(&m, "cache_ext key");
	KeyAddString(&m, column);
	KeyAddField(&m, value->data, value->len);
	KeyHash(&m, hash);
	hex_encode_to(hash, 16, hex);
	pfree(m.data);
	return psprintf("%s%s:g:k:%u:%s", cache_ext_key_prefix, database_scope(), relid, hex);
}

/* Tags are hashed: keys hold no plaintext. */
char *
KeyTagGenName(const char *tag)
{
	StringInfoData m;
	uint8		hash[CE_HASH_LEN];
	char		hex[33];

	initStringInfo(&m);
	KeyAddString(&m, "cache_ext tag");
	KeyAddString(&m, tag);
	KeyHash(&m, hash);
	hex_encode_to(hash, 16, hex);
	pfree(m.data);
	return psprintf("%s%s:g:tag:%s", cache_ext_key_prefix, database_scope(), hex);
}

/* The SCAN pattern matching every entry of this database. */
char *
KeyEntryPattern(void)
{
	return psprintf("%s%s:e:*", cache_ext_key_prefix, database_scope());
}

void
SecretsDefineGucs(void)
{
}

/*-------------------------------------------------------------------------
 *
 * keys.h
 *	  Canonical key material and the Redis key names derived from it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CACHE_EXT_KEYS_H
#define CACHE_EXT_KEYS_H

#include "postgres.h"

#include "lib/stringinfo.h"

#define CE_HASH_LEN 32 /* SHA-256 */

/* Append one length-prefixed field, so that fields cannot run together. */
extern void KeyAddField(StringInfo material, const void *data, uint32 len);
extern void KeyAddString(StringInfo material, const char *s);
extern void KeyAddU32(StringInfo material, uint32 v);

/* SHA-256 of the material; never throws except out of memory. */
extern void KeyHash(const StringInfo material, uint8 *hash);

/*
 * The Redis key of an entry: "<prefix><database scope>:e:<hex hash>",
 * palloc'd.  The database scope is a hash of the system identifier and the
 * database OID, so keys hold no plaintext and each database's keys can be
 * found by pattern.
 */
extern char *KeyEntryName(const uint8 *hash);
extern char *KeyEntryPattern(void);

/* What names depend on besides the database: prefix and layout (cluster). */
extern char *KeyNamesStamp(void);
extern bool KeyNamesStampIs(const char *stamp);

/* Sessions' keys (sessions.c): kind 's' a session, 'u' a user's index. */
extern char *KeySessionName(char kind, const char *hex);

/*
 * The longest part of a generation key name after the prefix: a key-level
 * generation, "<16 hex>:g:k:<relid, at most 10 digits>:<32 hex>".  The
 * other names are shorter (keys.c checks this at compile time).
 */
#define KEY_GEN_SUFFIX_MAX (16 + 5 + 10 + 1 + 32)

/*
 * Longest cache_ext.key_prefix: every generation key name, with its NUL,
 * must fit in INVAL_KEY_LEN (128) bytes, the size of the outbox's slots.
 */
#define KEY_PREFIX_MAX_LEN (128 - 1 - KEY_GEN_SUFFIX_MAX)

/* Generation keys and the other keys of invalidation (all palloc'd). */
extern char *KeyServerGenName(void);
extern char *KeyDatabaseGenName(void);
extern char *KeyTableGenName(Oid relid);
extern char *KeyTagGenName(const char *tag);

/* Application values (values.c): tags by digest, value and namespace keys. */
#define KEY_TAG_DIGEST_LEN 16
extern void KeyTagDigest(const char *tag, uint8 *digest);
extern char *KeyTagGenNameFromDigest(const uint8 *digest);
extern char *KeyValueName(const char *ns, const char *key, uint8 *hash);
extern char *KeyNamespaceGenName(const char *ns);
extern char *KeyTableDdlGenName(Oid relid);
extern char *KeyKeyGenName(Oid relid, const char *column, const StringInfo value);

/* The secrets' settings (keys.c), defined and read from _PG_init. */
#define CE_ENC_KEY_LEN	32 /* AES-256 */
#define CE_MAX_ENC_KEYS 8

extern void SecretsDefineGucs(void);
extern void SecretsLoad(void);
extern bool KeyHmacOn(void);
extern bool KeyEncryptionOn(void);
extern const uint8 *KeyCurrentEncryptionKey(uint32 *id);
extern const uint8 *KeyFindEncryptionKey(uint32 id);

#endif /* CACHE_EXT_KEYS_H */

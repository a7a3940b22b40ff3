/*-------------------------------------------------------------------------
 *
 * session_format.h
 *	  The stored format of a session (cache_session_*), its strict
 *	  validator, and the text form of session ids.
 *
 * A session's value in Redis is untrusted input when read back.  With
 * cache_ext.encryption_key_file it is this format sealed (AES-256-GCM,
 * entry_format.h's CeSealedSeal, the Redis key as associated data); the
 * parser below runs on what CeSealedOpen returned, or on the raw bytes in
 * the unsealed mode (cache_ext.sessions_allow_unsealed).  Like
 * entry_format.c it allocates nothing and needs nothing from a backend
 * (only pg_crc32c), so the fuzz target (test/fuzz/fuzz_session.c) links it.
 *
 * Layout (little-endian, whatever the machine):
 *
 *	 0 uint32 magic			"CXN1"
 *	 4 uint8  version		1
 *	 5 uint8  flags			0
 *	 6 uint16 user_len		1..CE_SESSION_MAX_USER
 *	 8 uint32 data_len		1..(the rest)
 *	12 uint32 crc			CRC-32C of bytes [0,12) and [16,total)
 *	16 uint8  fingerprint[16] the first bytes of the keyed hash of the
 *							session id: the Redis key it was written for
 *	32 int64  created		TimestampTz (microseconds since 2000-01-01)
 *	40 int64  deadline		the absolute deadline (created + max_lifetime)
 *	48 int64  idle_ms		the idle timeout, 1..CE_SESSION_MAX_MS
 *	56 int32  version		the session's version, >= 1
 *	60 char   id_prefix[8]	the first characters of the id (for listings)
 *	68 user_len bytes		the user id (no NUL)
 *	   data_len bytes		the data, as jsonb's text (no NUL)
 *
 * total = 68 + user_len + data_len exactly.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CACHE_EXT_SESSION_FORMAT_H
#define CACHE_EXT_SESSION_FORMAT_H

#include "c.h"

#define CE_SESSION_MAGIC	  0x314E5843 /* "CXN1" read as little-endian */
#define CE_SESSION_VERSION	  1
#define CE_SESSION_HEADER	  68
#define CE_SESSION_FP_LEN	  16
#define CE_SESSION_PREFIX_LEN 8
#define CE_SESSION_MAX_USER	  1024
/* ten years, in ms: bounds idle timeouts and lifetimes */
#define CE_SESSION_MAX_MS INT64CONST(315360000000)

/* a session id: 32 random bytes as unpadded URL-safe base64 */
#define CE_SESSION_ID_BYTES 32
#define CE_SESSION_ID_LEN	43

/* A session's fields; the pointers point into a buffer. */
typedef struct CeSession
{
	int64 created;
	int64 deadline;
	int64 idle_ms;
	int32 version;
	const uint8 *fingerprint; /* CE_SESSION_FP_LEN bytes */
	const char *id_prefix;	  /* CE_SESSION_PREFIX_LEN characters */
	const char *user;
	uint32 user_len;
	const char *data;
	uint32 data_len;
} CeSession;

/* The stored size of s: CE_SESSION_HEADER + user_len + data_len. */
extern size_t CeSessionSize(const CeSession *s);

/* Write s (valid: CeSessionParse accepts the result) into out. */
extern void CeSessionWrite(const CeSession *s, uint8 *out);

/*
 * Returns NULL when buf holds a well-formed session, with *s pointing into
 * buf, else a static reason.  The caller compares s->fingerprint with the
 * key it read.
 */
extern const char *CeSessionParse(const uint8 *buf, size_t len, CeSession *s);

/* Whether c is a character of URL-safe base64. */
extern bool CeSessionIdChar(char c);

/* raw (CE_SESSION_ID_BYTES) as an id: CE_SESSION_ID_LEN chars and a NUL */
extern void CeSessionIdEncode(const uint8 *raw, char *out);

/*
 * Whether id (len bytes) is a session id as CeSessionIdEncode writes them
 * (the canonical form: unused low bits zero); then raw holds its bytes.
 */
extern bool CeSessionIdDecode(const char *id, size_t len, uint8 *raw);

#endif /* CACHE_EXT_SESSION_FORMAT_H */

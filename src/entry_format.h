/*-------------------------------------------------------------------------
 *
 * entry_format.h
 *	  The stored format of a cache entry, and its structural validator.
 *
 * An entry is untrusted input when read back from Redis.  CeEntryParse()
 * checks everything that can be checked without knowing the types: magic,
 * version, lengths, checksum, column descriptors and the framing of every
 * row and value, and the structure of numeric values.  It allocates nothing and needs nothing from a backend
 * (only pg_crc32c), so the fuzz target (test/fuzz) links it directly.
 *
 * Layout (native byte order; the magic tells a foreign byte order apart):
 *
 *	 0 uint32 magic			 "CXE1"
 *	 4 uint8  version
 *	 5 uint8  flags			 must be 0 (encryption wraps the whole entry: see
 *							 sealed entries below)
 *	 6 uint16 natts			 <= CE_MAX_ATTS
 *	 8 uint32 total_len		 the length of the whole entry
 *	12 uint32 crc			 CRC-32C of bytes [0,12) and [16,total_len)
 *	16 uint8  fingerprint[16] first bytes of the key's hash: binds the entry
 *							 to its Redis key, so a copied entry is foreign
 *	32 int64  created_at	 TimestampTz
 *	40 uint32 nrows
 *	44 uint32 gens_len		 length of the generations section, <= 65535
 *	48 the generations section: the values of the generations the entry
 *	   depends on, read before its query ran, each a uint8 length (1..255)
 *	   and the bytes; exactly gens_len bytes in all
 *	   then natts column descriptors of 12 bytes: uint32 typid, int32 typmod,
 *	   uint8 codec, 3 bytes of zero
 *	   then nrows rows: a null bitmap of natts/8 + 1 bytes (bit set = NULL,
 *	   bits past natts zero), then each non-null value: for the FIXEDn
 *	   codecs n raw bytes, for the others a uint32 length and the bytes.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CACHE_EXT_ENTRY_FORMAT_H
#define CACHE_EXT_ENTRY_FORMAT_H

#include "c.h"

#define CE_ENTRY_MAGIC		 0x31455843 /* "CXE1" read as little-endian */
#define CE_ENTRY_VERSION	 2
#define CE_MAX_GENS_LEN		 65535
#define CE_HEADER_SIZE		 48
#define CE_CREATED_AT_OFFSET 32 /* int64 created_at in the header */
#define CE_COLUMN_SIZE		 12
#define CE_FINGERPRINT_LEN	 16
#define CE_MAX_ATTS			 1664		/* MaxTupleAttributeNumber */
#define CE_MAX_VALUE_LEN	 0x3FFFFFFF /* 1 GB - 1, as a varlena */

typedef enum CeCodec
{
	CE_CODEC_FIXED1 = 1, /* bool */
	CE_CODEC_FIXED2,	 /* int2 */
	CE_CODEC_FIXED4,	 /* int4, float4, oid, date */
	CE_CODEC_FIXED8,	 /* int8, float8, time, timestamp(tz) */
	CE_CODEC_TEXT,		 /* text, varchar, bpchar: bytes, encoding checked */
	CE_CODEC_BYTES,		 /* bytea: bytes */
	CE_CODEC_BINARY,	 /* the type's send/receive functions */
	CE_CODEC_TEXTIO,	 /* the type's output/input functions */
	CE_CODEC_NUMERIC,	 /* numeric: its stored bytes, validated */
	CE_CODEC_LAST = CE_CODEC_NUMERIC
} CeCodec;

typedef struct CeEntryView
{
	const uint8 *buf;
	size_t len;
	uint16 natts;
	uint32 nrows;
	int64 created_at;
	const uint8 *fingerprint; /* CE_FINGERPRINT_LEN bytes */
	const uint8 *gens;		  /* the generations section */
	uint32 gens_len;
	uint32 ngens;
	const uint8 *columns; /* natts descriptors */
	const uint8 *rows;	  /* the first row */
} CeEntryView;

/* Column descriptor i of a parsed entry. */
extern void CeEntryColumn(const CeEntryView *view, int i, uint32 *typid,
						  int32 *typmod, uint8 *codec);

/* Returns NULL when buf holds a well-formed entry, else a static reason. */
extern const char *CeEntryParse(const uint8 *buf, size_t len, CeEntryView *view);

/* Whether len bytes at p are a well-formed stored numeric. */
extern bool CeNumericValid(const uint8 *p, uint32 len);

/* Computes the checksum of a complete entry (the crc field is skipped). */
extern uint32 CeEntryChecksum(const uint8 *buf, size_t len);

/* Fixed width of a codec's values, or 0 for length-prefixed codecs. */
static inline int
CeCodecWidth(uint8 codec)
{
	switch (codec)
	{
		case CE_CODEC_FIXED1:
			return 1;
		case CE_CODEC_FIXED2:
			return 2;
		case CE_CODEC_FIXED4:
			return 4;
		case CE_CODEC_FIXED8:
			return 8;
		default:
			return 0;
	}
}

/*
 * Sealed entries (AES-256-GCM, cache_ext.encryption_key_file):
 *
 *	 0 uint32 magic		"CXS1"
 *	 4 uint8  version	1
 *	 5 uint8[3] zero
 *	 8 uint32 key id	which key sealed it (a digest prefix of the key)
 *	12 uint8[12] nonce	random, fresh for every entry
 *	24 ciphertext		an entry as above, encrypted
 *	   uint8[16] tag	GCM tag over the ciphertext and the associated data:
 *						the 24 header bytes and the caller's aad (the Redis
 *						key), so that an entry copied to another key does
 *						not open
 *
 * Like CeEntryParse these allocate nothing and need only OpenSSL's
 * libcrypto, so the fuzz target links them directly.
 */
#define CE_SEALED_MAGIC	   0x31535843 /* "CXS1" read as little-endian */
#define CE_SEALED_HEADER   24
#define CE_SEALED_TAG	   16
#define CE_SEALED_OVERHEAD (CE_SEALED_HEADER + CE_SEALED_TAG)
#define CE_SEALED_KEY_LEN  32

/* The key with this id, or NULL. */
typedef const uint8 *(*CeKeyLookup)(uint32 id, void *arg);

extern bool CeIsSealed(const uint8 *buf, size_t len);

/*
 * Open (authenticate and decrypt) a sealed entry into out, which has room
 * for len bytes.  Returns NULL with *outlen set, or a static reason.
 */
extern const char *CeSealedOpen(const uint8 *buf, size_t len,
								const uint8 *aad, size_t aadlen,
								CeKeyLookup lookup, void *arg,
								uint8 *out, size_t *outlen);

/* Seal plain into out (room for len + CE_SEALED_OVERHEAD); false on failure. */
extern bool CeSealedSeal(const uint8 *plain, size_t len,
						 const uint8 *aad, size_t aadlen,
						 const uint8 *key, uint32 keyid, const uint8 *nonce,
						 uint8 *out);

#endif /* CACHE_EXT_ENTRY_FORMAT_H */

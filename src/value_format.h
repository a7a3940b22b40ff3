/*-------------------------------------------------------------------------
 *
 * value_format.h
 *	  The stored format of an application value (cache_set / cache_get),
 *	  its builder and its strict validator.
 *
 * A value is untrusted input when read back from Redis.  CvValueParse()
 * checks everything that can be checked without the backend: magic,
 * version, kind, counts, lengths, checksum, the generations section, the
 * tag digests (no duplicates) and, for jsonb, that the text holds no NUL.
 * It allocates nothing and needs only pg_crc32c, so the fuzz target
 * (test/fuzz/fuzz_value.c) links it directly.  With
 * cache_ext.encryption_key_file the whole value is sealed as entries are
 * (entry_format.h, "Sealed entries"), the Redis key as associated data.
 *
 * Layout (native byte order; the magic tells a foreign byte order apart):
 *
 *	 0 uint32 magic			 "CXV1"
 *	 4 uint8  version		 1
 *	 5 uint8  kind			 CV_KIND_JSONB (jsonb's text) or CV_KIND_BYTES
 *	 6 uint8  ngens			 fixed generations: 1..CV_MAX_FIXED_GENS
 *	 7 uint8  ntags			 tags: 0..CV_MAX_TAGS
 *	 8 uint32 total_len		 the length of the whole value
 *	12 uint32 crc			 CRC-32C of bytes [0,12) and [16,total_len)
 *	16 uint8  fingerprint[16] binds the value to its Redis key: a value
 *							 copied under another key is foreign there
 *	32 uint32 gens_len		 length of the generations section, <= 65535
 *	36 uint32 data_len		 length of the data
 *	40 ntags tag digests of CV_TAG_DIGEST_LEN bytes, all different
 *	   then the generations section: ngens + ntags values (the fixed
 *	   generations first, then one per tag in the digests' order), each a
 *	   uint8 length (1..255) and the bytes; exactly gens_len bytes in all
 *	   then data_len bytes of data; nothing after them
 *
 *-------------------------------------------------------------------------
 */
#ifndef CACHE_EXT_VALUE_FORMAT_H
#define CACHE_EXT_VALUE_FORMAT_H

#include "c.h"

#define CV_VALUE_MAGIC	   0x31565843 /* "CXV1" read as little-endian */
#define CV_VALUE_VERSION   1
#define CV_HEADER_SIZE	   40
#define CV_FINGERPRINT_LEN 16
#define CV_TAG_DIGEST_LEN  16
#define CV_MAX_FIXED_GENS  8
#define CV_MAX_TAGS		   64
#define CV_MAX_GENS_LEN	   65535

typedef enum CvKind
{
	CV_KIND_JSONB = 1, /* jsonb's text form, no NUL */
	CV_KIND_BYTES = 2  /* bytea: any bytes */
} CvKind;

/* A parsed value: pointers into the buffer it was parsed from. */
typedef struct CvValueView
{
	uint8 kind;
	uint8 ngens;
	uint8 ntags;
	const uint8 *fingerprint; /* CV_FINGERPRINT_LEN bytes */
	const uint8 *tags;		  /* ntags digests */
	const uint8 *gens;		  /* the generations section */
	uint32 gens_len;
	const uint8 *data;
	uint32 data_len;
} CvValueView;

/* What CvValueBuild writes. */
typedef struct CvValueParts
{
	uint8 kind;
	const uint8 *fingerprint;
	int ngens;				 /* fixed generations */
	int ntags;				 /* tags, each with a generation */
	const uint8 *tags;		 /* ntags digests, all different */
	const char *const *gens; /* ngens + ntags values */
	const size_t *gens_lens; /* each 1..255 */
	const uint8 *data;
	size_t data_len;
} CvValueParts;

/*
 * The size of the value p describes, or 0 when p cannot be stored (a count,
 * a length or the total out of range).
 */
extern size_t CvValueSize(const CvValueParts *p);

/* Write the value into out, which has CvValueSize(p) (non-zero) bytes. */
extern void CvValueBuild(const CvValueParts *p, uint8 *out);

/* NULL when buf holds a well-formed value (*view set), else a static reason. */
extern const char *CvValueParse(const uint8 *buf, size_t len, CvValueView *view);

/* The checksum of a complete value (the crc field is skipped). */
extern uint32 CvValueChecksum(const uint8 *buf, size_t len);

#endif /* CACHE_EXT_VALUE_FORMAT_H */

/*-------------------------------------------------------------------------
 *
 * fuzz_session.c
 *	  libFuzzer target for stored sessions and session ids
 *	  (src/session_format.c), and sessions sealed as sessions.c seals them
 *	  (CeSealedSeal / CeSealedOpen of src/entry_format.c, the Redis key as
 *	  associated data).
 *
 * Every input is tried five ways:
 *
 *	parse	the input as a session's bytes from Redis: CeSessionParse must
 *			accept it exactly when ref_parse(), an independent reading of
 *			the layout in session_format.h (with its own CRC-32C), does;
 *			when accepted, the fields must be equal to ref_parse's, the
 *			pointers inside the input, and writing the fields back with
 *			CeSessionWrite must give the input byte for byte.
 *
 *	forge	the same with the checksum field made right first, so that
 *			the checks after the checksum's are reached.
 *
 *	build	the input read as field values (build_from()): a valid session
 *			is written with CeSessionWrite into a buffer of exactly
 *			CeSessionSize bytes (ASan sees any write past it), must parse
 *			back to the same fields, and must be refused with any one byte
 *			changed (the fuzzer's position and mask), cut short by one or
 *			more bytes, or with a byte appended.
 *
 *	sealed	the built session sealed under a fixed key, nonce from the
 *			input, and a session key name as associated data: it must open
 *			to the same bytes and parse; under another key name (a value
 *			copied to another session's key) it must not open.
 *
 *	id		the input's first 43 bytes as an id: CeSessionIdDecode accepts
 *			them exactly when they are 43 characters of URL-safe base64
 *			whose last character carries no bits past the 256th, and then
 *			CeSessionIdEncode gives the same text back; and the first 32
 *			bytes as raw bytes encode to such a text, which decodes back.
 *
 * Built with -DFZ_SESSION_MAKE_SEEDS (without -fsanitize=fuzzer), this file
 * writes seeds instead: valid sessions of several shapes, altered ones,
 * and ids.
 *
 *-------------------------------------------------------------------------
 */
#include "c.h"

#include <stdio.h>
#include <stdlib.h>

#include "entry_format.h"
#include "fuzz_common.h"
#include "session_format.h"

#define FZ_NAME "fuzz_session"
#include "fuzz_check.h"

#define FZ_AAD		 "cache_ext:0123456789abcdef:ss:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define FZ_AAD_OTHER "cache_ext:0123456789abcdef:ss:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define FZ_KEY_ID	 0x5eed1234u

static const uint8 fz_key[32] = {
	1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
	17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

static const uint8 *
lookup(uint32 id, void *arg)
{
	return id == FZ_KEY_ID ? fz_key : NULL;
}

static uint64
le64(const uint8 *p)
{
	uint64 v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint32
le32(const uint8 *p)
{
	return (uint32) p[0] | (uint32) p[1] << 8 | (uint32) p[2] << 16 | (uint32) p[3] << 24;
}

static bool
ref_b64url(uint8 c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		(c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* An independent reading of the layout: fills *s, true when valid. */
static bool
ref_parse(const uint8 *b, size_t len, CeSession *s)
{
	uint32 ulen;
	uint32 dlen;
	uint32 crc;

	if (len < 68 || le32(b) != 0x314E5843u || b[4] != 1 || b[5] != 0)
		return false;
	ulen = (uint32) b[6] | (uint32) b[7] << 8;
	dlen = le32(b + 8);
	if (ulen < 1 || ulen > 1024 || dlen < 1 || (uint64) 68 + ulen + dlen != len)
		return false;
	crc = fz_crc_update(0xFFFFFFFFu, b, 12);
	crc = fz_crc_update(crc, b + 16, len - 16) ^ 0xFFFFFFFFu;
	if (crc != le32(b + 12))
		return false;
	s->created = (int64) le64(b + 32);
	s->deadline = (int64) le64(b + 40);
	s->idle_ms = (int64) le64(b + 48);
	s->version = (int32) le32(b + 56);
	if (s->created < 0 || s->deadline <= s->created ||
		(uint64) s->deadline - (uint64) s->created > UINT64CONST(315360000000000))
		return false;
	if (s->idle_ms < 1 || s->idle_ms > INT64CONST(315360000000) || s->version < 1)
		return false;
	for (int i = 0; i < 8; i++)
		if (!ref_b64url(b[60 + i]))
			return false;
	for (size_t i = 68; i < len; i++)
		if (b[i] == 0)
			return false;
	s->user_len = ulen;
	s->data_len = dlen;
	return true;
}

static void
mode_parse(const uint8 *data, size_t size)
{
	CeSession s;
	CeSession r;
	bool ok = CeSessionParse(data, size, &s) == NULL;
	uint8 *back;

	memset(&r, 0, sizeof(r));
	if (ok != ref_parse(data, size, &r))
		FAIL("CeSessionParse says %s, the reference %s", ok ? "valid" : "invalid",
			 ok ? "invalid" : "valid");
	if (!ok)
		return;
	CHECK(s.created == r.created && s.deadline == r.deadline);
	CHECK(s.idle_ms == r.idle_ms && s.version == r.version);
	CHECK(s.user_len == r.user_len && s.data_len == r.data_len);
	CHECK(s.fingerprint == data + 16 && (const uint8 *) s.id_prefix == data + 60);
	CHECK((const uint8 *) s.user == data + 68);
	CHECK((const uint8 *) s.data == data + 68 + s.user_len);
	CHECK(CeSessionSize(&s) == size);
	back = malloc(size);
	CHECK(back != NULL);
	CeSessionWrite(&s, back);
	CHECK(memcmp(back, data, size) == 0);
	free(back);
}

/* field bytes taken from the input, cycling; zeros when it is empty */
typedef struct Cursor
{
	const uint8 *p;
	size_t n;
	size_t at;
} Cursor;

static uint8
next_byte(Cursor *c)
{
	return c->n ? c->p[c->at++ % c->n] : 0;
}

static uint64
next_u64(Cursor *c)
{
	uint64 v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | next_byte(c);
	return v;
}

/*
 * A valid session from the input: times and lengths clamped into range,
 * text bytes made non-zero.  Its strings are written into strbuf.
 */
static void
build_from(Cursor *c, CeSession *s, uint8 *fp, char *prefix, char *strbuf,
		   size_t strroom)
{
	static const char alpha[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	uint32 ulen = 1 + next_byte(c) % 64;
	uint32 dlen = 1 + (((uint32) next_byte(c) << 8) | next_byte(c)) % 2000;

	if (ulen + dlen > strroom)
		dlen = strroom - ulen;
	s->created = (int64) (next_u64(c) % UINT64CONST(1000000000000000000));
	s->deadline = s->created + 1 + (int64) (next_u64(c) % UINT64CONST(315360000000000));
	s->idle_ms = 1 + (int64) (next_u64(c) % UINT64CONST(315360000000));
	s->version = 1 + (int32) (next_u64(c) % 0x7ffffffe);
	for (int i = 0; i < CE_SESSION_FP_LEN; i++)
		fp[i] = next_byte(c);
	for (int i = 0; i < CE_SESSION_PREFIX_LEN; i++)
		prefix[i] = alpha[next_byte(c) % 64];
	for (uint32 i = 0; i < ulen + dlen; i++)
	{
		uint8 b = next_byte(c);

		strbuf[i] = (char) (b ? b : 'x');
	}
	s->fingerprint = fp;
	s->id_prefix = prefix;
	s->user = strbuf;
	s->user_len = ulen;
	s->data = strbuf + ulen;
	s->data_len = dlen;
}

static void
must_refuse(const uint8 *b, size_t len, const char *what)
{
	CeSession s;

	if (CeSessionParse(b, len, &s) == NULL)
		FAIL("a session %s still parses", what);
}

static void
mode_build_and_seal(const uint8 *data, size_t size)
{
	Cursor c = {data, size, 0};
	CeSession s;
	CeSession p;
	uint8 fp[CE_SESSION_FP_LEN];
	char prefix[CE_SESSION_PREFIX_LEN];
	char strs[2100];
	uint8 *buf;
	uint8 *alt;
	size_t len;
	size_t pos;
	uint8 mask;
	uint8 nonce[12];
	uint8 *sealed;
	uint8 *opened;
	size_t olen;

	build_from(&c, &s, fp, prefix, strs, sizeof(strs));
	len = CeSessionSize(&s);
	buf = malloc(len);
	alt = malloc(len + 1);
	CHECK(buf != NULL && alt != NULL);
	CeSessionWrite(&s, buf);
	if (CeSessionParse(buf, len, &p) != NULL)
		FAIL("a written session does not parse: %s", CeSessionParse(buf, len, &p));
	CHECK(p.created == s.created && p.deadline == s.deadline);
	CHECK(p.idle_ms == s.idle_ms && p.version == s.version);
	CHECK(memcmp(p.fingerprint, fp, CE_SESSION_FP_LEN) == 0);
	CHECK(memcmp(p.id_prefix, prefix, CE_SESSION_PREFIX_LEN) == 0);
	CHECK(p.user_len == s.user_len && memcmp(p.user, s.user, s.user_len) == 0);
	CHECK(p.data_len == s.data_len && memcmp(p.data, s.data, s.data_len) == 0);

	/* one byte changed anywhere */
	pos = (size_t) next_u64(&c) % len;
	mask = next_byte(&c);
	mask = mask ? mask : 0x80;
	memcpy(alt, buf, len);
	alt[pos] ^= mask;
	must_refuse(alt, len, "with a byte changed");
	/* cut short, or longer */
	must_refuse(buf, len - 1 - (size_t) next_byte(&c) % len, "cut short");
	memcpy(alt, buf, len);
	alt[len] = next_byte(&c);
	must_refuse(alt, len + 1, "with a byte appended");

	/* sealed as sessions.c seals it */
	for (int i = 0; i < 12; i++)
		nonce[i] = next_byte(&c);
	sealed = malloc(len + CE_SEALED_OVERHEAD);
	opened = malloc(len + CE_SEALED_OVERHEAD);
	CHECK(sealed != NULL && opened != NULL);
	CHECK(CeSealedSeal(buf, len, (const uint8 *) FZ_AAD, strlen(FZ_AAD), fz_key,
					   FZ_KEY_ID, nonce, sealed));
	CHECK(CeSealedOpen(sealed, len + CE_SEALED_OVERHEAD, (const uint8 *) FZ_AAD,
					   strlen(FZ_AAD), lookup, NULL, opened, &olen) == NULL);
	CHECK(olen == len && memcmp(opened, buf, len) == 0);
	CHECK(CeSessionParse(opened, olen, &p) == NULL);
	if (CeSealedOpen(sealed, len + CE_SEALED_OVERHEAD, (const uint8 *) FZ_AAD_OTHER,
					 strlen(FZ_AAD_OTHER), lookup, NULL, opened, &olen) == NULL)
		FAIL("a sealed session opens under another session's key");
	sealed[CE_SEALED_HEADER + pos] ^= mask;
	if (CeSealedOpen(sealed, len + CE_SEALED_OVERHEAD, (const uint8 *) FZ_AAD,
					 strlen(FZ_AAD), lookup, NULL, opened, &olen) == NULL)
		FAIL("a sealed session with a ciphertext byte changed opens");
	free(sealed);
	free(opened);
	free(buf);
	free(alt);
}

static void
mode_id(const uint8 *data, size_t size)
{
	uint8 raw[CE_SESSION_ID_BYTES];
	uint8 raw2[CE_SESSION_ID_BYTES];
	char text[CE_SESSION_ID_LEN + 1];
	size_t n = Min(size, (size_t) CE_SESSION_ID_LEN);
	bool ref = n == CE_SESSION_ID_LEN;
	bool ok = CeSessionIdDecode((const char *) data, n, raw);

	for (size_t i = 0; ref && i < n; i++)
		ref = ref_b64url(data[i]);
	/* the last character's two low bits lie past the 256th */
	if (ref)
	{
		const char *a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

		ref = ((strchr(a, data[42]) - a) & 3) == 0;
	}
	if (ok != ref)
		FAIL("CeSessionIdDecode says %s, the reference %s", ok ? "valid" : "invalid",
			 ok ? "invalid" : "valid");
	if (ok)
	{
		CeSessionIdEncode(raw, text);
		CHECK(memcmp(text, data, CE_SESSION_ID_LEN) == 0 && text[CE_SESSION_ID_LEN] == '\0');
	}
	memset(raw, 0, sizeof(raw));
	memcpy(raw, data, Min(size, sizeof(raw)));
	CeSessionIdEncode(raw, text);
	CHECK(strlen(text) == CE_SESSION_ID_LEN);
	for (int i = 0; i < CE_SESSION_ID_LEN; i++)
		CHECK(CeSessionIdChar(text[i]));
	CHECK(CeSessionIdDecode(text, CE_SESSION_ID_LEN, raw2));
	CHECK(memcmp(raw, raw2, sizeof(raw)) == 0);
}

/*
 * The input with its checksum made right: what a writer who can compute
 * CRC-32C (anyone, unsealed) stores, so that the checks after the
 * checksum's are reached.
 */
static void
mode_forge(const uint8 *data, size_t size)
{
	uint8 *b;
	uint32 crc;

	if (size < CE_SESSION_HEADER)
		return;
	b = malloc(size);
	CHECK(b != NULL);
	memcpy(b, data, size);
	crc = fz_crc_update(0xFFFFFFFFu, b, 12);
	crc = fz_crc_update(crc, b + 16, size - 16) ^ 0xFFFFFFFFu;
	for (int i = 0; i < 4; i++)
		b[12 + i] = (uint8) (crc >> (8 * i));
	mode_parse(b, size);
	free(b);
}

#ifndef FZ_SESSION_MAKE_SEEDS
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fz_crc_init();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	mode_parse(data, size);
	mode_forge(data, size);
	mode_build_and_seal(data, size);
	mode_id(data, size);
	return 0;
}

#else /* FZ_SESSION_MAKE_SEEDS */
/* ---- seed builder: fuzz_session_seeds OUT_DIR DICT ---- */
#include <errno.h>
#include <sys/stat.h>

static int nwritten;

static void
write_seed(const char *dir, const char *name, int n, const uint8 *p, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s-%02d", dir, name, n);
	f = fopen(path, "wb");
	if (!f || (len && fwrite(p, 1, len, f) != len) || fclose(f) != 0)
	{
		fprintf(stderr, "fuzz_session_seeds: cannot write %s\n", path);
		exit(1);
	}
	nwritten++;
}

int
main(int argc, char **argv)
{
	static const char *users[] = {"alice", "u", "user-with-a-longer-name@example.com"};
	static const char *datas[] = {"{}", "{\"cart\": [1, 2], \"name\": \"x\"}", "null", "\"s\""};
	uint8 fp[CE_SESSION_FP_LEN];
	int n = 0;
	FILE *dict;

	if (argc != 3)
	{
		fprintf(stderr, "usage: %s OUT_DIR DICT\n", argv[0]);
		return 2;
	}
	if (mkdir(argv[1], 0777) != 0 && errno != EEXIST)
	{
		fprintf(stderr, "fuzz_session_seeds: cannot create %s\n", argv[1]);
		return 1;
	}
	fz_crc_init();
	for (int i = 0; i < CE_SESSION_FP_LEN; i++)
		fp[i] = (uint8) (i * 37 + 11);
	for (int u = 0; u < 3; u++)
		for (int d = 0; d < 4; d++)
		{
			CeSession s;
			CeSession p;
			uint8 buf[256];
			size_t len;

			s.created = INT64CONST(850000000000000) + u * 1000 + d;
			s.deadline = s.created + INT64CONST(43200000000);
			s.idle_ms = 1800000 >> d;
			s.version = 1 + d * 7;
			s.fingerprint = fp;
			s.id_prefix = "AbC-_9zZ";
			s.user = users[u];
			s.user_len = strlen(users[u]);
			s.data = datas[d];
			s.data_len = strlen(datas[d]);
			len = CeSessionSize(&s);
			CeSessionWrite(&s, buf);
			if (CeSessionParse(buf, len, &p) != NULL)
			{
				fprintf(stderr, "fuzz_session_seeds: a seed does not parse\n");
				return 1;
			}
			write_seed(argv[1], "session", n, buf, len);
			/* altered: a flipped byte, cut short, version 2 */
			buf[n % len] ^= 1;
			write_seed(argv[1], "flipped", n, buf, len);
			buf[n % len] ^= 1;
			write_seed(argv[1], "short", n, buf, len - 1 - n % 8);
			buf[4] = 2;
			write_seed(argv[1], "version", n, buf, len);
			n++;
		}
	{
		uint8 raw[CE_SESSION_ID_BYTES];
		char id[CE_SESSION_ID_LEN + 1];

		for (int i = 0; i < 4; i++)
		{
			for (int k = 0; k < CE_SESSION_ID_BYTES; k++)
				raw[k] = (uint8) (i * 61 + k * 13);
			CeSessionIdEncode(raw, id);
			write_seed(argv[1], "id", i, (const uint8 *) id, CE_SESSION_ID_LEN);
		}
	}
	dict = fopen(argv[2], "w");
	if (!dict)
		return 1;
	fprintf(dict, "session_magic=\"CXN1\"\nsealed_magic=\"CXS1\"\n"
				  "version=\"\\x01\\x00\"\nb64=\"-_\"\n");
	fclose(dict);
	printf("fuzz_session_seeds: wrote %d seeds to %s\n", nwritten, argv[1]);
	return 0;
}
#endif /* FZ_SESSION_MAKE_SEEDS */

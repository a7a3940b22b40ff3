/*-------------------------------------------------------------------------
 *
 * fuzz_sealed.c
 *	  libFuzzer target for sealed (AES-256-GCM) entries: CeIsSealed,
 *	  CeSealedOpen and CeSealedSeal in src/entry_format.c, and the plaintext
 *	  they hand on to CeEntryParse (src/entry.c EntryOpen, then EntryDecode).
 *
 * Every input is tried three ways:
 *
 *	open	the input as it came from Redis: CeSealedOpen(input) with a fixed
 *			aad (a Redis key) and a lookup that knows two key ids, into an
 *			output buffer of exactly the input's length (the documented room),
 *			so that ASan sees any write past it.  The verdict must equal that
 *			of ref_open(), an independent reading of the layout documented in
 *			entry_format.h (its own header checks, and AES-256-GCM through a
 *			single EVP_CipherInit_ex/EVP_CipherUpdate sequence with the header
 *			and the aad concatenated as associated data).  When both open,
 *			the plaintexts must be equal and of length len - 40, and it goes
 *			on to CeEntryParse, as in production; an accepted entry's view
 *			must lie inside the plaintext and is read through to its end.
 *
 *	forge	the input read as  header (24 bytes) || plaintext, sealed by an
 *			independent AES-256-GCM (ref_gcm) under the key its key id names
 *			(key A for an unknown id): an authentic entry with whatever header
 *			the fuzzer chose (what a writer holding the key, or a later format
 *			version, could store).  CeSealedOpen must open it exactly when the
 *			header is one the documented layout accepts (magic, version 1,
 *			three zero bytes, a known key id), and then give back the
 *			plaintext, which goes on to CeEntryParse.  Authentication alone
 *			hides a missing header check from the other two modes.
 *
 *	seal	the input read as  plaintext || trailer (SEAL_TRAILER bytes, the
 *			last ones of the input; see below): the plaintext is sealed with
 *			CeSealedSeal under the fuzzer's nonce and key choice into a buffer
 *			of exactly len + CE_SEALED_OVERHEAD bytes, then
 *			- the sealed form must be the documented header (magic, version
 *			  1, three zero bytes, key id, nonce) followed by exactly what
 *			  ref_gcm() computes independently (ciphertext and tag);
 *			- sealing is deterministic (a second seal gives the same bytes);
 *			- CeIsSealed says yes; CeSealedOpen gives back the plaintext
 *			  (same length, same bytes), which then goes to CeEntryParse with
 *			  the same verdict as the plaintext itself;
 *			- flipping any one byte (fuzzer's position and mask) of the sealed
 *			  form, and one in each of the header, the ciphertext and the tag,
 *			  makes it fail; so do truncating it by the fuzzer's count and
 *			  appending a byte;
 *			- a changed aad (one byte flipped, one byte longer, one byte
 *			  shorter, or a different key altogether) makes it fail;
 *			- a server that does not have the key id is refused (the lookup
 *			  is asked for the id in the header, once); the other known key
 *			  id written into the header fails; and the right id mapped to
 *			  the wrong key (a rotated key) fails.
 *
 *	Trailer (the last SEAL_TRAILER = 20 bytes; shorter inputs are padded
 *	with zeros in front of them, i.e. an input shorter than the trailer is
 *	all trailer and the plaintext is empty):
 *
 *	  0 uint8[12] nonce
 *	 12 uint32   flip position (modulo the sealed length)
 *	 16 uint8    flip mask (0 means 0x80)
 *	 17 uint8    key choice: bit 0 selects key B over key A; bits 1-2 the
 *				 aad (0, 3: the fixed Redis key; 1: empty; 2: a 300-byte key)
 *	 18 uint8    aad position to flip (modulo the aad length)
 *	 19 uint8    truncation (1 + this, at most the sealed length)
 *
 *	Seeds (the seed builder at the end of this file, built with
 *	-DFZ_SEALED_MAKE_SEEDS): make_seeds.c's entries sealed under key A or B
 *	and the fixed aad (they open in the open mode and reach CeEntryParse),
 *	truncated and altered ones (refused), the entries after a sealed header
 *	(for the forge mode) and with a trailer appended (for the seal mode).
 *
 *-------------------------------------------------------------------------
 */
#include "c.h"

#include <stdio.h>
#include <stdlib.h>

#include <openssl/evp.h>

#include "entry_format.h"
#include "fuzz_common.h"

/* ---- the fixed keys, aad and trailer layout (shared with the seed builder) -- */

#define FZ_KEY_ID_A	 0x1a2b3c4du
#define FZ_KEY_ID_B	 0x0badf00du
#define FZ_AAD		 "cache_ext:16384:e:3f1c0a9be2d4475a8c61f0e2d9b7a354"
#define FZ_AAD_OTHER "cache_ext:16384:e:3f1c0a9be2d4475a8c61f0e2d9b7a355"

static const uint8 fz_key_a[CE_SEALED_KEY_LEN] = {
	0x60, 0x3d, 0xeb, 0x10, 0x15, 0xca, 0x71, 0xbe, 0x2b, 0x73, 0xae, 0xf0,
	0x85, 0x7d, 0x77, 0x81, 0x1f, 0x35, 0x2c, 0x07, 0x3b, 0x61, 0x08, 0xd7,
	0x2d, 0x98, 0x10, 0xa3, 0x09, 0x14, 0xdf, 0xf4};
static const uint8 fz_key_b[CE_SEALED_KEY_LEN] = {
	0xfe, 0xff, 0xe9, 0x92, 0x86, 0x65, 0x73, 0x1c, 0x6d, 0x6a, 0x8f, 0x94,
	0x67, 0x30, 0x83, 0x08, 0xfe, 0xff, 0xe9, 0x92, 0x86, 0x65, 0x73, 0x1c,
	0x6d, 0x6a, 0x8f, 0x94, 0x67, 0x30, 0x83, 0x09};

#define SEAL_TRAILER 20
#define TR_NONCE	 0
#define TR_FLIP_POS	 12
#define TR_FLIP_MASK 16
#define TR_CHOICE	 17
#define TR_AAD_POS	 18
#define TR_TRUNC	 19

#define FZ_NAME "fuzz_sealed"
#include "fuzz_check.h"

static volatile uint32 sink;

/* ---- keys ------------------------------------------------------------------ */

typedef struct LookupState
{
	int calls;
	uint32 last_id;
	int mode; /* LK_* */
} LookupState;

#define LK_BOTH	   0 /* knows A and B */
#define LK_NONE	   1 /* knows nothing */
#define LK_ONLY_B  2 /* knows B only */
#define LK_ROTATED 3 /* id A maps to key B, id B to key A */

static const uint8 *
lookup(uint32 id, void *arg)
{
	LookupState *st = arg;

	st->calls++;
	st->last_id = id;
	switch (st->mode)
	{
		case LK_BOTH:
			return id == FZ_KEY_ID_A ? fz_key_a : id == FZ_KEY_ID_B ? fz_key_b :
																	  NULL;
		case LK_NONE:
			return NULL;
		case LK_ONLY_B:
			return id == FZ_KEY_ID_B ? fz_key_b : NULL;
		case LK_ROTATED:
			return id == FZ_KEY_ID_A ? fz_key_b : id == FZ_KEY_ID_B ? fz_key_a :
																	  NULL;
	}
	return NULL;
}

static const uint8 *
ref_key(uint32 id)
{
	return id == FZ_KEY_ID_A ? fz_key_a : id == FZ_KEY_ID_B ? fz_key_b :
															  NULL;
}

/* ---- independent AES-256-GCM over the documented layout ---------------------- */

/*
 * AES-256-GCM with associated data ad (header || aad), through
 * EVP_CipherInit_ex in one go (key and IV given together after the IV length)
 * rather than the EVP_Encrypt and EVP_Decrypt calls entry_format.c makes.
 * Encrypting writes the tag to tag; decrypting checks it.  Returns whether
 * it succeeded (for decryption: whether the tag is right).
 */
static bool
ref_gcm(int enc, const uint8 *key, const uint8 *iv, const uint8 *ad,
		size_t adlen, const uint8 *in, size_t inlen, uint8 *out, uint8 *tag)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int l = 0;
	int l2 = 0;
	bool ok;

	CHECK(ctx != NULL);
	ok = EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) == 1 &&
		EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, 12, NULL) == 1 &&
		EVP_CipherInit_ex(ctx, NULL, NULL, key, iv, enc) == 1;
	CHECK(ok);
	if (adlen > 0)
		CHECK(EVP_CipherUpdate(ctx, NULL, &l, ad, (int) adlen) == 1);
	if (inlen > 0)
	{
		CHECK(EVP_CipherUpdate(ctx, out, &l, in, (int) inlen) == 1);
		CHECK((size_t) l == inlen);
	}
	if (!enc)
		CHECK(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, 16, tag) == 1);
	ok = EVP_CipherFinal_ex(ctx, out + inlen, &l2) == 1;
	if (ok)
		CHECK(l2 == 0);
	if (enc)
	{
		CHECK(ok);
		CHECK(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, tag) == 1);
	}
	EVP_CIPHER_CTX_free(ctx);
	return ok;
}

/* header || aad, in a fresh buffer */
static uint8 *
ref_ad(const uint8 *hdr, const uint8 *aad, size_t aadlen)
{
	uint8 *ad = malloc(CE_SEALED_HEADER + aadlen);

	CHECK(ad != NULL);
	memcpy(ad, hdr, CE_SEALED_HEADER);
	if (aadlen)
		memcpy(ad + CE_SEALED_HEADER, aad, aadlen);
	return ad;
}

/*
 * Open buf as entry_format.h documents it, with the keys A and B.  Returns
 * the plaintext (malloc'd, *plen bytes) or NULL.
 */
static uint8 *
ref_open(const uint8 *buf, size_t len, const uint8 *aad, size_t aadlen,
		 size_t *plen)
{
	const uint8 *key;
	uint8 *ad;
	uint8 *plain;
	uint8 tag[16];
	size_t clen;
	bool ok;

	if (len < 40 || rd_u32(buf) != 0x31535843u) /* "CXS1" */
		return NULL;
	if (buf[4] != 1 || buf[5] != 0 || buf[6] != 0 || buf[7] != 0)
		return NULL;
	key = ref_key(rd_u32(buf + 8));
	if (key == NULL)
		return NULL;
	clen = len - 40;
	memcpy(tag, buf + 24 + clen, 16);
	ad = ref_ad(buf, aad, aadlen);
	plain = malloc(clen + 1);
	CHECK(plain != NULL);
	ok = ref_gcm(0, key, buf + 12, ad, 24 + aadlen, buf + 24, clen, plain, tag);
	free(ad);
	if (!ok)
	{
		free(plain);
		return NULL;
	}
	*plen = clen;
	return plain;
}

/* ---- the plaintext, as production hands it on -------------------------------- */

/*
 * CeEntryParse on an opened plaintext (EntryDecode's first step); when it
 * accepts, the view must describe this buffer, lie inside it, and its rows
 * are read through to the end.  Returns whether it accepted.
 */
static bool
parse_plain(const uint8 *p, size_t len)
{
	CeEntryView v;
	const char *why;
	const uint8 *end = p + len;
	const uint8 *q;
	uint8 codecs[CE_MAX_ATTS];
	uint32 acc = 0;

	memset(&v, 0x5a, sizeof(v));
	why = CeEntryParse(p, len, &v);
	if (why != NULL)
	{
		CHECK(why[0] != '\0');
		return false;
	}
	CHECK(v.buf == p && v.len == len);
	CHECK(v.natts <= CE_MAX_ATTS);
	CHECK(v.gens >= p + CE_HEADER_SIZE && v.gens <= end);
	CHECK((size_t) (end - v.gens) >= v.gens_len);
	CHECK(v.columns == v.gens + v.gens_len);
	CHECK((size_t) (end - v.columns) >= (size_t) v.natts * CE_COLUMN_SIZE);
	CHECK(v.rows == v.columns + (size_t) v.natts * CE_COLUMN_SIZE);
	for (int i = 0; i < v.natts; i++)
	{
		uint32 typid;
		int32 typmod;

		CeEntryColumn(&v, i, &typid, &typmod, &codecs[i]);
		CHECK(codecs[i] >= CE_CODEC_FIXED1 && codecs[i] <= CE_CODEC_LAST);
	}
	q = v.rows;
	for (uint32 r = 0; r < v.nrows; r++)
	{
		const uint8 *bm = q;

		CHECK((size_t) (end - q) >= (size_t) v.natts / 8 + 1);
		q += v.natts / 8 + 1;
		for (int i = 0; i < v.natts; i++)
		{
			int w;
			uint32 vl;

			if (bm[i / 8] & (1 << (i % 8)))
				continue;
			w = CeCodecWidth(codecs[i]);
			if (w == 0)
			{
				CHECK((size_t) (end - q) >= 4);
				vl = rd_u32(q);
				q += 4;
			}
			else
				vl = (uint32) w;
			CHECK((size_t) (end - q) >= vl);
			for (uint32 k = 0; k < vl; k++)
				acc = acc * 31 + q[k];
			q += vl;
		}
	}
	CHECK(q == end);
	sink += acc;
	return true;
}

/* ---- open mode --------------------------------------------------------------- */

static void
mode_open(const uint8 *data, size_t size)
{
	LookupState st = {0, 0, LK_BOTH};
	uint8 *in;
	uint8 *out;
	uint8 *ref;
	size_t outlen = (size_t) -1;
	size_t reflen = 0;
	const char *why;
	bool sealed;

	/* exact-size copies, so that ASan sees a read or write past either */
	in = malloc(size ? size : 1);
	out = malloc(size ? size : 1);
	CHECK(in != NULL && out != NULL);
	if (size)
		memcpy(in, data, size);

	sealed = CeIsSealed(in, size);
	CHECK(sealed == (size >= 4 && rd_u32(in) == 0x31535843u));

	why = CeSealedOpen(in, size, (const uint8 *) FZ_AAD, strlen(FZ_AAD),
					   lookup, &st, out, &outlen);
	ref = ref_open(in, size, (const uint8 *) FZ_AAD, strlen(FZ_AAD), &reflen);
	CHECK(st.calls <= 1);
	if (st.calls == 1)
		CHECK(size >= 12 && st.last_id == rd_u32(in + 8));
	if (why == NULL)
	{
		if (ref == NULL)
			FAIL("CeSealedOpen opened a %zu-byte input that the documented layout and key/tag check refuse",
				 size);
		if (outlen != reflen)
			FAIL("CeSealedOpen gave %zu bytes, the reference %zu", outlen, reflen);
		if (outlen && memcmp(out, ref, outlen) != 0)
			FAIL("CeSealedOpen's plaintext differs from the reference's");
		parse_plain(out, outlen);
	}
	else
	{
		CHECK(why[0] != '\0');
		if (ref != NULL)
			FAIL("CeSealedOpen refused a %zu-byte sealed entry that opens as documented: %s",
				 size, why);
		if (!sealed)
			CHECK(st.calls == 0);
	}
	free(ref);
	free(out);
	free(in);
}

/* ---- forge mode -------------------------------------------------------------- */

/*
 * The input read as  header (24 bytes) || plaintext, sealed by the
 * reference with the key its key id names (key A when the id is unknown),
 * whatever the header says: what a writer holding the key could store, or
 * a later format version.  CeSealedOpen must open it exactly when the
 * header is one the documented layout accepts, and then give back the
 * plaintext, which goes on to CeEntryParse.
 */
static void
mode_forge(const uint8 *data, size_t size)
{
	LookupState st = {0, 0, LK_BOTH};
	const uint8 *key;
	uint8 *sealed;
	uint8 *out;
	uint8 *ad;
	size_t plen;
	size_t slen;
	size_t outlen = (size_t) -1;
	const char *why;
	bool valid;

	if (size < CE_SEALED_HEADER)
		return;
	plen = size - CE_SEALED_HEADER;
	slen = size + CE_SEALED_TAG;
	sealed = malloc(slen);
	out = malloc(slen);
	CHECK(sealed != NULL && out != NULL);
	memcpy(sealed, data, CE_SEALED_HEADER);
	key = ref_key(rd_u32(data + 8));
	valid = rd_u32(data) == 0x31535843u && data[4] == 1 && data[5] == 0 &&
		data[6] == 0 && data[7] == 0 && key != NULL;
	if (key == NULL)
		key = fz_key_a;
	ad = ref_ad(data, (const uint8 *) FZ_AAD, strlen(FZ_AAD));
	ref_gcm(1, key, data + 12, ad, CE_SEALED_HEADER + strlen(FZ_AAD),
			data + CE_SEALED_HEADER, plen, sealed + CE_SEALED_HEADER,
			sealed + CE_SEALED_HEADER + plen);
	free(ad);

	why = CeSealedOpen(sealed, slen, (const uint8 *) FZ_AAD, strlen(FZ_AAD),
					   lookup, &st, out, &outlen);
	CHECK(st.calls <= 1);
	if (why == NULL)
	{
		if (!valid)
			FAIL("CeSealedOpen opened an authentic entry whose header (magic %08x, version %u, reserved %02x%02x%02x, key id %08x) the documented layout refuses",
				 rd_u32(data), data[4], data[5], data[6], data[7],
				 rd_u32(data + 8));
		if (outlen != plen || (plen && memcmp(out, data + CE_SEALED_HEADER, plen) != 0))
			FAIL("an authentic %zu-byte plaintext opened as %zu other bytes",
				 plen, outlen);
		parse_plain(out, outlen);
	}
	else
	{
		CHECK(why[0] != '\0');
		if (valid)
			FAIL("CeSealedOpen refused an authentic entry with a valid header: %s",
				 why);
	}
	free(out);
	free(sealed);
}

/* ---- seal mode --------------------------------------------------------------- */

/* CeSealedOpen(buf) with an exact-size output buffer; returns the reason */
static const char *
try_open(const uint8 *buf, size_t len, const uint8 *aad, size_t aadlen,
		 int lkmode, LookupState *stp)
{
	LookupState st = {0, 0, lkmode};
	uint8 *out = malloc(len ? len : 1);
	size_t outlen = (size_t) -1;
	const char *why;

	CHECK(out != NULL);
	why = CeSealedOpen(buf, len, aad, aadlen, lookup, &st, out, &outlen);
	CHECK(st.calls <= 1);
	if (why != NULL)
		CHECK(why[0] != '\0');
	else
		CHECK(outlen + CE_SEALED_OVERHEAD == len);
	free(out);
	if (stp)
		*stp = st;
	return why;
}

/* a copy of buf, len bytes, in an exact-size buffer */
static uint8 *
dup_buf(const uint8 *buf, size_t len)
{
	uint8 *c = malloc(len ? len : 1);

	CHECK(c != NULL);
	if (len)
		memcpy(c, buf, len);
	return c;
}

/* buf with one byte flipped must not open */
static void
must_fail_flipped(const uint8 *sealed, size_t slen, size_t pos, uint8 mask,
				  const uint8 *aad, size_t aadlen)
{
	uint8 *c = dup_buf(sealed, slen);
	const char *why;

	CHECK(mask != 0 && pos < slen);
	c[pos] ^= mask;
	why = try_open(c, slen, aad, aadlen, LK_BOTH, NULL);
	if (why == NULL)
		FAIL("a %zu-byte sealed entry with byte %zu flipped (^0x%02x) still opens",
			 slen, pos, mask);
	free(c);
}

static void
mode_seal(const uint8 *data, size_t size)
{
	uint8 trailer[SEAL_TRAILER];
	size_t plen;
	const uint8 *plain_in;
	uint8 *plain;
	uint8 *sealed;
	uint8 *again;
	uint8 *out;
	uint8 *ref;
	uint8 *ad;
	uint8 reftag[16];
	size_t slen;
	size_t outlen = (size_t) -1;
	const uint8 *nonce;
	uint32 fpos;
	uint8 fmask;
	bool use_b;
	const uint8 *key;
	const uint8 *otherkey;
	uint32 keyid;
	uint32 otherid;
	int aadsel;
	uint8 bigaad[300];
	const uint8 *aad;
	size_t aadlen;
	const char *why;
	LookupState st;
	bool ok_plain;

	/* plaintext || trailer; a short input is all trailer, zero-padded in front */
	memset(trailer, 0, sizeof(trailer));
	if (size >= SEAL_TRAILER)
	{
		plen = size - SEAL_TRAILER;
		memcpy(trailer, data + plen, SEAL_TRAILER);
	}
	else
	{
		plen = 0;
		memcpy(trailer + SEAL_TRAILER - size, data, size);
	}
	plain_in = data;
	nonce = trailer + TR_NONCE;
	fpos = rd_u32(trailer + TR_FLIP_POS);
	fmask = trailer[TR_FLIP_MASK] ? trailer[TR_FLIP_MASK] : 0x80;
	use_b = (trailer[TR_CHOICE] & 1) != 0;
	key = use_b ? fz_key_b : fz_key_a;
	keyid = use_b ? FZ_KEY_ID_B : FZ_KEY_ID_A;
	otherkey = use_b ? fz_key_a : fz_key_b;
	otherid = use_b ? FZ_KEY_ID_A : FZ_KEY_ID_B;
	aadsel = (trailer[TR_CHOICE] >> 1) & 3;
	for (int i = 0; i < (int) sizeof(bigaad); i++)
		bigaad[i] = (uint8) ("cache_ext:0:e:"[i % 14] + i / 14);
	switch (aadsel)
	{
		case 1:
			aad = (const uint8 *) "";
			aadlen = 0;
			break;
		case 2:
			aad = bigaad;
			aadlen = sizeof(bigaad);
			break;
		default:
			aad = (const uint8 *) FZ_AAD;
			aadlen = strlen(FZ_AAD);
			break;
	}

	plain = dup_buf(plain_in, plen);
	slen = plen + CE_SEALED_OVERHEAD;
	sealed = malloc(slen);
	again = malloc(slen);
	CHECK(sealed != NULL && again != NULL);
	memset(sealed, 0xA5, slen);
	memset(again, 0x3C, slen);

	if (!CeSealedSeal(plain, plen, aad, aadlen, key, keyid, nonce, sealed))
		FAIL("CeSealedSeal failed on a %zu-byte plaintext", plen);
	CHECK(CeIsSealed(sealed, slen));

	/* the documented header */
	CHECK(rd_u32(sealed) == 0x31535843u);
	CHECK(sealed[4] == 1 && sealed[5] == 0 && sealed[6] == 0 && sealed[7] == 0);
	CHECK(rd_u32(sealed + 8) == keyid);
	CHECK(memcmp(sealed + 12, nonce, 12) == 0);

	/* ciphertext and tag as computed independently */
	ad = ref_ad(sealed, aad, aadlen);
	ref = malloc(plen + 1);
	CHECK(ref != NULL);
	ref_gcm(1, key, nonce, ad, CE_SEALED_HEADER + aadlen, plain, plen, ref, reftag);
	if (plen && memcmp(sealed + CE_SEALED_HEADER, ref, plen) != 0)
		FAIL("the ciphertext of a %zu-byte plaintext is not AES-256-GCM under the key and nonce",
			 plen);
	if (memcmp(sealed + CE_SEALED_HEADER + plen, reftag, 16) != 0)
		FAIL("the tag of a %zu-byte sealed entry is not the GCM tag over header || aad and the ciphertext",
			 plen);
	free(ref);
	free(ad);

	/* deterministic: no uninitialised or stale bytes make it in */
	CHECK(CeSealedSeal(plain, plen, aad, aadlen, key, keyid, nonce, again));
	CHECK(memcmp(sealed, again, slen) == 0);
	free(again);

	/* round trip, into exactly the documented room */
	out = malloc(slen);
	CHECK(out != NULL);
	st.calls = 0;
	st.mode = LK_BOTH;
	why = CeSealedOpen(sealed, slen, aad, aadlen, lookup, &st, out, &outlen);
	if (why != NULL)
		FAIL("a freshly sealed %zu-byte plaintext does not open: %s", plen, why);
	CHECK(st.calls == 1 && st.last_id == keyid);
	if (outlen != plen)
		FAIL("opened %zu bytes of a %zu-byte plaintext", outlen, plen);
	if (plen && memcmp(out, plain, plen) != 0)
		FAIL("the opened plaintext differs from what was sealed (%zu bytes)", plen);
	/* and on to the decoder, which must see the same thing */
	ok_plain = parse_plain(plain, plen);
	CHECK(parse_plain(out, outlen) == ok_plain);
	free(out);

	/* one flipped byte anywhere: the fuzzer's, and one per part */
	must_fail_flipped(sealed, slen, fpos % slen, fmask, aad, aadlen);
	must_fail_flipped(sealed, slen, fpos % CE_SEALED_HEADER, fmask, aad, aadlen);
	if (plen)
		must_fail_flipped(sealed, slen, CE_SEALED_HEADER + fpos % plen, fmask,
						  aad, aadlen);
	must_fail_flipped(sealed, slen, CE_SEALED_HEADER + plen + fpos % 16, fmask,
					  aad, aadlen);

	/* truncated, or with a byte more */
	{
		size_t cut = Min((size_t) trailer[TR_TRUNC] + 1, slen);
		uint8 *c = dup_buf(sealed, slen - cut);
		uint8 *l = malloc(slen + 1);

		if (try_open(c, slen - cut, aad, aadlen, LK_BOTH, NULL) == NULL)
			FAIL("a sealed entry cut by %zu of its %zu bytes still opens", cut, slen);
		CHECK(l != NULL);
		memcpy(l, sealed, slen);
		l[slen] = trailer[TR_FLIP_MASK];
		if (try_open(l, slen + 1, aad, aadlen, LK_BOTH, NULL) == NULL)
			FAIL("a sealed entry with a byte appended still opens");
		free(c);
		free(l);
	}

	/* another aad: one byte changed, one longer, one shorter, another key */
	{
		uint8 *a = malloc(aadlen + 1);

		CHECK(a != NULL);
		if (aadlen)
		{
			memcpy(a, aad, aadlen);
			a[trailer[TR_AAD_POS] % aadlen] ^= fmask;
			if (try_open(sealed, slen, a, aadlen, LK_BOTH, NULL) == NULL)
				FAIL("a sealed entry opens with aad byte %zu flipped",
					 (size_t) trailer[TR_AAD_POS] % aadlen);
			if (try_open(sealed, slen, aad, aadlen - 1, LK_BOTH, NULL) == NULL)
				FAIL("a sealed entry opens with its aad one byte shorter");
			memcpy(a, aad, aadlen);
		}
		a[aadlen] = trailer[TR_AAD_POS];
		if (try_open(sealed, slen, a, aadlen + 1, LK_BOTH, NULL) == NULL)
			FAIL("a sealed entry opens with its aad one byte longer");
		free(a);
		if ((aadsel == 1 || aadsel == 2) &&
			try_open(sealed, slen, (const uint8 *) FZ_AAD, strlen(FZ_AAD),
					 LK_BOTH, NULL) == NULL)
			FAIL("a sealed entry opens under another Redis key");
		if ((aadsel == 0 || aadsel == 3) &&
			try_open(sealed, slen, (const uint8 *) FZ_AAD_OTHER,
					 strlen(FZ_AAD_OTHER), LK_BOTH, NULL) == NULL)
			FAIL("a sealed entry opens under another Redis key");
	}

	/* the keys */
	why = try_open(sealed, slen, aad, aadlen, LK_NONE, &st);
	if (why == NULL)
		FAIL("a sealed entry opens on a server with no key");
	CHECK(st.calls == 1 && st.last_id == keyid);
	if (!use_b)
	{
		why = try_open(sealed, slen, aad, aadlen, LK_ONLY_B, &st);
		if (why == NULL)
			FAIL("an entry sealed with key id A opens on a server that has only B");
		CHECK(st.calls == 1 && st.last_id == keyid);
	}
	why = try_open(sealed, slen, aad, aadlen, LK_ROTATED, &st);
	if (why == NULL)
		FAIL("a sealed entry opens with another key under its key id");
	{
		uint8 *c = dup_buf(sealed, slen);

		put_u32(c + 8, otherid);
		why = try_open(c, slen, aad, aadlen, LK_BOTH, &st);
		if (why == NULL)
			FAIL("a sealed entry opens with its key id changed to the other known key");
		CHECK(st.calls == 1 && st.last_id == otherid);
		/* ...and sealing under the other key does not give these bytes */
		CHECK(CeSealedSeal(plain, plen, aad, aadlen, otherkey, keyid, nonce, c));
		CHECK(memcmp(c + CE_SEALED_HEADER + plen, sealed + CE_SEALED_HEADER + plen,
					 16) != 0);
		free(c);
	}

	free(sealed);
	free(plain);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fz_crc_init();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	mode_open(data, size);
	mode_forge(data, size);
	mode_seal(data, size);
	return 0;
}

#ifdef FZ_SEALED_MAKE_SEEDS
/* ---- seed builder ------------------------------------------------------------
 *
 * Built from this same file with -DFZ_SEALED_MAKE_SEEDS (and without
 * -fsanitize=fuzzer), so that it shares the keys, aad and trailer layout:
 *
 *	 fuzz_sealed_seeds ENTRY_SEEDS OUT_DIR DICT
 *
 * reads the entry-NN and bad-NN files make_seeds wrote to ENTRY_SEEDS and
 * writes to OUT_DIR, for each of them: sealed-NN (sealed under key A or B
 * in turn and the fixed aad, checked to open and to parse as the entry
 * itself does), forge-NN (its header, then the entry: the forge mode's
 * form) and plain-NN (the entry followed by a trailer for the seal mode);
 * then altered sealed entries, each checked to be refused: truncated
 * ones, wrong magic and versions, nonzero reserved bytes, an unknown key id,
 * the other key's id, a flipped tag, another Redis key as aad; and an empty
 * plaintext, and a sealed entry sealed again.  DICT gets a libFuzzer
 * dictionary (the magics and key ids).
 */
#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>

static int nwritten;

static void
die(const char *msg, const char *arg)
{
	fprintf(stderr, "fuzz_sealed_seeds: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
	exit(1);
}

static void
write_seed(const char *dir, const char *name, int n, const uint8 *p, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s-%02d", dir, name, n);
	f = fopen(path, "wb");
	if (!f)
		die("cannot create", path);
	if (len && fwrite(p, 1, len, f) != len)
		die("cannot write", path);
	if (fclose(f) != 0)
		die("cannot write", path);
	nwritten++;
}

static uint8 *
read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8 *buf = NULL;
	size_t cap = 0;
	size_t n = 0;
	size_t got;

	if (!f)
		die("cannot open", path);
	do
	{
		if (n == cap)
		{
			cap = cap ? cap * 2 : 4096;
			buf = realloc(buf, cap);
			if (!buf)
				die("out of memory", NULL);
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
	} while (got > 0);
	if (ferror(f))
		die("cannot read", path);
	fclose(f);
	*len = n;
	return buf;
}

/* seal plain under key A or B and the fixed aad; checks that it opens */
static uint8 *
seal_seed(const uint8 *plain, size_t plen, bool use_b, uint32 nonce_seed,
		  const char *aad, size_t *slen)
{
	uint8 nonce[12];
	uint8 *s = malloc(plen + CE_SEALED_OVERHEAD);
	uint8 *o = malloc(plen + CE_SEALED_OVERHEAD);
	size_t olen;
	LookupState st = {0, 0, LK_BOTH};

	if (!s || !o)
		die("out of memory", NULL);
	for (int i = 0; i < 12; i++)
		nonce[i] = (uint8) (nonce_seed * 131 + i * 29);
	if (!CeSealedSeal(plain, plen, (const uint8 *) aad, strlen(aad),
					  use_b ? fz_key_b : fz_key_a,
					  use_b ? FZ_KEY_ID_B : FZ_KEY_ID_A, nonce, s))
		die("CeSealedSeal failed", NULL);
	*slen = plen + CE_SEALED_OVERHEAD;
	if (CeSealedOpen(s, *slen, (const uint8 *) aad, strlen(aad), lookup, &st,
					 o, &olen) != NULL ||
		olen != plen ||
		(plen && memcmp(o, plain, plen) != 0))
		die("a sealed seed does not open to its plaintext", NULL);
	free(o);
	return s;
}

/* write an altered sealed entry, checked to be refused */
static int nbad;

static void
write_refused(const char *dir, const uint8 *p, size_t len)
{
	uint8 *o = malloc(len ? len : 1);
	size_t olen;
	LookupState st = {0, 0, LK_BOTH};

	if (!o)
		die("out of memory", NULL);
	if (CeSealedOpen(p, len, (const uint8 *) FZ_AAD, strlen(FZ_AAD), lookup,
					 &st, o, &olen) == NULL)
	{
		char what[64];

		snprintf(what, sizeof(what), "refused-%02d (%zu bytes)", nbad, len);
		die("an altered sealed seed opens", what);
	}
	free(o);
	write_seed(dir, "refused", nbad++, p, len);
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

int
main(int argc, char **argv)
{
	const char *src;
	const char *dir;
	DIR *d;
	struct dirent *de;
	char **names = NULL;
	int nnames = 0;
	int nsealed = 0;
	uint8 *keep = NULL; /* one sealed valid entry, for the alterations */
	size_t keeplen = 0;
	FILE *dict;

	if (argc != 4)
	{
		fprintf(stderr, "usage: %s ENTRY_SEEDS OUT_DIR DICT\n", argv[0]);
		return 2;
	}
	src = argv[1];
	dir = argv[2];
	if (mkdir(dir, 0777) != 0 && errno != EEXIST)
		die("cannot create directory", dir);
	fz_crc_init();

	d = opendir(src);
	if (!d)
		die("cannot open directory", src);
	while ((de = readdir(d)) != NULL)
	{
		if (strncmp(de->d_name, "entry-", 6) != 0 && strncmp(de->d_name, "bad-", 4) != 0)
			continue;
		names = realloc(names, sizeof(char *) * (nnames + 1));
		if (!names || !(names[nnames] = strdup(de->d_name)))
			die("out of memory", NULL);
		nnames++;
	}
	closedir(d);
	if (nnames == 0)
		die("no entry seeds in", src);
	qsort(names, nnames, sizeof(char *), cmp_names);

	for (int i = 0; i < nnames; i++)
	{
		char path[4096];
		size_t plen;
		size_t slen;
		uint8 *plain;
		uint8 *s;
		uint8 *pt;
		CeEntryView v;
		bool good = names[i][0] == 'e';

		snprintf(path, sizeof(path), "%s/%s", src, names[i]);
		plain = read_all(path, &plen);
		if ((CeEntryParse(plain, plen, &v) == NULL) != good)
			die("an entry seed does not parse as its name says", names[i]);
		/* both kinds stay within run.sh's default max_len of 65536 */
		if (plen + CE_SEALED_OVERHEAD > 65536)
		{
			free(plain);
			continue;
		}
		s = seal_seed(plain, plen, i % 2, i, FZ_AAD, &slen);
		write_seed(dir, "sealed", nsealed, s, slen);

		pt = malloc(plen + SEAL_TRAILER);
		if (!pt)
			die("out of memory", NULL);
		memcpy(pt, plain, plen);
		for (int k = 0; k < 12; k++)
			pt[plen + TR_NONCE + k] = (uint8) (i * 7 + k);
		put_u32(pt + plen + TR_FLIP_POS, (uint32) i * 2654435761u);
		pt[plen + TR_FLIP_MASK] = (uint8) (1 << (i % 8));
		pt[plen + TR_CHOICE] = (uint8) (i % 8);
		pt[plen + TR_AAD_POS] = (uint8) (i * 13);
		pt[plen + TR_TRUNC] = (uint8) (i % 3 == 0 ? 0 : i * 5);
		write_seed(dir, "plain", nsealed, pt, plen + SEAL_TRAILER);
		free(pt);
		/* the forge mode's form: the sealed header, then the plaintext */
		pt = malloc(CE_SEALED_HEADER + plen);
		if (!pt)
			die("out of memory", NULL);
		memcpy(pt, s, CE_SEALED_HEADER);
		if (plen)
			memcpy(pt + CE_SEALED_HEADER, plain, plen);
		write_seed(dir, "forge", nsealed, pt, CE_SEALED_HEADER + plen);
		free(pt);
		nsealed++;

		if (good && keep == NULL && plen > 64 && plen < 2000)
		{
			keep = s;
			keeplen = slen;
		}
		else
			free(s);
		free(plain);
		free(names[i]);
	}
	free(names);
	if (keep == NULL)
		die("no entry seed of 64..2000 bytes to alter", NULL);

	/* an empty plaintext (opens; the decoder refuses it), and a nested seal */
	{
		size_t slen;
		uint8 *s = seal_seed(NULL, 0, false, 99, FZ_AAD, &slen);
		uint8 *n;

		write_seed(dir, "sealed", nsealed++, s, slen);
		free(s);
		n = seal_seed(keep, keeplen, true, 98, FZ_AAD, &slen);
		write_seed(dir, "sealed", nsealed++, n, slen);
		free(n);
	}

	/* truncated: nothing, inside the magic, the header, the tag, by one */
	{
		static const size_t cuts[] = {0, 3, 4, 8, 12, 23, 24, 39, 40};

		for (int i = 0; i < (int) lengthof(cuts); i++)
			write_refused(dir, keep, cuts[i]);
		write_refused(dir, keep, keeplen - 16);
		write_refused(dir, keep, keeplen - 1);
	}

	/* altered headers; a flipped tag and ciphertext byte; another aad */
	{
		uint8 *c = malloc(keeplen + 1);
		size_t slen;
		uint8 *o;

		if (!c)
			die("out of memory", NULL);
#define ALTER(stmt) \
	do \
	{ \
		memcpy(c, keep, keeplen); \
		stmt; \
		write_refused(dir, c, keeplen); \
	} while (0)
		ALTER(put_u32(c, CE_ENTRY_MAGIC));					   /* "CXE1": a plain entry's */
		ALTER(c[3] = '2');									   /* "CXS2" */
		ALTER(c[0] = '1'; c[1] = 'S'; c[2] = 'X'; c[3] = 'C'); /* byte-swapped */
		ALTER(c[4] = 0);
		ALTER(c[4] = 2);
		ALTER(c[4] = 0xff);
		ALTER(c[5] = 1);
		ALTER(c[6] = 0x80);
		ALTER(c[7] = 1);
		ALTER(put_u32(c + 8, 0xdeadbeef));												 /* unknown key id */
		ALTER(put_u32(c + 8, rd_u32(c + 8) == FZ_KEY_ID_A ? FZ_KEY_ID_B : FZ_KEY_ID_A)); /* the other known key */
		ALTER(c[12] ^= 1);																 /* nonce */
		ALTER(c[CE_SEALED_HEADER + 5] ^= 0x10);											 /* ciphertext */
		ALTER(c[keeplen - 1] ^= 1);														 /* tag */
		ALTER(c[keeplen - 16] ^= 0x80);
#undef ALTER
		memcpy(c, keep, keeplen);
		c[keeplen] = 0;
		write_refused(dir, c, keeplen + 1); /* a byte appended */
		free(c);
		/* the same plaintext, sealed for another Redis key */
		o = malloc(keeplen);
		if (!o)
			die("out of memory", NULL);
		{
			LookupState st = {0, 0, LK_BOTH};
			size_t olen;

			if (CeSealedOpen(keep, keeplen, (const uint8 *) FZ_AAD, strlen(FZ_AAD),
							 lookup, &st, o, &olen) != NULL)
				die("the kept seed does not open", NULL);
			c = seal_seed(o, olen, false, 97, FZ_AAD_OTHER, &slen);
			write_refused(dir, c, slen);
			free(c);
		}
		free(o);
	}

	dict = fopen(argv[3], "w");
	if (!dict)
		die("cannot create", argv[3]);
	fprintf(dict, "sealed_magic=\"CXS1\"\nentry_magic=\"CXE1\"\n"
				  "version=\"\\x01\\x00\\x00\\x00\"\n");
	fprintf(dict, "key_id_a=\"\\x%02x\\x%02x\\x%02x\\x%02x\"\n",
			FZ_KEY_ID_A & 0xff, (FZ_KEY_ID_A >> 8) & 0xff,
			(FZ_KEY_ID_A >> 16) & 0xff, FZ_KEY_ID_A >> 24);
	fprintf(dict, "key_id_b=\"\\x%02x\\x%02x\\x%02x\\x%02x\"\n",
			FZ_KEY_ID_B & 0xff, (FZ_KEY_ID_B >> 8) & 0xff,
			(FZ_KEY_ID_B >> 16) & 0xff, FZ_KEY_ID_B >> 24);
	if (fclose(dict) != 0)
		die("cannot write", argv[3]);

	printf("fuzz_sealed_seeds: wrote %d seeds (%d sealed entries, %d entries in the forge and seal modes' forms each, %d refused) to %s\n",
		   nwritten, nsealed, nsealed - 2, nbad, dir);
	free(keep);
	return 0;
}
#endif /* FZ_SEALED_MAKE_SEEDS */

/*-------------------------------------------------------------------------
 *
 * entry_format.c
 *	  Structural validation of stored entries (see entry_format.h).
 *
 * Every read is bounds-checked against the end of the buffer before it is
 * made; arithmetic is done in size_t/uint64 so that no length can wrap.
 *
 *-------------------------------------------------------------------------
 */
#include "c.h"

#include <openssl/evp.h>

#include "port/pg_crc32c.h"

#include "entry_format.h"
#include "format_bytes.h"

uint32
CeEntryChecksum(const uint8 *buf, size_t len)
{
	return ce_crc_but_field12(buf, len);
}

void
CeEntryColumn(const CeEntryView *view, int i, uint32 *typid, int32 *typmod,
			  uint8 *codec)
{
	const uint8 *c = view->columns + (size_t) i * CE_COLUMN_SIZE;

	memcpy(typid, c, 4);
	memcpy(typmod, c + 4, 4);
	*codec = c[8];
}

/*
 * numeric's stored form (numeric.c; stable on disk, as pg_upgrade needs):
 * a uint16 header, then base-10000 int16 digits.  Short format: flag 0x8000,
 * sign 0x2000, display scale in 0x1F80, weight in 0x007F.  Long format: the
 * header holds the sign (0x4000 negative) and display scale (0x3FFF), then
 * an int16 weight.  Specials: exactly 0xC000 (NaN), 0xD000 (+Inf), 0xF000
 * (-Inf), with no digits.
 *
 * Checking that every digit is a base-10000 digit and that the lengths
 * agree makes the bytes a value numeric's functions handle like any other;
 * it is several times cheaper than numeric_recv.
 */
bool
CeNumericValid(const uint8 *p, uint32 len)
{
	uint16 h;
	uint32 hdr;

	if (len < 2)
		return false;
	memcpy(&h, p, 2);
	if ((h & 0xC000) == 0xC000)
		return len == 2 && (h == 0xC000 || h == 0xD000 || h == 0xF000);
	hdr = (h & 0x8000) ? 2 : 4;
	if (len < hdr || (len - hdr) % 2 != 0)
		return false;
	for (uint32 off = hdr; off < len; off += 2)
	{
		int16 digit;

		memcpy(&digit, p + off, 2);
		if (digit < 0 || digit >= 10000)
			return false;
	}
	return true;
}

const char *
CeEntryParse(const uint8 *buf, size_t len, CeEntryView *view)
{
	uint16 natts;
	uint32 nrows;
	uint8 codecs[CE_MAX_ATTS];
	const uint8 *p;
	const uint8 *end = buf + len;
	size_t bitmap_len;
	uint32 gens_len;

	if (len < CE_HEADER_SIZE)
		return "entry shorter than its header";
	if (ce_get_u32(buf) != CE_ENTRY_MAGIC)
		return "bad magic number";
	if (buf[4] != CE_ENTRY_VERSION)
		return "unsupported entry version";
	if (buf[5] != 0)
		return "unsupported entry flags";
	memcpy(&natts, buf + 6, 2);
	if (natts > CE_MAX_ATTS)
		return "too many columns";
	if (ce_get_u32(buf + 8) != len)
		return "entry length does not match its header";
	if (ce_get_u32(buf + 12) != CeEntryChecksum(buf, len))
		return "checksum mismatch";
	nrows = ce_get_u32(buf + 40);

	p = buf + CE_HEADER_SIZE;
	gens_len = ce_get_u32(buf + 44);
	if (gens_len > CE_MAX_GENS_LEN || (size_t) (end - p) < gens_len)
		return "generations section truncated";
	view->gens = p;
	view->gens_len = gens_len;
	view->ngens = 0;
	for (const uint8 *g = p, *gend = p + gens_len; g < gend; g += 1 + g[0])
	{
		if (g[0] == 0 || (size_t) (gend - g) < (size_t) 1 + g[0])
			return "malformed generations section";
		view->ngens++;
	}
	p += gens_len;
	if ((size_t) (end - p) < (size_t) natts * CE_COLUMN_SIZE)
		return "column descriptors truncated";
	for (int i = 0; i < natts; i++)
	{
		const uint8 *c = p + (size_t) i * CE_COLUMN_SIZE;

		if (c[8] < CE_CODEC_FIXED1 || c[8] > CE_CODEC_LAST)
			return "unknown column codec";
		if (c[9] != 0 || c[10] != 0 || c[11] != 0)
			return "nonzero padding in a column descriptor";
		codecs[i] = c[8];
	}
	view->columns = p;
	p += (size_t) natts * CE_COLUMN_SIZE;
	view->rows = p;

	/* every row has at least its bitmap, so nrows is bounded by the size */
	bitmap_len = natts / 8 + 1;
	if ((uint64) nrows * bitmap_len > (uint64) (end - p))
		return "row count exceeds the entry size";

	for (uint32 r = 0; r < nrows; r++)
	{
		const uint8 *bitmap = p;

		if ((size_t) (end - p) < bitmap_len)
			return "row truncated";
		p += bitmap_len;
		/* bits past the last column must be zero */
		if (natts % 8 != 0 && (bitmap[natts / 8] >> (natts % 8)) != 0)
			return "garbage in a null bitmap";
		if (natts % 8 == 0 && bitmap[natts / 8] != 0)
			return "garbage in a null bitmap";
		for (int i = 0; i < natts; i++)
		{
			int width;
			uint32 vlen;

			if (bitmap[i / 8] & (1 << (i % 8)))
				continue;
			width = CeCodecWidth(codecs[i]);
			if (width > 0)
			{
				if ((size_t) (end - p) < (size_t) width)
					return "value truncated";
				p += width;
				continue;
			}
			if ((size_t) (end - p) < 4)
				return "value length truncated";
			vlen = ce_get_u32(p);
			p += 4;
			if (vlen > CE_MAX_VALUE_LEN)
				return "value length out of range";
			if ((size_t) (end - p) < vlen)
				return "value truncated";
			if (codecs[i] == CE_CODEC_NUMERIC && !CeNumericValid(p, vlen))
				return "invalid numeric value";
			p += vlen;
		}
	}
	if (p != end)
		return "trailing bytes after the last row";

	view->buf = buf;
	view->len = len;
	view->natts = natts;
	view->nrows = nrows;
	memcpy(&view->created_at, buf + 32, 8);
	view->fingerprint = buf + 16;
	return NULL;
}

bool
CeIsSealed(const uint8 *buf, size_t len)
{
	return len >= 4 && ce_get_u32(buf) == CE_SEALED_MAGIC;
}

const char *
CeSealedOpen(const uint8 *buf, size_t len, const uint8 *aad, size_t aadlen,
			 CeKeyLookup lookup, void *arg, uint8 *out, size_t *outlen)
{
	EVP_CIPHER_CTX *ctx;
	const uint8 *key;
	size_t clen;
	int outl = 0;
	int finl = 0;
	bool ok;

	if (!CeIsSealed(buf, len))
		return "entry not encrypted, but cache_ext.encryption_key_file is set";
	if (len < CE_SEALED_OVERHEAD || buf[4] != 1 ||
		buf[5] != 0 || buf[6] != 0 || buf[7] != 0)
		return "malformed encrypted entry";
	clen = len - CE_SEALED_OVERHEAD;
	if (clen > INT_MAX || aadlen > INT_MAX)
		return "malformed encrypted entry";
	key = lookup(ce_get_u32(buf + 8), arg);
	if (key == NULL)
		return "entry encrypted with a key this server does not have";

	ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL)
		return "out of memory";
	ok = EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
		EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) == 1 &&
		EVP_DecryptInit_ex(ctx, NULL, NULL, key, buf + 12) == 1 &&
		EVP_DecryptUpdate(ctx, NULL, &outl, buf, CE_SEALED_HEADER) == 1 &&
		EVP_DecryptUpdate(ctx, NULL, &outl, aad, (int) aadlen) == 1 &&
		EVP_DecryptUpdate(ctx, out, &outl, buf + CE_SEALED_HEADER, (int) clen) == 1 &&
		EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, CE_SEALED_TAG,
							(void *) (buf + CE_SEALED_HEADER + clen)) == 1 &&
		EVP_DecryptFinal_ex(ctx, out + outl, &finl) == 1;
	EVP_CIPHER_CTX_free(ctx);
	if (!ok)
		return "encrypted entry failed authentication";
	*outlen = (size_t) outl + finl;
	return NULL;
}

bool
CeSealedSeal(const uint8 *plain, size_t len, const uint8 *aad, size_t aadlen,
			 const uint8 *key, uint32 keyid, const uint8 *nonce, uint8 *out)
{
	EVP_CIPHER_CTX *ctx;
	uint32 magic = CE_SEALED_MAGIC;
	int outl = 0;
	int finl = 0;
	bool ok;

	if (len > INT_MAX || aadlen > INT_MAX)
		return false;
	memset(out, 0, CE_SEALED_HEADER);
	memcpy(out, &magic, 4);
	out[4] = 1;
	memcpy(out + 8, &keyid, 4);
	memcpy(out + 12, nonce, 12);

	ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL)
		return false;
	ok = EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
		EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) == 1 &&
		EVP_EncryptInit_ex(ctx, NULL, NULL, key, out + 12) == 1 &&
		EVP_EncryptUpdate(ctx, NULL, &outl, out, CE_SEALED_HEADER) == 1 &&
		EVP_EncryptUpdate(ctx, NULL, &outl, aad, (int) aadlen) == 1 &&
		EVP_EncryptUpdate(ctx, out + CE_SEALED_HEADER, &outl, plain, (int) len) == 1 &&
		EVP_EncryptFinal_ex(ctx, out + CE_SEALED_HEADER + outl, &finl) == 1 &&
		(size_t) outl + finl == len &&
		EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, CE_SEALED_TAG,
							out + CE_SEALED_HEADER + len) == 1;
	EVP_CIPHER_CTX_free(ctx);
	return ok;
}

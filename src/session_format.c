/*-------------------------------------------------------------------------
 *
 * session_format.c
 *	  The stored format of a session and session ids (see
 *	  session_format.h).
 *
 * Every read is bounds-checked before it is made; lengths are added in
 * size_t from fields of at most 32 bits, so nothing wraps.  No state.
 *
 *-------------------------------------------------------------------------
 */
#include "c.h"

#include "port/pg_crc32c.h"

#include "format_bytes.h"
#include "session_format.h"

static const char b64url[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void
put_u16(uint8 *p, uint16 v)
{
	p[0] = (uint8) v;
	p[1] = (uint8) (v >> 8);
}

static void
put_u32(uint8 *p, uint32 v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8) (v >> (8 * i));
}

static void
put_u64(uint8 *p, uint64 v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8) (v >> (8 * i));
}

static uint16
get_u16(const uint8 *p)
{
	return (uint16) (p[0] | (p[1] << 8));
}

static uint32
get_u32(const uint8 *p)
{
	uint32 v = 0;

	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint64
get_u64(const uint8 *p)
{
	uint64 v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* CRC-32C of a stored session, the crc field skipped */
static uint32
session_crc(const uint8 *buf, size_t len)
{
	return ce_crc_but_field12(buf, len);
}

size_t
CeSessionSize(const CeSession *s)
{
	return CE_SESSION_HEADER + (size_t) s->user_len + (size_t) s->data_len;
}

void
CeSessionWrite(const CeSession *s, uint8 *out)
{
	size_t len = CeSessionSize(s);

	put_u32(out, CE_SESSION_MAGIC);
	out[4] = CE_SESSION_VERSION;
	out[5] = 0;
	put_u16(out + 6, (uint16) s->user_len);
	put_u32(out + 8, s->data_len);
	memcpy(out + 16, s->fingerprint, CE_SESSION_FP_LEN);
	put_u64(out + 32, (uint64) s->created);
	put_u64(out + 40, (uint64) s->deadline);
	put_u64(out + 48, (uint64) s->idle_ms);
	put_u32(out + 56, (uint32) s->version);
	memcpy(out + 60, s->id_prefix, CE_SESSION_PREFIX_LEN);
	memcpy(out + CE_SESSION_HEADER, s->user, s->user_len);
	memcpy(out + CE_SESSION_HEADER + s->user_len, s->data, s->data_len);
	put_u32(out + 12, session_crc(out, len));
}

bool
CeSessionIdChar(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		(c >= '0' && c <= '9') || c == '-' || c == '_';
}

/*
 * CeSessionParse (session_format.h).  Checks, in order: the length of the
 * header, magic, version, flags, the lengths against the buffer, the
 * checksum, then each field's range.
 */
const char *
CeSessionParse(const uint8 *buf, size_t len, CeSession *s)
{
	uint32 user_len;
	uint32 data_len;

	memset(s, 0, sizeof(*s));
	if (len < CE_SESSION_HEADER)
		return "session shorter than its header";
	if (get_u32(buf) != CE_SESSION_MAGIC)
		return "not a session (bad magic)";
	if (buf[4] != CE_SESSION_VERSION)
		return "unsupported session format version";
	if (buf[5] != 0)
		return "unknown session flags";
	user_len = get_u16(buf + 6);
	data_len = get_u32(buf + 8);
	if (user_len == 0 || user_len > CE_SESSION_MAX_USER)
		return "session user id length out of range";
	if (data_len == 0)
		return "session without data";
	if ((size_t) CE_SESSION_HEADER + user_len + data_len != len)
		return "session length does not match its fields";
	if (get_u32(buf + 12) != session_crc(buf, len))
		return "session checksum mismatch";
	s->created = (int64) get_u64(buf + 32);
	s->deadline = (int64) get_u64(buf + 40);
	s->idle_ms = (int64) get_u64(buf + 48);
	s->version = (int32) get_u32(buf + 56);
	if (s->created < 0 || s->deadline <= s->created ||
		s->deadline - s->created > CE_SESSION_MAX_MS * 1000)
		return "session lifetime out of range";
	if (s->idle_ms < 1 || s->idle_ms > CE_SESSION_MAX_MS)
		return "session idle timeout out of range";
	if (s->version < 1)
		return "session version out of range";
	for (int i = 0; i < CE_SESSION_PREFIX_LEN; i++)
		if (!CeSessionIdChar((char) buf[60 + i]))
			return "session id prefix is not base64url";
	if (memchr(buf + CE_SESSION_HEADER, 0, (size_t) user_len + data_len) != NULL)
		return "session holds a NUL byte";
	s->fingerprint = buf + 16;
	s->id_prefix = (const char *) buf + 60;
	s->user = (const char *) buf + CE_SESSION_HEADER;
	s->user_len = user_len;
	s->data = s->user + user_len;
	s->data_len = data_len;
	return NULL;
}

/*
 * 32 bytes are 256 bits: ten groups of three bytes (four characters each)
 * and two bytes left (three characters, their last two bits zero).
 */
void
CeSessionIdEncode(const uint8 *raw, char *out)
{
	int o = 0;
	int i;

	for (i = 0; i + 3 <= CE_SESSION_ID_BYTES; i += 3)
	{
		uint32 v = ((uint32) raw[i] << 16) | ((uint32) raw[i + 1] << 8) | raw[i + 2];

		out[o++] = b64url[(v >> 18) & 63];
		out[o++] = b64url[(v >> 12) & 63];
		out[o++] = b64url[(v >> 6) & 63];
		out[o++] = b64url[v & 63];
	}
	{
		uint32 v = ((uint32) raw[i] << 16) | ((uint32) raw[i + 1] << 8);

		out[o++] = b64url[(v >> 18) & 63];
		out[o++] = b64url[(v >> 12) & 63];
		out[o++] = b64url[(v >> 6) & 63];
	}
	out[o] = '\0';
}

static int
b64url_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

bool
CeSessionIdDecode(const char *id, size_t len, uint8 *raw)
{
	uint32 acc = 0;
	int bits = 0;
	int o = 0;

	if (len != CE_SESSION_ID_LEN)
		return false;
	for (size_t i = 0; i < len; i++)
	{
		int v = b64url_value(id[i]);

		if (v < 0)
			return false;
		acc = (acc << 6) | (uint32) v;
		bits += 6;
		if (bits >= 8)
		{
			bits -= 8;
			raw[o++] = (uint8) (acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	/* 43 characters carry 258 bits: the 2 past the 256 must be zero */
	return o == CE_SESSION_ID_BYTES && bits == 2 && acc == 0;
}

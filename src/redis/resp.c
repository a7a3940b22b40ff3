/*-------------------------------------------------------------------------
 *
 * resp.c
 *	  RESP reading around hiredis's reader, with no backend dependency
 *	  (resp.h): client.c uses it for every connection, and the RESP fuzz
 *	  target links it.
 *
 * State: the reader functions with the array limit, built once per
 * process (the same for every reader; set before any reader uses them).
 *
 *-------------------------------------------------------------------------
 */
#include <ctype.h>
#include <string.h>

#include "redis/resp.h"

static redisReplyObjectFunctions limited_functions;
static void *(*default_create_array)(const redisReadTask *, int) = NULL;

static void *
create_array_limited(const redisReadTask *task, int elements)
{
	if (elements < 0 || elements > MAX_REPLY_ELEMENTS)
		return NULL;
	return default_create_array(task, elements);
}

void
RespLimitArrays(redisReader *reader)
{
	if (default_create_array == NULL)
	{
		limited_functions = *reader->fn;
		default_create_array = limited_functions.createArray;
		limited_functions.createArray = create_array_limited;
	}
	reader->fn = &limited_functions;
}

RespFeedResult
RespFeed(redisReader *reader, const char *buf, size_t len, size_t *received,
		 size_t max_bytes)
{
	*received += len;
	if (*received > max_bytes)
		return RESP_TOO_LARGE;
	if (redisReaderFeed(reader, buf, len) != REDIS_OK)
		return RESP_BAD;
	return RESP_FED;
}

const char *
RespInfoField(const char *info, const char *field)
{
	size_t flen = strlen(field);
	const char *p = info;

	/* at the start of a line: "master_run_id:" is not "run_id:" */
	while ((p = strstr(p, field)) != NULL)
	{
		if ((p == info || p[-1] == '\n') && p[flen] == ':')
			return p + flen + 1;
		p += flen;
	}
	return NULL;
}

bool
RespRunId(const redisReply *info, char *out)
{
	const char *p;
	int len = 0;

	out[0] = '\0';
	if (info->type != REDIS_REPLY_STRING)
		return false;
	p = RespInfoField(info->str, "run_id");
	if (p == NULL)
		return false;
	while (len < RESP_RUN_ID_LEN - 1 && isalnum((unsigned char) p[len]))
	{
		out[len] = p[len];
		len++;
	}
	out[len] = '\0';
	return len > 0;
}

int
RespMasterAddr(const redisReply *r, char *host, size_t hostlen, int *port)
{
	const redisReply *h;
	const redisReply *p;
	long v = 0;

	host[0] = '\0';
	*port = 0;
	if (r->type == REDIS_REPLY_NIL ||
		(r->type == REDIS_REPLY_ARRAY && r->elements == 0))
		return 0;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || hostlen < 256)
		return -1;
	h = r->element[0];
	p = r->element[1];
	if (h == NULL || p == NULL || h->type != REDIS_REPLY_STRING ||
		p->type != REDIS_REPLY_STRING || h->len == 0 || h->len > 255 ||
		p->len == 0 || p->len > 5)
		return -1;
	for (size_t i = 0; i < h->len; i++)
	{
		char c = h->str[i];

		if (!isalnum((unsigned char) c) && c != '.' && c != '-' &&
			c != ':' && c != '_')
			return -1;
	}
	for (size_t i = 0; i < p->len; i++)
	{
		if (p->str[i] < '0' || p->str[i] > '9')
			return -1;
		v = v * 10 + (p->str[i] - '0');
	}
	if (v < 1 || v > 65535)
		return -1;
	memcpy(host, h->str, h->len);
	host[h->len] = '\0';
	*port = (int) v;
	return 1;
}

int
RespRoleIsMaster(const redisReply *r)
{
	const redisReply *e;

	if (r->type != REDIS_REPLY_ARRAY || r->elements == 0)
		return -1;
	e = r->element[0];
	if (e == NULL || (e->type != REDIS_REPLY_STRING && e->type != REDIS_REPLY_STATUS))
		return -1;
	return e->len == 6 && memcmp(e->str, "master", 6) == 0 ? 1 : 0;
}

/* Whether the error reply r starts with word followed by a space or ends. */
static bool
error_word(const redisReply *r, const char *word)
{
	size_t n = strlen(word);

	return r->len >= n && memcmp(r->str, word, n) == 0 &&
		(r->len == n || r->str[n] == ' ');
}

bool
RespNotMaster(const redisReply *r)
{
	return r->type == REDIS_REPLY_ERROR &&
		(error_word(r, "READONLY") || error_word(r, "MASTERDOWN") ||
		 error_word(r, "LOADING"));
}

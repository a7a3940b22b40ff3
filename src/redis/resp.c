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

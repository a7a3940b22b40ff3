/*-------------------------------------------------------------------------
 *
 * redis_text.h
 *	  Escaping of text that came from Redis (text.c); no backend needed.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CACHE_EXT_REDIS_TEXT_H
#define CACHE_EXT_REDIS_TEXT_H

#include "c.h"

/*
 * Copy srclen untrusted bytes of src into dst (dstlen bytes, NUL included)
 * as printable ASCII: bytes outside 0x20..0x7e and '\' become \xNN.  What
 * does not fit is cut, never in the middle of an escape.  Returns the
 * length written (without the NUL).  src need not be NUL-terminated.
 */
extern size_t RedisSafeText(char *dst, size_t dstlen, const char *src,
							size_t srclen);

#endif /* CACHE_EXT_REDIS_TEXT_H */

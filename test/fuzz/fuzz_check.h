/*-------------------------------------------------------------------------
 *
 * fuzz_check.h
 *	  FAIL and CHECK for the fuzz targets: report where, then abort (which
 *	  libFuzzer records as a crash with the input that caused it).  Define
 *	  FZ_NAME (the target's name, a string) before including this.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CE_FUZZ_CHECK_H
#define CE_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#ifndef FZ_NAME
#error "define FZ_NAME before including fuzz_check.h"
#endif

#define FAIL(...) \
	do \
	{ \
		fprintf(stderr, FZ_NAME ": %s:%d: ", __FILE__, __LINE__); \
		fprintf(stderr, __VA_ARGS__); \
		fputc('\n', stderr); \
		abort(); \
	} while (0)

#define CHECK(cond) \
	do \
	{ \
		if (!(cond)) \
			FAIL("check failed: %s", #cond); \
	} while (0)

#endif /* CE_FUZZ_CHECK_H */

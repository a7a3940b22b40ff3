/*-------------------------------------------------------------------------
 *
 * memory_keep.c
 *	  cache_ext.backend_memory_keep: how much freed memory a server process
 *	  keeps mapped, so that a statement that builds a large result does not
 *	  fault in fresh pages for it every time.
 *
 * A hit of a result of thousands of rows builds a tuplestore of them (as
 * every set-returning function in FROM does) and reads the entry into a
 * buffer; both are a few hundred kilobytes to megabytes, allocated and
 * freed once per statement.  glibc serves allocations of that size with
 * mmap(), or from the top of the heap and then gives the top back to the
 * kernel when it is freed (its trim threshold follows the largest mmap'd
 * block freed, about a megabyte here).  Either way the next statement
 * faults the same pages in again, each zeroed by the kernel: measured,
 * that was half of the time of a 10k-row hit from the local tier
 * (test/bench/large_bench.sh, docs/decisions.md "Memory a backend keeps").
 *
 * The setting raises glibc's trim threshold to its value and its mmap
 * threshold to half of it (at most 32MB, glibc's own ceiling), so that
 * such blocks come from the heap and stay mapped between statements.  It
 * is applied by mallopt() when the library is loaded: in the postmaster
 * under shared_preload_libraries, inherited by every process it starts;
 * in one backend otherwise.  The cost is that a process may keep up to
 * that much freed memory mapped.  0 leaves glibc's defaults.  Only on
 * glibc; elsewhere, or when mallopt() refuses, the setting does nothing
 * and the server log says so once.
 *
 * State: the setting, and whether it was applied; set once in _PG_init.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "utils/guc.h"

#include "cache_ext.h"

/* glibc's largest mmap threshold on 64-bit systems (HEAP_MAX_SIZE / 2) */
#define KEEP_MMAP_MAX_KB (32 * 1024)

int cache_ext_backend_memory_keep = 16 * 1024; /* kB */
static bool memory_keep_applied = false;	   /* mallopt() took the values */

/*
 * Apply the setting to this process (and so to every process the
 * postmaster starts afterwards).  Called once, after the GUC is defined.
 */
static void
memory_keep_apply(void)
{
#if defined(__GLIBC__) && defined(M_TRIM_THRESHOLD) && defined(M_MMAP_THRESHOLD)
	int kb = cache_ext_backend_memory_keep;
	int mmap_kb = Min(kb / 2, KEEP_MMAP_MAX_KB);

	if (kb <= 0)
		return;
	/* mallopt returns 1 on success; a refused value leaves glibc's default */
	memory_keep_applied = mallopt(M_TRIM_THRESHOLD, (int) Min((int64) kb * 1024, PG_INT32_MAX)) == 1 &&
		mallopt(M_MMAP_THRESHOLD, mmap_kb * 1024) == 1;
#endif
	if (cache_ext_backend_memory_keep > 0 && !memory_keep_applied)
		ereport(LOG,
				(errmsg("cache_ext.backend_memory_keep has no effect here"),
				 errdetail("It needs the GNU C library's mallopt().")));
}

void
MemoryKeepDefineGucs(void)
{
	DefineCustomIntVariable("cache_ext.backend_memory_keep",
							"Freed memory a server process keeps mapped for the next statement (glibc only).",
							"Large hits then reuse their tuplestore's and buffers' pages instead of "
							"faulting in fresh ones; 0 leaves the C library's defaults.",
							&cache_ext_backend_memory_keep, 16 * 1024, 0, 1024 * 1024,
							CE_PGC_POSTMASTER, GUC_UNIT_KB, NULL, NULL, NULL);
	memory_keep_apply();
}

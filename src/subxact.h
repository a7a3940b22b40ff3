/*-------------------------------------------------------------------------
 *
 * subxact.h
 *	  Running a piece of work in an internal subtransaction, so that an
 *	  error in it (a value its type cannot encode or decode, a function
 *	  body that does not parse, catalog work cache_ext adds to a user's
 *	  statement) does not fail the statement.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CACHE_EXT_SUBXACT_H
#define CACHE_EXT_SUBXACT_H

#include "postgres.h"

typedef void (*SubxactFn)(void *arg);

/*
 * Run fn(arg) in an internal subtransaction, in the caller's memory context
 * (what fn allocates outlives the subtransaction) and resource owner.
 * Returns NULL when fn completed; else the error it raised, copied into the
 * caller's memory context, the subtransaction rolled back.  A cancel, a
 * shutdown or another operator intervention is raised again at once: it is
 * never a property of what fn was doing.
 */
extern ErrorData *RunInSubtransaction(SubxactFn fn, void *arg);

/*
 * Load an extension table into a fresh backend-local hash: *cxt (made under
 * CacheMemoryContext, named name, the first time) is reset, *hash is a new
 * hash of keysize and entrysize in it, and fn(arg) fills it in a
 * subtransaction.  Returns true when fn completed; *hash is then NULL when
 * it stayed empty.  When fn raised, a WARNING says what could not be loaded
 * (with detail), *hash is NULL and false is returned.  Never raises but for
 * a cancel.
 */
struct HTAB;
extern bool LoadTableHash(MemoryContext *cxt, const char *name,
						  struct HTAB **hash, Size keysize, Size entrysize,
						  SubxactFn fn, void *arg, const char *what,
						  const char *detail);

#endif /* CACHE_EXT_SUBXACT_H */

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

#endif /* CACHE_EXT_SUBXACT_H */

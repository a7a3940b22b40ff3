/*-------------------------------------------------------------------------
 *
 * subxact.c
 *	  RunInSubtransaction (subxact.h): the one place that runs work in an
 *	  internal subtransaction and catches its error.
 *
 * No state of its own.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "access/xact.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "subxact.h"

ErrorData *
RunInSubtransaction(SubxactFn fn, void *arg)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	ErrorData *volatile edata = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		fn(arg);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(oldcxt);
	CurrentResourceOwner = oldowner;
	if (edata != NULL &&
		ERRCODE_TO_CATEGORY(edata->sqlerrcode) == ERRCODE_OPERATOR_INTERVENTION)
		ReThrowError(edata);
	return edata;
}

bool
LoadTableHash(MemoryContext *cxt, const char *name, HTAB **hash, Size keysize,
			  Size entrysize, SubxactFn fn, void *arg, const char *what,
			  const char *detail)
{
	HASHCTL ctl;
	ErrorData *edata;

	if (*cxt == NULL)
	{
		/* (name is a caller's constant: it outlives the context) */
		*cxt = AllocSetContextCreate(CacheMemoryContext, "cache_ext extension table",
									 ALLOCSET_SMALL_SIZES);
		MemoryContextSetIdentifier(*cxt, name);
	}
	MemoryContextReset(*cxt);
	ctl.keysize = keysize;
	ctl.entrysize = entrysize;
	ctl.hcxt = *cxt;
	*hash = hash_create(name, 16, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	edata = RunInSubtransaction(fn, arg);
	if (edata != NULL)
	{
		ereport(WARNING,
				(errcode(edata->sqlerrcode),
				 errmsg("cache_ext: %s could not be loaded: %s", what, edata->message),
				 errdetail_internal("%s", detail)));
		FreeErrorData(edata);
		*hash = NULL;
		return false;
	}
	if (hash_get_num_entries(*hash) == 0)
		*hash = NULL;
	return true;
}

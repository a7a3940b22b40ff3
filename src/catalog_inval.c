/*-------------------------------------------------------------------------
 *
 * catalog_inval.c
 *	  One PostgreSQL callback per catalog cache for every part of cache_ext
 *	  that must hear of catalog changes (stmtcache.c, rules.c, policies.c,
 *	  invalidate.c).
 *
 * A backend has room for 10 relcache callbacks and 64 syscache callbacks
 * (PostgreSQL 15), for core and every extension together; running out is
 * a FATAL error.  Each part of cache_ext registering its own took four
 * relcache slots and two of the same syscache; through this file cache_ext
 * takes one relcache slot and one slot per syscache it watches.
 *
 * State: backend-local lists of subscribers, appended to once per
 * subscriber and never removed (a backend's subscribers live as long as
 * it does).  No locks.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/inval.h"

#include "catalog_inval.h"

#define MAX_SUBSCRIBERS 8
#define MAX_CACHES		40

static RelcacheCallbackFunction rel_subscribers[MAX_SUBSCRIBERS];
static int n_rel_subscribers = 0;

typedef struct CacheSubscribers
{
	int cacheid;
	int n;
	SyscacheCallbackFunction fn[MAX_SUBSCRIBERS];
} CacheSubscribers;

static CacheSubscribers caches[MAX_CACHES];
static int n_caches = 0;

static void
relcache_dispatch(Datum arg, Oid relid)
{
	for (int i = 0; i < n_rel_subscribers; i++)
		rel_subscribers[i](arg, relid);
}

static void
syscache_dispatch(Datum arg, int cacheid, uint32 hashvalue)
{
	CacheSubscribers *c = &caches[DatumGetInt32(arg)];

	for (int i = 0; i < c->n; i++)
		c->fn[i]((Datum) 0, cacheid, hashvalue);
}

/* fn(0, relid) for every relcache invalidation, from now on. */
void
CatalogInvalOnRelcache(RelcacheCallbackFunction fn)
{
	if (n_rel_subscribers >= MAX_SUBSCRIBERS)
		elog(ERROR, "cache_ext: too many relcache subscribers");
	if (n_rel_subscribers == 0)
		CacheRegisterRelcacheCallback(relcache_dispatch, (Datum) 0);
	rel_subscribers[n_rel_subscribers++] = fn;
}

/* fn(0, cacheid, hashvalue) for every invalidation of cacheid, from now on. */
void
CatalogInvalOnSyscache(int cacheid, SyscacheCallbackFunction fn)
{
	CacheSubscribers *c = NULL;

	for (int i = 0; i < n_caches && c == NULL; i++)
		if (caches[i].cacheid == cacheid)
			c = &caches[i];
	if (c == NULL)
	{
		if (n_caches >= MAX_CACHES)
			elog(ERROR, "cache_ext: too many syscaches watched");
		c = &caches[n_caches];
		c->cacheid = cacheid;
		c->n = 0;
		CacheRegisterSyscacheCallback(cacheid, syscache_dispatch, Int32GetDatum(n_caches));
		n_caches++;
	}
	if (c->n >= MAX_SUBSCRIBERS)
		elog(ERROR, "cache_ext: too many subscribers of syscache %d", cacheid);
	c->fn[c->n++] = fn;
}

/*-------------------------------------------------------------------------
 *
 * health_nodes.c
 *	  cache_redis_nodes(): the health of each node of a Redis Cluster, for
 *	  people and dashboards (0.10, issue 13; docs/observability.md).  A
 *	  fresh slot map is read and each master that the map says is online
 *	  is asked PING over this backend's connection to it.  No state.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

#include "cache_ext.h"
#include "store/store.h"

#define NODES_MAX 256

PG_FUNCTION_INFO_V1(cache_redis_nodes);

/*
 * One row per node of the map: its address, role, its master (a
 * replica), the slots it serves, whether it is online, how this backend
 * uses it (home: its database's generations; side: entries; down: a
 * recent failure, bypassed until cache_ext.retry_interval ends), and for
 * a master the PING time or why it failed.  No rows without a cluster URL
 * (cache_health() covers a single server and Sentinel); a WARNING and no
 * rows when no slot map could be read.
 */
Datum
cache_redis_nodes(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	StoreNodeInfo *nodes;
	int n;

	InitMaterializedSRF(fcinfo, 0);
	nodes = palloc(sizeof(StoreNodeInfo) * NODES_MAX);
	n = StoreClusterNodes(nodes, NODES_MAX);
	if (n < 0)
	{
		ereport(WARNING,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("cache_ext could not read the Redis Cluster slot map: %s",
						StoreLastError()),
				 errhint("Check cache_ext.redis_url and the seed nodes.")));
		PG_RETURN_VOID();
	}
	for (int i = 0; i < n; i++)
	{
		StoreNodeInfo *r = &nodes[i];
		Datum values[8];
		bool nulls[8] = {0};

		values[0] = CStringGetTextDatum(r->addr);
		values[1] = CStringGetTextDatum(r->master ? "master" : "replica");
		values[2] = CStringGetTextDatum(r->master_addr);
		nulls[2] = r->master;
		values[3] = Int32GetDatum(r->slots);
		values[4] = BoolGetDatum(r->online && (!r->master || r->pinged));
		values[5] = CStringGetTextDatum(r->used ? r->used : "");
		nulls[5] = r->used == NULL;
		values[6] = Float8GetDatum(r->ping_ms);
		nulls[6] = !r->pinged;
		values[7] = CStringGetTextDatum(r->error);
		nulls[7] = r->error[0] == '\0';
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	PG_RETURN_VOID();
}

/*-------------------------------------------------------------------------
 *
 * policies.h
 *	  Per-table TTL policies (docs/rules.md, "Policies per table"):
 *	  cache_policy() and the cap they put on the TTL of every call whose
 *	  plan reads a table with one (policies.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CACHE_EXT_POLICIES_H
#define CACHE_EXT_POLICIES_H

#include "postgres.h"

#include "call.h"

#define POLICIES_TABLE "cache_ext_policies"

extern int64 PolicyTtlMs(List *relids, List *more_relids, Oid *by);
extern const CallOptions *PolicyCapOptions(const PreparedQuery *pq,
										   const CallOptions *opts,
										   CallOptions *buf, Oid *by);

#endif /* CACHE_EXT_POLICIES_H */

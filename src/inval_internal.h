/*-------------------------------------------------------------------------
 *
 * inval_internal.h
 *	  What the files of the invalidation side share: tracking metadata
 *	  (tracking.c), the per-transaction set and commit callbacks
 *	  (xactset.c), the DDL hook (ddl.c), trigger installation and the
 *	  trigger function (triggers.c), the admin SQL functions (admin.c).
 *	  Nothing outside them includes this header; the rest of the extension
 *	  uses invalidate.h.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CACHE_EXT_INVAL_INTERNAL_H
#define CACHE_EXT_INVAL_INTERNAL_H

#include "postgres.h"

#include "commands/trigger.h"
#include "nodes/parsenodes.h"
#include "utils/array.h"

#include "invalidate.h"

/* most tracked ancestors a relation can have */
#define MAX_ROOTS 8

/* A relation's tracking, as tracking.c caches it per backend. */
typedef struct RelInfo
{
	Oid relid;
	RelCoverage coverage;
	Oid scope;		 /* whose generation stands for it in entries */
	const char *why; /* when untracked */
	int nbump;
	Oid bump[MAX_ROOTS + 1]; /* itself and its tracked ancestors */
	int nkeys;				 /* key columns of the scope relation */
	NameData keys[INVAL_MAX_KEY_COLUMNS];
} RelInfo;

/* work run by run_guarded(): an error in it becomes a WARNING */
typedef void (*GuardedFn)(void *arg);


/* tracking.c */
extern void rel_infos_invalidate(Datum arg, Oid relid);
extern Oid extension_namespace(Oid *extoid);
extern Oid get_trigger_func(void);
extern bool fires_unconditionally(const Trigger *tg);
extern List *direct_parents(Oid relid);
extern RelInfo *get_rel_info(Oid relid);

/* xactset.c */
extern void touch_relation_once(Oid relid);
extern void touch_row_keys(TriggerData *td, Oid relid);
extern void XactSetPrepareGid(const char *gid);
extern bool touch_key(const char *key);
extern void touch_relation(Oid relid, bool structural);
extern List *relation_tree_keys(Oid relid, List *keys);
extern void touch_relation_tree(Oid relid);
extern void finish_prepared(const char *gid);
extern void xact_callback(XactEvent event, void *arg);
extern void release_callback(ResourceReleasePhase phase, bool isCommit, bool isTopLevel, void *arg);
extern void subxact_callback(SubXactEvent event, SubTransactionId mySubid, SubTransactionId parentSubid, void *arg);

/* ddl.c */
extern void DdlHookInstall(void);
extern bool run_guarded(GuardedFn fn, void *arg, const char *what);
extern void cache_ext_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree, ProcessUtilityContext context, ParamListInfo params, QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc);

/* triggers.c */
extern char *qualified_name(Oid relid);
extern bool our_trigger(Oid relid, const char *name, bool *clone);
extern char trigger_state(Oid relid, const char *name, bool *ours);
extern void spi_exec(const char *sql);
extern void drop_trigger(Oid relid, const char *name);
extern void install_triggers(Oid relid, bool partition_of_tracked, List *keys);
extern List *inherited_keys(Oid relid);
extern void check_trackable(Oid relid, bool for_untrack);
extern List *check_key_columns(Oid relid, ArrayType *arr);

#endif /* CACHE_EXT_INVAL_INTERNAL_H */

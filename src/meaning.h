/*-------------------------------------------------------------------------
 *
 * meaning.h
 *	  What a statement's plan was made from (meaning.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CACHE_EXT_MEANING_H
#define CACHE_EXT_MEANING_H

#include "postgres.h"

#include "nodes/plannodes.h"

#include "cache_ext.h"

extern void MeaningOfQuery(Node *query, uint8 *hash);
extern void MeaningUnderSettings(const uint8 *meaning, const uint8 *settings,
								 uint8 *out);
extern void PlanMeaningRecord(PlannedStmt *stmt, const uint8 *meaning);
extern bool PlanMeaningFind(PlannedStmt *stmt, uint8 *meaning);

#endif /* CACHE_EXT_MEANING_H */

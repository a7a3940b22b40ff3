/*-------------------------------------------------------------------------
 *
 * catalog_inval.h
 *	  One PostgreSQL callback per catalog cache for all of cache_ext
 *	  (catalog_inval.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CACHE_EXT_CATALOG_INVAL_H
#define CACHE_EXT_CATALOG_INVAL_H

#include "postgres.h"

#include "utils/inval.h"

extern void CatalogInvalOnRelcache(RelcacheCallbackFunction fn);
extern void CatalogInvalOnSyscache(int cacheid, SyscacheCallbackFunction fn);

#endif /* CACHE_EXT_CATALOG_INVAL_H */

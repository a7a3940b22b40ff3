/* cache_ext 0.2 -> 0.3: fail closed (issue 10) */

\echo Use "ALTER EXTENSION cache_ext UPDATE TO '0.3'" to load this file. \quit

-- ===========================================================================
-- Section: catalog-free prepared transactions, grants (invalidation side)
-- ===========================================================================

-- cache_tracked is documented as readable by anyone.
GRANT SELECT ON cache_tracked TO PUBLIC;

-- cache_ext_prepared is written and read by C code with direct heap access
-- (no SQL, no operator, nothing resolved through search_path).  It has no
-- index: a unique index made PREPARE TRANSACTION with a GID already in use
-- wait forever on the other prepared transaction's entry, where PostgreSQL
-- itself raises 42710 once the row is inserted.  Only the extension's code
-- touches it: no role has any privilege on it.
ALTER TABLE cache_ext_prepared DROP CONSTRAINT cache_ext_prepared_pkey;
REVOKE ALL ON cache_ext_prepared FROM PUBLIC;


-- ===========================================================================
-- Section: cacheability allow-list (analysis side)
-- ===========================================================================


-- ===========================================================================
-- Section: outbox, standby fence, restore detection (recovery side)
-- ===========================================================================


-- ===========================================================================
-- Section: codecs, stats (entry and stats side)
-- ===========================================================================


-- ===========================================================================
-- Section: call pipeline (verification sampler, settings)
-- ===========================================================================

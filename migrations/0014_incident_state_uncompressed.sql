-- The dispatcher rewrites an open incident's state with every batch that
-- joins a signal to it. Under an alarm flood an incident with many zones
-- outgrows 2 kB, the row size at which PostgreSQL starts compressing long
-- values (pglz), and compressing those rewrites took a tenth of the
-- database's CPU. An incident's row is now stored as it is up to a page:
-- it compresses only about twofold. site_state keeps compressing: a site
-- with many zones is six times smaller compressed, and is written at most
-- once a second.
ALTER TABLE incidents SET (toast_tuple_target = 8160);

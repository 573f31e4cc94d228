-- SPDX-License-Identifier: MIT
-- bw_valid_timezone(name): true when name is a row of pg_timezone_names,
-- without reading that view but in rare cases. Org create and budget set
-- (lib/platform/org.c, lib/chat/budget.c) checked
-- `SELECT 1 FROM pg_timezone_names WHERE name = $1`, which loads every
-- zone file of the time zone database: medians of 46-86 ms a statement in
-- a new session on a loaded dev machine, against 12-19 ms for this
-- function there, most of it PL/pgSQL's first use in the backend (an
-- empty DO block: 7-13 ms), and 0.5-1.8 ms once PL/pgSQL is loaded.
--
-- The name is given to the TimeZone setting, local to this function (its
-- SET clause restores the caller's value at exit), and must come back
-- unchanged:
-- - a name PostgreSQL does not know is refused (invalid_parameter_value);
-- - a zone file is found whatever the case of the name and reads back
--   with the file's own spelling, so 'asia/bangkok' is refused as the
--   view's case-sensitive match refused it;
-- - a number ('+3', '-3'), which the setting takes as hours east of UTC,
--   reads back as '<+03>-03': refused;
-- - an abbreviation that is not a zone file ('PST') is not a TimeZone
--   value at all (AT TIME ZONE would have taken it): refused;
-- - a POSIX TZ string that is not a zone file ('UTC+3', 'FOO5') reads back
--   upper-cased, which is itself when it has no lower-case letter. Such a
--   string always has a digit (its UTC offset), so a name with a digit and
--   no lower-case letter is checked against pg_timezone_names itself (of
--   the zone files only GMT0, GMT+0, GMT-0, EST5EDT, CST6CDT, MST7MDT and
--   PST8PDT are so spelled); every other name that reads back unchanged was
--   loaded from a zone file, which is what the view lists.
-- tests/integration/tiers.sh compares it with the view on every file of
-- the time zone directory, in three spellings, and on strings like the
-- ones above.
CREATE FUNCTION bw_valid_timezone(p_name text) RETURNS boolean
    LANGUAGE plpgsql
    SET TimeZone = 'UTC'
    SET search_path = pg_catalog
    AS $$
BEGIN
    IF p_name IS NULL THEN
        RETURN false;
    END IF;
    BEGIN
        PERFORM set_config('TimeZone', p_name, true);
    EXCEPTION WHEN invalid_parameter_value THEN
        RETURN false;
    END;
    IF current_setting('TimeZone') <> p_name THEN
        RETURN false;
    END IF;
    IF p_name ~ '[0-9]' AND p_name !~ '[a-z]' THEN
        RETURN EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = p_name);
    END IF;
    RETURN true;
END
$$;

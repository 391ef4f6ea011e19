-- Placeholder on branch `deletes`: migration 0005 belongs to the identity branch (email
-- verification), and build.rs requires contiguous numbers. On merge, take the identity branch's file.
SELECT 1;

"""A Crazytel look-alike served by the portal itself under /sandbox/api/v1/ (demo and rehearsal)."""

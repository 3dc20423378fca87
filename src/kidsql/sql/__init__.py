"""SQL tooling that never needs a model: sandboxed execution, result comparison, exact-set match, hardness.

Sub-modules are imported by name (`kidsql.sql.sandbox`, `kidsql.sql.compare`, ...) rather than re-exported here,
so that importing one never drags in the others (sqlglot-based parsing is slow to import and not needed to
execute SQL).
"""

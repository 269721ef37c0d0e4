//! placeholder: PostgresStore lands with the PostgreSQL issue.

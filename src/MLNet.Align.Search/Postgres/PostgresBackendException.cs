namespace MLNet.Align.Search.Postgres;

/// <summary>The PostgreSQL backend cannot do what was asked (server unreachable, pgvector missing or too old, a table
/// of another shape). The message names the server (never the password) and the table.</summary>
public sealed class PostgresBackendException(string message, Exception? inner = null) : InvalidOperationException(message, inner);

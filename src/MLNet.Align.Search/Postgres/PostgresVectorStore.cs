using System.Text.RegularExpressions;
using Npgsql;
using Pgvector;

namespace MLNet.Align.Search.Postgres;

/// <summary>
/// A PostgreSQL + pgvector backend for an <see cref="ImageIndex"/> (docs/search.md): the catalog's aligned vectors in
/// one table (<c>id, path, modified, size, embedding halfvec(D)</c>) with an HNSW index over cosine distance, kept in step
/// with the catalog by <see cref="Sync"/> (only what changed since the recorded generation), and searched with the same
/// folder and date filters as the embedded backend; filtered queries use pgvector's iterative index scan (0.8+) or an
/// exact scan, so k hits come back whenever k items match. The SQLite catalog stays the source of truth.
/// Instances are thread-safe (each call takes its own connection from the pool).
/// </summary>
public sealed partial class PostgresVectorStore : IDisposable
{
    /// <summary>The table used when none is named.</summary>
    public const string DefaultTable = "mlnet_align_images";
    private const int BatchRows = 500;
    private readonly NpgsqlDataSource _db;
    private readonly string _t, _state, _where, _hnswWith;

    private PostgresVectorStore(NpgsqlDataSource db, string table, int dimension, string version, string where, int m, int efConstruction)
    {
        _db = db; Table = table; Dimension = dimension; VectorVersion = version; _where = where; _hnswWith = $"WITH (m = {m}, ef_construction = {efConstruction})";
        _t = Quote(table); _state = Quote(table + "_sync");
        SupportsIterativeScan = AtLeast(version, 0, 8);
    }

    /// <summary>The table holding the vectors (its sync state is in <c>&lt;table&gt;_sync</c>).</summary>
    public string Table { get; }
    /// <summary>Width of the stored vectors (the aligned model's embedding dimension).</summary>
    public int Dimension { get; }
    /// <summary>The server's pgvector version (<c>pg_extension.extversion</c>).</summary>
    public string VectorVersion { get; }
    /// <summary>True when the server's pgvector (0.8+) has iterative index scans, so filtered queries can use the HNSW
    /// index; otherwise filtered queries scan exactly.</summary>
    public bool SupportsIterativeScan { get; internal set; } // settable for the tests of the fallback
    /// <summary>Tests: on a table of a few rows the planner rightly scans it; this makes it take the index as on a large one.</summary>
    internal bool AvoidSeqScan { get; set; }

    /// <summary>Connects, creates the pgvector extension when absent (needs the privilege once per database), the table,
    /// its HNSW index (<c>halfvec_cosine_ops</c>), btree indexes on path and modified, and the sync state table.</summary>
    /// <param name="connectionString">An Npgsql connection string (e.g. <c>Host=db;Database=photos;Username=app;Password=...</c>).</param>
    /// <param name="dimension">The aligned model's embedding dimension (at most 4,000, halfvec's HNSW limit).</param>
    /// <param name="table">The table name (letters, digits and underscores; default <see cref="DefaultTable"/>).</param>
    /// <param name="hnswM">HNSW connectivity (<c>m</c>) when the index is created (or rebuilt by a full resync).</param>
    /// <param name="hnswEfConstruction">HNSW candidate list while building (<c>ef_construction</c>), likewise.</param>
    /// <exception cref="ArgumentException">A malformed connection string or table name, or a dimension out of range.</exception>
    /// <exception cref="PostgresBackendException">The server cannot be reached or logged into, pgvector is missing or
    /// older than 0.7 (no halfvec), or the table exists with another vector width.</exception>
    public static PostgresVectorStore Open(string connectionString, int dimension, string table = DefaultTable, int hnswM = 16, int hnswEfConstruction = 64)
    {
        ArgumentException.ThrowIfNullOrEmpty(connectionString);
        if (!TableName().IsMatch(table ?? "")) throw new ArgumentException($"The table name '{table}' must be letters, digits and underscores (at most 50, not starting with a digit).", nameof(table));
        if (dimension is < 1 or > 4000) throw new ArgumentOutOfRangeException(nameof(dimension), dimension, "halfvec HNSW indexes take 1 to 4,000 dimensions.");
        if (hnswM is < 2 or > 100) throw new ArgumentOutOfRangeException(nameof(hnswM), hnswM, "pgvector's HNSW m must be in [2, 100].");
        if (hnswEfConstruction < 2 * hnswM || hnswEfConstruction > 1000) throw new ArgumentOutOfRangeException(nameof(hnswEfConstruction), hnswEfConstruction, "ef_construction must be in [2m, 1000].");
        NpgsqlDataSourceBuilder builder;
        try { builder = new NpgsqlDataSourceBuilder(connectionString); }
        catch (Exception e) when (e is ArgumentException or FormatException or KeyNotFoundException)
        { throw new ArgumentException($"The PostgreSQL connection string is not valid: {Scrub(e.Message, connectionString)}", nameof(connectionString), e); }
        string where = Describe(builder.ConnectionStringBuilder);
        builder.UseVector();
        var db = builder.Build();
        try
        {
            using var conn = Connect(db, where);
            string version;
            try { Exec(conn, "CREATE EXTENSION IF NOT EXISTS vector"); version = (string?)Scalar(conn, "SELECT extversion FROM pg_extension WHERE extname = 'vector'") ?? ""; }
            catch (PostgresException e) { throw new PostgresBackendException($"pgvector is not installed on {where} and cannot be created ({e.MessageText}); run CREATE EXTENSION vector; as a user allowed to.", e); }
            if (!AtLeast(version, 0, 7)) throw new PostgresBackendException($"{where} has pgvector {version}; halfvec needs 0.7 or later (ALTER EXTENSION vector UPDATE).");
            conn.ReloadTypes(); // the data source loaded its types before the extension may have existed
            var store = new PostgresVectorStore(db, table!, dimension, version, where, hnswM, hnswEfConstruction);
            store.CreateSchema(conn);
            return store;
        }
        catch { db.Dispose(); throw; }
    }

    private void CreateSchema(NpgsqlConnection conn)
    {
        try
        {
            using var tx = conn.BeginTransaction();
            Exec(conn, $"""
                CREATE TABLE IF NOT EXISTS {_t} (id bigint PRIMARY KEY, path text NOT NULL, modified timestamptz NOT NULL,
                  size bigint NOT NULL, embedding halfvec({Dimension}) NOT NULL);
                CREATE INDEX IF NOT EXISTS {Quote(Table + "_path")} ON {_t} (path text_pattern_ops);
                CREATE INDEX IF NOT EXISTS {Quote(Table + "_modified")} ON {_t} (modified);
                CREATE TABLE IF NOT EXISTS {_state} (singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
                  generation bigint NOT NULL, fingerprint text NOT NULL);
                """, tx);
            CreateHnsw(conn, tx);
            var width = Scalar(conn, $"SELECT atttypmod FROM pg_attribute WHERE attrelid = '{_t}'::regclass AND attname = 'embedding'", tx);
            if (width is int w && w != Dimension)
                throw new PostgresBackendException($"The table {Table} on {_where} stores {w}-dimensional vectors, not {Dimension}: use another table for this model.");
            tx.Commit();
        }
        catch (PostgresException e) { throw new PostgresBackendException($"Cannot create the table {Table} on {_where}: {e.MessageText}", e); }
    }

    private void CreateHnsw(NpgsqlConnection conn, NpgsqlTransaction tx)
        => Exec(conn, $"CREATE INDEX IF NOT EXISTS {Quote(Table + "_hnsw")} ON {_t} USING hnsw (embedding halfvec_cosine_ops) {_hnswWith}", tx);

    /// <summary>The catalog generation and model fingerprint the table was last synchronised to (null before the first <see cref="Sync"/>).</summary>
    public (long Generation, string Fingerprint)? SyncState() { using var conn = Connect(_db, _where); return ReadState(conn, null, lockRow: false); }

    /// <summary>Rows in the table.</summary>
    public long Count() { using var conn = Connect(_db, _where); return (long)Scalar(conn, $"SELECT count(*) FROM {_t}")!; }

    /// <summary>
    /// Brings the table up to <paramref name="index"/>'s catalog in one transaction: upserts the items written after the
    /// recorded generation (new, changed, moved and touched files), deletes the ids removed since, and records the
    /// catalog's generation and model fingerprint. With no recorded state, another fingerprint (a re-projected or
    /// another model) or a catalog older than the recorded generation (a rebuilt index), the table is truncated and
    /// reloaded, its HNSW index rebuilt after the load. Concurrent syncs of one table wait for each other.
    /// </summary>
    /// <returns>Rows written: upserted plus deleted.</returns>
    /// <exception cref="ArgumentException">The index's dimension is not the table's.</exception>
    /// <exception cref="PostgresBackendException">The server fails (the transaction is rolled back; nothing changes).</exception>
    public long Sync(ImageIndex index)
    {
        ArgumentNullException.ThrowIfNull(index);
        if (index.Dimension != Dimension) throw new ArgumentException($"The index gives {index.Dimension}-dimensional vectors; the table {Table} stores {Dimension}.", nameof(index));
        long generation = index.Generation; // read first: items written meanwhile are upserted again next time (idempotent)
        string fingerprint = index.ModelFingerprint;
        using var conn = Connect(_db, _where);
        try
        {
            using var tx = conn.BeginTransaction();
            var state = ReadState(conn, tx, lockRow: true);
            bool full = state is not { } s || s.Fingerprint != fingerprint || s.Generation > generation;
            long written = 0;
            if (full)
            {
                Exec(conn, $"DROP INDEX IF EXISTS {Quote(Table + "_hnsw")}; TRUNCATE {_t}", tx); // one build after the load, not per row
                written += Upsert(conn, tx, index.ItemsSince(-1));
                CreateHnsw(conn, tx);
            }
            else
            {
                var removed = index.RemovedSince(state!.Value.Generation);
                foreach (var ids in removed.Chunk(10_000)) written += Exec(conn, $"DELETE FROM {_t} WHERE id = ANY($1)", tx, ids);
                written += Upsert(conn, tx, index.ItemsSince(state.Value.Generation));
            }
            Exec(conn, $"""
                INSERT INTO {_state} (singleton, generation, fingerprint) VALUES (true, $1, $2)
                ON CONFLICT (singleton) DO UPDATE SET generation = excluded.generation, fingerprint = excluded.fingerprint
                """, tx, generation, fingerprint);
            if (full || written >= 10_000) Exec(conn, $"ANALYZE {_t}", tx); // the planner's row estimates, for the filters
            tx.Commit();
            return written;
        }
        catch (NpgsqlException e) { throw new PostgresBackendException($"Syncing the table {Table} on {_where} failed (nothing was changed): {e.Message}", e); }
    }

    private (long Generation, string Fingerprint)? ReadState(NpgsqlConnection conn, NpgsqlTransaction? tx, bool lockRow)
    {
        using var cmd = new NpgsqlCommand($"SELECT generation, fingerprint FROM {_state}{(lockRow ? " FOR UPDATE" : "")}", conn, tx);
        using var r = cmd.ExecuteReader();
        return r.Read() ? (r.GetInt64(0), r.GetString(1)) : null;
    }

    private long Upsert(NpgsqlConnection conn, NpgsqlTransaction tx, IEnumerable<IndexedItem> items)
    {
        long n = 0;
        foreach (var batch in items.Chunk(BatchRows))
        {
            var args = new List<object>(batch.Length * 5);
            foreach (var item in batch)
            {
                if (item.Aligned.Length != Dimension) throw new InvalidDataException($"Catalog item {item.Id} ({item.Path}) has {item.Aligned.Length} values, expected {Dimension}.");
                args.AddRange([item.Id, item.Path, item.Modified.ToUniversalTime(), item.Size, Half(item.Aligned)]);
            }
            var values = string.Join(",", Enumerable.Range(0, batch.Length).Select(r => $"(${5 * r + 1},${5 * r + 2},${5 * r + 3},${5 * r + 4},${5 * r + 5})"));
            n += Exec(conn, $"""
                INSERT INTO {_t} (id, path, modified, size, embedding) VALUES {values}
                ON CONFLICT (id) DO UPDATE SET path = excluded.path, modified = excluded.modified, size = excluded.size, embedding = excluded.embedding
                """, tx, args.ToArray());
        }
        return n;
    }

    /// <summary>The best hits for a unit query vector, best first, with the embedded backend's filters and cut-off;
    /// scores are cosine similarities on the stored fp16 vectors.</summary>
    /// <param name="unitQuery">The query [<see cref="Dimension"/>], e.g. from <see cref="ImageIndex.Embed"/>.</param>
    /// <param name="options">k, folder and date filters, the relative cut-off; <see cref="SearchOptions.Exact"/> scans every row.</param>
    /// <param name="efSearch">HNSW candidate list (<c>hnsw.ef_search</c>, 1 to 1,000): higher finds more of the true neighbours, slower.</param>
    /// <exception cref="ArgumentException">A query of another width, or an empty date range.</exception>
    /// <exception cref="ArgumentOutOfRangeException">k &lt; 1, a negative cut-off, or efSearch out of range.</exception>
    /// <exception cref="PostgresBackendException">The server fails.</exception>
    public IReadOnlyList<SearchHit> Search(float[] unitQuery, SearchOptions? options = null, int efSearch = 100)
    {
        options ??= new SearchOptions();
        var (sql, args, filtered) = Prepare(unitQuery, options, efSearch);
        try
        {
            using var conn = Connect(_db, _where);
            bool exact = options.Exact || (filtered && !SupportsIterativeScan);
            var hits = Run(conn, sql, args, efSearch, exact, ReadHits);
            // The iterative scan gives up after hnsw.max_scan_tuples: a very selective filter may still be short of k.
            if (hits.Count < options.K && filtered && !exact) hits = Run(conn, sql, args, efSearch, true, ReadHits);
            float cut = options.WithinOfBest is float w && hits.Count > 0 ? hits[0].Score - w : float.NegativeInfinity;
            return hits.Where(h => h.Score >= cut).ToList();
        }
        catch (NpgsqlException e) { throw new PostgresBackendException($"Searching the table {Table} on {_where} failed: {e.Message}", e); }
    }

    /// <summary>The server's plan for <see cref="Search"/>'s first query (for tests and tuning).</summary>
    internal string Explain(float[] unitQuery, SearchOptions options, int efSearch = 100)
    {
        var (sql, args, filtered) = Prepare(unitQuery, options, efSearch);
        using var conn = Connect(_db, _where);
        return Run(conn, "EXPLAIN " + sql, args, efSearch, options.Exact || (filtered && !SupportsIterativeScan),
            r => string.Join("\n", Enumerable.Range(0, int.MaxValue).TakeWhile(_ => r.Read()).Select(_ => r.GetString(0))));
    }

    private (string Sql, List<object> Args, bool Filtered) Prepare(float[] unitQuery, SearchOptions options, int efSearch)
    {
        ArgumentNullException.ThrowIfNull(unitQuery);
        options.Validate();
        if (unitQuery.Length != Dimension) throw new ArgumentException($"The query vector has {unitQuery.Length} values, expected {Dimension}.", nameof(unitQuery));
        if (efSearch is < 1 or > 1000) throw new ArgumentOutOfRangeException(nameof(efSearch), efSearch, "hnsw.ef_search must be in [1, 1000].");
        var filters = new List<string>();
        var args = new List<object> { Half(unitQuery), options.K };
        if (options.Folder is { } folder) // whole path segments, LIKE's wildcards taken literally
        {
            args.Add(Regex.Replace(Path.TrimEndingDirectorySeparator(Path.GetFullPath(folder)) + Path.DirectorySeparatorChar, @"[\\%_]", @"\$0") + "%");
            filters.Add($"path LIKE ${args.Count} ESCAPE '\\'");
        }
        if (options.After is { } after) { args.Add(after.ToUniversalTime()); filters.Add($"modified >= ${args.Count}"); }
        if (options.Before is { } before) { args.Add(before.ToUniversalTime()); filters.Add($"modified < ${args.Count}"); }
        string where = filters.Count == 0 ? "" : "WHERE " + string.Join(" AND ", filters);
        // relaxed_order may return neighbours slightly out of order: re-sort the k found (pgvector's advice).
        return ($"""
            WITH found AS MATERIALIZED (SELECT id, path, modified, size, embedding <=> $1 AS distance FROM {_t} {where}
              ORDER BY embedding <=> $1 LIMIT $2)
            SELECT id, path, modified, size, 1 - distance FROM found ORDER BY distance, id
            """, args, filters.Count > 0);
    }

    private T Run<T>(NpgsqlConnection conn, string sql, List<object> args, int efSearch, bool exact, Func<NpgsqlDataReader, T> read)
    {
        using var tx = conn.BeginTransaction();
        Exec(conn, exact ? "SET LOCAL enable_indexscan = off"
            : $"SET LOCAL hnsw.ef_search = {efSearch}" + (SupportsIterativeScan ? "; SET LOCAL hnsw.iterative_scan = relaxed_order" : "")
              + (AvoidSeqScan ? "; SET LOCAL enable_seqscan = off" : ""), tx);
        T result;
        using (var cmd = Command(conn, sql, tx, args.ToArray())) using (var r = cmd.ExecuteReader()) result = read(r);
        tx.Commit();
        return result;
    }

    private static List<SearchHit> ReadHits(NpgsqlDataReader r)
    {
        var hits = new List<SearchHit>();
        while (r.Read())
            hits.Add(new SearchHit(r.GetInt64(0), r.GetString(1), (float)r.GetDouble(4), new DateTimeOffset(r.GetFieldValue<DateTime>(2), TimeSpan.Zero), r.GetInt64(3)));
        return hits;
    }

    private static HalfVector Half(float[] v) => new(Array.ConvertAll(v, x => (Half)x));

    private static NpgsqlConnection Connect(NpgsqlDataSource db, string where)
    {
        try { return db.OpenConnection(); }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or System.Net.Sockets.SocketException)
        { throw new PostgresBackendException($"Cannot connect to PostgreSQL at {where}: {e.Message}", e); }
    }

    private static NpgsqlCommand Command(NpgsqlConnection conn, string sql, NpgsqlTransaction? tx, object[] args)
    {
        var cmd = new NpgsqlCommand(sql, conn, tx);
        foreach (var a in args) cmd.Parameters.Add(new NpgsqlParameter { Value = a });
        return cmd;
    }

    private static int Exec(NpgsqlConnection conn, string sql, NpgsqlTransaction? tx = null, params object[] args)
    { using var cmd = Command(conn, sql, tx, args); return cmd.ExecuteNonQuery(); }

    private static object? Scalar(NpgsqlConnection conn, string sql, NpgsqlTransaction? tx = null)
    { using var cmd = Command(conn, sql, tx, []); return cmd.ExecuteScalar() is var v and not DBNull ? v : null; }

    private static string Quote(string identifier) => "\"" + identifier + "\"";

    private static string Describe(NpgsqlConnectionStringBuilder b)
        => $"{b.Host ?? "localhost"}:{b.Port}/{b.Database ?? b.Username ?? "?"} as {b.Username ?? "(default user)"}";

    /// <summary>A message without the password, whatever the parser quoted.</summary>
    private static string Scrub(string message, string connectionString) => Password().Matches(connectionString)
        .Select(m => m.Groups[1].Value.Trim()).Where(p => p.Length > 0).Aggregate(message, (msg, p) => msg.Replace(p, "***", StringComparison.Ordinal));

    private static bool AtLeast(string version, int major, int minor) => Version.TryParse(version, out var v) && v >= new Version(major, minor);

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]{0,49}$")] private static partial Regex TableName();
    [GeneratedRegex(@"(?i)(?:password|pwd)\s*=\s*([^;]*)")] private static partial Regex Password();

    /// <summary>Closes the connection pool.</summary>
    public void Dispose() => _db.Dispose();
}

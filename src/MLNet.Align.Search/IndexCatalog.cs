using System.Runtime.InteropServices;
using Microsoft.Data.Sqlite;

namespace MLNet.Align.Search;

/// <summary>One catalog row without its vectors.</summary>
internal sealed record CatalogEntry(long Id, string Path, string Sha256, long Size, long MtimeMs);

/// <summary>
/// The index's source of truth, a SQLite database (WAL): one row per indexed file, keyed by path, with the content's
/// SHA-256, size, last-write time, the encoder embedding and the aligned embedding. Every change is a transaction, so a
/// killed run leaves each file either fully indexed or not at all; ids are never reused (AUTOINCREMENT), so a deleted
/// id can be tombstoned in the approximate index without ever meaning another file.
/// </summary>
internal sealed class IndexCatalog : IDisposable
{
    public const string FileName = "catalog.db";
    public const int SchemaVersion = 1;
    private readonly SqliteConnection _db;

    private IndexCatalog(SqliteConnection db) { _db = db; }

    public static IndexCatalog Open(string directory, bool readOnly = false)
    {
        string path = Path.Combine(directory, FileName);
        var cs = new SqliteConnectionStringBuilder
        {
            DataSource = path, Mode = readOnly ? SqliteOpenMode.ReadOnly : SqliteOpenMode.ReadWriteCreate, Pooling = false,
        };
        var db = new SqliteConnection(cs.ToString());
        try
        {
            db.Open();
            var c = new IndexCatalog(db);
            if (!readOnly)
            {
                c.Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000;");
                c.Exec("""
                    CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
                    CREATE TABLE IF NOT EXISTS items(
                      id INTEGER PRIMARY KEY AUTOINCREMENT, path TEXT NOT NULL UNIQUE, sha256 TEXT NOT NULL,
                      size INTEGER NOT NULL, mtime_ms INTEGER NOT NULL, gen INTEGER NOT NULL,
                      encoder BLOB NOT NULL, aligned BLOB NOT NULL);
                    CREATE INDEX IF NOT EXISTS items_sha ON items(sha256);
                    CREATE TABLE IF NOT EXISTS removed(id INTEGER PRIMARY KEY, gen INTEGER NOT NULL);
                    """);
            }
            else c.Exec("PRAGMA busy_timeout=10000;");
            return c;
        }
        catch (SqliteException e)
        {
            db.Dispose();
            throw new InvalidDataException($"The index catalog '{path}' cannot be opened: {e.Message}", e);
        }
        catch { db.Dispose(); throw; }
    }

    public static bool Exists(string directory) => File.Exists(Path.Combine(directory, FileName));

    public void Exec(string sql, SqliteTransaction? tx = null)
    {
        using var cmd = _db.CreateCommand();
        cmd.CommandText = sql;
        cmd.Transaction = tx;
        cmd.ExecuteNonQuery();
    }

    public SqliteTransaction Begin() => _db.BeginTransaction();

    public string? GetMeta(string key)
    {
        using var cmd = _db.CreateCommand();
        cmd.CommandText = "SELECT value FROM meta WHERE key = $k";
        cmd.Parameters.AddWithValue("$k", key);
        return cmd.ExecuteScalar() as string;
    }

    public void SetMeta(string key, string value, SqliteTransaction? tx = null)
    {
        using var cmd = _db.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = "INSERT INTO meta(key, value) VALUES($k, $v) ON CONFLICT(key) DO UPDATE SET value = excluded.value";
        cmd.Parameters.AddWithValue("$k", key);
        cmd.Parameters.AddWithValue("$v", value);
        cmd.ExecuteNonQuery();
    }

    public long Generation => long.TryParse(GetMeta("generation"), out var g) ? g : 0;

    public long Count()
    {
        using var cmd = _db.CreateCommand();
        cmd.CommandText = "SELECT COUNT(*) FROM items";
        return (long)cmd.ExecuteScalar()!;
    }

    public List<CatalogEntry> Entries()
    {
        var list = new List<CatalogEntry>();
        using var cmd = _db.CreateCommand();
        cmd.CommandText = "SELECT id, path, sha256, size, mtime_ms FROM items ORDER BY id";
        using var r = cmd.ExecuteReader();
        while (r.Read()) list.Add(new CatalogEntry(r.GetInt64(0), r.GetString(1), r.GetString(2), r.GetInt64(3), r.GetInt64(4)));
        return list;
    }

    /// <summary>Rows with their aligned vectors, ordered by id (optionally only those written after a generation).</summary>
    public IEnumerable<(CatalogEntry Entry, float[] Aligned)> Aligned(long afterGeneration = -1)
    {
        using var cmd = _db.CreateCommand();
        cmd.CommandText = "SELECT id, path, sha256, size, mtime_ms, aligned FROM items WHERE gen > $g ORDER BY id";
        cmd.Parameters.AddWithValue("$g", afterGeneration);
        using var r = cmd.ExecuteReader();
        while (r.Read())
            yield return (new CatalogEntry(r.GetInt64(0), r.GetString(1), r.GetString(2), r.GetInt64(3), r.GetInt64(4)), ToFloats((byte[])r[5]));
    }

    /// <summary>Ids with their encoder embeddings, ordered by id.</summary>
    public IEnumerable<(long Id, float[] Encoder)> EncoderVectors()
    {
        using var cmd = _db.CreateCommand();
        cmd.CommandText = "SELECT id, encoder FROM items ORDER BY id";
        using var r = cmd.ExecuteReader();
        while (r.Read()) yield return (r.GetInt64(0), ToFloats((byte[])r[1]));
    }

    public (float[] Encoder, float[] Aligned)? VectorsOfSha(string sha256)
    {
        using var cmd = _db.CreateCommand();
        cmd.CommandText = "SELECT encoder, aligned FROM items WHERE sha256 = $s LIMIT 1";
        cmd.Parameters.AddWithValue("$s", sha256);
        using var r = cmd.ExecuteReader();
        return r.Read() ? (ToFloats((byte[])r[0]), ToFloats((byte[])r[1])) : null;
    }

    public List<long> RemovedAfter(long generation)
    {
        var ids = new List<long>();
        using var cmd = _db.CreateCommand();
        cmd.CommandText = "SELECT id FROM removed WHERE gen > $g ORDER BY id";
        cmd.Parameters.AddWithValue("$g", generation);
        using var r = cmd.ExecuteReader();
        while (r.Read()) ids.Add(r.GetInt64(0));
        return ids;
    }

    public long Insert(SqliteTransaction tx, string path, string sha, long size, long mtimeMs, long gen, float[] encoder, float[] aligned)
    {
        using var cmd = _db.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = """
            INSERT INTO items(path, sha256, size, mtime_ms, gen, encoder, aligned) VALUES($p, $s, $z, $m, $g, $e, $a);
            SELECT last_insert_rowid();
            """;
        cmd.Parameters.AddWithValue("$p", path);
        cmd.Parameters.AddWithValue("$s", sha);
        cmd.Parameters.AddWithValue("$z", size);
        cmd.Parameters.AddWithValue("$m", mtimeMs);
        cmd.Parameters.AddWithValue("$g", gen);
        cmd.Parameters.AddWithValue("$e", ToBytes(encoder));
        cmd.Parameters.AddWithValue("$a", ToBytes(aligned));
        return (long)cmd.ExecuteScalar()!;
    }

    public void Remove(SqliteTransaction tx, long id, long gen)
    {
        using var cmd = _db.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = "DELETE FROM items WHERE id = $i; INSERT OR REPLACE INTO removed(id, gen) VALUES($i, $g);";
        cmd.Parameters.AddWithValue("$i", id);
        cmd.Parameters.AddWithValue("$g", gen);
        cmd.ExecuteNonQuery();
    }

    /// <summary>A move or a touch: same content, new path and/or stat; the id (and so the vector index) is kept. The row
    /// takes the new generation so that external backends (which store path and time) pick it up.</summary>
    public void Relocate(SqliteTransaction tx, long id, string path, long size, long mtimeMs, long gen)
    {
        using var cmd = _db.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = "UPDATE items SET path = $p, size = $z, mtime_ms = $m, gen = $g WHERE id = $i";
        cmd.Parameters.AddWithValue("$i", id);
        cmd.Parameters.AddWithValue("$g", gen);
        cmd.Parameters.AddWithValue("$p", path);
        cmd.Parameters.AddWithValue("$z", size);
        cmd.Parameters.AddWithValue("$m", mtimeMs);
        cmd.ExecuteNonQuery();
    }

    public void SetAligned(SqliteTransaction tx, long id, float[] aligned, long gen)
    {
        using var cmd = _db.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = "UPDATE items SET aligned = $a, gen = $g WHERE id = $i";
        cmd.Parameters.AddWithValue("$i", id);
        cmd.Parameters.AddWithValue("$a", ToBytes(aligned));
        cmd.Parameters.AddWithValue("$g", gen);
        cmd.ExecuteNonQuery();
    }

    internal static byte[] ToBytes(float[] v) => MemoryMarshal.AsBytes(v.AsSpan()).ToArray();

    internal static float[] ToFloats(byte[] b)
    {
        if (b.Length % 4 != 0) throw new InvalidDataException($"A stored vector has {b.Length} bytes, not a whole number of floats: the catalog is corrupt.");
        return MemoryMarshal.Cast<byte, float>(b).ToArray();
    }

    public void Dispose() => _db.Dispose();
}

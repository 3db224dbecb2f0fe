using System.Net;
using System.Net.Sockets;
using MLNet.Align.Encoders;
using MLNet.Align.Projection;
using MLNet.Align.Search;
using MLNet.Align.Search.Postgres;
using Npgsql;
using Xunit.Abstractions;

namespace MLNet.Align.Tests.Search;

/// <summary>The 56 fixture PNGs as a small photo tree (a/, a-old/, b/ with distinct last-write times), a Procrustes
/// model over the fixture pairs with its encoder identities, a second model (fitted on 40 pairs: same encoders, another
/// fingerprint), and an index of the tree kept open for the read-only tests, plus a closed copy of it.</summary>
public sealed class PostgresSearchFixture : IDisposable
{
    public static readonly DateTimeOffset ATime = new(2023, 6, 1, 0, 0, 0, TimeSpan.Zero);
    public static readonly DateTimeOffset BTime = new(2020, 1, 1, 0, 0, 0, TimeSpan.Zero);

    public PostgresSearchFixture()
    {
        Root = Path.Combine(Path.GetTempPath(), $"pg-search-{Guid.NewGuid():N}");
        Directory.CreateDirectory(Root);
        WritePhotos(Photos);
        using var image = PackagedEncoders.ResNet18();
        using var text = PackagedEncoders.MiniLM();
        Model = AlignedModel.FromLinearMap(ProcrustesMap.Fit(FixtureFeatures.Images.Pooled, FixtureFeatures.Texts.Pooled));
        Model.ImageEncoder = image.Identity;
        Model.TextEncoder = text.Identity;
        var rows = Enumerable.Range(0, 40).ToList();
        OtherModel = AlignedModel.FromLinearMap(ProcrustesMap.Fit(FixtureFeatures.Images.Pooled.SelectRows(rows), FixtureFeatures.Texts.Pooled.SelectRows(rows)));
        OtherModel.ImageEncoder = image.Identity;
        OtherModel.TextEncoder = text.Identity;
        using (var built = ImageIndex.Open(P("index"), Model))
        {
            var result = built.Update(IndexSource.FromFolder(Photos));
            Assert.Equal(56, result.New);
        }
        Directory.CreateDirectory(Pristine);
        foreach (var f in Directory.GetFiles(P("index"))) File.Copy(f, Path.Combine(Pristine, Path.GetFileName(f)));
        Index = ImageIndex.Open(P("index"), Model);
    }

    public string Root { get; }
    public string Photos => P("photos");
    public string Pristine => P("pristine-index");
    public AlignedModel Model { get; }
    public AlignedModel OtherModel { get; }
    public ImageIndex Index { get; }
    public string P(string name) => Path.Combine(Root, name);

    /// <summary>20 images in a/ (2023), 6 in a-old/ (2022), 30 in b/ (2020), one hour apart within a folder.</summary>
    public static void WritePhotos(string root)
    {
        var files = Directory.GetFiles(FixtureFeatures.PairImages, "*.png").Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(56, files.Length);
        for (int i = 0; i < files.Length; i++)
        {
            var (folder, start, j) = i < 20 ? ("a", ATime, i) : i < 26 ? ("a-old", ATime.AddYears(-1), i - 20) : ("b", BTime, i - 26);
            string dest = Path.Combine(root, folder, Path.GetFileName(files[i]));
            Directory.CreateDirectory(Path.GetDirectoryName(dest)!);
            File.Copy(files[i], dest);
            File.SetLastWriteTimeUtc(dest, start.AddHours(j).UtcDateTime);
        }
    }

    public void Dispose()
    {
        Index.Dispose();
        Model.Dispose();
        OtherModel.Dispose();
        if (Directory.Exists(Root)) Directory.Delete(Root, true);
    }
}

/// <summary>PostgresVectorStore against a real PostgreSQL + pgvector (PGlite on a local socket).</summary>
[Collection("pglite")]
public class PostgresVectorStoreTests(PgliteServer server, PostgresSearchFixture fx, ITestOutputHelper output) : IClassFixture<PostgresSearchFixture>
{
    private static readonly string[] Texts = ["a red apple", "the planet earth seen from space", "a cat", "a jack-o'-lantern pumpkin", "grapes"];

    private PostgresVectorStore Open(out string table)
    {
        table = "t_" + Guid.NewGuid().ToString("N");
        return PostgresVectorStore.Open(server.ConnectionString, fx.Index.Dimension, table);
    }

    [Fact]
    public void ServerReportsPgvectorAndIterativeScan()
    {
        using var store = Open(out _);
        output.WriteLine($"pgvector {store.VectorVersion} (server said {server.VectorVersion}); iterative scan: {store.SupportsIterativeScan}");
        Assert.Equal(server.VectorVersion, store.VectorVersion);
        var v = Version.Parse(store.VectorVersion);
        Assert.Equal(v >= new Version(0, 8), store.SupportsIterativeScan);
        Assert.Null(store.SyncState());
    }

    [Fact]
    public void SyncedTableSearchesLikeTheExactEmbeddedSearch()
    {
        using var store = Open(out _);
        Assert.Equal(56, store.Sync(fx.Index));
        Assert.Equal(56, store.Count());
        Assert.Equal((fx.Index.Generation, fx.Index.ModelFingerprint), store.SyncState());
        Assert.Equal(0, store.Sync(fx.Index)); // nothing changed
        foreach (var text in Texts)
        {
            var q = fx.Index.Embed(SearchQuery.ForText(text));
            var exact = fx.Index.Search(q, new SearchOptions { K = 5, Exact = true });
            var pg = store.Search(q, new SearchOptions { K = 5 });
            var pgExact = store.Search(q, new SearchOptions { K = 5, Exact = true });
            output.WriteLine($"{text}: embedded {string.Join(",", exact.Select(h => $"{h.Id}:{h.Score:F4}"))} | pg {string.Join(",", pg.Select(h => $"{h.Id}:{h.Score:F4}"))}");
            Assert.Equal(5, pg.Count);
            AssertSameHits(exact, pg);
            AssertSameHits(exact, pgExact);
        }
        var hit = store.Search(fx.Index.Embed(SearchQuery.ForText(Texts[0])), new SearchOptions { K = 1 })[0];
        var item = fx.Index.ItemsSince().Single(i => i.Id == hit.Id);
        Assert.Equal((item.Path, item.Modified, item.Size), (hit.Path, hit.Modified, hit.Size));
    }

    [Fact]
    public void FiltersStillReturnKWhenKMatch()
    {
        using var store = Open(out _);
        store.Sync(fx.Index);
        var q = fx.Index.Embed(SearchQuery.ForText(Texts[1]));
        string a = Path.Combine(fx.Photos, "a");
        var options = new[]
        {
            new SearchOptions { K = 10, Folder = a }, // whole segments: a-old/ is not under a/
            new SearchOptions { K = 10, Folder = a + Path.DirectorySeparatorChar },
            new SearchOptions { K = 10, Folder = Path.Combine(fx.Photos, "a-old") }, // only 6 match
            new SearchOptions { K = 7, After = PostgresSearchFixture.BTime, Before = PostgresSearchFixture.BTime.AddHours(30) },
            new SearchOptions { K = 7, Before = PostgresSearchFixture.BTime.AddHours(3) }, // 3 match
            new SearchOptions { K = 4, Folder = fx.Photos, After = PostgresSearchFixture.ATime.AddHours(10) },
            new SearchOptions { K = 8, WithinOfBest = 0.02f },
        };
        foreach (var o in options)
        {
            var expected = fx.Index.Search(q, new SearchOptions { K = o.K, Folder = o.Folder, After = o.After, Before = o.Before, WithinOfBest = o.WithinOfBest, Exact = true });
            var pg = store.Search(q, o);
            output.WriteLine($"k={o.K} folder={o.Folder} after={o.After} before={o.Before} within={o.WithinOfBest}: {pg.Count} hits (embedded {expected.Count})");
            Assert.Equal(expected.Count, pg.Count);
            AssertSameHits(expected, pg);
        }
        Assert.All(store.Search(q, options[0]), h => Assert.StartsWith(a + Path.DirectorySeparatorChar, h.Path));
        Assert.Equal(6, store.Search(q, options[2]).Count);
        Assert.Equal(3, store.Search(q, options[4]).Count);
        // LIKE wildcards in a folder name are literal.
        Assert.Empty(store.Search(q, new SearchOptions { Folder = Path.Combine(fx.Photos, "_") }));
        Assert.Empty(store.Search(q, new SearchOptions { Folder = Path.Combine(fx.Photos, "%") }));
    }

    [Fact]
    public void QueriesWalkTheHnswIndexUnlessExactAndFiltersStillReturnKWithoutIterativeScan()
    {
        using var store = Open(out string table);
        store.Sync(fx.Index);
        store.AvoidSeqScan = true; // 56 rows: the planner would rightly scan them; a large table takes the index
        var q = fx.Index.Embed(SearchQuery.ForText(Texts[4]));
        var filtered = new SearchOptions { K = 10, Folder = Path.Combine(fx.Photos, "b"), After = PostgresSearchFixture.BTime.AddHours(5) };
        Assert.Contains($"{table}_hnsw", Plan(store, q, new SearchOptions { K = 5 }));
        Plan(store, q, filtered); // the planner's choice (on 56 rows: the path index and a sort, exact anyway)
        Assert.DoesNotContain($"{table}_hnsw", Plan(store, q, new SearchOptions { K = 5, Exact = true }));
        var expected = fx.Index.Search(q, new SearchOptions { K = 10, Folder = filtered.Folder, After = filtered.After, Exact = true });
        Assert.Equal(10, expected.Count);
        AssertSameHits(expected, store.Search(q, filtered, efSearch: 1));
        AssertSameHits(fx.Index.Search(q, new SearchOptions { K = 5, Exact = true }), store.Search(q, new SearchOptions { K = 5 }));

        // What the iterative scan does on this server: with ef_search = 1 the graph alone yields one candidate, which the
        // filter may drop; relaxed_order keeps walking until k pass.
        using (var conn = new NpgsqlConnection(server.ConnectionString))
        {
            conn.Open();
            int Count(string iterative)
            {
                using var tx = conn.BeginTransaction();
                using (var set = new NpgsqlCommand($"SET LOCAL enable_seqscan = off; SET LOCAL hnsw.ef_search = 1; SET LOCAL hnsw.iterative_scan = {iterative}", conn, tx)) set.ExecuteNonQuery();
                using var cmd = new NpgsqlCommand($"SELECT count(*) FROM (SELECT id FROM \"{table}\" WHERE path LIKE '%/b/%' ORDER BY embedding <=> (SELECT embedding FROM \"{table}\" ORDER BY id LIMIT 1) LIMIT 10) r", conn, tx);
                return (int)(long)cmd.ExecuteScalar()!;
            }
            int off = Count("off"), relaxed = Count("relaxed_order");
            output.WriteLine($"ef_search=1, 10 wanted under b/: {off} without iterative scan, {relaxed} with relaxed_order");
            Assert.True(off < 10, $"{off}");
            Assert.Equal(10, relaxed);
        }

        // A pre-0.8 pgvector (no iterative scan): filtered queries scan exactly and still return k.
        store.SupportsIterativeScan = false;
        Assert.DoesNotContain($"{table}_hnsw", Plan(store, q, filtered));
        AssertSameHits(expected, store.Search(q, filtered, efSearch: 1));
        Assert.Contains($"{table}_hnsw", Plan(store, q, new SearchOptions { K = 5 }));
    }

    private string Plan(PostgresVectorStore store, float[] q, SearchOptions o)
    {
        var plan = System.Text.RegularExpressions.Regex.Replace(store.Explain(q, o), @"'\[[^\]]*\]'", "'[query]'");
        output.WriteLine($"k={o.K} folder={o.Folder} after={o.After} exact={o.Exact} iterative={store.SupportsIterativeScan}:\n{plan}");
        return plan;
    }

    [Fact]
    public void SecondSyncWritesOnlyWhatTheUpdateChanged()
    {
        string photos = fx.P($"delta-photos-{Guid.NewGuid():N}");
        PostgresSearchFixture.WritePhotos(photos);
        using var index = ImageIndex.Open(fx.P($"delta-index-{Guid.NewGuid():N}"), fx.Model);
        index.Update(IndexSource.FromFolder(photos));
        using var store = Open(out _);
        Assert.Equal(56, store.Sync(index));

        var b = Directory.GetFiles(Path.Combine(photos, "b")).Order(StringComparer.Ordinal).ToArray();
        string moveFrom = Directory.GetFiles(Path.Combine(photos, "a")).Order(StringComparer.Ordinal).First();
        long movedId = index.ItemsSince().Single(i => i.Path == moveFrom).Id;
        var removedIds = index.ItemsSince().Where(i => i.Path == b[0] || i.Path == b[1]).Select(i => i.Id).ToList();
        long touchedId = index.ItemsSince().Single(i => i.Path == b[2]).Id;
        File.Delete(b[0]); File.Delete(b[1]);
        Directory.CreateDirectory(Path.Combine(photos, "c"));
        string moveTo = Path.Combine(photos, "c", "moved.png");
        File.Move(moveFrom, moveTo);
        var touchedAt = new DateTimeOffset(2024, 3, 1, 12, 0, 0, TimeSpan.Zero);
        File.SetLastWriteTimeUtc(b[2], touchedAt.UtcDateTime);
        var result = index.Update(IndexSource.FromFolder(photos));
        Assert.Equal((0, 2, 1, 0), (result.New, result.Deleted, result.Moved, result.Encoded));

        Assert.Equal(2 + 1 + 1, store.Sync(index)); // two deletes, the move and the touch
        Assert.Equal(54, store.Count());
        Assert.Equal(index.Generation, store.SyncState()!.Value.Generation);
        var q = index.Embed(SearchQuery.ForText(Texts[2]));
        var all = store.Search(q, new SearchOptions { K = 100 });
        Assert.Equal(index.ItemsSince().Select(i => i.Id).Order(), all.Select(h => h.Id).Order());
        Assert.DoesNotContain(all, h => removedIds.Contains(h.Id));
        var moved = Assert.Single(store.Search(q, new SearchOptions { Folder = Path.Combine(photos, "c") }));
        Assert.Equal((movedId, moveTo), (moved.Id, moved.Path));
        var touched = Assert.Single(store.Search(q, new SearchOptions { After = touchedAt.AddMinutes(-1) }));
        Assert.Equal((touchedId, touchedAt), (touched.Id, touched.Modified));
        Assert.Equal(0, store.Sync(index));
    }

    [Fact]
    public void AnotherModelFingerprintReloadsTheWholeTable()
    {
        using var store = Open(out string table);
        Assert.Equal(56, store.Sync(fx.Index));
        using (var conn = new NpgsqlConnection(server.ConnectionString))
        {
            conn.Open();
            // A row no index holds: a delta sync would leave it, a full reload must not.
            using var cmd = new NpgsqlCommand($"INSERT INTO \"{table}\" SELECT 999999, '/stray.png', now(), 1, embedding FROM \"{table}\" LIMIT 1", conn);
            Assert.Equal(1, cmd.ExecuteNonQuery());
        }
        Assert.Equal(57, store.Count());
        string dir = fx.P($"reprojected-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        foreach (var f in Directory.GetFiles(fx.Pristine)) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
        using var other = ImageIndex.Open(dir, fx.OtherModel, reproject: true);
        Assert.NotEqual(fx.Index.ModelFingerprint, other.ModelFingerprint);

        Assert.Equal(56, store.Sync(other));
        Assert.Equal(56, store.Count());
        Assert.Equal((other.Generation, other.ModelFingerprint), store.SyncState());
        var q = other.Embed(SearchQuery.ForText(Texts[3]));
        AssertSameHits(other.Search(q, new SearchOptions { K = 5, Exact = true }), store.Search(q, new SearchOptions { K = 5 }));
        using (var conn = new NpgsqlConnection(server.ConnectionString))
        {
            conn.Open();
            using var cmd = new NpgsqlCommand($"SELECT indexdef FROM pg_indexes WHERE tablename = '{table}' AND indexname = '{table}_hnsw'", conn);
            var def = (string?)cmd.ExecuteScalar();
            output.WriteLine(def);
            Assert.Contains("hnsw", def);
            Assert.Contains("halfvec_cosine_ops", def);
        }
    }

    [Fact]
    public void ConnectionProblemsSayWhatIsWrongWithoutThePassword()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int closedPort = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        var unreachable = Assert.Throws<PostgresBackendException>(() =>
            PostgresVectorStore.Open($"Host=127.0.0.1;Port={closedPort};Username=photos;Password=s3cret-pw;Timeout=3", 8));
        output.WriteLine(unreachable.Message);
        Assert.Contains($"127.0.0.1:{closedPort}", unreachable.Message);
        Assert.Contains("Cannot connect", unreachable.Message);
        Assert.DoesNotContain("s3cret-pw", unreachable.Message);

        var malformed = Assert.Throws<ArgumentException>(() => PostgresVectorStore.Open("Host=127.0.0.1;Port=not-a-port;Password=s3cret-pw", 8));
        output.WriteLine(malformed.Message);
        Assert.Contains("connection string", malformed.Message);
        Assert.DoesNotContain("s3cret-pw", malformed.Message);

        Assert.Throws<ArgumentException>(() => PostgresVectorStore.Open(server.ConnectionString, 8, "bad-name; drop table x"));

        Open(out string table).Dispose();
        var width = Assert.Throws<PostgresBackendException>(() => PostgresVectorStore.Open(server.ConnectionString, fx.Index.Dimension + 1, table));
        output.WriteLine(width.Message);
        Assert.Contains($"{fx.Index.Dimension}-dimensional", width.Message);
    }

    /// <summary>Same ids in the same order, scores within fp16 rounding; two hits whose exact scores tie within that
    /// rounding may swap.</summary>
    private static void AssertSameHits(IReadOnlyList<SearchHit> expected, IReadOnlyList<SearchHit> actual)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++)
        {
            var match = actual[i].Id == expected[i].Id ? actual[i] : actual.Single(h => h.Id == expected[i].Id);
            Assert.True(Math.Abs(match.Score - expected[i].Score) < 1e-3, $"hit {i} (id {expected[i].Id}): {match.Score} vs {expected[i].Score}");
            if (actual[i].Id != expected[i].Id)
                Assert.True(Math.Abs(actual[i].Score - expected[i].Score) < 2e-3, $"hit {i}: id {actual[i].Id} instead of {expected[i].Id} with scores {actual[i].Score} vs {expected[i].Score}");
        }
    }
}

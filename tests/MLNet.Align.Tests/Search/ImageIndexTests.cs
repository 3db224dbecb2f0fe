using Microsoft.Data.Sqlite;
using MLNet.Align.Search;

namespace MLNet.Align.Tests.Search;

/// <summary>The image index on the 56 real fixture images with real aligned models: incremental updates (new,
/// changed, moved, deleted, copied, truncated), queries of every kind checked against a direct library computation,
/// filters that still return k, the relative cut-off, the HNSW path against exact search, the model fingerprint and
/// re-projection.</summary>
[Collection("search")]
public class ImageIndexTests(SearchFixture fx) : IClassFixture<SearchFixture>
{
    private static ImageIndexOptions Exact => new() { ExactBelow = 1_000_000 };
    private static ImageIndexOptions Hnsw => new() { ExactBelow = 0 };

    [Fact]
    public void Indexes_a_folder_then_updates_only_what_changed()
    {
        string photos = fx.Photos();
        using var index = ImageIndex.Open(fx.NewIndexDir(), fx.Model, Exact);
        var first = index.Update(IndexSource.FromFolder(photos));
        Assert.Equal((56, 0, 0, 0, 0), (first.New, first.Changed, first.Moved, first.Deleted, first.Unchanged));
        Assert.Equal(56, first.Encoded);
        Assert.Empty(first.Skipped);

        var again = index.Update(IndexSource.FromFolder(photos));
        Assert.Equal((0, 0, 0, 0, 56, 0L), (again.New, again.Changed, again.Moved, again.Deleted, again.Unchanged, again.Encoded));

        var files = Directory.GetFiles(photos, "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToArray();
        SearchFixture.WriteMirrored(files[0], Path.Combine(photos, "new", "mirrored.png"));            // new
        SearchFixture.WriteMirrored(files[2], files[1]);                                                 // changed in place
        File.SetLastWriteTimeUtc(files[1], DateTime.UtcNow.AddMinutes(1));
        string movedTo = Path.Combine(photos, "moved", Path.GetFileName(files[3]));
        Directory.CreateDirectory(Path.GetDirectoryName(movedTo)!);
        File.Move(files[3], movedTo);                                                                    // moved
        File.Delete(files[4]);                                                                           // deleted
        File.Copy(files[5], Path.Combine(photos, "new", "copy.png"));                                    // a copy: indexed without encoding
        File.WriteAllBytes(Path.Combine(photos, "new", "truncated.png"), File.ReadAllBytes(files[6])[..200]); // truncated
        File.SetLastWriteTimeUtc(files[7], DateTime.UtcNow.AddMinutes(2));                               // touched only

        var third = index.Update(IndexSource.FromFolder(photos));
        Assert.Equal(2, third.New);        // mirrored + copy
        Assert.Equal(1, third.Changed);
        Assert.Equal(1, third.Moved);
        Assert.Equal(1, third.Deleted);
        Assert.Equal(2, third.Encoded);    // mirrored + changed; the copy and the move reuse stored vectors
        var bad = Assert.Single(third.Skipped);
        Assert.EndsWith("truncated.png", bad.Path);
        Assert.Contains("truncated", bad.Reason, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(56 + 2 - 1, third.Total);
        Assert.Equal(57, index.Count);

        // The moved item kept its id; the copy has the original's vector (an item query of both gives the same top hit).
        var top = index.Search(SearchQuery.ForItem(movedTo), new SearchOptions { K = 1 });
        Assert.Equal(movedTo, top[0].Path);
        Assert.Equal(1f, top[0].Score, 4);
        var copy = index.Search(SearchQuery.ForItem(Path.Combine(photos, "new", "copy.png")), new SearchOptions { K = 2 });
        Assert.Equal(new[] { files[5], Path.Combine(photos, "new", "copy.png") }.Order(), copy.Select(h => h.Path).Order());

        // Every file of the folder is indexed exactly once, and nothing else.
        using var db = new SqliteConnection($"Data Source={Path.Combine(index.Directory, "catalog.db")};Mode=ReadOnly;Pooling=False");
        db.Open();
        using var cmd = db.CreateCommand();
        cmd.CommandText = "SELECT path FROM items ORDER BY path";
        var indexed = new List<string>();
        using (var r = cmd.ExecuteReader()) while (r.Read()) indexed.Add(r.GetString(0));
        var expected = Directory.GetFiles(photos, "*.png", SearchOption.AllDirectories).Where(p => !p.EndsWith("truncated.png")).Order(StringComparer.Ordinal);
        Assert.Equal(expected, indexed.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Text_query_scores_equal_the_library_computed_directly()
    {
        string photos = fx.Photos();
        using var index = ImageIndex.Open(fx.NewIndexDir(), fx.Model, Exact);
        index.Update(IndexSource.FromFolder(photos));
        const string text = "A blackbird.";
        var hits = index.Search(SearchQuery.ForText(text), new SearchOptions { K = 56 });
        var q = SearchFixture.DirectText(fx.Model, text);
        float norm = System.Numerics.Tensors.TensorPrimitives.Norm(q);
        var paths = hits.Select(h => h.Path).ToArray();
        var direct = SearchFixture.DirectScores(fx.Model, q, paths);
        for (int i = 0; i < hits.Count; i++) Assert.Equal(direct[i] / norm, hits[i].Score, 4);
        for (int i = 1; i < hits.Count; i++) Assert.True(hits[i - 1].Score >= hits[i].Score);
        Assert.Equal(56, hits.Count);
    }

    [Fact]
    public void Image_bytes_and_item_queries_find_the_image_itself_first()
    {
        string photos = fx.Photos();
        using var index = ImageIndex.Open(fx.NewIndexDir(), fx.Model, Exact);
        index.Update(IndexSource.FromFolder(photos));
        string target = Directory.GetFiles(photos, "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ElementAt(10);
        foreach (var query in new[] { SearchQuery.ForImage(target), SearchQuery.ForImageBytes(File.ReadAllBytes(target)), SearchQuery.ForItem(target) })
        {
            var hits = index.Search(query, new SearchOptions { K = 3 });
            Assert.Equal(target, hits[0].Path);
            Assert.True(hits[0].Score > 0.999f, $"{query}: {hits[0].Score}");
        }
        // A mix of two images ranks both above everything else.
        string other = Directory.GetFiles(photos, "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ElementAt(40);
        var mixed = index.Search(SearchQuery.ForImage(target).AndItem(other), new SearchOptions { K = 2 });
        Assert.Equal(new[] { target, other }.Order(), mixed.Select(h => h.Path).Order());
        // Bad query parts are named.
        Assert.Throws<ArgumentException>(() => index.Search(SearchQuery.ForItem(Path.Combine(photos, "nope.png"))));
        Assert.Throws<FileNotFoundException>(() => index.Search(SearchQuery.ForImage(Path.Combine(photos, "nope.png"))));
        var ex = Assert.Throws<InvalidDataException>(() => index.Search(SearchQuery.ForImageBytes([1, 2, 3, 4])));
        Assert.Contains("uploaded image", ex.Message);
        Assert.Throws<ArgumentException>(() => index.Search(SearchQuery.ForImage(target).AndImage(target, -1f)));
    }

    [Fact]
    public void Filters_return_k_when_k_match_and_the_cutoff_is_relative()
    {
        string photos = fx.Photos();
        var files = Directory.GetFiles(photos, "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToArray();
        var old = new DateTime(2020, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        foreach (var f in files.Take(8)) File.SetLastWriteTimeUtc(f, old);
        using var index = ImageIndex.Open(fx.NewIndexDir(), fx.Model, Hnsw);
        index.Update(IndexSource.FromFolder(photos));
        Assert.True(index.UsesApproximateIndex);
        var query = SearchQuery.ForText("an animal");
        string folder = Path.GetDirectoryName(files[^1])!;
        int inFolder = files.Count(f => Path.GetDirectoryName(f) == folder);
        var hits = index.Search(query, new SearchOptions { K = inFolder, Folder = folder });
        Assert.Equal(inFolder, hits.Count);
        Assert.All(hits, h => Assert.StartsWith(folder + Path.DirectorySeparatorChar, h.Path));
        // A folder name that is a prefix of another does not match it.
        Assert.Empty(index.Search(query, new SearchOptions { Folder = folder[..^1] }));
        var before = index.Search(query, new SearchOptions { K = 8, Before = new DateTimeOffset(2021, 1, 1, 0, 0, 0, TimeSpan.Zero) });
        Assert.Equal(files.Take(8).Order(), before.Select(h => h.Path).Order());
        var after = index.Search(query, new SearchOptions { K = 100, After = new DateTimeOffset(2021, 1, 1, 0, 0, 0, TimeSpan.Zero) });
        Assert.Equal(48, after.Count);
        var all = index.Search(query, new SearchOptions { K = 20 });
        var cut = index.Search(query, new SearchOptions { K = 20, WithinOfBest = 0.05f });
        Assert.Equal(all.Count(h => h.Score >= all[0].Score - 0.05f), cut.Count);
        Assert.True(cut.Count < 20);
        Assert.Throws<ArgumentException>(() => index.Search(query, new SearchOptions { After = DateTimeOffset.UtcNow, Before = DateTimeOffset.UtcNow.AddDays(-1) }));
        Assert.Throws<ArgumentOutOfRangeException>(() => index.Search(query, new SearchOptions { K = 0 }));
    }

    [Fact]
    public void Hnsw_answers_equal_exact_search_and_survive_deletes()
    {
        string photos = fx.Photos();
        using var index = ImageIndex.Open(fx.NewIndexDir(), fx.Model, Hnsw);
        index.Update(IndexSource.FromFolder(photos));
        Assert.True(File.Exists(Path.Combine(index.Directory, "vectors.usearch")));
        foreach (var text in new[] { "A blackbird.", "a piece of clothing", "a musical instrument" })
        {
            var approx = index.Search(SearchQuery.ForText(text), new SearchOptions { K = 10 });
            var exact = index.Search(SearchQuery.ForText(text), new SearchOptions { K = 10, Exact = true });
            Assert.Equal(exact.Select(h => h.Path), approx.Select(h => h.Path));
            Assert.Equal(exact.Select(h => h.Score), approx.Select(h => h.Score));
        }
        var files = Directory.GetFiles(photos, "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToArray();
        File.Delete(files[0]);
        var r = index.Update(IndexSource.FromFolder(photos));
        Assert.Equal(1, r.Deleted);
        Assert.Contains("tombstoned", r.Vectors);
        var hits = index.Search(SearchQuery.ForText("A blackbird."), new SearchOptions { K = 55 });
        Assert.Equal(55, hits.Count);
        Assert.DoesNotContain(files[0], hits.Select(h => h.Path));
        // Reopened from disk: the graph is current and gives the same answer.
        using var reopened = ImageIndex.OpenExisting(index.Directory, fx.Model, Hnsw);
        Assert.True(reopened.UsesApproximateIndex);
        Assert.Equal(hits.Select(h => h.Path), reopened.Search(SearchQuery.ForText("A blackbird."), new SearchOptions { K = 55 }).Select(h => h.Path));
        // A graph whose state names no metric (written when the graph used cosine) is rebuilt, never searched as it is.
        string state = Path.Combine(index.Directory, "vectors.json");
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(state))!.AsObject();
        Assert.Equal("Ip", (string?)json["Metric"]);
        Assert.DoesNotContain("built", index.Update(IndexSource.FromFolder(photos)).Vectors); // a current graph is kept
        json.Remove("Metric");
        File.WriteAllText(state, json.ToJsonString());
        Assert.Contains("HNSW built", index.Update(IndexSource.FromFolder(photos)).Vectors);
        Assert.Equal("Ip", (string?)System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(state))!["Metric"]);
    }

    [Fact]
    public void Another_model_is_refused_and_reprojection_reencodes_nothing()
    {
        string photos = fx.Photos();
        string dir = fx.NewIndexDir();
        using (var index = ImageIndex.Open(dir, fx.Model, Exact)) index.Update(IndexSource.FromFolder(photos));
        var e = Assert.Throws<IndexModelMismatchException>(() => ImageIndex.Open(dir, fx.OtherModel, Exact));
        Assert.Contains("procrustes", e.Message);
        Assert.Contains("--reproject", e.Message);
        using var re = ImageIndex.Open(dir, fx.OtherModel, Exact, reproject: true);
        Assert.Equal(56, re.Count);
        var again = re.Update(IndexSource.FromFolder(photos));
        Assert.Equal(0, again.Encoded);
        // Scores now follow the new model exactly.
        const string text = "A blackbird.";
        var hits = re.Search(SearchQuery.ForText(text), new SearchOptions { K = 5 });
        var q = SearchFixture.DirectText(fx.OtherModel, text);
        float norm = System.Numerics.Tensors.TensorPrimitives.Norm(q);
        var direct = SearchFixture.DirectScores(fx.OtherModel, q, hits.Select(h => h.Path).ToArray());
        for (int i = 0; i < hits.Count; i++) Assert.Equal(direct[i] / norm, hits[i].Score, 4);
        Assert.NotEqual(fx.Model, fx.OtherModel);
    }

    [Fact]
    public void Shards_merge_into_the_same_index_as_one_run()
    {
        string photos = fx.Photos();
        var shardDirs = new[] { fx.NewIndexDir(), fx.NewIndexDir() };
        int total = 0;
        for (int i = 0; i < 2; i++)
        {
            using var shard = ImageIndex.Open(shardDirs[i], fx.Model, Exact);
            total += shard.Update(IndexSource.FromFolder(photos).Shard(i, 2)).New;
        }
        Assert.Equal(56, total);
        using var merged = ImageIndex.Open(fx.NewIndexDir(), fx.Model, Exact);
        Assert.Equal(56, merged.Merge(shardDirs));
        using var single = ImageIndex.Open(fx.NewIndexDir(), fx.Model, Exact);
        single.Update(IndexSource.FromFolder(photos));
        var q = SearchQuery.ForText("a bird");
        var fromMerge = merged.Search(q, new SearchOptions { K = 56 });
        var fromOneRun = single.Search(q, new SearchOptions { K = 56 });
        Assert.Equal(fromOneRun.Select(h => h.Path), fromMerge.Select(h => h.Path));
        // A shard encodes and projects its images in other batches than one run does, and batched matrix products may
        // round differently per batch size (CI saw 2e-8 on one score): equal to float rounding, not to the bit.
        Assert.All(fromOneRun.Zip(fromMerge), p => Assert.Equal(p.First.Score, p.Second.Score, 1e-5f));
        // The merge itself copies the shards' vectors: each merged item scores exactly as in its shard.
        foreach (var dir in shardDirs)
        {
            using var shard = ImageIndex.OpenExisting(dir, fx.Model, Exact);
            var inShard = shard.Search(q, new SearchOptions { K = 56 }).ToDictionary(h => h.Path, h => h.Score);
            Assert.All(fromMerge.Where(h => inShard.ContainsKey(h.Path)), h => Assert.Equal(inShard[h.Path], h.Score));
            Assert.Equal(inShard.Count, fromMerge.Count(h => inShard.ContainsKey(h.Path)));
        }
        using var other = ImageIndex.Open(fx.NewIndexDir(), fx.OtherModel, Exact);
        Assert.Throws<IndexModelMismatchException>(() => other.Merge(shardDirs));
    }
}

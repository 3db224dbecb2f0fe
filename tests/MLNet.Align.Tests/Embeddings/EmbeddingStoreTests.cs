using System.Text.Json;
using MLNet.Align.Embeddings;

namespace MLNet.Align.Tests.Embeddings;

public class EmbeddingStoreTests
{
    private sealed class SyncProgress(Action<EmbeddingProgress> report) : IProgress<EmbeddingProgress>
    {
        public void Report(EmbeddingProgress value) => report(value);
    }

    private static EmbeddingRunResult Embed(string pairsPath, string outDir, EmbeddingPipelineOptions? options = null,
        HashImageEncoder? image = null, HashTextEncoder? text = null, IProgress<EmbeddingProgress>? progress = null, CancellationToken ct = default)
        => EmbeddingPipeline.Run(PairsFile.Read(pairsPath), outDir, image ?? new HashImageEncoder(), text ?? new HashTextEncoder(), options, progress, ct);

    [Fact]
    public void Fp32RoundTripIsExactAndKeepsMetadata()
    {
        string dir = StoreTestData.NewTempDir();
        var pairs = PairsFile.Read(StoreTestData.FixturePairs);
        var img = new HashImageEncoder(); var txt = new HashTextEncoder();
        var result = EmbeddingPipeline.Run(pairs, dir, img, txt, new EmbeddingPipelineOptions { ShardSize = 20, BatchSize = 7 });
        Assert.Equal(3, result.ShardsEncoded);
        Assert.Equal(56, result.Store.Rows);
        var loaded = result.Store.LoadPooled();
        var expectedImages = new HashImageEncoder().EncodeBatch(pairs.Rows.Select(r => r.ImagePath).ToList()).Pooled;
        var expectedTexts = new HashTextEncoder().EncodeBatch(pairs.Rows.Select(r => r.Caption!).ToList()).Pooled;
        Assert.Equal(expectedImages.Data, loaded.Image.Data);
        Assert.Equal(expectedTexts.Data, loaded.Text!.Data);
        Assert.Equal(pairs.Rows.Select(r => r.Caption), loaded.Captions);
        Assert.Equal(pairs.Rows.Select(r => r.ImagePath), loaded.ImagePaths);
        Assert.Equal(pairs.Rows.Select(r => r.Line), loaded.RowInfo.Select(r => r.Line));
        Assert.Equal(pairs.Rows.Select(r => pairs.GetExtra(r, "label")), loaded.Column("label"));
        Assert.Equal(56, img.Encoded.Count);
        Assert.Equal(56, txt.Encoded.Count);

        var m = result.Store.Manifest;
        Assert.Equal("complete", m.Status);
        Assert.Equal(EmbeddingDType.Float32, m.DType);
        Assert.Equal([0L, 20L, 40L], m.Shards.Select(s => s.FirstRow!.Value));
        Assert.Equal(pairs.Sha256, m.Input.PairsSha256);
        string json = File.ReadAllText(Path.Combine(dir, "manifest.json"));
        Assert.Contains("\"dType\": \"fp32\"", json);
        Assert.Contains("\"sha256\": \"" + new string('a', 64), json);
        Assert.Empty(Directory.GetFiles(dir, "*.tmp-*"));
        Assert.Equal(["image-hashes.tsv", "manifest.json", "shard-00000.bin", "shard-00001.bin", "shard-00002.bin"], Directory.GetFiles(dir).Select(Path.GetFileName).Order());
        Assert.NotNull(EmbeddingStore.Open(dir, result.Store.Key, verifyChecksums: true));
    }

    [Fact]
    public void Fp16RoundTripWithinHalfPrecisionAndHalvesTheSize()
    {
        string d32 = StoreTestData.NewTempDir(), d16 = StoreTestData.NewTempDir();
        var s32 = Embed(StoreTestData.FixturePairs, d32, new EmbeddingPipelineOptions { DType = EmbeddingDType.Float32 }).Store;
        var s16 = Embed(StoreTestData.FixturePairs, d16, new EmbeddingPipelineOptions { DType = EmbeddingDType.Float16 }).Store;
        var a = s32.LoadPooled(); var b = s16.LoadPooled();
        double maxRel = 0;
        for (int i = 0; i < a.Image.Data.Length; i++)
        {
            maxRel = Math.Max(maxRel, Math.Abs(a.Image.Data[i] - b.Image.Data[i]) / Math.Max(Math.Abs(a.Image.Data[i]), 1e-2));
            Assert.Equal((float)(Half)a.Image.Data[i], b.Image.Data[i]); // exactly round-to-nearest half
        }
        Assert.InRange(maxRel, 1e-6, Math.Pow(2, -11)); // rounded, not exact, within half's unit roundoff
        for (int i = 0; i < a.Text!.Data.Length; i++) Assert.Equal((float)(Half)a.Text.Data[i], b.Text!.Data[i]);
        long pooled32 = s32.Shards.Sum(s => s.Bytes), pooled16 = s16.Shards.Sum(s => s.Bytes);
        Assert.True(pooled16 < pooled32, $"{pooled16} !< {pooled32}");
        Assert.NotEqual(s32.Key.Hash, s16.Key.Hash);
    }

    [Fact]
    public void ResumeAfterCancellationGivesTheSameBytesAsAnUninterruptedRun()
    {
        string full = StoreTestData.NewTempDir(), resumed = StoreTestData.NewTempDir();
        var options = new EmbeddingPipelineOptions { ShardSize = 10, BatchSize = 4, DType = EmbeddingDType.Float16, ImageTokens = true, TextTokens = true };
        Embed(StoreTestData.FixturePairs, full, options);

        using var cts = new CancellationTokenSource();
        var firstImg = new HashImageEncoder();
        var progress = new SyncProgress(p => { if (p.Done >= 45) cts.Cancel(); }); // mid third shard
        Assert.ThrowsAny<OperationCanceledException>(() => Embed(StoreTestData.FixturePairs, resumed, options, firstImg, progress: progress, ct: cts.Token));
        var partial = JsonSerializer.Deserialize<JsonElement>(File.ReadAllText(Path.Combine(resumed, "manifest.json")));
        Assert.Equal("partial", partial.GetProperty("status").GetString());
        int doneShards = partial.GetProperty("shards").GetArrayLength();
        Assert.InRange(doneShards, 1, 5);
        Assert.Throws<InvalidOperationException>(() => EmbeddingStore.Open(resumed)); // partial stores are not readable
        Assert.Empty(Directory.GetFiles(resumed, "*.tmp-*"));

        var img = new HashImageEncoder();
        var r = Embed(StoreTestData.FixturePairs, resumed, options, img);
        Assert.Equal(doneShards, r.ShardsReused);
        Assert.Equal(6 - doneShards, r.ShardsEncoded);
        Assert.Equal(56 - 10 * doneShards, img.Encoded.Count); // only the missing shards were encoded
        StoreTestData.AssertSameFiles(full, resumed);
    }

    [Fact]
    public void DeletedOrCorruptedShardIsReencodedAlone()
    {
        string full = StoreTestData.NewTempDir(), dir = StoreTestData.NewTempDir();
        var options = new EmbeddingPipelineOptions { ShardSize = 16 };
        Embed(StoreTestData.FixturePairs, full, options);
        Embed(StoreTestData.FixturePairs, dir, options);
        File.Delete(Path.Combine(dir, "shard-00001.bin"));
        Assert.Throws<InvalidDataException>(() => EmbeddingStore.Open(dir));
        var img = new HashImageEncoder();
        var r = Embed(StoreTestData.FixturePairs, dir, options, img);
        Assert.Equal(1, r.ShardsEncoded);
        Assert.Equal(16, img.Encoded.Count);
        StoreTestData.AssertSameFiles(full, dir);

        // flip one byte of shard 2: the checksum catches it and only that shard is redone
        string s2 = Path.Combine(dir, "shard-00002.bin");
        var bytes = File.ReadAllBytes(s2); bytes[100] ^= 0xFF; File.WriteAllBytes(s2, bytes);
        Assert.Throws<InvalidDataException>(() => EmbeddingStore.Open(dir, verifyChecksums: true));
        img = new HashImageEncoder();
        Assert.Equal(1, Embed(StoreTestData.FixturePairs, dir, options, img).ShardsEncoded);
        StoreTestData.AssertSameFiles(full, dir);

        // complete and intact: nothing to do
        img = new HashImageEncoder();
        Assert.Equal(0, Embed(StoreTestData.FixturePairs, dir, options, img).ShardsEncoded);
        Assert.Empty(img.Encoded);
    }

    [Fact]
    public void AStoreOfAnotherKeyIsNeverReused()
    {
        string dir = StoreTestData.NewTempDir();
        var s = Embed(StoreTestData.FixturePairs, dir, new EmbeddingPipelineOptions { DType = EmbeddingDType.Float32 }).Store;
        var e = Assert.Throws<EmbeddingStoreMismatchException>(() => Embed(StoreTestData.FixturePairs, dir, new EmbeddingPipelineOptions { DType = EmbeddingDType.Float16 }));
        Assert.Contains("dtype: store has Float32, requested Float16", e.Message);
        Assert.Contains(dir, e.Message);

        // another input file (one caption changed) is another key too
        string other = Path.Combine(StoreTestData.NewTempDir(), "p.tsv");
        var lines = File.ReadAllLines(StoreTestData.FixturePairs).Select(l => l.Replace("images/", StoreTestData.FixtureImages + "/")).ToArray();
        lines[1] = lines[1].Replace("Rosella", "rosella");
        File.WriteAllLines(other, lines);
        var e2 = Assert.Throws<EmbeddingStoreMismatchException>(() => Embed(other, dir));
        Assert.Contains("input identity", e2.Message);
        var otherKey = EmbeddingPipeline.ComputeKey(PairsFile.Read(other), new HashImageEncoder().Identity, new HashTextEncoder().Identity);
        Assert.Throws<EmbeddingStoreMismatchException>(() => EmbeddingStore.Open(dir, otherKey));
        Assert.NotEqual(EmbeddingStore.CacheDirectory("/cache", s.Key), EmbeddingStore.CacheDirectory("/cache", otherKey));
        Assert.Equal(16, Path.GetFileName(EmbeddingStore.CacheDirectory("/cache", otherKey)).Length);

        // a folder with unrelated files is refused rather than mixed
        string busy = StoreTestData.NewTempDir();
        File.WriteAllText(Path.Combine(busy, "notes.txt"), "mine");
        Assert.Throws<IOException>(() => Embed(StoreTestData.FixturePairs, busy));
    }

    [Fact]
    public void PartitionsCoverEveryRowOnceAndMergeEqualsTheFullStore()
    {
        string root = StoreTestData.NewTempDir();
        string pairsPath = StoreTestData.WriteMultiCaptionPairs(root, images: 30);
        var options = new EmbeddingPipelineOptions { ShardSize = 8, DType = EmbeddingDType.Float16 };
        var full = Embed(pairsPath, Path.Combine(root, "full"), options).Store;
        var parts = new List<string>();
        int encodedImages = 0;
        for (int i = 0; i < 3; i++)
        {
            string d = Path.Combine(root, $"part{i}");
            var img = new HashImageEncoder();
            var o = new EmbeddingPipelineOptions { ShardSize = 8, DType = EmbeddingDType.Float16, Partition = new ShardPartition(i, 3) };
            var s = Embed(pairsPath, d, o, img).Store;
            Assert.Equal($"{i}/3", s.Key.Partition);
            encodedImages += img.Encoded.Count;
            parts.Add(d);
        }
        Assert.Equal(30, encodedImages); // each image in exactly one partition
        Assert.Throws<ArgumentException>(() => EmbeddingStore.Merge(parts.Take(2).ToList(), Path.Combine(root, "bad")));
        var merged = EmbeddingStore.Merge(parts, Path.Combine(root, "merged"));
        Assert.Equal(full.Key.Hash, merged.Key.Hash);
        Assert.Equal(full.Rows, merged.Rows);

        var a = full.LoadPooled(); var b = merged.LoadPooled();
        var byPair = Enumerable.Range(0, b.Count).ToDictionary(r => b.RowInfo[r].Index);
        Assert.Equal(a.Count, byPair.Count);
        for (int r = 0; r < a.Count; r++)
        {
            int m = byPair[a.RowInfo[r].Index];
            Assert.Equal(a.Image.Row(r).ToArray(), b.Image.Row(m).ToArray());
            Assert.Equal(a.Text!.Row(r).ToArray(), b.Text!.Row(m).ToArray());
            Assert.Equal(a.Captions[r], b.Captions[m]);
        }
        // caption sets survive partitioning (an image's captions stay together)
        Assert.Equal(a.CaptionRowsByImage.Select(s => s.Count).Order(), b.CaptionRowsByImage.Select(s => s.Count).Order());
        // the merged store is a valid cache for the unpartitioned request: nothing is re-encoded
        var again = new HashImageEncoder();
        Assert.Equal(0, Embed(pairsPath, Path.Combine(root, "merged"), options, again).ShardsEncoded);
        Assert.Empty(again.Encoded);
    }

    [Fact]
    public void EachDistinctImageIsEncodedOnceAndCaptionSetsAreKept()
    {
        string root = StoreTestData.NewTempDir();
        string pairsPath = StoreTestData.WriteMultiCaptionPairs(root, images: 12);
        var pairs = PairsFile.Read(pairsPath);
        var img = new HashImageEncoder(); var txt = new HashTextEncoder();
        var store = EmbeddingPipeline.Run(pairs, Path.Combine(root, "s"), img, txt, new EmbeddingPipelineOptions { ShardSize = 5 }).Store;
        Assert.Equal(12, img.Encoded.Count);
        Assert.Equal(12, img.Encoded.Distinct().Count());
        Assert.Equal(pairs.Rows.Count, txt.Encoded.Count);
        var loaded = store.LoadPooled();
        Assert.Equal(pairs.Rows.Count, loaded.Count);
        Assert.Equal(12, loaded.UniqueImagePaths.Count);
        Assert.Equal(12, loaded.UniqueImageEmbeddings().Rows);
        int first = loaded.UniqueImagePaths.ToList().IndexOf(pairs.Images[0]);
        Assert.Equal(3, loaded.CaptionRowsByImage[first].Count); // two adjacent + one at the end of the file
        var rows = loaded.CaptionRowsByImage[first];
        Assert.Equal(loaded.Image.Row(rows[0]).ToArray(), loaded.Image.Row(rows[2]).ToArray());
        Assert.NotEqual(loaded.Text!.Row(rows[0]).ToArray(), loaded.Text.Row(rows[2]).ToArray());
        Assert.All(store.Shards, s => Assert.True(s.Rows <= 5 + 2, $"shard {s.Index} has {s.Rows} rows"));
    }

    [Fact]
    public void BadItemsAreSkippedWithReasonsAndStrictModeNamesTheRow()
    {
        string root = StoreTestData.NewTempDir();
        var good = Directory.GetFiles(StoreTestData.FixtureImages, "*.png").Order().Take(4).ToArray();
        string corrupt = Path.Combine(root, "corrupt.png");
        File.WriteAllBytes(corrupt, Enumerable.Range(0, 300).Select(i => (byte)(i * 7)).ToArray());
        string path = Path.Combine(root, "pairs.tsv");
        File.WriteAllLines(path, [
            "image\tcaption",
            $"{good[0]}\tgood one",
            "missing/nowhere.png\ta missing image",
            $"{good[1]}\t   ",
            "corrupt.png\ta corrupt image",
            $"{good[2]}\tgood two",
            $"{good[3]}\tgood three",
        ]);
        var r = Embed(path, Path.Combine(root, "s"), new EmbeddingPipelineOptions { BatchSize = 8 });
        var m = r.Store.Manifest;
        Assert.Equal(3, m.Rows);
        Assert.Equal(3, m.SkippedCount);
        var skipped = m.Shards.SelectMany(s => s.Skipped).OrderBy(s => s.Line).ToList();
        Assert.Equal([3, 4, 5], skipped.Select(s => s.Line));
        Assert.Equal(["image", "caption", "image"], skipped.Select(s => s.Column));
        Assert.StartsWith("image file not found", skipped[0].Reason);
        Assert.Equal("empty caption", skipped[1].Reason);
        Assert.Contains("cannot be encoded", skipped[2].Reason);
        Assert.Contains("corrupt.png", skipped[2].Reason);
        Assert.Equal(["good one", "good two", "good three"], r.Store.LoadPooled().Captions);

        var e = Assert.Throws<InvalidDataException>(() => Embed(path, Path.Combine(root, "strict"), new EmbeddingPipelineOptions { Strict = true }));
        Assert.Contains($"{path}, line 3, column 'image'", e.Message);
        Assert.Contains("nowhere.png", e.Message);
    }

    [Fact]
    public void ImageOnlyStoreKeepsLabels()
    {
        string root = StoreTestData.NewTempDir();
        var files = Directory.GetFiles(StoreTestData.FixtureImages, "*.png").Order().Take(6).ToArray();
        string path = Path.Combine(root, "labelled.csv");
        File.WriteAllLines(path, ["image,label", .. files.Select((f, i) => $"{f},class{i % 2}")]);
        var pairs = PairsFile.Read(path, new PairsFileOptions { CaptionColumn = null });
        var store = EmbeddingPipeline.Run(pairs, Path.Combine(root, "s"), new HashImageEncoder(), null, new EmbeddingPipelineOptions { ShardSize = 4 }).Store;
        Assert.False(store.HasText);
        Assert.Null(store.Key.TextEncoderSha256);
        var loaded = store.LoadPooled();
        Assert.Null(loaded.Text);
        Assert.Equal(6, loaded.Image.Rows);
        Assert.Equal(["class0", "class1", "class0", "class1", "class0", "class1"], loaded.Column("label"));
        Assert.Equal(new HashImageEncoder().EncodeBatch(files).Pooled.Data, loaded.Image.Data);
        Assert.Throws<ArgumentException>(() => new EmbeddingStoreDataSource(store));
    }
}

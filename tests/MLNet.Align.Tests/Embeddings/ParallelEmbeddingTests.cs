using MLNet.Align.Embeddings;
using MLNet.Align.Encoders;

namespace MLNet.Align.Tests.Embeddings;

/// <summary>The pipeline's concurrent path (several image batches in flight, text batches beside them, the next shard
/// started while one is written) writes the same bytes as one batch at a time.</summary>
public class ParallelEmbeddingTests
{
    private sealed class SyncProgress(Action<EmbeddingProgress> report) : IProgress<EmbeddingProgress>
    {
        public void Report(EmbeddingProgress value) => report(value);
    }

    /// <summary>Fixture pairs plus an undecodable image and a missing one, so the per-item retry of a failing batch
    /// runs inside the concurrent path too.</summary>
    private static string PairsWithBadImages(string dir)
    {
        string bad = Path.Combine(dir, "not-an-image.png");
        File.WriteAllText(bad, "this is text, not a PNG");
        var lines = File.ReadAllLines(StoreTestData.FixturePairs);
        string folder = Path.GetDirectoryName(StoreTestData.FixturePairs)!;
        var rows = lines.Skip(1).Select(l => Path.Combine(folder, l)).ToList();
        rows.Insert(9, $"{bad}\tA broken picture.\ttest\tnone");
        rows.Insert(30, $"{Path.Combine(dir, "missing.png")}\tA picture that is not there.\ttest\tnone");
        string path = Path.Combine(dir, "pairs.tsv");
        File.WriteAllLines(path, [lines[0], .. rows]);
        return path;
    }

    [Fact]
    public void ConcurrentBatchesWriteTheSameStoreAsOneBatchAtATimeWithTheRealEncoders()
    {
        string work = StoreTestData.NewTempDir(), serial = StoreTestData.NewTempDir(), parallel = StoreTestData.NewTempDir();
        var pairs = PairsFile.Read(PairsWithBadImages(work));
        var options = new EmbeddingPipelineOptions { ShardSize = 20, BatchSize = 4, DType = EmbeddingDType.Float32, ImageTokens = true, TextTokens = true };
        options.Concurrency = 1;
        var one = EmbeddingPipeline.Run(pairs, serial, FixtureFeatures.ResNet18, FixtureFeatures.MiniLM, options);
        options.Concurrency = 3;
        var three = EmbeddingPipeline.Run(pairs, parallel, FixtureFeatures.ResNet18, FixtureFeatures.MiniLM, options);

        Assert.Equal(56, one.Store.Rows);
        Assert.Equal(2, one.Store.Manifest.SkippedCount);
        Assert.Equal(56, three.ImagesEncoded);
        Assert.Equal(one.TextsEncoded, three.TextsEncoded);
        var reasons = three.Store.Manifest.Shards.SelectMany(s => s.Skipped).Select(s => s.Reason).ToList();
        Assert.Contains(reasons, r => r.StartsWith("image cannot be encoded", StringComparison.Ordinal) && r.Contains("not-an-image.png", StringComparison.Ordinal));
        Assert.Contains(reasons, r => r.StartsWith("image file not found", StringComparison.Ordinal));
        StoreTestData.AssertSameFiles(serial, parallel);
    }

    [Fact]
    public void AConcurrentRunCancelledMidwayResumesToTheSameBytes()
    {
        string work = StoreTestData.NewTempDir(), full = StoreTestData.NewTempDir(), resumed = StoreTestData.NewTempDir();
        string pairsPath = PairsWithBadImages(work);
        var options = new EmbeddingPipelineOptions { ShardSize = 10, BatchSize = 3, DType = EmbeddingDType.Float16, ImageTokens = true, TextTokens = true, Concurrency = 1 };
        EmbeddingPipeline.Run(PairsFile.Read(pairsPath), full, new HashImageEncoder(), new HashTextEncoder(), options);

        options.Concurrency = 4;
        using var cts = new CancellationTokenSource();
        var progress = new SyncProgress(p => { if (p.Done >= 50) cts.Cancel(); });
        Assert.ThrowsAny<OperationCanceledException>(() =>
            EmbeddingPipeline.Run(PairsFile.Read(pairsPath), resumed, new HashImageEncoder(), new HashTextEncoder(), options, progress, cts.Token));
        Assert.Empty(Directory.GetFiles(resumed, "*.tmp-*"));
        var r = EmbeddingPipeline.Run(PairsFile.Read(pairsPath), resumed, new HashImageEncoder(), new HashTextEncoder(), options);
        Assert.InRange(r.ShardsReused, 1, 5);
        StoreTestData.AssertSameFiles(full, resumed);
    }

    [Fact]
    public void ANegativeConcurrencyIsRefusedNamingTheOption()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => EmbeddingPipeline.Run(PairsFile.Read(StoreTestData.FixturePairs), StoreTestData.NewTempDir(),
            new HashImageEncoder(), new HashTextEncoder(), new EmbeddingPipelineOptions { Concurrency = -1 }));
        Assert.Contains("Concurrency", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AutomaticConcurrencyIsTheOnnxEncodersParallelismAndOneForOtherEncoders()
    {
        Assert.Equal(FixtureFeatures.ResNet18.Parallelism, EmbeddingPipeline.ResolveConcurrency(new EmbeddingPipelineOptions(), FixtureFeatures.ResNet18));
        Assert.Equal(1, EmbeddingPipeline.ResolveConcurrency(new EmbeddingPipelineOptions(), new HashImageEncoder()));
        Assert.Equal(5, EmbeddingPipeline.ResolveConcurrency(new EmbeddingPipelineOptions { Concurrency = 5 }, new HashImageEncoder()));
    }
}

using MLNet.Align.Embeddings;
using MLNet.Align.Projection;
using MLNet.Align.Tests.Projection;

namespace MLNet.Align.Tests.Embeddings;

/// <summary>The store's shard-buffered shuffle, background prefetch and store-fed training (issue 11).</summary>
public class StoreStreamingTests
{
    // 56 fixture pairs in shards of 9 rows: 7 shards (the last holds 2).
    private static readonly Lazy<EmbeddingStore> Store = new(() =>
        EmbeddingPipeline.Run(PairsFile.Read(StoreTestData.FixturePairs), Path.Combine(StoreTestData.NewTempDir(), "pooled"),
            new HashImageEncoder(), new HashTextEncoder(), new EmbeddingPipelineOptions { ShardSize = 9 }).Store);

    private static int ShardOfRow(long row) => (int)(row / 9);

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void EpochOrderIsAPermutationThatKeepsEachStretchWithinOneBufferOfShards(int bufferShards)
    {
        var source = new EmbeddingStoreDataSource(Store.Value) { Shuffle = StoreShuffle.ShardBuffered, ShuffleBufferShards = bufferShards };
        var rows = Enumerable.Range(0, 56).Where(i => i % 5 != 0).Select(i => (long)i).ToArray(); // a train subset
        var order = source.EpochOrder(rows, seed: 4);
        Assert.Equal(rows, order.Order());
        Assert.Equal(order, source.EpochOrder(rows, seed: 4));
        Assert.NotEqual(order, source.EpochOrder(rows, seed: 5));
        // Walk the order: a new group starts when the set of shards seen reaches the buffer and a new shard appears.
        var groupShards = new HashSet<int>();
        int groups = 1;
        foreach (long r in order)
        {
            int k = ShardOfRow(r);
            if (!groupShards.Contains(k) && groupShards.Count == bufferShards) { groupShards.Clear(); groups++; }
            groupShards.Add(k);
        }
        Assert.Equal((7 + bufferShards - 1) / bufferShards, groups); // never more shards in flight than the buffer
        // The seeded GetBatches serves exactly that order.
        Assert.Equal(order, source.GetBatches(8, rows, shuffleSeed: 4).SelectMany(b => b.Indices));
        // Rows are mixed inside a group: with a buffer of 2+ shards the first 9 rows do not all come from one shard.
        if (bufferShards > 1) Assert.True(order.Take(9).Select(ShardOfRow).Distinct().Count() > 1);
    }

    [Fact]
    public void PrefetchedBatchesEqualTheInlineOnesAndStoppingEarlyEndsTheProducer()
    {
        var inline = new EmbeddingStoreDataSource(Store.Value) { PrefetchBatches = 0 };
        var ahead = new EmbeddingStoreDataSource(Store.Value) { PrefetchBatches = 2 };
        var rows = inline.EpochOrder(Enumerable.Range(0, 56).Select(i => (long)i).ToArray(), seed: 9);
        var a = inline.GetBatches(5, rows).ToList();
        var b = ahead.GetBatches(5, rows).ToList();
        Assert.Equal(a.Count, b.Count);
        for (int i = 0; i < a.Count; i++)
        {
            Assert.Equal(a[i].Indices, b[i].Indices);
            Assert.Equal(a[i].ImagePooled.Data, b[i].ImagePooled.Data);
            Assert.Equal(a[i].TextPooled.Data, b[i].TextPooled.Data);
        }
        var all = Store.Value.LoadPooled();
        foreach (var batch in b)
            for (int i = 0; i < batch.Indices.Length; i++)
                Assert.Equal(all.Text!.Row((int)batch.Indices[i]).ToArray(), batch.TextPooled.Row(i).ToArray());
        // Taking one batch and stopping returns (the producer is cancelled and joined, not left blocked on a full queue).
        Assert.Single(ahead.GetBatches(1, rows).Take(1));
        using var cts = new CancellationTokenSource();
        Assert.ThrowsAny<OperationCanceledException>(() =>
        {
            foreach (var _ in ahead.GetBatches(1, rows, cancellationToken: cts.Token)) cts.Cancel();
        });
    }

    [Fact]
    public void AShardThatCannotBeReadFailsOnTheConsumersThreadNamingTheFile()
    {
        string dir = Path.Combine(StoreTestData.NewTempDir(), "copy");
        Directory.CreateDirectory(dir);
        foreach (var f in Directory.GetFiles(Store.Value.Directory)) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
        var store = EmbeddingStore.Open(dir);
        string victim = Path.Combine(dir, store.Shards[3].File);
        var source = new EmbeddingStoreDataSource(store) { PrefetchBatches = 2 };
        File.WriteAllBytes(victim, [1, 2, 3]);
        var e = Assert.ThrowsAny<Exception>(() => source.GetBatches(4).ToList());
        Assert.Contains(store.Shards[3].File, e.ToString());
    }

    [Fact]
    public void StoreFedTrainingResumesBitIdentically()
    {
        var root = StoreTestData.NewTempDir();
        AlignmentOptions Options(string dir, bool onCancel = true) => new()
        {
            Projector = ProjectorOptions.PooledMlp(16) with { Dropout = 0.2f },
            Training = new AlignmentTrainingOptions
            {
                Epochs = 3, BatchSize = 8, WarmupSteps = 2, ValidationFraction = 0.2, CheckpointDirectory = dir,
                CheckpointEverySteps = 2, TorchThreads = 1, Seed = 3, CheckpointOnCancel = onCancel,
            },
        };
        var data = new EmbeddingStoreDataSource(Store.Value) { ShuffleBufferShards = 2 };
        var full = new AlignmentTrainer(Options(Path.Combine(root, "full"))).Fit(data);
        using var cts = new CancellationTokenSource();
        var progress = new ProjectorTests.SyncProgress<TrainingProgress>(p => { if (p.Step == 7 && p.Validation is null) cts.Cancel(); });
        string cut = Path.Combine(root, "cut");
        Assert.ThrowsAny<OperationCanceledException>(() => new AlignmentTrainer(Options(cut, onCancel: false)) { Progress = progress }.Fit(data, null, cts.Token));
        var resumed = new AlignmentTrainer(Options(cut, onCancel: false)).Resume(data);
        Assert.Equal(full.Model.GetWeights(), resumed.Model.GetWeights());
        Assert.Equal(full.History.Steps.Select(s => s.Loss), resumed.History.Steps.Select(s => s.Loss));
        full.Model.Dispose();
        resumed.Model.Dispose();
    }
}

using MLNet.Align.Embeddings;

namespace MLNet.Align.Tests.Embeddings;

public class EmbeddingStoreDataSourceTests
{
    private static readonly Lazy<(EmbeddingStore Pooled, EmbeddingStore Tokens)> Stores = new(() =>
    {
        string root = StoreTestData.NewTempDir();
        var pairs = PairsFile.Read(StoreTestData.FixturePairs);
        var pooled = EmbeddingPipeline.Run(pairs, Path.Combine(root, "pooled"), new HashImageEncoder(), new HashTextEncoder(),
            new EmbeddingPipelineOptions { ShardSize = 9 }).Store;
        var tokens = EmbeddingPipeline.Run(pairs, Path.Combine(root, "tokens"), new HashImageEncoder(), new HashTextEncoder(),
            new EmbeddingPipelineOptions { ShardSize = 9, ImageTokens = true, TextTokens = true }).Store;
        return (pooled, tokens);
    });

    [Fact]
    public void BatchesCoverAllRowsOnceInStoreOrderWithTheStoredValues()
    {
        var store = Stores.Value.Pooled;
        var source = new EmbeddingStoreDataSource(store);
        Assert.Equal(56, source.Count);
        Assert.Equal(HashImageEncoder.Dim, source.ImageDimension);
        Assert.Equal(HashTextEncoder.Dim, source.TextDimension);
        Assert.Null(source.ImageTokenDimension);
        var all = store.LoadPooled();
        var batches = source.GetBatches(10).ToList();
        Assert.Equal([10, 10, 10, 10, 10, 6], batches.Select(b => b.Indices.Length));
        Assert.Equal(Enumerable.Range(0, 56).Select(i => (long)i), batches.SelectMany(b => b.Indices));
        foreach (var b in batches)
            for (int i = 0; i < b.Indices.Length; i++)
            {
                Assert.Equal(all.Image.Row((int)b.Indices[i]).ToArray(), b.ImagePooled.Row(i).ToArray());
                Assert.Equal(all.Text!.Row((int)b.Indices[i]).ToArray(), b.TextPooled.Row(i).ToArray());
            }
        Assert.Throws<InvalidOperationException>(() => source.GetBatches(10, withTokens: true).ToList());
    }

    [Theory]
    [InlineData(1L << 30)] // all 7 shards cached: each read once
    [InlineData(1L)]       // budget below one shard: only the current shard is kept, shards are re-read
    public void AGivenOrderJumpingBetweenShardsKeepsThatOrderAndTheValues(long cacheBytes)
    {
        var store = Stores.Value.Pooled;
        var source = new EmbeddingStoreDataSource(store) { ShardCacheBytes = cacheBytes };
        var order = Enumerable.Range(0, 56).Select(i => (long)i).ToArray();
        new Random(7).Shuffle(order); // the trainer's per-epoch permutation: consecutive rows from different shards
        var all = store.LoadPooled();
        var batches = source.GetBatches(16, order).ToList();
        Assert.Equal(order, batches.SelectMany(b => b.Indices));
        foreach (var b in batches)
            for (int i = 0; i < b.Indices.Length; i++)
            {
                Assert.Equal(all.Image.Row((int)b.Indices[i]).ToArray(), b.ImagePooled.Row(i).ToArray());
                Assert.Equal(all.Text!.Row((int)b.Indices[i]).ToArray(), b.TextPooled.Row(i).ToArray());
            }
    }

    [Fact]
    public void ShuffleIsDeterministicPerSeedAndVisitsEveryRowOnce()
    {
        var source = new EmbeddingStoreDataSource(Stores.Value.Pooled) { Shuffle = StoreShuffle.ShardBuffered, ShuffleBufferShards = 1 };
        var a = source.GetBatches(8, shuffleSeed: 1).SelectMany(b => b.Indices).ToList();
        var a2 = source.GetBatches(8, shuffleSeed: 1).SelectMany(b => b.Indices).ToList();
        var c = source.GetBatches(8, shuffleSeed: 2).SelectMany(b => b.Indices).ToList();
        Assert.Equal(a, a2);
        Assert.NotEqual(a, c);
        Assert.NotEqual(Enumerable.Range(0, 56).Select(i => (long)i), a);
        Assert.Equal(Enumerable.Range(0, 56).Select(i => (long)i), a.Order());
        Assert.Equal(Enumerable.Range(0, 56).Select(i => (long)i), c.Order());
        // a one-shard buffer is a block shuffle: the first 9 rows visited all come from one shard
        var firstShard = a.Take(9).Select(r => r / 9).Distinct().ToList();
        Assert.Single(firstShard);
    }

    [Fact]
    public void RowSubsetsForTrainValidationSplits()
    {
        var source = new EmbeddingStoreDataSource(Stores.Value.Pooled);
        long[] val = [50, 3, 4, 17, 0, 55];
        Assert.Equal(val, source.GetBatches(4, val).SelectMany(b => b.Indices)); // given order without a seed
        var train = Enumerable.Range(0, 56).Select(i => (long)i).Except(val).ToList();
        var shuffled = source.GetBatches(16, train, shuffleSeed: 7).SelectMany(b => b.Indices).ToList();
        Assert.Equal(train, shuffled.Order());
        Assert.Throws<ArgumentOutOfRangeException>(() => source.GetBatches(4, [56]).ToList());
    }

    [Fact]
    public void TokensComeWithTheRightShapesOnRequest()
    {
        var store = Stores.Value.Tokens;
        var source = new EmbeddingStoreDataSource(store);
        Assert.Equal(HashImageEncoder.TokenDim, source.ImageTokenDimension);
        Assert.Equal(HashTextEncoder.TokenDim, source.TextTokenDimension);
        var all = store.LoadPooled();
        int seen = 0;
        foreach (var b in source.GetBatches(12, shuffleSeed: 3, withTokens: true))
        {
            int n = b.Indices.Length;
            Assert.Equal(n, b.ImageTokens!.Count);
            Assert.Equal(HashImageEncoder.TokenCount, b.ImageTokens.MaxTokens);
            Assert.Equal(HashImageEncoder.TokenDim, b.ImageTokens.Dimension);
            var words = b.Indices.Select(i => HashTextEncoder.WordCount(all.Captions[(int)i]!)).ToArray();
            Assert.Equal(words, b.TextTokens!.Lengths);
            Assert.Equal(words.Max(), b.TextTokens.MaxTokens);
            Assert.Equal(HashTextEncoder.TokenDim, b.TextTokens.Dimension);
            // tokens are the encoder's own values (double writes values >= 1 inside the length, zeros after)
            for (int i = 0; i < n; i++)
            {
                var item = b.TextTokens.Item(i);
                Assert.All(item[..(words[i] * HashTextEncoder.TokenDim)].ToArray(), v => Assert.True(v >= 1f));
                Assert.All(item[(words[i] * HashTextEncoder.TokenDim)..].ToArray(), v => Assert.Equal(0f, v));
            }
            var expect = new HashTextEncoder().EncodeBatch(b.Indices.Select(i => all.Captions[(int)i]!).ToList(), withTokens: true).Tokens!;
            Assert.Equal(expect.Data, b.TextTokens.Data);
            seen += n;
        }
        Assert.Equal(56, seen);
    }
}

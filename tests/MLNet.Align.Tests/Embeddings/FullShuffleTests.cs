using MLNet.Align.Embeddings;
using MLNet.Align.Projection;

namespace MLNet.Align.Tests.Embeddings;

/// <summary>The store's default epoch order is a full uniform permutation (issue 17 item 6: the order owes nothing to the
/// input's), served row by row in place with the same values as decoding whole shards.</summary>
public class FullShuffleTests
{
    // 56 fixture pairs (several captions share an image) in shards of 4 rows: 14 shards, fp16, with tokens.
    private static readonly Lazy<EmbeddingStore> Store = new(() =>
        EmbeddingPipeline.Run(PairsFile.Read(StoreTestData.WriteMultiCaptionPairs(StoreTestData.NewTempDir(), 30)), Path.Combine(StoreTestData.NewTempDir(), "store"),
            new HashImageEncoder(), new HashTextEncoder(),
            new EmbeddingPipelineOptions { ShardSize = 4, DType = EmbeddingDType.Float16, ImageTokens = true, TextTokens = true }).Store);

    [Fact]
    public void TheDefaultEpochOrderIsTheSeededUniformPermutationOfInMemorySources()
    {
        var store = Store.Value;
        var source = new EmbeddingStoreDataSource(store);
        Assert.Equal(StoreShuffle.Full, source.Shuffle);
        var rows = Enumerable.Range(0, (int)store.Rows).Where(i => i % 3 != 0).Select(i => (long)i).ToArray();
        var expected = rows.ToArray();
        new Random(11).Shuffle(expected);
        Assert.Equal(expected, source.EpochOrder(rows, 11));
        // Not a stretch-by-stretch order: the first 8 rows already come from more than the 4-shard buffer's shards.
        Assert.True(expected.Take(8).Select(store.ShardOf).Distinct().Count() > 4);
        var seeded = source.GetBatches(5, shuffleSeed: 11).SelectMany(b => b.Indices).ToArray();
        var all = Enumerable.Range(0, (int)store.Rows).Select(i => (long)i).ToArray();
        new Random(11).Shuffle(all);
        Assert.Equal(all, seeded);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    public void RowByRowReadsGiveTheSameBatchesAsDecodedShards(int prefetch)
    {
        var store = Store.Value;
        var loaded = store.LoadPooled();
        var source = new EmbeddingStoreDataSource(store) { PrefetchBatches = prefetch };
        var order = source.EpochOrder(Enumerable.Range(0, (int)store.Rows).Select(i => (long)i).ToArray(), 5);
        var batches = source.GetBatches(7, order, withTokens: true).ToList();
        Assert.Equal(order, batches.SelectMany(b => b.Indices));
        // The same rows, each read from its whole decoded shard (store order within one shard is served that way).
        foreach (var b in batches)
            for (int i = 0; i < b.Indices.Length; i++)
            {
                long row = b.Indices[i];
                Assert.Equal(loaded.Image.Row((int)row).ToArray(), b.ImagePooled.Row(i).ToArray());
                Assert.Equal(loaded.Text!.Row((int)row).ToArray(), b.TextPooled.Row(i).ToArray());
                var one = source.GetBatches(1, [row], withTokens: true).Single();
                Assert.Equal(one.ImageTokens!.Lengths[0], b.ImageTokens!.Lengths[i]);
                Assert.Equal(one.TextTokens!.Lengths[0], b.TextTokens!.Lengths[i]);
                Assert.Equal(one.ImageTokens.Item(0)[..(one.ImageTokens.Lengths[0] * one.ImageTokens.Dimension)].ToArray(),
                    b.ImageTokens.Item(i)[..(b.ImageTokens.Lengths[i] * b.ImageTokens.Dimension)].ToArray());
                Assert.Equal(one.TextTokens.Item(0)[..(one.TextTokens.Lengths[0] * one.TextTokens.Dimension)].ToArray(),
                    b.TextTokens.Item(i)[..(b.TextTokens.Lengths[i] * b.TextTokens.Dimension)].ToArray());
            }
    }

    [Fact]
    public void StoreFedTrainingOnAClassSortedInputEqualsInMemoryTrainingOnTheSameRows()
    {
        // A class-sorted input (labels c0..c3 in blocks), fp32 so the store holds the exact values, shards of 4 rows.
        string dir = StoreTestData.NewTempDir();
        var lines = File.ReadAllLines(StoreTestData.WriteMultiCaptionPairs(dir, 30));
        string sorted = Path.Combine(dir, "sorted.tsv");
        File.WriteAllLines(sorted, [lines[0], .. lines.Skip(1).OrderBy(l => l.Split('\t')[2], StringComparer.Ordinal)]);
        var store = EmbeddingPipeline.Run(PairsFile.Read(sorted), Path.Combine(dir, "store"), new HashImageEncoder(), new HashTextEncoder(),
            new EmbeddingPipelineOptions { ShardSize = 4, DType = EmbeddingDType.Float32 }).Store;
        var loaded = store.LoadPooled();
        AlignmentOptions Options() => new()
        {
            Projector = ProjectorOptions.PooledMlp(16),
            Training = new AlignmentTrainingOptions { Epochs = 2, BatchSize = 8, WarmupSteps = 2, ValidationFraction = 0.2, TorchThreads = 1, Seed = 7 },
        };
        var fromStore = new AlignmentTrainer(Options()).Fit(new EmbeddingStoreDataSource(store));
        var inMemory = new AlignmentTrainer(Options()).Fit(new InMemoryAlignmentData(loaded.Image, loaded.Text!));
        Assert.True(fromStore.History.Steps.Count >= 6);
        Assert.Equal(inMemory.History.Steps.Select(s => s.Loss), fromStore.History.Steps.Select(s => s.Loss));
        Assert.Equal(inMemory.Model.GetWeights(), fromStore.Model.GetWeights());
        fromStore.Model.Dispose();
        inMemory.Model.Dispose();
    }

    [Fact]
    public void AShardAlteredOnDiskFailsTheRowReaderNamingTheFile()
    {
        string copy = StoreTestData.NewTempDir();
        foreach (var f in Directory.GetFiles(Store.Value.Directory)) File.Copy(f, Path.Combine(copy, Path.GetFileName(f)));
        var store = EmbeddingStore.Open(copy);
        // Truncate one shard: the header no longer matches the file length.
        string shard = Path.Combine(copy, store.Shards[3].File);
        var bytes = File.ReadAllBytes(shard);
        File.WriteAllBytes(shard, bytes[..^10]);
        var source = new EmbeddingStoreDataSource(store) { PrefetchBatches = 0 };
        var order = source.EpochOrder(Enumerable.Range(0, (int)store.Rows).Select(i => (long)i).ToArray(), 2);
        var e = Assert.Throws<InvalidDataException>(() => source.GetBatches(8, order).ToList());
        Assert.Contains(store.Shards[3].File, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RowReadsVerifyAShardAgainstTheManifestAndRefuseNaN()
    {
        foreach (var edit in new[] { "tamper", "nan" })
        {
            string copy = StoreTestData.NewTempDir();
            foreach (var f in Directory.GetFiles(Store.Value.Directory)) File.Copy(f, Path.Combine(copy, Path.GetFileName(f)));
            var store = EmbeddingStore.Open(copy);
            string shard = Path.Combine(copy, store.Shards[2].File);
            var bytes = File.ReadAllBytes(shard);
            if (edit == "tamper") { bytes[^3] ^= 0x5A; bytes[^2] ^= 0x3C; } // same size: only the checksum can tell
            else
            {
                // A NaN (fp16 0x7E00) in slot 0's first image value, with the manifest made to agree: only the finite check refuses it.
                ShardFile.Header header;
                using (var h = File.OpenHandle(shard)) header = ShardFile.ReadHeader(h, shard);
                bytes[header.ImagePooledOffset] = 0x00; bytes[header.ImagePooledOffset + 1] = 0x7E;
            }
            string before = store.Shards[2].Sha256;
            File.WriteAllBytes(shard, bytes);
            if (edit == "nan")
            {
                var manifestPath = Path.Combine(copy, EmbeddingStore.ManifestFileName);
                File.WriteAllText(manifestPath, File.ReadAllText(manifestPath).Replace(before, ShardFile.ComputeSha256(shard), StringComparison.Ordinal));
                store = EmbeddingStore.Open(copy);
            }
            var source = new EmbeddingStoreDataSource(store) { PrefetchBatches = 0 };
            var order = source.EpochOrder(Enumerable.Range(0, (int)store.Rows).Select(i => (long)i).ToArray(), 2);
            var e = Assert.Throws<InvalidDataException>(() => source.GetBatches(8, order).ToList());
            Assert.Contains(edit == "tamper" ? "does not match its manifest" : "non-finite", e.Message, StringComparison.Ordinal);
        }
    }
}

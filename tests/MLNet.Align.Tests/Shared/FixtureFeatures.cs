using MLNet.Align.Demo.Data;
using MLNet.Align.Embeddings;
using MLNet.Align.Encoders;
using MLNet.Align.Projection;

namespace MLNet.Align.Tests.Shared;

/// <summary>
/// The one source of real features for the committed fixtures: the library's packaged encoders
/// (<see cref="PackagedEncoders.ResNet18"/>, <see cref="PackagedEncoders.MiniLM"/>) over tests/fixtures, each part
/// computed lazily, once per test run, thread-safe (<see cref="Lazy{T}"/>). The encoders are shared by every test and
/// never disposed mid-run (the process exit releases their sessions); they are thread-safe.
/// </summary>
public static class FixtureFeatures
{
    /// <summary>tests/fixtures as copied to the test output folder.</summary>
    public static string Dir => Path.Combine(AppContext.BaseDirectory, "fixtures");
    /// <summary>tests/fixtures/pairs/pairs.tsv: 56 image-caption pairs.</summary>
    public static string PairsFile => Path.Combine(Dir, "pairs", "pairs.tsv");
    /// <summary>tests/fixtures/pairs/images: the pair images (PNG).</summary>
    public static string PairImages => Path.Combine(Dir, "pairs", "images");
    /// <summary>A file under tests/fixtures/labelled/.</summary>
    public static string Labelled(string name) => Path.Combine(Dir, "labelled", name);

    private static readonly Lazy<OnnxImageEncoder> s_resnet = new(() => PackagedEncoders.ResNet18(batchSize: 16));
    private static readonly Lazy<OnnxTextEncoder> s_miniLM = new(() => PackagedEncoders.MiniLM());
    private static readonly Lazy<IReadOnlyList<PairRecord>> s_pairs = new(() => PairsTsv.Read(PairsFile));
    private static readonly Lazy<EncodedBatch> s_images = new(() => ResNet18.EncodeBatch(ImagePaths, withTokens: true));
    private static readonly Lazy<EncodedBatch> s_texts = new(() => MiniLM.EncodeBatch(Captions, withTokens: true));
    private static readonly Lazy<InMemoryAlignmentData> s_alignment = new(() => new(Images.Pooled, Texts.Pooled, Images.Tokens, Texts.Tokens));
    private static readonly Lazy<LabelledFeatures> s_fashion = new(() => EncodeLabelled("fashion-mnist", IdxReader.FashionMnistClassNames));
    private static readonly Lazy<LabelledFeatures> s_mnist = new(() => EncodeLabelled("mnist", IdxReader.MnistDigitWords));

    /// <summary>The packaged ResNet-18 (batch 16): pooled 512-d, 49 tokens of 512.</summary>
    public static OnnxImageEncoder ResNet18 => s_resnet.Value;
    /// <summary>The packaged all-MiniLM-L6-v2: pooled 384-d (L2-normalised), tokens 384-d.</summary>
    public static OnnxTextEncoder MiniLM => s_miniLM.Value;

    /// <summary>The 56 fixture pairs as read by the library's <see cref="PairsTsv"/>.</summary>
    public static IReadOnlyList<PairRecord> Pairs => s_pairs.Value;
    /// <summary>Absolute image path of each pair.</summary>
    public static string[] ImagePaths => Pairs.Select(p => Path.Combine(Dir, "pairs", p.Image)).ToArray();
    /// <summary>Caption of each pair.</summary>
    public static string[] Captions => Pairs.Select(p => p.Caption).ToArray();
    /// <summary>Coarse label (category) of each pair.</summary>
    public static string[] Labels => Pairs.Select(p => p.Label).ToArray();
    /// <summary>Source (tuxpaint, emoji, openclipart) of each pair.</summary>
    public static string[] Sources => Pairs.Select(p => p.Source).ToArray();

    /// <summary>ResNet-18 features of the 56 pair images: pooled [56, 512] and tokens [56, 49, 512].</summary>
    public static EncodedBatch Images => s_images.Value;
    /// <summary>MiniLM features of the 56 captions: pooled [56, 384] and padded tokens [56, L, 384] with lengths.</summary>
    public static EncodedBatch Texts => s_texts.Value;
    /// <summary><see cref="Images"/> and <see cref="Texts"/> (pooled and tokens) as alignment training data.</summary>
    public static InMemoryAlignmentData AlignmentData => s_alignment.Value;

    /// <summary>ResNet-18 pooled features [300, 512] of the 300 Fashion-MNIST fixture items, with their labels.</summary>
    public static LabelledFeatures FashionMnist => s_fashion.Value;
    /// <summary>ResNet-18 pooled features [300, 512] of the 300 MNIST fixture items, with their labels.</summary>
    public static LabelledFeatures Mnist => s_mnist.Value;

    private static LabelledFeatures EncodeLabelled(string name, IReadOnlyList<string> classNames)
    {
        var set = IdxReader.ReadLabelled(Labelled($"{name}-t10k-300-images-idx3-ubyte"), Labelled($"{name}-t10k-300-labels-idx1-ubyte"), classNames);
        var bitmaps = Enumerable.Range(0, set.Count).Select(set.Images.ToBitmap).ToArray();
        try { return new LabelledFeatures(set, ResNet18.EncodeBitmaps(bitmaps).Pooled); }
        finally { foreach (var b in bitmaps) b.Dispose(); }
    }
}

/// <summary>A labelled idx fixture and the ResNet-18 pooled features of its images.</summary>
public sealed record LabelledFeatures(LabelledIdxSet Set, EmbeddingMatrix Features)
{
    /// <summary>Label of each item, 0..9.</summary>
    public int[] Labels => Set.Labels.Select(b => (int)b).ToArray();
}

/// <summary>Float comparisons shared by the tests.</summary>
public static class Vectors
{
    /// <summary>Largest absolute element difference; the lengths must match.</summary>
    public static float MaxAbsDiff(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        Assert.Equal(a.Length, b.Length);
        float m = 0;
        for (int i = 0; i < a.Length; i++) m = Math.Max(m, Math.Abs(a[i] - b[i]));
        return m;
    }

    /// <summary>Cosine similarity.</summary>
    public static float Cosine(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
        => System.Numerics.Tensors.TensorPrimitives.CosineSimilarity(a, b);
}

using MLNet.Align.Embeddings;
using MLNet.Align.Encoders;

namespace MLNet.Align.Tests.Projection;

/// <summary>Pooled features of the 56 fixture pairs from the packaged encoders (ResNet-18 512-d, all-MiniLM-L6-v2
/// 384-d), fp32, computed once per test run for the closed-form initialiser, regulariser and CLI tests.</summary>
public static class PackagedPairFeatures
{
    private static readonly Lazy<(EmbeddingMatrix Image, EmbeddingMatrix Text)> _features = new(Encode);

    public static string PairsPath => Path.Combine(AppContext.BaseDirectory, "fixtures", "pairs", "pairs.tsv");
    public static EmbeddingMatrix Image => _features.Value.Image;
    public static EmbeddingMatrix Text => _features.Value.Text;
    public static InMemoryAlignmentData Data => new(Image, Text);

    private static (EmbeddingMatrix, EmbeddingMatrix) Encode()
    {
        var root = Path.GetDirectoryName(PairsPath)!;
        var rows = File.ReadAllLines(PairsPath).Skip(1).Where(l => l.Length > 0).Select(l => l.Split('\t')).ToList();
        using var image = PackagedEncoders.ResNet18();
        using var text = PackagedEncoders.MiniLM();
        var i = image.EncodeBatch(rows.Select(r => Path.Combine(root, r[0])).ToList()).Pooled;
        var t = text.EncodeBatch(rows.Select(r => r[1]).ToList()).Pooled;
        return (i, t);
    }
}

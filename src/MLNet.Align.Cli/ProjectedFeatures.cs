using MLNet.Align.Embeddings;
using MLNet.Align.Encoders;
using MLNet.Align.Projection;

namespace MLNet.Align.Cli;

/// <summary>
/// Encodes and projects in chunks for models whose projectors read token features (the paper's token projectors):
/// tokens are never cached by the eval commands (DINOv2-L tokens are ~0.5 MB per image), so memory stays
/// O(chunk x tokens). Pooled-only models go through <see cref="FeatureCache"/> instead.
/// </summary>
internal static class ProjectedFeatures
{
    private const int Chunk = 64;

    /// <summary>Aligned image embeddings [N, E] of <paramref name="paths"/>, in order.</summary>
    public static EmbeddingMatrix Images(AlignedModel model, IImageEncoder encoder, IReadOnlyList<string> paths, CancellationToken ct)
        => Project(paths.Count, model.EmbeddingDimension, (start, count) =>
        {
            var enc = encoder.EncodeBatch(Slice(paths, start, count), model.UsesImageTokens, ct);
            return model.ProjectImages(enc.Pooled, model.UsesImageTokens ? enc.Tokens : null);
        });

    /// <summary>Aligned text embeddings [N, E] of <paramref name="texts"/>, in order.</summary>
    public static EmbeddingMatrix Texts(AlignedModel model, ITextEncoder encoder, IReadOnlyList<string> texts, CancellationToken ct)
        => Project(texts.Count, model.EmbeddingDimension, (start, count) =>
        {
            var enc = encoder.EncodeBatch(Slice(texts, start, count), model.UsesTextTokens, ct);
            return model.ProjectTexts(enc.Pooled, model.UsesTextTokens ? enc.Tokens : null);
        });

    private static string[] Slice(IReadOnlyList<string> items, int start, int count)
        => Enumerable.Range(start, count).Select(i => items[i]).ToArray();

    private static EmbeddingMatrix Project(int n, int e, Func<int, int, EmbeddingMatrix> chunk)
    {
        var data = new float[(long)n * e];
        for (int start = 0; start < n; start += Chunk)
        {
            int count = Math.Min(Chunk, n - start);
            chunk(start, count).Data.AsSpan().CopyTo(data.AsSpan(start * e, count * e));
        }
        return new EmbeddingMatrix(data, n, e);
    }
}

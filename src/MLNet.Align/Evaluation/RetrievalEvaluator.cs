using System.Text.Json.Serialization;
using MLNet.Align.Embeddings;

namespace MLNet.Align.Evaluation;

/// <summary>Recall@K values for one direction, as fractions in [0, 1].</summary>
public sealed record RecallAtK
{
    /// <summary>Recall@1.</summary>
    [JsonPropertyName("r1")] public double R1 { get; init; }
    /// <summary>Recall@5.</summary>
    [JsonPropertyName("r5")] public double R5 { get; init; }
    /// <summary>Recall@10.</summary>
    [JsonPropertyName("r10")] public double R10 { get; init; }
    /// <summary>Every requested K (always includes 1, 5, 10), keyed "r{K}".</summary>
    [JsonPropertyName("at")] public IReadOnlyDictionary<string, double> At { get; init; } = new Dictionary<string, double>();
    /// <summary>Median (1-based) rank of the first positive.</summary>
    [JsonPropertyName("median_rank")] public double MedianRank { get; init; }
    /// <summary>Mean of R1, R5 and R10.</summary>
    [JsonPropertyName("mean")] public double Mean => (R1 + R5 + R10) / 3.0;

    /// <summary>Recall@<paramref name="k"/> if it was computed.</summary>
    /// <exception cref="KeyNotFoundException">K was not requested.</exception>
    public double Recall(int k) => At.TryGetValue($"r{k}", out var v) ? v : throw new KeyNotFoundException($"Recall@{k} was not computed (have {string.Join(", ", At.Keys)}).");
}

/// <summary>Image-text retrieval result (paper section 4.2, ALBEF <c>itm_eval</c>).</summary>
public sealed record RetrievalResult
{
    /// <summary>Number of images (i2t queries).</summary>
    [JsonPropertyName("n")] public int N { get; init; }
    /// <summary>Number of captions (t2i queries).</summary>
    [JsonPropertyName("n_captions")] public int Captions { get; init; }
    /// <summary>Image to text: an image is a hit at K when any of its captions ranks in the top K.</summary>
    [JsonPropertyName("i2t")] public required RecallAtK ImageToText { get; init; }
    /// <summary>Text to image: a caption is a hit at K when its image ranks in the top K.</summary>
    [JsonPropertyName("t2i")] public required RecallAtK TextToImage { get; init; }
    /// <summary>Mean of the six R@{1,5,10} values (ALBEF's r_mean).</summary>
    [JsonPropertyName("r_mean")] public double RMean => (ImageToText.Mean + TextToImage.Mean) / 2.0;
}

/// <summary>
/// Recall@K for image-to-text and text-to-image retrieval over aligned, L2-normalised embeddings. The score is the dot
/// product (cosine for unit rows). Ranks are those of a stable descending sort: an item tied with the positive counts
/// as ranked above it only if its index is lower, so the result is deterministic and no tie is resolved in favour of
/// the positive by accident.
/// </summary>
public static class RetrievalEvaluator
{
    /// <summary>The default cut-offs K = 1, 5, 10.</summary>
    public static readonly IReadOnlyList<int> DefaultKs = new[] { 1, 5, 10 };

    /// <summary>Evaluates retrieval.</summary>
    /// <param name="images">Aligned image embeddings [nImg, E].</param>
    /// <param name="captions">Aligned caption embeddings [nCap, E].</param>
    /// <param name="captionImage">For each caption, the row of its image in <paramref name="images"/> (length nCap).</param>
    /// <param name="ks">Cut-offs; 1, 5 and 10 are always added.</param>
    /// <exception cref="ArgumentException">Widths differ, lengths disagree, an index is out of range, an image has no
    /// caption, or a K is not positive.</exception>
    /// <exception cref="InvalidDataException">An embedding or a similarity is NaN or infinite (a NaN would compare
    /// false with every score and rank as a hit: 100% Recall@1); the message names the row and column.</exception>
    public static RetrievalResult Evaluate(EmbeddingMatrix images, EmbeddingMatrix captions, IReadOnlyList<int> captionImage, IEnumerable<int>? ks = null)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(captions);
        ArgumentNullException.ThrowIfNull(captionImage);
        if (images.Columns != captions.Columns)
            throw new ArgumentException($"Image embeddings have width {images.Columns} but caption embeddings {captions.Columns}.");
        if (captionImage.Count != captions.Rows)
            throw new ArgumentException($"captionImage has {captionImage.Count} entries, expected one per caption ({captions.Rows}).", nameof(captionImage));
        if (images.Rows == 0) throw new ArgumentException("No images to evaluate.", nameof(images));
        FiniteCheck.Require(images, "Image embeddings", "retrieval needs finite embeddings (a diverged model or a NaN feature?)");
        FiniteCheck.Require(captions, "Caption embeddings", "retrieval needs finite embeddings (a diverged model or a NaN feature?)");
        var kList = DefaultKs.Concat(ks ?? Array.Empty<int>()).Distinct().OrderBy(k => k).ToArray();
        if (kList[0] <= 0) throw new ArgumentException($"K must be positive, got {kList[0]}.", nameof(ks));

        var positives = new List<int>[images.Rows];
        for (int i = 0; i < positives.Length; i++) positives[i] = new List<int>();
        for (int c = 0; c < captionImage.Count; c++)
        {
            int img = captionImage[c];
            if ((uint)img >= (uint)images.Rows)
                throw new ArgumentException($"Caption {c} points to image {img}, outside [0, {images.Rows}).", nameof(captionImage));
            positives[img].Add(c);
        }
        for (int i = 0; i < positives.Length; i++)
            if (positives[i].Count == 0)
                throw new ArgumentException($"Image {i} has no caption; every image needs at least one positive.", nameof(captionImage));

        // i2t: rank of the best-ranked positive caption among all captions.
        var i2tRanks = new int[images.Rows];
        var isPositive = new bool[captions.Rows];
        DenseMath.ForEachSimilarityChunk(images, captions, (start, n, s) =>
        {
            RequireFiniteScores(s.AsSpan(0, n * captions.Rows), captions.Rows, start, "image", "caption");
            for (int r = 0; r < n; r++)
            {
                int i = start + r;
                var row = s.AsSpan(r * captions.Rows, captions.Rows);
                foreach (int c in positives[i]) isPositive[c] = true;
                int best = int.MaxValue;
                foreach (int c in positives[i]) best = Math.Min(best, RankOf(row, c, isPositive));
                foreach (int c in positives[i]) isPositive[c] = false;
                i2tRanks[i] = best;
            }
        });

        // t2i: rank of the caption's own image among all images.
        var t2iRanks = new int[captions.Rows];
        var none = new bool[images.Rows];
        DenseMath.ForEachSimilarityChunk(captions, images, (start, n, s) =>
        {
            for (int r = 0; r < n; r++)
            {
                int c = start + r;
                t2iRanks[c] = RankOf(s.AsSpan(r * images.Rows, images.Rows), captionImage[c], none);
            }
        });

        return new RetrievalResult
        {
            N = images.Rows,
            Captions = captions.Rows,
            ImageToText = Summarise(i2tRanks, kList),
            TextToImage = Summarise(t2iRanks, kList),
        };
    }

    /// <summary>Finite embeddings can still overflow to an infinite dot product (values near 1e20): refuse it too.</summary>
    internal static void RequireFiniteScores(ReadOnlySpan<float> scores, int columns, int firstRow, string rowWhat, string columnWhat)
    {
        int at = FiniteCheck.IndexOfNonFinite(scores);
        if (at < 0) return;
        int row = firstRow + at / columns, col = at % columns;
        throw new InvalidDataException($"The similarity of {rowWhat} {row} and {columnWhat} {col} is {FiniteCheck.Name(scores[at])}: " +
            "the embeddings are too large to compare (not L2-normalised?)");
    }

    /// <summary>0-based rank of <paramref name="target"/> in a stable descending sort, skipping other positives.</summary>
    private static int RankOf(ReadOnlySpan<float> scores, int target, bool[] skip)
    {
        float t = scores[target];
        int rank = 0;
        for (int j = 0; j < scores.Length; j++)
        {
            if (j == target || skip[j]) continue;
            float v = scores[j];
            if (v > t || (v == t && j < target)) rank++;
        }
        return rank;
    }

    private static RecallAtK Summarise(int[] ranks, int[] ks)
    {
        var at = new Dictionary<string, double>();
        foreach (int k in ks) at[$"r{k}"] = ranks.Count(r => r < k) / (double)ranks.Length;
        var sorted = ranks.Order().ToArray();
        double median = sorted.Length % 2 == 1
            ? sorted[sorted.Length / 2] + 1
            : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2.0 + 1;
        return new RecallAtK { R1 = at["r1"], R5 = at["r5"], R10 = at["r10"], At = at, MedianRank = median };
    }
}

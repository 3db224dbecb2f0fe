using System.Diagnostics;
using System.Numerics.Tensors;
using System.Text.Json.Serialization;
using MLNet.Align.Embeddings;
using MLNet.Align.Evaluation;

namespace MLNet.Align.Similarity;

/// <summary>Which score orders the candidate pairs.</summary>
public enum PairMetric
{
    /// <summary>Linear CKA (the released selection script's choice).</summary>
    LinearCka,
    /// <summary>Linear CKA, unbiased HSIC.</summary>
    UnbiasedLinearCka,
    /// <summary>RBF-kernel CKA (the paper's CKA-vs-alignment figure).</summary>
    KernelCka,
    /// <summary>Mutual k-NN alignment.</summary>
    MutualKnn,
}

/// <summary>Scores of one (image encoder, text encoder) candidate on the probe set.</summary>
public sealed record EncoderPairScore
{
    /// <summary>1-based position in <see cref="EncoderPairReport.Pairs"/> (1 = best by the report's metric).</summary>
    [JsonPropertyName("rank")] public int Rank { get; init; }
    /// <summary>Name of the image encoder candidate.</summary>
    [JsonPropertyName("image_encoder")] public required string ImageEncoder { get; init; }
    /// <summary>Name of the text encoder candidate.</summary>
    [JsonPropertyName("text_encoder")] public required string TextEncoder { get; init; }
    /// <summary>Width of the image features scored.</summary>
    [JsonPropertyName("image_dim")] public int ImageDimension { get; init; }
    /// <summary>Width of the text features scored.</summary>
    [JsonPropertyName("text_dim")] public int TextDimension { get; init; }
    /// <summary>Linear CKA in [0, 1] (<see cref="Cka.Linear"/>, docs/method.md section 1.1); always computed.</summary>
    [JsonPropertyName("linear_cka")] public double LinearCka { get; init; }
    /// <summary>Linear CKA with the unbiased HSIC estimator (may dip slightly below 0), or null when not computed.</summary>
    [JsonPropertyName("unbiased_linear_cka")] public double? UnbiasedLinearCka { get; init; }
    /// <summary>RBF-kernel CKA in [0, 1] (docs/method.md section 1.2), or null when not computed.</summary>
    [JsonPropertyName("kernel_cka")] public double? KernelCka { get; init; }
    /// <summary>Mutual k-NN alignment in [0, 1] (<see cref="Similarity.MutualKnn"/>), or null when not computed.</summary>
    [JsonPropertyName("mutual_knn")] public double? MutualKnn { get; init; }
    /// <summary>Wall-clock seconds spent scoring this pair.</summary>
    [JsonPropertyName("seconds")] public double Seconds { get; init; }

    /// <summary>The value of <paramref name="metric"/>, or null when it was not computed.</summary>
    public double? Get(PairMetric metric) => metric switch
    {
        PairMetric.LinearCka => LinearCka,
        PairMetric.UnbiasedLinearCka => UnbiasedLinearCka,
        PairMetric.KernelCka => KernelCka,
        PairMetric.MutualKnn => MutualKnn,
        _ => null,
    };
}

/// <summary>Stage-1 report: every candidate pair scored on the same probe set, best first.</summary>
public sealed record EncoderPairReport
{
    /// <summary>Probe items (pairs) n.</summary>
    [JsonPropertyName("n")] public int N { get; init; }
    /// <summary>The metric that orders <see cref="Pairs"/>.</summary>
    [JsonPropertyName("metric")] public PairMetric Metric { get; init; }
    /// <summary>k of the mutual k-NN score, when computed.</summary>
    [JsonPropertyName("knn_k")] public int? KnnK { get; init; }
    /// <summary>RBF bandwidth factor of kernel CKA, when computed.</summary>
    [JsonPropertyName("sigma_factor")] public double? SigmaFactor { get; init; }
    /// <summary>Whether rows were L2-normalised before scoring.</summary>
    [JsonPropertyName("l2_normalized")] public bool L2Normalized { get; init; }
    /// <summary>Candidates sorted by <see cref="Metric"/>, descending; Rank 1 = best.</summary>
    [JsonPropertyName("pairs")] public required EncoderPairScore[] Pairs { get; init; }
    /// <summary>The best pair.</summary>
    [JsonIgnore] public EncoderPairScore Best => Pairs[0];

    /// <summary>A [image encoders, text encoders] grid of <paramref name="metric"/> (NaN where not computed), for heatmaps.</summary>
    public (string[] ImageEncoders, string[] TextEncoders, double[,] Values) Grid(PairMetric? metric = null)
    {
        var m = metric ?? Metric;
        var images = Pairs.Select(p => p.ImageEncoder).Distinct().Order(StringComparer.Ordinal).ToArray();
        var texts = Pairs.Select(p => p.TextEncoder).Distinct().Order(StringComparer.Ordinal).ToArray();
        var values = new double[images.Length, texts.Length];
        for (int i = 0; i < images.Length; i++) for (int j = 0; j < texts.Length; j++) values[i, j] = double.NaN;
        foreach (var p in Pairs)
            values[Array.IndexOf(images, p.ImageEncoder), Array.IndexOf(texts, p.TextEncoder)] = p.Get(m) ?? double.NaN;
        return (images, texts, values);
    }
}

/// <summary>
/// Stage 1 of Freeze-Align (paper section 1): rank candidate (image encoder, text encoder) pairs by the semantic
/// similarity of their frozen embeddings on one probe set of image-caption pairs (row i of every matrix = probe pair i).
/// Higher CKA predicts easier alignment.
/// </summary>
public static class EncoderPairRanker
{
    /// <summary>Ranking settings.</summary>
    public sealed record Options
    {
        /// <summary>The ordering metric (default linear CKA, as the released script).</summary>
        public PairMetric Metric { get; init; } = PairMetric.LinearCka;
        /// <summary>Also compute unbiased linear CKA (O(n²) memory).</summary>
        public bool UnbiasedLinearCka { get; init; } = true;
        /// <summary>Also compute RBF kernel CKA (O(n²) memory).</summary>
        public bool KernelCka { get; init; } = true;
        /// <summary>Also compute the mutual k-NN score.</summary>
        public bool MutualKnn { get; init; } = true;
        /// <summary>k of the mutual k-NN score (clamped to n − 1).</summary>
        public int KnnK { get; init; } = 10;
        /// <summary>RBF bandwidth = factor × median distance.</summary>
        public double SigmaFactor { get; init; } = 1.0;
        /// <summary>L2-normalise rows before scoring (the script does not for images; sentence embeddings already are).</summary>
        public bool L2Normalize { get; init; }
    }

    /// <summary>Scores every (image, text) combination and sorts best first.</summary>
    /// <param name="imageEncoders">Name → image embeddings [n, d_i] of the probe images.</param>
    /// <param name="textEncoders">Name → text embeddings [n, d_t] of the probe captions (same row order).</param>
    /// <param name="options">Settings; defaults when null.</param>
    /// <exception cref="ArgumentException">No candidates, row counts differ between any two matrices, or fewer than 4 rows.</exception>
    public static EncoderPairReport Rank(IReadOnlyDictionary<string, EmbeddingMatrix> imageEncoders, IReadOnlyDictionary<string, EmbeddingMatrix> textEncoders, Options? options = null)
    {
        options ??= new Options();
        ArgumentNullException.ThrowIfNull(imageEncoders);
        ArgumentNullException.ThrowIfNull(textEncoders);
        if (imageEncoders.Count == 0 || textEncoders.Count == 0)
            throw new ArgumentException($"Need at least one image and one text encoder, got {imageEncoders.Count} and {textEncoders.Count}.");
        int n = imageEncoders.First().Value.Rows;
        foreach (var (name, m) in imageEncoders.Concat(textEncoders))
            if (m.Rows != n)
                throw new ArgumentException($"Encoder '{name}' has {m.Rows} probe rows, expected {n} (every candidate must embed the same probe pairs).");
        if (n < 4) throw new ArgumentException($"The probe set needs at least 4 pairs, got {n}.");
        bool needUnbiased = options.UnbiasedLinearCka || options.Metric == PairMetric.UnbiasedLinearCka;
        bool needKernel = options.KernelCka || options.Metric == PairMetric.KernelCka;
        bool needKnn = options.MutualKnn || options.Metric == PairMetric.MutualKnn;
        int k = Math.Min(options.KnnK, n - 1);

        EmbeddingMatrix Prep(EmbeddingMatrix m) => options.L2Normalize ? DenseMath.NormalizeRows(m) : m;
        var scores = new List<EncoderPairScore>();
        foreach (var (imgName, imgRaw) in imageEncoders)
        {
            var img = Prep(imgRaw);
            foreach (var (txtName, txtRaw) in textEncoders)
            {
                var txt = Prep(txtRaw);
                var sw = Stopwatch.StartNew();
                scores.Add(new EncoderPairScore
                {
                    ImageEncoder = imgName,
                    TextEncoder = txtName,
                    ImageDimension = img.Columns,
                    TextDimension = txt.Columns,
                    LinearCka = Cka.Linear(img, txt),
                    UnbiasedLinearCka = needUnbiased ? Cka.LinearUnbiased(img, txt) : null,
                    KernelCka = needKernel ? Cka.Rbf(img, txt, options.SigmaFactor) : null,
                    MutualKnn = needKnn ? Similarity.MutualKnn.Score(img, txt, k) : null,
                    Seconds = sw.Elapsed.TotalSeconds,
                });
            }
        }
        var ordered = scores
            .OrderByDescending(s => s.Get(options.Metric) ?? double.NegativeInfinity)
            .ThenBy(s => s.ImageEncoder, StringComparer.Ordinal).ThenBy(s => s.TextEncoder, StringComparer.Ordinal)
            .Select((s, i) => s with { Rank = i + 1 })
            .ToArray();
        return new EncoderPairReport
        {
            N = n,
            Metric = options.Metric,
            KnnK = needKnn ? k : null,
            SigmaFactor = needKernel ? options.SigmaFactor : null,
            L2Normalized = options.L2Normalize,
            Pairs = ordered,
        };
    }

    /// <summary>
    /// Averages caption embeddings per image (the script's per-image text embedding: the mean of the image's caption
    /// vectors, not renormalised), so a probe set with several captions per image becomes one row per image.
    /// </summary>
    /// <param name="captions">[nCap, d].</param>
    /// <param name="captionImage">Image row of each caption, in [0, imageCount).</param>
    /// <param name="imageCount">Number of images.</param>
    /// <returns>[imageCount, d].</returns>
    /// <exception cref="ArgumentException">Length mismatch, index out of range, or an image without captions.</exception>
    public static EmbeddingMatrix AverageCaptionsPerImage(EmbeddingMatrix captions, IReadOnlyList<int> captionImage, int imageCount)
    {
        ArgumentNullException.ThrowIfNull(captions);
        ArgumentNullException.ThrowIfNull(captionImage);
        if (captionImage.Count != captions.Rows)
            throw new ArgumentException($"Got {captionImage.Count} caption-image indices for {captions.Rows} captions.", nameof(captionImage));
        int d = captions.Columns;
        var sums = new float[checked(imageCount * d)];
        var counts = new int[imageCount];
        for (int c = 0; c < captionImage.Count; c++)
        {
            int i = captionImage[c];
            if ((uint)i >= (uint)imageCount)
                throw new ArgumentException($"Caption {c} points to image {i}, outside [0, {imageCount}).", nameof(captionImage));
            var dst = sums.AsSpan(i * d, d);
            TensorPrimitives.Add(dst, captions.Row(c), dst);
            counts[i]++;
        }
        for (int i = 0; i < imageCount; i++)
        {
            if (counts[i] == 0) throw new ArgumentException($"Image {i} has no caption.", nameof(captionImage));
            var dst = sums.AsSpan(i * d, d);
            TensorPrimitives.Divide(dst, counts[i], dst);
        }
        return new EmbeddingMatrix(sums, imageCount, d);
    }
}

using MLNet.Align.Embeddings;
using MLNet.Align.Projection;

namespace MLNet.Align.Evaluation.Baselines;

/// <summary>
/// ASIF (Norelli et al., NeurIPS 2023, "ASIF: Coupled Data Turns Unimodal Models to Multimodal Without Training"):
/// relative representations over anchor pairs. The training pairs are the anchors. An image is represented by its
/// cosine similarities to the N anchor images, a text by its similarities to the N anchor texts; each row keeps its
/// top-<see cref="Options.K"/> entries (others set to 0), negatives are clipped to 0 (so an even/odd power cannot flip
/// a sign), entries are raised to the power <see cref="Options.P"/>, and the row is L2-normalised. Both modalities then
/// live in the same N-dimensional anchor space (E = N) because anchor i is the same concept on both sides.
/// </summary>
public sealed class AsifProjector : IAlignedProjector
{
    /// <summary>Fit settings.</summary>
    public sealed record Options
    {
        /// <summary>Non-zeros kept per row (ASIF uses 800 for 1.6M anchors); clamped to the anchor count.</summary>
        public int K { get; init; } = 800;
        /// <summary>Exponent applied to the kept similarities (ASIF uses 8): sharpens towards the nearest anchors.</summary>
        public double P { get; init; } = 8;
        /// <summary>Centre each modality by its anchor mean before the cosine (off in ASIF; helps anisotropic encoders).</summary>
        public bool Center { get; init; }
    }

    private readonly EmbeddingMatrix _imageAnchors; // unit rows, centred if Center
    private readonly EmbeddingMatrix _textAnchors;
    private readonly float[] _imageMean;
    private readonly float[] _textMean;

    private AsifProjector(EmbeddingMatrix imageAnchors, EmbeddingMatrix textAnchors, float[] imageMean, float[] textMean, Options options)
    {
        _imageAnchors = imageAnchors; _textAnchors = textAnchors; _imageMean = imageMean; _textMean = textMean;
        Settings = options;
    }

    /// <summary>The settings used.</summary>
    public Options Settings { get; }
    /// <summary>Number of anchor pairs N.</summary>
    public int AnchorCount => _imageAnchors.Rows;

    /// <summary>"asif".</summary>
    public string Name => "asif";
    /// <summary>E = number of anchors.</summary>
    public int EmbeddingDimension => AnchorCount;
    /// <summary>False: ASIF works on pooled features only.</summary>
    public bool UsesImageTokens => false;
    /// <summary>False: ASIF works on pooled features only.</summary>
    public bool UsesTextTokens => false;
    /// <summary>100, the fixed scale used for every closed-form baseline (ASIF has no temperature of its own).</summary>
    public float LogitScale => 100f;

    /// <summary>Uses the paired training features as anchors (row i of both matrices is one pair; rows are copied).</summary>
    /// <exception cref="ArgumentException">Row counts differ, fewer than 2 anchors, K &lt; 1 or P &lt;= 0.</exception>
    public static AsifProjector Fit(EmbeddingMatrix image, EmbeddingMatrix text, Options? options = null)
    {
        options ??= new Options();
        LinearAlignedProjector.CheckPairs(image, text, 2);
        if (options.K < 1) throw new ArgumentException($"K must be >= 1, got {options.K}.", nameof(options));
        if (!(options.P > 0)) throw new ArgumentException($"P must be > 0, got {options.P}.", nameof(options));
        var mx = options.Center ? DenseMath.ColumnMeans(image) : new float[image.Columns];
        var mt = options.Center ? DenseMath.ColumnMeans(text) : new float[text.Columns];
        return new AsifProjector(
            DenseMath.NormalizeRows(DenseMath.SubtractRow(image, mx)),
            DenseMath.NormalizeRows(DenseMath.SubtractRow(text, mt)), mx, mt, options);
    }

    /// <summary>[n, image dim] → [n, N] relative representation, L2-normalised rows.</summary>
    /// <exception cref="ArgumentException">Width differs from the anchors'.</exception>
    public EmbeddingMatrix ProjectImages(EmbeddingMatrix pooled, TokenTensor? tokens = null) => Relative(pooled, _imageAnchors, _imageMean, "image features");

    /// <summary>[n, text dim] → [n, N] relative representation, L2-normalised rows.</summary>
    /// <exception cref="ArgumentException">Width differs from the anchors'.</exception>
    public EmbeddingMatrix ProjectTexts(EmbeddingMatrix pooled, TokenTensor? tokens = null) => Relative(pooled, _textAnchors, _textMean, "text features");

    private EmbeddingMatrix Relative(EmbeddingMatrix x, EmbeddingMatrix anchors, float[] mean, string what)
    {
        DenseMath.RequireWidth(x, anchors.Columns, what);
        var unit = DenseMath.NormalizeRows(DenseMath.SubtractRow(x, mean));
        int n = anchors.Rows, k = Math.Min(Settings.K, n);
        var result = new float[checked(x.Rows * n)];
        DenseMath.ForEachSimilarityChunk(unit, anchors, (start, rows, s) =>
        {
            for (int r = 0; r < rows; r++)
            {
                var sims = s.AsSpan(r * n, n);
                var dst = result.AsSpan((start + r) * n, n);
                foreach (int j in DenseMath.TopK(sims, k))
                    dst[j] = sims[j] > 0 ? (float)Math.Pow(sims[j], Settings.P) : 0f;
            }
        });
        DenseMath.NormalizeRowsInPlace(result, x.Rows, n);
        return new EmbeddingMatrix(result, x.Rows, n);
    }
}

using System.Numerics.Tensors;
using MLNet.Align.Embeddings;
using MLNet.Align.Projection;

namespace MLNet.Align.Evaluation;

/// <summary>
/// Test-time feature standardisation: per-dimension mean (and optionally standard deviation) estimated on a set of
/// unlabelled features of the target domain, subtracted (and divided) before projection. An optional lever for domain
/// shift (e.g. grayscale digits through an ImageNet encoder): it needs no labels, only the test images themselves or
/// any unlabelled sample of the domain. Not part of the paper's protocol; report it separately when used.
/// </summary>
public sealed class FeatureStandardizer
{
    private FeatureStandardizer(float[] mean, float[]? std, float[]? targetMean, float[]? targetStd)
    {
        Mean = mean; Std = std; TargetMean = targetMean; TargetStd = targetStd;
    }

    /// <summary>Per-dimension mean [d] of the fitting set.</summary>
    public float[] Mean { get; }
    /// <summary>Per-dimension standard deviation [d] (population, floored at epsilon); null when only centring.</summary>
    public float[]? Std { get; }
    /// <summary>When set, standardised features are mapped back to these statistics (re-colouring), see <see cref="Fit"/>.</summary>
    public float[]? TargetMean { get; }
    /// <summary>Per-dimension target standard deviation, or null.</summary>
    public float[]? TargetStd { get; }
    /// <summary>Feature width d.</summary>
    public int Dimension => Mean.Length;

    /// <summary>Estimates statistics on <paramref name="unlabelled"/> [n, d].</summary>
    /// <param name="unlabelled">Features of the domain to standardise (n &gt;= 2).</param>
    /// <param name="scale">False: centring only (subtract the mean). True: also divide by the per-dimension std.</param>
    /// <param name="reference">Optional features of the domain the projector was trained on (e.g. its training
    /// images): outputs are then re-expressed in that domain's statistics, z * std_ref + mean_ref, which keeps a
    /// projector that expects raw (un-centred) encoder features in its input range.</param>
    /// <param name="epsilon">Floor of the std (dimensions that never vary, e.g. dead ReLU channels).</param>
    /// <exception cref="ArgumentException">Fewer than 2 rows, or <paramref name="reference"/> has another width.</exception>
    public static FeatureStandardizer Fit(EmbeddingMatrix unlabelled, bool scale = true, EmbeddingMatrix? reference = null, float epsilon = 1e-6f)
    {
        DenseMath.RequireRows(unlabelled, 2, nameof(unlabelled));
        var (mean, std) = Stats(unlabelled, epsilon);
        float[]? tMean = null, tStd = null;
        if (reference is not null)
        {
            DenseMath.RequireRows(reference, 2, nameof(reference));
            DenseMath.RequireWidth(reference, unlabelled.Columns, nameof(reference));
            (tMean, tStd) = Stats(reference, epsilon);
        }
        return new FeatureStandardizer(mean, scale ? std : null, tMean, scale ? tStd : null);
    }

    /// <summary>Applies the standardisation; returns a new [n, d] matrix.</summary>
    /// <exception cref="ArgumentException">Width differs from the fitted one.</exception>
    public EmbeddingMatrix Transform(EmbeddingMatrix features)
    {
        DenseMath.RequireWidth(features, Dimension, nameof(features));
        var data = new float[features.Data.Length];
        for (int i = 0; i < features.Rows; i++)
        {
            var dst = data.AsSpan(i * Dimension, Dimension);
            TensorPrimitives.Subtract(features.Row(i), Mean, dst);
            if (Std is not null) TensorPrimitives.Divide(dst, Std, dst);
            if (TargetStd is not null) TensorPrimitives.Multiply(dst, TargetStd, dst);
            if (TargetMean is not null) TensorPrimitives.Add(dst, TargetMean, dst);
        }
        return new EmbeddingMatrix(data, features.Rows, features.Columns);
    }

    private static (float[] Mean, float[] Std) Stats(EmbeddingMatrix m, float epsilon)
    {
        var mean = DenseMath.ColumnMeans(m);
        var sq = new double[m.Columns];
        for (int i = 0; i < m.Rows; i++)
        {
            var row = m.Row(i);
            for (int j = 0; j < row.Length; j++) { double d = row[j] - mean[j]; sq[j] += d * d; }
        }
        var std = new float[m.Columns];
        for (int j = 0; j < std.Length; j++) std[j] = (float)Math.Max(epsilon, Math.Sqrt(sq[j] / m.Rows));
        return (mean, std);
    }
}

/// <summary>
/// Wraps an <see cref="IAlignedProjector"/> so that pooled features pass through a <see cref="FeatureStandardizer"/>
/// before projection (image side, text side, or both). Token inputs are passed through unchanged.
/// </summary>
public sealed class StandardizingProjector : IAlignedProjector
{
    private readonly IAlignedProjector _inner;
    private readonly FeatureStandardizer? _image;
    private readonly FeatureStandardizer? _text;

    /// <summary>Wraps <paramref name="inner"/>; a null standardizer leaves that side untouched.</summary>
    public StandardizingProjector(IAlignedProjector inner, FeatureStandardizer? image, FeatureStandardizer? text = null)
    {
        _inner = inner ?? throw new ArgumentNullException(nameof(inner));
        _image = image; _text = text;
    }

    /// <summary>The inner projector's name with "+std" appended.</summary>
    public string Name => _inner.Name + "+std";
    /// <summary>The inner projector's width E.</summary>
    public int EmbeddingDimension => _inner.EmbeddingDimension;
    /// <summary>As the inner projector.</summary>
    public bool UsesImageTokens => _inner.UsesImageTokens;
    /// <summary>As the inner projector.</summary>
    public bool UsesTextTokens => _inner.UsesTextTokens;
    /// <summary>The inner projector's scale.</summary>
    public float LogitScale => _inner.LogitScale;

    /// <summary>Standardises pooled image features [n, image dim] with the image standardizer (if any), then
    /// projects them with the inner projector to [n, E], L2-normalised rows; tokens pass through unchanged.</summary>
    /// <param name="pooled">Pooled image features [n, image dim].</param>
    /// <param name="tokens">Image token features, passed to the inner projector as they are.</param>
    /// <exception cref="ArgumentException">A width differs from the standardizer's or the inner projector's.</exception>
    public EmbeddingMatrix ProjectImages(EmbeddingMatrix pooled, TokenTensor? tokens = null)
        => _inner.ProjectImages(_image is null ? pooled : _image.Transform(pooled), tokens);

    /// <summary>Standardises pooled text features [n, text dim] with the text standardizer (if any), then projects
    /// them with the inner projector to [n, E], L2-normalised rows; tokens pass through unchanged.</summary>
    /// <param name="pooled">Pooled text features [n, text dim].</param>
    /// <param name="tokens">Text token features, passed to the inner projector as they are.</param>
    /// <exception cref="ArgumentException">A width differs from the standardizer's or the inner projector's.</exception>
    public EmbeddingMatrix ProjectTexts(EmbeddingMatrix pooled, TokenTensor? tokens = null)
        => _inner.ProjectTexts(_text is null ? pooled : _text.Transform(pooled), tokens);
}

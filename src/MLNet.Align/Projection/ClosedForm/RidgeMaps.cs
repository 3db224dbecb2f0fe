using MLNet.Align.Embeddings;

namespace MLNet.Align.Projection;

/// <summary>
/// Least-squares baseline, image → text space: W = argmin ‖Xc W − Tc‖² + λ' ‖W‖² with Xc, Tc the training features
/// centred by their training means (so no bias term is needed), λ' = <see cref="Options.Lambda"/> · tr(XcᵀXc)/d_image
/// (relative ridge, independent of feature scale). Images: normalize((x − μx) W); texts: normalize(t − μt).
/// Shared space = text space (E = text dim).
/// </summary>
public sealed class LeastSquaresMap : LinearAlignedProjector
{
    /// <summary>Fit settings.</summary>
    public sealed record Options
    {
        /// <summary>Relative ridge strength λ (λ' = λ · mean eigenvalue of XcᵀXc). Must be &gt;= 0; 0 needs n &gt; d.</summary>
        public double Lambda { get; init; } = 0.1;
    }

    private LeastSquaresMap(LinearSide image, LinearSide text, double lambda) : base("least_squares", image, text) => Lambda = lambda;

    /// <summary>The λ used.</summary>
    public double Lambda { get; }

    /// <summary>Fits on paired training features: row i of <paramref name="image"/> [n, d_i] pairs with row i of <paramref name="text"/> [n, d_t].</summary>
    /// <exception cref="ArgumentException">Row counts differ, fewer than 2 rows, or a negative λ.</exception>
    public static LeastSquaresMap Fit(EmbeddingMatrix image, EmbeddingMatrix text, Options? options = null)
    {
        options ??= new Options();
        CheckPairs(image, text, 2);
        if (!(options.Lambda >= 0)) throw new ArgumentException($"Lambda must be >= 0, got {options.Lambda}.", nameof(options));
        var mx = DenseMath.ColumnMeans(image);
        var mt = DenseMath.ColumnMeans(text);
        var w = Ridge(DenseMath.SubtractRow(image, mx), DenseMath.SubtractRow(text, mt), options.Lambda);
        return new LeastSquaresMap(new LinearSide(mx, w, text.Columns), new LinearSide(mt, null, text.Columns), options.Lambda);
    }
}

/// <summary>
/// Reverse ridge baseline, text → image space (the "reverse" direction, reported to reduce hubness: Dinu et al. 2015,
/// "Improving zero-shot learning by mitigating the hubness problem"): W' = argmin ‖Tc W' − Xc‖² + λ' ‖W'‖² on centred
/// training features, λ' relative as in <see cref="LeastSquaresMap"/>. Images: normalize(x − μx); texts:
/// normalize((t − μt) W'). Shared space = image space (E = image dim).
/// </summary>
public sealed class ReverseRidgeMap : LinearAlignedProjector
{
    /// <summary>Fit settings.</summary>
    public sealed record Options
    {
        /// <summary>Relative ridge strength λ (λ' = λ · mean eigenvalue of TcᵀTc), &gt;= 0.</summary>
        public double Lambda { get; init; } = 0.1;
    }

    private ReverseRidgeMap(LinearSide image, LinearSide text, double lambda) : base("reverse_ridge", image, text) => Lambda = lambda;

    /// <summary>The λ used.</summary>
    public double Lambda { get; }

    /// <summary>Fits on paired training features (row i of both matrices is one pair).</summary>
    /// <exception cref="ArgumentException">Row counts differ, fewer than 2 rows, or a negative λ.</exception>
    public static ReverseRidgeMap Fit(EmbeddingMatrix image, EmbeddingMatrix text, Options? options = null)
    {
        options ??= new Options();
        CheckPairs(image, text, 2);
        if (!(options.Lambda >= 0)) throw new ArgumentException($"Lambda must be >= 0, got {options.Lambda}.", nameof(options));
        var mx = DenseMath.ColumnMeans(image);
        var mt = DenseMath.ColumnMeans(text);
        var w = Ridge(DenseMath.SubtractRow(text, mt), DenseMath.SubtractRow(image, mx), options.Lambda);
        return new ReverseRidgeMap(new LinearSide(mx, null, image.Columns), new LinearSide(mt, w, image.Columns), options.Lambda);
    }
}

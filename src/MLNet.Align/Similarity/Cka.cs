using MLNet.Align.Embeddings;
using MLNet.Align.Evaluation;
using static TorchSharp.torch;

namespace MLNet.Align.Similarity;

/// <summary>
/// Centred kernel alignment between two representations of the same n items (paper section 1; Kornblith et al.,
/// ICML 2019, "Similarity of Neural Network Representations Revisited"). Inputs are [n, d1] and [n, d2] with row i of
/// both describing item i; the widths may differ. Values lie in [0, 1] (the unbiased estimator can dip slightly
/// below 0); 1 means identical up to an orthogonal transform and isotropic scaling. Computed in float64.
/// </summary>
public static class Cka
{
    /// <summary>
    /// Linear CKA, the formula of the released selection script (<c>alignment/utils.py::linear_CKA</c>):
    /// HSIC(K, L) = tr(HKH HLH) with K = XXᵀ, L = YYᵀ, H = I − 11ᵀ/n, CKA = HSIC(K,L) / sqrt(HSIC(K,K) HSIC(L,L)).
    /// Evaluated in feature space as ‖YcᵀXc‖²_F / (‖XcᵀXc‖_F ‖YcᵀYc‖_F) with column-centred Xc, Yc (identical value).
    /// </summary>
    /// <exception cref="ArgumentException">Row counts differ, fewer than 2 rows, or a side is constant (zero variance).</exception>
    public static double Linear(EmbeddingMatrix x, EmbeddingMatrix y)
    {
        Check(x, y, 2);
        using var scope = NewDisposeScope();
        var xc = Centre(DenseMath.ToTensor(x));
        var yc = Centre(DenseMath.ToTensor(y));
        double cross = yc.t().matmul(xc).square().sum().item<double>();
        double xx = xc.t().matmul(xc).square().sum().sqrt().item<double>();
        double yy = yc.t().matmul(yc).square().sum().sqrt().item<double>();
        return Ratio(cross, xx * yy);
    }

    /// <summary>
    /// Linear CKA with the unbiased HSIC estimator (Song et al. 2012; as in Nguyen et al. 2021 and Kornblith's
    /// <c>cka(..., debiased=True)</c>): less inflated at small n and high dimension. Needs n &gt;= 4; costs O(n²) memory.
    /// </summary>
    /// <exception cref="ArgumentException">Row counts differ or fewer than 4 rows.</exception>
    public static double LinearUnbiased(EmbeddingMatrix x, EmbeddingMatrix y)
    {
        Check(x, y, 4);
        using var scope = NewDisposeScope();
        var xt = DenseMath.ToTensor(x);
        var yt = DenseMath.ToTensor(y);
        var k = xt.matmul(xt.t());
        var l = yt.matmul(yt.t());
        double kl = HsicUnbiased(k, l), kk = HsicUnbiased(k, k), ll = HsicUnbiased(l, l);
        return Ratio(kl, Math.Sqrt(Math.Max(0, kk) * Math.Max(0, ll)));
    }

    /// <summary>
    /// Kernel CKA with RBF kernels K_ij = exp(−‖x_i − x_j‖² / (2σ²)), σ = <paramref name="sigmaFactor"/> × the median
    /// pairwise Euclidean distance (sqrt of the median non-zero squared distance, as in <c>alignment/utils.py</c>),
    /// chosen per side. O(n²) memory.
    /// </summary>
    /// <exception cref="ArgumentException">Row counts differ, fewer than 2 rows, factor not positive, or all rows equal.</exception>
    public static double Rbf(EmbeddingMatrix x, EmbeddingMatrix y, double sigmaFactor = 1.0)
    {
        Check(x, y, 2);
        if (!(sigmaFactor > 0)) throw new ArgumentException($"sigmaFactor must be positive, got {sigmaFactor}.", nameof(sigmaFactor));
        using var scope = NewDisposeScope();
        var k = CentreGram(RbfGram(DenseMath.ToTensor(x), sigmaFactor, "x"));
        var l = CentreGram(RbfGram(DenseMath.ToTensor(y), sigmaFactor, "y"));
        double kl = (k * l).sum().item<double>();
        double kk = (k * k).sum().item<double>();
        double ll = (l * l).sum().item<double>();
        return Ratio(kl, Math.Sqrt(kk * ll));
    }

    /// <summary>
    /// Kernel CKA with RBF kernels (bandwidth as in <see cref="Rbf"/>) and the unbiased HSIC estimator (Song et al.
    /// 2012) in place of the biased trace formula: less inflated at small n. Needs n &gt;= 4; O(n²) memory.
    /// </summary>
    /// <exception cref="ArgumentException">Row counts differ, fewer than 4 rows, factor not positive, or all rows equal.</exception>
    public static double RbfUnbiased(EmbeddingMatrix x, EmbeddingMatrix y, double sigmaFactor = 1.0)
    {
        Check(x, y, 4);
        if (!(sigmaFactor > 0)) throw new ArgumentException($"sigmaFactor must be positive, got {sigmaFactor}.", nameof(sigmaFactor));
        using var scope = NewDisposeScope();
        var k = RbfGram(DenseMath.ToTensor(x), sigmaFactor, "x");
        var l = RbfGram(DenseMath.ToTensor(y), sigmaFactor, "y");
        return FromGrams(k, l, unbiased: true);
    }

    /// <summary>CKA of two n x n Gram matrices (float64 tensors): biased (trace of centred Grams) or unbiased HSIC.</summary>
    internal static double FromGrams(Tensor k, Tensor l, bool unbiased)
    {
        if (unbiased)
        {
            double kl = HsicUnbiased(k, l), kk = HsicUnbiased(k, k), ll = HsicUnbiased(l, l);
            return Ratio(kl, Math.Sqrt(Math.Max(0, kk) * Math.Max(0, ll)));
        }
        var kc = CentreGram(k);
        var lc = CentreGram(l);
        double cross = (kc * lc).sum().item<double>();
        double kk2 = (kc * kc).sum().item<double>();
        double ll2 = (lc * lc).sum().item<double>();
        return Ratio(cross, Math.Sqrt(kk2 * ll2));
    }

    /// <summary>Squared Euclidean distances [n, n] of the rows of a float64 tensor.</summary>
    internal static Tensor PairwiseSquaredDistances(Tensor m) => SquaredDistances(m);

    /// <summary>RBF Gram exp(−D²/(2σ²)) from squared distances, σ² = factor² × median of the non-zero upper-triangle D².</summary>
    internal static Tensor RbfFromSquaredDistances(Tensor d2, double factor, string side)
    {
        double sigma2 = MedianNonZero(d2, side) * factor * factor;
        return (-d2 / (2 * sigma2)).exp();
    }

    /// <summary>The RBF bandwidth σ that <see cref="Rbf"/> uses for <paramref name="x"/> (median distance × factor).</summary>
    public static double RbfSigma(EmbeddingMatrix x, double sigmaFactor = 1.0)
    {
        DenseMath.RequireRows(x, 2, nameof(x));
        using var scope = NewDisposeScope();
        return Math.Sqrt(MedianNonZero(SquaredDistances(DenseMath.ToTensor(x)), "x")) * sigmaFactor;
    }

    private static void Check(EmbeddingMatrix x, EmbeddingMatrix y, int minRows)
    {
        DenseMath.RequireRows(x, minRows, nameof(x));
        DenseMath.RequireRows(y, minRows, nameof(y));
        DenseMath.RequireSameRows(x, y, nameof(x), nameof(y));
    }

    private static double Ratio(double num, double den)
    {
        if (!(den > 0) || double.IsNaN(num))
            throw new ArgumentException("A representation has zero variance across items (all rows equal): CKA is undefined.");
        return num / den;
    }

    private static Tensor Centre(Tensor m) => m - m.mean(new long[] { 0 }, keepdim: true);

    private static Tensor CentreGram(Tensor k)
        => TorchScalars.Add(k - k.mean(new long[] { 0 }, keepdim: true) - k.mean(new long[] { 1 }, keepdim: true), k.mean());

    private static Tensor SquaredDistances(Tensor m)
    {
        var sq = m.square().sum(new long[] { 1 }, keepdim: true);
        // Number operands through TorchScalars: implicit scalars can be freed by the GC mid-op (see its remarks).
        return TorchScalars.ClampMin(TorchScalars.Add(sq, sq.t()) - TorchScalars.Mul(m.matmul(m.t()), 2.0), 0f);
    }

    private static double MedianNonZero(Tensor d2, string side)
    {
        long n = d2.shape[0];
        var iu = triu_indices(n, n, 1);
        var upper = d2[iu[0], iu[1]];
        var nonzero = upper[TorchScalars.GreaterThan(upper, 1e-12)];
        long count = nonzero.shape[0];
        if (count == 0) throw new ArgumentException($"All rows of {side} are identical: the RBF bandwidth is undefined.");
        var (sorted, _) = nonzero.sort();
        double a = sorted[(count - 1) / 2].item<double>(), b = sorted[count / 2].item<double>();
        return (a + b) / 2;
    }

    private static Tensor RbfGram(Tensor m, double factor, string side)
    {
        var d2 = SquaredDistances(m);
        double sigma2 = MedianNonZero(d2, side) * factor * factor;
        return TorchScalars.Div(d2.neg(), 2 * sigma2).exp();
    }

    private static double HsicUnbiased(Tensor k, Tensor l)
    {
        long n = k.shape[0];
        var offDiagonal = ones(n, n, dtype: ScalarType.Float64) - eye(n, dtype: ScalarType.Float64);
        var kt = k * offDiagonal;
        var lt = l * offDiagonal;
        double trace = (kt * lt).sum().item<double>();
        double sk = kt.sum().item<double>(), sl = lt.sum().item<double>();
        double cross = (kt.sum(new long[] { 0 }) * lt.sum(new long[] { 0 })).sum().item<double>();
        return (trace + sk * sl / ((n - 1.0) * (n - 2.0)) - 2.0 / (n - 2.0) * cross) / (n * (n - 3.0));
    }
}

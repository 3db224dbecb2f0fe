using MLNet.Align.Embeddings;

namespace MLNet.Align.Projection;

/// <summary>
/// Latent mixup on cached encoder features (FuseMix, Vouitsis et al., CVPR 2024): for a batch of n pairs
/// (x_i, y_i), draw one lambda ~ Beta(alpha, alpha) and one permutation pi, and train on
/// (lambda x_i + (1 - lambda) x_pi(i), lambda y_i + (1 - lambda) y_pi(i)): the same lambda and pi on both sides, so
/// each mixed image stays paired with its mixed caption. Applied to the pooled input features before the projectors,
/// with probability <see cref="AlignmentTrainingOptions.MixupProbability"/> per batch. Every draw comes from a
/// <see cref="Random"/> seeded with (training seed, global step), so a run, and a resumed run, is deterministic.
/// </summary>
internal static class LatentMixup
{
    /// <summary>The draw of global step <paramref name="step"/>: whether to mix, lambda in (0, 1), and a permutation of
    /// 0..n-1. Deterministic in (alpha, probability, seed, step, n).</summary>
    /// <param name="alpha">Beta concentration, &gt; 0.</param>
    /// <param name="probability">Chance to mix this batch, in [0, 1].</param>
    /// <param name="seed">Training seed.</param>
    /// <param name="step">0-based global step.</param>
    /// <param name="n">Batch rows.</param>
    public static (bool Apply, double Lambda, int[] Permutation) Draw(double alpha, double probability, int seed, long step, int n)
    {
        var rng = new Random(unchecked((int)(seed * 2_654_435_761L + step * 40_503L + 97)));
        bool apply = rng.NextDouble() < probability;
        double lambda = SampleBeta(alpha, rng);
        var perm = new int[n];
        for (int i = 0; i < n; i++) perm[i] = i;
        rng.Shuffle(perm);
        return (apply, lambda, perm);
    }

    /// <summary>lambda ~ Beta(alpha, alpha) as G1 / (G1 + G2) of two Gamma(alpha, 1) draws; clamped into the open
    /// interval (0, 1) by at most one float ulp so a mixed row never collapses to one input exactly by rounding.</summary>
    public static double SampleBeta(double alpha, Random rng)
    {
        double a = SampleGamma(alpha, rng), b = SampleGamma(alpha, rng);
        double s = a + b;
        double lambda = s > 0 ? a / s : 0.5;
        return Math.Clamp(lambda, 1e-7, 1 - 1e-7);
    }

    /// <summary>Gamma(shape, 1) by Marsaglia and Tsang (2000); shape &lt; 1 through Gamma(shape + 1) U^(1/shape).</summary>
    private static double SampleGamma(double shape, Random rng)
    {
        if (shape < 1)
        {
            double u = rng.NextDouble();
            return SampleGamma(shape + 1, rng) * Math.Pow(u <= 0 ? double.Epsilon : u, 1 / shape);
        }
        double d = shape - 1.0 / 3, c = 1 / Math.Sqrt(9 * d);
        while (true)
        {
            double x, v;
            do
            {
                // Box-Muller standard normal.
                double u1 = 1 - rng.NextDouble(), u2 = rng.NextDouble();
                x = Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
                v = 1 + c * x;
            } while (v <= 0);
            v = v * v * v;
            double u = 1 - rng.NextDouble();
            if (u < 1 - 0.0331 * x * x * x * x || Math.Log(u) < 0.5 * x * x + d * (1 - v + Math.Log(v))) return d * v;
        }
    }

    /// <summary>lambda a + (1 - lambda) a[perm], row-wise (a new matrix).</summary>
    public static EmbeddingMatrix Mix(EmbeddingMatrix a, double lambda, IReadOnlyList<int> perm)
    {
        int n = a.Rows, d = a.Columns;
        var data = new float[a.Data.Length];
        float l = (float)lambda, m = (float)(1 - lambda);
        for (int i = 0; i < n; i++)
        {
            var x = a.Row(i);
            var y = a.Row(perm[i]);
            var o = data.AsSpan(i * d, d);
            for (int k = 0; k < d; k++) o[k] = l * x[k] + m * y[k];
        }
        return new EmbeddingMatrix(data, n, d);
    }

    /// <summary>The mixed batch (pooled features of both sides mixed with the same lambda and permutation).</summary>
    public static AlignmentBatch Mix(AlignmentBatch b, double lambda, IReadOnlyList<int> perm)
        => b with { ImagePooled = Mix(b.ImagePooled, lambda, perm), TextPooled = Mix(b.TextPooled, lambda, perm) };
}

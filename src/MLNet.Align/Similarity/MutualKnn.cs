using MLNet.Align.Embeddings;
using MLNet.Align.Evaluation;

namespace MLNet.Align.Similarity;

/// <summary>
/// Mutual k-nearest-neighbour alignment (Huh et al., ICML 2024, "The Platonic Representation Hypothesis"): for each
/// item, the k nearest other items by cosine similarity in representation X and in representation Y; the score is the
/// mean over items of |N_X(i) ∩ N_Y(i)| / k, in [0, 1]. Chance level ≈ k / (n − 1). Not used by Freeze-Align itself
/// (docs/method.md section 1.2); offered as a second opinion next to CKA.
/// </summary>
public static class MutualKnn
{
    /// <summary>Mutual k-NN score of two representations of the same n items.</summary>
    /// <param name="x">[n, d1].</param>
    /// <param name="y">[n, d2].</param>
    /// <param name="k">Neighbours per item, 1 &lt;= k &lt; n (default 10).</param>
    /// <exception cref="ArgumentException">Row counts differ, or k is outside [1, n−1].</exception>
    public static double Score(EmbeddingMatrix x, EmbeddingMatrix y, int k = 10)
    {
        DenseMath.RequireRows(x, 2, nameof(x));
        DenseMath.RequireSameRows(x, y, nameof(x), nameof(y));
        if (k < 1 || k >= x.Rows)
            throw new ArgumentException($"k must be in [1, {x.Rows - 1}] for {x.Rows} items, got {k}.", nameof(k));
        var nx = Neighbours(x, k);
        var ny = Neighbours(y, k);
        double total = 0;
        for (int i = 0; i < nx.Length; i++)
            total += nx[i].Intersect(ny[i]).Count() / (double)k;
        return total / nx.Length;
    }

    /// <summary>Indices of the k nearest other rows of each row by cosine similarity, best first.</summary>
    public static int[][] Neighbours(EmbeddingMatrix m, int k)
    {
        var unit = DenseMath.NormalizeRows(m);
        var result = new int[m.Rows][];
        DenseMath.ForEachSimilarityChunk(unit, unit, (start, n, s) =>
        {
            for (int r = 0; r < n; r++)
                result[start + r] = DenseMath.TopK(s.AsSpan(r * m.Rows, m.Rows), k, exclude: start + r);
        });
        return result;
    }
}

using System.Numerics.Tensors;
using Tensor = TorchSharp.torch.Tensor;
using static TorchSharp.torch;

namespace MLNet.Align;

/// <summary>
/// Internal dense-math helpers shared by the evaluators, CKA and the closed-form baselines. Row-wise vector work uses
/// TensorPrimitives; matrix products, solves and SVDs go through TorchSharp (float64 for the solvers, so the
/// baselines are stable on ill-conditioned covariance matrices). No TorchSharp type leaves this class.
/// </summary>
internal static class DenseMath
{
    /// <summary>Rows of <paramref name="m"/> scaled to unit L2 norm (zero rows stay zero). Returns a new matrix.</summary>
    public static EmbeddingMatrix NormalizeRows(EmbeddingMatrix m)
    {
        var data = (float[])m.Data.Clone();
        NormalizeRowsInPlace(data, m.Rows, m.Columns);
        return new EmbeddingMatrix(data, m.Rows, m.Columns);
    }

    public static void NormalizeRowsInPlace(float[] data, int rows, int cols)
    {
        for (int i = 0; i < rows; i++)
        {
            var row = data.AsSpan(i * cols, cols);
            float norm = TensorPrimitives.Norm(row);
            if (norm > 0f) TensorPrimitives.Divide(row, norm, row);
        }
    }

    /// <summary>Per-column mean, float64 accumulation.</summary>
    public static float[] ColumnMeans(EmbeddingMatrix m)
    {
        var sum = new double[m.Columns];
        for (int i = 0; i < m.Rows; i++)
        {
            var row = m.Row(i);
            for (int j = 0; j < row.Length; j++) sum[j] += row[j];
        }
        var mean = new float[m.Columns];
        for (int j = 0; j < mean.Length; j++) mean[j] = (float)(sum[j] / Math.Max(1, m.Rows));
        return mean;
    }

    /// <summary>Rows minus <paramref name="mean"/>. Returns a new matrix.</summary>
    public static EmbeddingMatrix SubtractRow(EmbeddingMatrix m, ReadOnlySpan<float> mean)
    {
        var data = new float[m.Data.Length];
        for (int i = 0; i < m.Rows; i++)
            TensorPrimitives.Subtract(m.Row(i), mean, data.AsSpan(i * m.Columns, m.Columns));
        return new EmbeddingMatrix(data, m.Rows, m.Columns);
    }

    public static Tensor ToTensor(EmbeddingMatrix m, ScalarType type = ScalarType.Float64)
    {
        var t = tensor(m.Data, new long[] { m.Rows, m.Columns });
        return type == ScalarType.Float32 ? t : t.to_type(type);
    }

    public static float[] ToFloatArray(Tensor t)
    {
        using var f = t.to_type(ScalarType.Float32).contiguous();
        return f.data<float>().ToArray();
    }

    public static double[] ToDoubleArray(Tensor t)
    {
        using var f = t.to_type(ScalarType.Float64).contiguous();
        return f.data<double>().ToArray();
    }

    /// <summary>A [a.Rows, b.Rows] similarity block a * b^T (fp32), computed in row chunks to bound memory; the
    /// callback receives (first row index, rows in chunk, chunk values row-major [chunk, b.Rows]).</summary>
    public static void ForEachSimilarityChunk(EmbeddingMatrix a, EmbeddingMatrix b, Action<int, int, float[]> onChunk, int chunkRows = 1024)
    {
        if (a.Columns != b.Columns)
            throw new ArgumentException($"Embedding widths differ: {a.Columns} vs {b.Columns}.");
        using var scope = NewDisposeScope();
        using var bt = tensor(b.Data, new long[] { b.Rows, b.Columns }).t();
        for (int start = 0; start < a.Rows; start += chunkRows)
        {
            int n = Math.Min(chunkRows, a.Rows - start);
            using var inner = NewDisposeScope();
            var chunk = new float[n * a.Columns];
            Array.Copy(a.Data, (long)start * a.Columns, chunk, 0, chunk.Length);
            using var at = tensor(chunk, new long[] { n, a.Columns });
            using var s = at.matmul(bt).contiguous();
            onChunk(start, n, s.data<float>().ToArray());
        }
    }

    /// <summary>The full similarity matrix a * b^T, [a.Rows, b.Rows] row-major.</summary>
    public static float[] Similarity(EmbeddingMatrix a, EmbeddingMatrix b)
    {
        var result = new float[checked(a.Rows * b.Rows)];
        ForEachSimilarityChunk(a, b, (start, n, values) => values.CopyTo(result, (long)start * b.Rows));
        return result;
    }

    /// <summary>Indices of the k largest values of <paramref name="values"/>, best first; ties broken by lower index; NaN
    /// ranks below every number. The one top-k of the library (retrieval, ASIF anchors, zero-shot predictions; the
    /// curator's streaming form is <see cref="StreamingTopK"/>).</summary>
    public static int[] TopK(ReadOnlySpan<float> values, int k, int exclude = -1)
    {
        k = Math.Max(0, Math.Min(k, values.Length - (exclude >= 0 && exclude < values.Length ? 1 : 0)));
        var best = new int[k];
        if (k == 0) return best;
        int count = 0;
        for (int j = 0; j < values.Length; j++)
        {
            if (j == exclude) continue;
            float v = values[j];
            if (count == k && !Above(v, values[best[k - 1]])) continue;
            int pos = count < k ? count++ : k - 1;
            while (pos > 0 && Above(v, values[best[pos - 1]])) { best[pos] = best[pos - 1]; pos--; }
            best[pos] = j;
        }
        return best;
    }

    /// <summary>v ranks above w: greater, or a number against NaN.</summary>
    private static bool Above(float v, float w) => v > w || (float.IsNaN(w) && !float.IsNaN(v));

    /// <summary>Sums of the rows of <paramref name="m"/> per group ([groupCount, columns]) and the rows per group; with
    /// <paramref name="unitRows"/> each row is L2-normalised before it is added. The shared step of every group mean
    /// (class vectors from prompt sentences, concept prototypes).</summary>
    /// <exception cref="ArgumentException">A group index outside [0, groupCount) (the message names the row).</exception>
    public static (float[] Sums, int[] Counts) GroupSums(EmbeddingMatrix m, IReadOnlyList<int> group, int groupCount, bool unitRows, string paramName = "group")
    {
        int d = m.Columns;
        var sums = new float[checked(groupCount * d)];
        var counts = new int[groupCount];
        var unit = unitRows ? new float[d] : null;
        for (int r = 0; r < m.Rows; r++)
        {
            int g = group[r];
            if ((uint)g >= (uint)groupCount)
                throw new ArgumentException($"Sentence {r} has class {g}, outside [0, {groupCount}).", paramName);
            ReadOnlySpan<float> row = m.Row(r);
            if (unit is not null)
            {
                float norm = TensorPrimitives.Norm(row);
                TensorPrimitives.Divide(row, norm > 0 ? norm : 1f, unit);
                row = unit;
            }
            var dst = sums.AsSpan(g * d, d);
            TensorPrimitives.Add(dst, row, dst);
            counts[g]++;
        }
        return (sums, counts);
    }

    public static void RequireRows(EmbeddingMatrix m, int minRows, string what)
    {
        ArgumentNullException.ThrowIfNull(m, what);
        if (m.Rows < minRows)
            throw new ArgumentException($"{what} needs at least {minRows} rows, got {m.Rows}.", what);
    }

    public static void RequireSameRows(EmbeddingMatrix a, EmbeddingMatrix b, string aName, string bName)
    {
        if (a.Rows != b.Rows)
            throw new ArgumentException($"{aName} has {a.Rows} rows but {bName} has {b.Rows}: rows must be paired one to one.");
    }

    public static void RequireWidth(EmbeddingMatrix m, int expected, string what)
    {
        ArgumentNullException.ThrowIfNull(m, what);
        if (m.Columns != expected)
            throw new ArgumentException($"{what} has width {m.Columns}, expected {expected} (the width the model was fitted on).", what);
    }
}

using MLNet.Align.Embeddings;
using MLNet.Align.Projection;
using static TorchSharp.torch;

namespace MLNet.Align.Tests.Evaluation;

internal static class TestMatrices
{
    public static EmbeddingMatrix M(int rows, int cols, params float[] values) => new(values, rows, cols);

    public static EmbeddingMatrix Gaussian(int rows, int cols, int seed)
    {
        var rng = new Random(seed);
        var data = new float[rows * cols];
        for (int i = 0; i < data.Length; i++)
            data[i] = (float)(Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));
        return new EmbeddingMatrix(data, rows, cols);
    }

    /// <summary>A random orthogonal [d, d] matrix (QR of a Gaussian, float64), row-major.</summary>
    public static double[] RandomOrthogonal(int d, int seed)
    {
        var g = Gaussian(d, d, seed);
        using var scope = NewDisposeScope();
        var (q, _) = linalg.qr(tensor(g.Data, new long[] { d, d }).to_type(ScalarType.Float64));
        return q.contiguous().data<double>().ToArray();
    }

    /// <summary>x [n, a] times w [a, b] (row-major, float64 accumulate).</summary>
    public static EmbeddingMatrix Times(EmbeddingMatrix x, double[] w, int b)
    {
        int a = x.Columns;
        var y = new float[x.Rows * b];
        for (int i = 0; i < x.Rows; i++)
            for (int j = 0; j < b; j++)
            {
                double s = 0;
                for (int k = 0; k < a; k++) s += x.Data[i * a + k] * w[k * b + j];
                y[i * b + j] = (float)s;
            }
        return new EmbeddingMatrix(y, x.Rows, b);
    }

    public static EmbeddingMatrix Scale(EmbeddingMatrix x, float s) => new(x.Data.Select(v => v * s).ToArray(), x.Rows, x.Columns);

    public static EmbeddingMatrix Normalize(EmbeddingMatrix x)
    {
        var d = (float[])x.Data.Clone();
        for (int i = 0; i < x.Rows; i++)
        {
            var r = d.AsSpan(i * x.Columns, x.Columns);
            float n = System.Numerics.Tensors.TensorPrimitives.Norm(r);
            if (n > 0) System.Numerics.Tensors.TensorPrimitives.Divide(r, n, r);
        }
        return new EmbeddingMatrix(d, x.Rows, x.Columns);
    }
}

/// <summary>A projector that only L2-normalises both sides (shared width), to test the evaluation plumbing.</summary>
internal sealed class NormalizeOnlyProjector(int width) : IAlignedProjector
{
    public string Name => "normalize";
    public int EmbeddingDimension => width;
    public bool UsesImageTokens => false;
    public bool UsesTextTokens => false;
    public float LogitScale => 100f;
    public EmbeddingMatrix ProjectImages(EmbeddingMatrix pooled, TokenTensor? tokens = null) => TestMatrices.Normalize(pooled);
    public EmbeddingMatrix ProjectTexts(EmbeddingMatrix pooled, TokenTensor? tokens = null) => TestMatrices.Normalize(pooled);
}

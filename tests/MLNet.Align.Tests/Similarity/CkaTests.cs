using MLNet.Align.Embeddings;
using MLNet.Align.Similarity;
using static MLNet.Align.Tests.Evaluation.TestMatrices;

namespace MLNet.Align.Tests.Similarity;

public class CkaTests
{
    [Fact]
    public void CkaOfAMatrixWithItselfIsOne()
    {
        var x = Gaussian(120, 10, 1);
        Assert.Equal(1.0, Cka.Linear(x, x), 1e-9);
        Assert.Equal(1.0, Cka.LinearUnbiased(x, x), 1e-9);
        Assert.Equal(1.0, Cka.Rbf(x, x), 1e-9);
    }

    [Fact]
    public void CkaIsInvariantToOrthogonalTransformsAndIsotropicScaling()
    {
        var x = Gaussian(150, 12, 2);
        var y = Gaussian(150, 8, 3);
        for (int i = 0; i < y.Data.Length; i++) y.Data[i] += 0.7f * x.Data[(i / 8) * 12 + i % 8]; // correlated with x
        var q = RandomOrthogonal(12, 4);
        var xq = Scale(Times(x, q, 12), 3.5f);
        double lin = Cka.Linear(x, y), unb = Cka.LinearUnbiased(x, y), rbf = Cka.Rbf(x, y, 0.8);
        Assert.InRange(lin, 0.2, 0.95);
        Assert.Equal(lin, Cka.Linear(xq, y), 1e-5);
        Assert.Equal(unb, Cka.LinearUnbiased(xq, y), 1e-5);
        Assert.Equal(rbf, Cka.Rbf(xq, y, 0.8), 1e-5);
        Assert.Equal(lin, Cka.Linear(y, x), 1e-9); // symmetric
        Assert.Equal(3.5 * Cka.RbfSigma(x), Cka.RbfSigma(xq), 1e-3);
    }

    [Fact]
    public void CkaOfIndependentGaussiansIsSmall()
    {
        var x = Gaussian(500, 20, 5);
        var y = Gaussian(500, 20, 6);
        Assert.InRange(Cka.Linear(x, y), 0.0, 0.08);          // biased estimator: about d/n
        Assert.InRange(Cka.LinearUnbiased(x, y), -0.02, 0.02); // unbiased: about 0
        Assert.InRange(Cka.Rbf(x, y), 0.0, 0.08);
    }

    [Fact]
    public void LinearCkaMatchesTheGramMatrixFormulaOfTheReleasedScript()
    {
        var x = Gaussian(25, 7, 7);
        var y = Gaussian(25, 4, 8);
        for (int i = 0; i < y.Data.Length; i++) y.Data[i] += x.Data[(i / 4) * 7 + i % 4];
        double Hsic(EmbeddingMatrix a, EmbeddingMatrix b)
        {
            var ka = Centred(Gram(a)); var kb = Centred(Gram(b));
            double s = 0;
            for (int i = 0; i < ka.Length; i++) s += ka[i] * kb[i];
            return s;
        }
        double expected = Hsic(x, y) / Math.Sqrt(Hsic(x, x) * Hsic(y, y));
        Assert.Equal(expected, Cka.Linear(x, y), 1e-6);
    }

    [Fact]
    public void BadInputIsRejected()
    {
        var ex = Assert.Throws<ArgumentException>(() => Cka.Linear(Gaussian(10, 3, 1), Gaussian(11, 3, 2)));
        Assert.Contains("10 rows", ex.Message);
        Assert.Contains("11", ex.Message);
        var constant = new EmbeddingMatrix(Enumerable.Repeat(1f, 30).ToArray(), 10, 3);
        Assert.Throws<ArgumentException>(() => Cka.Linear(constant, Gaussian(10, 3, 1)));
        Assert.Throws<ArgumentException>(() => Cka.Rbf(constant, Gaussian(10, 3, 1)));
        Assert.Throws<ArgumentException>(() => Cka.LinearUnbiased(Gaussian(3, 3, 1), Gaussian(3, 3, 2)));
    }

    private static double[] Gram(EmbeddingMatrix m)
    {
        var g = new double[m.Rows * m.Rows];
        for (int i = 0; i < m.Rows; i++)
            for (int j = 0; j < m.Rows; j++)
            {
                double s = 0;
                for (int k = 0; k < m.Columns; k++) s += (double)m.Data[i * m.Columns + k] * m.Data[j * m.Columns + k];
                g[i * m.Rows + j] = s;
            }
        return g;
    }

    // H K H with H = I - 11^T / n, written out.
    private static double[] Centred(double[] k)
    {
        int n = (int)Math.Sqrt(k.Length);
        var h = new double[n * n];
        for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) h[i * n + j] = (i == j ? 1 : 0) - 1.0 / n;
        return Mul(Mul(h, k, n), h, n);
    }

    private static double[] Mul(double[] a, double[] b, int n)
    {
        var c = new double[n * n];
        for (int i = 0; i < n; i++) for (int k = 0; k < n; k++) for (int j = 0; j < n; j++) c[i * n + j] += a[i * n + k] * b[k * n + j];
        return c;
    }
}

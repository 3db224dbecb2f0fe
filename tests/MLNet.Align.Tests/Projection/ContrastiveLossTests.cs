using MLNet.Align.Embeddings;
using MLNet.Align.Projection;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace MLNet.Align.Tests.Projection;

/// <summary>The loss terms of the training levers (SigLIP sigmoid loss, multi-positive InfoNCE, Jensen-Shannon
/// structure term) against closed forms computed here in double on tiny hand-made matrices.</summary>
[Collection("torch-projection")]
public class ContrastiveLossTests(ITestOutputHelper output)
{
    // Three unit 2-d image rows and three unit 2-d text rows at chosen angles: cosines are cos(a_i - b_j).
    private static readonly double[] ImageAngles = [0.0, 0.9, 2.0];
    private static readonly double[] TextAngles = [0.2, 1.1, 1.7];

    private static double Cos(int i, int j) => Math.Cos(ImageAngles[i] - TextAngles[j]);

    private static Tensor Unit(double[] angles)
        => tensor(angles.SelectMany(a => new[] { (float)Math.Cos(a), (float)Math.Sin(a) }).ToArray(), new long[] { angles.Length, 2 });

    private static Tensor Mask(bool[,] p)
    {
        int n = p.GetLength(0);
        var flat = new bool[n * n];
        for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) flat[i * n + j] = p[i, j];
        return tensor(flat, new long[] { n, n });
    }

    private static double LogSigmoid(double x) => x >= 0 ? -Math.Log(1 + Math.Exp(-x)) : x - Math.Log(1 + Math.Exp(x));

    /// <summary>-1/n sum_ij log sigmoid(z_ij (t s_ij + b)), in double.</summary>
    private static double SigmoidLoss(Func<int, int, double> s, int n, double t, double b, Func<int, int, bool> positive)
    {
        double total = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                total += LogSigmoid((positive(i, j) ? 1 : -1) * (t * s(i, j) + b));
        return -total / n;
    }

    [Fact]
    public void SigmoidLossMatchesTheClosedFormWithAndWithoutExtraPositives()
    {
        using var scope = NewDisposeScope();
        var s = Unit(ImageAngles).matmul(Unit(TextAngles).t());
        using var logScale = tensor((float)Math.Log(20));
        using var bias = tensor(-10f);
        double t = Math.Exp((float)Math.Log(20));

        double plain = ContrastiveLosses.Sigmoid(s, logScale, bias, null).item<float>();
        double expected = SigmoidLoss(Cos, 3, t, -10, (i, j) => i == j);
        output.WriteLine($"sigmoid loss, diagonal positives: {plain:F6} (closed form {expected:F6})");
        Assert.Equal(expected, plain, 1e-5 * expected);

        // Rows 0 and 1 share a group: (0,1) and (1,0) become positives too.
        var p = new bool[3, 3] { { true, true, false }, { true, true, false }, { false, false, true } };
        double multi = ContrastiveLosses.Sigmoid(s, logScale, bias, Mask(p)).item<float>();
        double expectedMulti = SigmoidLoss(Cos, 3, t, -10, (i, j) => p[i, j]);
        output.WriteLine($"sigmoid loss, rows 0 and 1 one group: {multi:F6} (closed form {expectedMulti:F6})");
        Assert.Equal(expectedMulti, multi, 1e-5 * expectedMulti);
        Assert.NotEqual(plain, multi, 1e-3);

        // Another scale and bias (the learnable parameters are read, not assumed).
        using var logScale2 = tensor((float)Math.Log(3.5));
        using var bias2 = tensor(0.75f);
        double other = ContrastiveLosses.Sigmoid(s, logScale2, bias2, null).item<float>();
        double expectedOther = SigmoidLoss(Cos, 3, Math.Exp((float)Math.Log(3.5)), 0.75, (i, j) => i == j);
        Assert.Equal(expectedOther, other, 1e-5 * expectedOther);
    }

    [Fact]
    public void MultiPositiveInfoNceSpreadsTheTargetsUniformlyOverEachRowsPositives()
    {
        using var scope = NewDisposeScope();
        const double tau = 0.1;
        var logits = Unit(ImageAngles).matmul(Unit(TextAngles).t()) / tensor((float)tau);
        var p = new bool[3, 3] { { true, true, false }, { true, true, false }, { false, false, true } };
        double got = ContrastiveLosses.InfoNce(logits, Mask(p)).item<float>();

        double L(int i, int j) => Cos(i, j) / (float)tau;
        double LogSoftmaxRow(int i, int j) => L(i, j) - Math.Log(Enumerable.Range(0, 3).Sum(k => Math.Exp(L(i, k))));
        double LogSoftmaxCol(int j, int i) => L(i, j) - Math.Log(Enumerable.Range(0, 3).Sum(k => Math.Exp(L(k, j))));
        double i2t = 0, t2i = 0;
        for (int i = 0; i < 3; i++)
        {
            int count = Enumerable.Range(0, 3).Count(j => p[i, j]);
            for (int j = 0; j < 3; j++) if (p[i, j]) i2t -= LogSoftmaxRow(i, j) / count;
        }
        for (int j = 0; j < 3; j++)
        {
            int count = Enumerable.Range(0, 3).Count(i => p[i, j]);
            for (int i = 0; i < 3; i++) if (p[i, j]) t2i -= LogSoftmaxCol(j, i) / count;
        }
        double expected = (i2t + t2i) / 6;
        output.WriteLine($"multi-positive InfoNCE {got:F6}, closed form {expected:F6}");
        Assert.Equal(expected, got, 1e-5 * expected);

        // The identity mask is plain InfoNCE (to float rounding; the trainer passes null then and is bit-exact).
        double plain = ContrastiveLosses.InfoNce(logits, null).item<float>();
        double identity = ContrastiveLosses.InfoNce(logits, eye(3, dtype: ScalarType.Bool)).item<float>();
        Assert.Equal(plain, identity, 1e-5 * plain);
        Assert.NotEqual(plain, got, 1e-3);
        // Unique groups give no mask at all.
        Assert.Null(ContrastiveLosses.PositiveMask([7, 3, 9], CPU));
        using var mask = ContrastiveLosses.PositiveMask([7, 3, 7], CPU)!;
        Assert.Equal(new[] { true, false, true, false, true, false, true, false, true }, mask.data<bool>().ToArray());
    }

    /// <summary>Row-wise graph of unit rows: softmax over j != i of x_i.x_j / t, in double.</summary>
    private static double[][] Graph(double[] angles, double t)
        => angles.Select((a, i) =>
        {
            var e = angles.Select((b, j) => j == i ? 0 : Math.Exp(Math.Cos(a - b) / t)).ToArray();
            double z = e.Sum();
            return e.Select(x => x / z).ToArray();
        }).ToArray();

    private static double Kl(double[] p, double[] q) => p.Zip(q).Where(x => x.First > 0).Sum(x => x.First * Math.Log(x.First / x.Second));

    [Fact]
    public void JensenShannonStructureTermIsZeroForEqualGraphsSymmetricAndMatchesTheClosedForm()
    {
        using var scope = NewDisposeScope();
        const double t = 0.5;
        var a = Unit(ImageAngles);
        var b = Unit(TextAngles);
        var js = StructureDivergence.JensenShannon;
        // Equal graphs (the projection keeps every cosine): 0; original features are normalised inside, so a scaled copy too.
        Assert.Equal(0, ContrastiveLosses.Structure(a, a, t, js).item<float>(), 1e-6);
        Assert.Equal(0, ContrastiveLosses.Structure(a * tensor(3f), a, t, js).item<float>(), 1e-6);
        // Symmetric in its two graphs (both arguments unit rows).
        float ab = ContrastiveLosses.Structure(a, b, t, js).item<float>(), ba = ContrastiveLosses.Structure(b, a, t, js).item<float>();
        Assert.Equal(ab, ba, 1e-6);
        // Closed form: mean over rows of KL(P||M)/2 + KL(Q||M)/2.
        var pa = Graph(ImageAngles, t); var pb = Graph(TextAngles, t);
        double expected = Enumerable.Range(0, 3).Average(i =>
        {
            var m = pa[i].Zip(pb[i], (x, y) => (x + y) / 2).ToArray();
            return Kl(pa[i], m) / 2 + Kl(pb[i], m) / 2;
        });
        double expectedKl = Enumerable.Range(0, 3).Average(i => Kl(pa[i], pb[i]));
        float kl = ContrastiveLosses.Structure(a, b, t, StructureDivergence.Kl).item<float>();
        output.WriteLine($"JS {ab:F6} (closed form {expected:F6}); KL {kl:F6} (closed form {expectedKl:F6})");
        Assert.Equal(expected, ab, 1e-5);
        Assert.Equal(expectedKl, kl, 1e-5);
        Assert.True(expected > 1e-3 && expected < Math.Log(2));
        Assert.True(double.IsFinite(ab)); // the excluded diagonal (P = Q = 0) must not give NaN
    }

    [Fact]
    public void StructureWeightWarmsUpLinearlyOverTheFirstSteps()
    {
        var o = new AlignmentTrainingOptions { StructureWeight = 2.0, StructureWarmupSteps = 4 };
        Assert.Equal(new[] { 0.5, 1.0, 1.5, 2.0, 2.0, 2.0 }, Enumerable.Range(0, 6).Select(s => AlignmentTrainer.StructureWeightAt(o, s)));
        var none = o with { StructureWarmupSteps = 0 };
        Assert.All(Enumerable.Range(0, 3), s => Assert.Equal(2.0, AlignmentTrainer.StructureWeightAt(none, s)));
    }

    [Fact]
    public void PairGroupsJoinRowsThatShareAnImageOrACaptionTransitively()
    {
        // a-x, a-y share image a; b-y shares caption y with a-y; c-z and d-" z " share the caption z (trimmed); e alone.
        var groups = PairGroups.FromImagesAndCaptions(["a", "a", "b", "c", "d", "e"], ["x", "y", "y", "z", " z ", null]);
        Assert.Equal(new long[] { 0, 0, 0, 3, 3, 5 }, groups);
        Assert.Contains("captions has 1", Assert.Throws<ArgumentException>(() => PairGroups.FromImagesAndCaptions(["a", "b"], ["x"])).Message);
    }

    [Fact]
    public void LatentMixupDrawsAreSeededAndLambdaStaysInTheOpenUnitInterval()
    {
        var a = LatentMixup.Draw(1.0, 1.0, 42, 7, 16);
        var b = LatentMixup.Draw(1.0, 1.0, 42, 7, 16);
        var c = LatentMixup.Draw(1.0, 1.0, 42, 8, 16);
        Assert.Equal(a.Lambda, b.Lambda);
        Assert.Equal(a.Permutation, b.Permutation);
        Assert.NotEqual(a.Lambda, c.Lambda);
        Assert.Equal(Enumerable.Range(0, 16), a.Permutation.Order());
        Assert.NotEqual(LatentMixup.Draw(1.0, 1.0, 43, 7, 16).Lambda, a.Lambda);

        // Beta(alpha, alpha): mean 1/2, variance 1 / (4 (2 alpha + 1)).
        foreach (var alpha in new[] { 0.2, 1.0, 4.0 })
        {
            var draws = Enumerable.Range(0, 4000).Select(s => LatentMixup.Draw(alpha, 1.0, 5, s, 2).Lambda).ToArray();
            Assert.All(draws, l => Assert.True(l > 0 && l < 1, $"lambda {l}"));
            double mean = draws.Average(), variance = draws.Average(l => (l - mean) * (l - mean));
            double expectedVariance = 1 / (4 * (2 * alpha + 1));
            output.WriteLine($"alpha {alpha}: mean {mean:F3}, variance {variance:F4} (Beta: 0.5, {expectedVariance:F4})");
            Assert.Equal(0.5, mean, 0.03);
            Assert.Equal(expectedVariance, variance, 0.15 * expectedVariance);
        }
        // Probability: the share of mixed batches.
        double share = Enumerable.Range(0, 2000).Count(s => LatentMixup.Draw(1.0, 0.3, 5, s, 2).Apply) / 2000.0;
        Assert.Equal(0.3, share, 0.04);
        Assert.DoesNotContain(Enumerable.Range(0, 200), s => LatentMixup.Draw(1.0, 0, 5, s, 2).Apply);

        // The mix itself: lambda x_i + (1 - lambda) x_perm(i).
        var m = new EmbeddingMatrix([1, 2, 10, 20, 100, 200], 3, 2);
        var mixed = LatentMixup.Mix(m, 0.25, [2, 0, 1]);
        Assert.Equal(new float[] { 0.25f * 1 + 0.75f * 100, 0.25f * 2 + 0.75f * 200, 0.25f * 10 + 0.75f * 1, 0.25f * 20 + 0.75f * 2, 0.25f * 100 + 0.75f * 10, 0.25f * 200 + 0.75f * 20 }, mixed.Data);
    }
}
